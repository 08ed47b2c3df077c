//! Blind indexes: equality lookups on encrypted columns ("find the contact with this phone
//! number") without decrypting every row.
//!
//! `blind_index(key, domain, value)` = hex(HMAC-SHA256(index key, `"switchboard/blind-index/v1"
//! ‖ domain ‖ value`)), fields length-prefixed. It is stored in a plain indexed column next to
//! the sealed value (CipherSweet's design). Properties:
//!
//! * **Keyed**: the index key is derived per tenant from its data key (HKDF-SHA256, label
//!   `blind-index`), so someone holding the database cannot test guesses (phone numbers are a
//!   small space: an unkeyed hash would fall to enumeration in minutes), and the same number has
//!   unrelated indexes in two tenants.
//! * **Domain-separated**: the same value indexed as a phone and as an external id gives
//!   different hashes, so index columns cannot be joined against each other.
//! * **Normalised first**: `+49 151 1234-5678` and `004915112345678` must meet, so values pass
//!   through [`normalize_phone`] / [`normalize_email`] before hashing.
//! * **Full 256-bit output**: no false positives to filter out. The accepted leak is equality:
//!   someone holding the database sees which rows share a number, not what the number is.
//!
//! The index key belongs to one data-key version. When a tenant moves to a new data key for
//! sealing, the storage layer keeps using the index key of the version recorded for the tenant's
//! index (or rebuilds the index columns in the same pass that re-seals the data).

use hmac::Mac as _;

use crate::encoding::AadWriter;
use crate::keys::IndexKey;

/// Domain for contacts' phone numbers (E.164, see [`normalize_phone`]).
pub const PHONE_DOMAIN: &str = "contact.phone";
/// Domain for contacts' email addresses (see [`normalize_email`]).
pub const EMAIL_DOMAIN: &str = "contact.email";

/// Why a value could not be normalised for indexing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The phone number does not start with `+` or `00` and a country code.
    #[error("phone number has no country code (expected +<country code><number>)")]
    MissingCountryCode,
    /// The phone number contains something other than digits and common separators.
    #[error("phone number contains an unexpected character")]
    InvalidCharacter,
    /// The phone number has fewer than 7 or more than 15 digits (E.164 allows at most 15).
    #[error("phone number has {0} digits; E.164 numbers have 7 to 15")]
    BadLength(usize),
    /// The email address is not `local@domain`.
    #[error("not an email address")]
    InvalidEmail,
}

/// The blind index of an already-normalised `value` in `domain`, as 64 lowercase hex digits.
pub fn blind_index(key: &IndexKey, domain: &str, value: &str) -> String {
    let message = AadWriter::new(b"switchboard/blind-index/v1")
        .field(domain.as_bytes())
        .field(value.as_bytes())
        .finish();
    let mut mac = key.mac();
    mac.update(&message);
    hex::encode(mac.finalize().into_bytes())
}

/// The blind index of a phone number in [`PHONE_DOMAIN`], normalising it first.
pub fn phone_index(key: &IndexKey, raw: &str) -> Result<String, NormalizeError> {
    Ok(blind_index(key, PHONE_DOMAIN, &normalize_phone(raw)?))
}

/// Normalises an international phone number to E.164 (`+` and 7 to 15 digits).
///
/// Accepts a leading `+` or `00`, and ignores spaces, `-`, `.`, `/`, `(` and `)`. Numbers without
/// a country code are rejected rather than guessed: which country a national number belongs to
/// is the channel's knowledge (WhatsApp's `wa_id` is E.164 without the `+`; adapters add it).
pub fn normalize_phone(raw: &str) -> Result<String, NormalizeError> {
    let trimmed = raw.trim();
    let rest = if let Some(rest) = trimmed.strip_prefix('+') {
        rest
    } else if let Some(rest) = trimmed.strip_prefix("00") {
        rest
    } else {
        return Err(NormalizeError::MissingCountryCode);
    };
    let mut out = String::with_capacity(16);
    out.push('+');
    for c in rest.chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' => {}
            _ => return Err(NormalizeError::InvalidCharacter),
        }
    }
    let digits = out.len() - 1;
    if !(7..=15).contains(&digits) {
        return Err(NormalizeError::BadLength(digits));
    }
    // Country codes never start with 0.
    if out.as_bytes().get(1) == Some(&b'0') {
        return Err(NormalizeError::MissingCountryCode);
    }
    Ok(out)
}

/// Normalises an email address for lookups: trimmed and lowercased (the local part too, as
/// nearly every provider treats it case-insensitively).
pub fn normalize_email(raw: &str) -> Result<String, NormalizeError> {
    let email = raw.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace) =>
        {
            Ok(email)
        }
        _ => Err(NormalizeError::InvalidEmail),
    }
}
