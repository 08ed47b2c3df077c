//! Small helpers shared by the formats: text encoding, unambiguous associated data, decimal
//! parsing and randomness. Nothing here is a cryptographic primitive.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::keys::RngError;

/// Base64 without padding, URL-safe alphabet: no `:` (our field separator), no `+`/`/` that
/// need escaping in URLs or CSV, and the shortest text for a DB column. Decoding is strict
/// (non-canonical trailing bits are rejected), so each value has exactly one text form.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict inverse of [`b64_encode`]; `None` on any invalid input.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Parses a `u32` written as plain decimal digits with no sign and no leading zero, so that a
/// version field has exactly one spelling (`"7"`, never `"+7"` or `"007"`).
pub(crate) fn parse_canonical_u32(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Builds associated data from a domain label and fields, each prefixed by its length as a
/// big-endian `u64`. Length prefixes make the encoding injective: `("ab", "c")` and
/// `("a", "bc")` give different bytes, which a separator such as `:` could not guarantee when
/// ids are attacker-influenced text.
pub(crate) struct AadWriter(Vec<u8>);

impl AadWriter {
    pub(crate) fn new(label: &[u8]) -> Self {
        let mut out = AadWriter(Vec::with_capacity(128));
        out.field(label);
        out
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random_fill(buf: &mut [u8]) -> Result<(), RngError> {
    getrandom::fill(buf).map_err(RngError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_have_one_spelling() {
        for (input, expected, why) in [
            ("0", Some(0), "zero is allowed"),
            ("7", Some(7), "plain digits"),
            ("4294967295", Some(u32::MAX), "max fits"),
            ("4294967296", None, "overflow"),
            ("007", None, "leading zeros"),
            ("+7", None, "sign"),
            ("", None, "empty"),
            ("٣", None, "non-ASCII digit"),
        ] {
            assert_eq!(parse_canonical_u32(input), expected, "{why}");
        }
    }

    #[test]
    fn aad_fields_are_unambiguous() {
        let a = AadWriter::new(b"l").field(b"ab").field(b"c").finish();
        let b = AadWriter::new(b"l").field(b"a").field(b"bc").finish();
        assert_ne!(a, b);
    }
}
