//! Sealed column values: one encrypted field (message body, contact name, phone number,
//! attributes, channel credentials) as a self-describing string or byte string.
//!
//! # Format
//!
//! Text, for `TEXT` columns (all base64 is URL-safe without padding):
//!
//! ```text
//! v1:<data key version, decimal>:<nonce, 12 bytes>:<ciphertext ‖ 16-byte tag>
//! v1:3:q4Jx0c0i5-6n4C1H:0uYx...
//! ```
//!
//! Binary, for `BYTEA`/`BLOB` columns: `0x01 ‖ version (u32 big-endian) ‖ nonce (12) ‖
//! ciphertext ‖ tag (16)`. Both carry the same fields; the first byte / `v1:` prefix names the
//! format so a future `v2` (another AEAD, say) can be read side by side.
//!
//! The cipher is AES-256-GCM under the data key's sealing subkey, with a fresh random 96-bit
//! nonce per value. The data-key version is in the clear so the reader picks the right key; a
//! tenant starts a new data-key version (and seals new values with it) long before 2^32 values
//! have been sealed under one key, the bound for random 96-bit nonces (NIST SP 800-38D §8.3).
//! Older values stay readable with the older version until re-sealed.
//!
//! # Associated data
//!
//! Every value is bound to where it is stored, through GCM's associated data (authenticated,
//! not encrypted, not stored):
//!
//! ```text
//! "switchboard/seal/v1" ‖ tenant ‖ table ‖ column ‖ row id ‖ data key version
//! ```
//!
//! each field prefixed with its length (u64, big-endian), so no two different tuples give the
//! same bytes. A value copied to another row, column, table or tenant, or relabelled with
//! another key version, fails to open with [`OpenError::Tampered`]. Binding the version stops a
//! downgrade to an older (possibly compromised) key. The row id must be known before the
//! insert (we use client-generated UUIDv7s) and must never change.
//!
//! # Errors and panics
//!
//! [`open`] never panics, whatever the input (a property test feeds it arbitrary strings and
//! bytes); it reports [`OpenError::Malformed`] for text that is not a sealed value,
//! [`OpenError::WrongKey`] when the value names another key version, and
//! [`OpenError::Tampered`] when authentication fails. GCM cannot tell a flipped bit from the
//! wrong associated data or a wrong key of the same version: all three are "tampered".

use std::fmt;
use std::str::FromStr;

use aes_gcm::Nonce;
use aes_gcm::aead::{Aead as _, Payload};

use crate::encoding::{AadWriter, b64_decode, b64_encode, parse_canonical_u32, random_fill};
use crate::keys::{DataKey, NONCE_LEN, RngError, TAG_LEN};

/// First byte of the binary form.
const BINARY_V1: u8 = 0x01;

/// Where a sealed value lives: tenant, table, column and row id. It is authenticated with the
/// value, so the value opens only at the same place.
///
/// Use stable, canonical spellings: the lowercase hyphenated UUID for ids, and the SQL names
/// for table and column (they become part of the format, so renaming a column means
/// re-sealing its values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    tenant: &'a str,
    table: &'a str,
    column: &'a str,
    row: &'a str,
}

impl<'a> Aad<'a> {
    /// The place `(tenant, table, column, row)`.
    pub fn new(tenant: &'a str, table: &'a str, column: &'a str, row: &'a str) -> Self {
        Aad {
            tenant,
            table,
            column,
            row,
        }
    }

    /// The length-prefixed encoding under a purpose label, for this crate's formats.
    pub(crate) fn writer(&self, label: &[u8]) -> AadWriter {
        let mut writer = AadWriter::new(label);
        writer
            .field(self.tenant.as_bytes())
            .field(self.table.as_bytes())
            .field(self.column.as_bytes())
            .field(self.row.as_bytes());
        writer
    }

    fn seal_bytes(&self, key_version: u32) -> Vec<u8> {
        self.writer(b"switchboard/seal/v1")
            .u32(key_version)
            .finish()
    }
}

/// Why a value could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No nonce could be drawn.
    #[error(transparent)]
    Rng(#[from] RngError),
    /// The plaintext exceeds AES-GCM's limit (64 GiB); use [`crate::encrypt_file`].
    #[error("plaintext too long for AES-GCM")]
    TooLong,
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed value at all (wrong prefix, bad base64, wrong lengths).
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),
    /// A sealed format this build does not know (e.g. `v2:` written by a newer release).
    #[error("sealed value uses format {0}, which this version does not support")]
    UnsupportedFormat(String),
    /// The value was sealed with another data-key version than the key given.
    #[error("sealed with data key version {sealed_with}, but version {given} was given")]
    WrongKey {
        /// Version named in the value.
        sealed_with: u32,
        /// Version of the key passed in.
        given: u32,
    },
    /// Authentication failed: the value was altered, copied from another row, column or tenant,
    /// or the key is wrong.
    #[error("sealed value failed authentication (altered, moved from another row, or wrong key)")]
    Tampered,
}

/// A parsed sealed value. Its `Display` form is the text column form; [`Sealed::to_bytes`] the
/// binary form.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    key_version: u32,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl Sealed {
    /// Parses the text form `v1:<version>:<nonce>:<ciphertext>`.
    pub fn parse(text: &str) -> Result<Self, OpenError> {
        let mut parts = text.split(':');
        let format = parts.next().unwrap_or_default();
        if format != "v1" {
            let looks_versioned = format.len() > 1
                && format.len() <= 4
                && format.starts_with('v')
                && format[1..].bytes().all(|b| b.is_ascii_digit());
            return Err(if looks_versioned {
                OpenError::UnsupportedFormat(format.to_owned())
            } else {
                OpenError::Malformed("does not start with v1:")
            });
        }
        let (Some(version), Some(nonce), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed(
                "expected v1:<version>:<nonce>:<ciphertext>",
            ));
        };
        let key_version = parse_canonical_u32(version)
            .ok_or(OpenError::Malformed("key version is not a decimal u32"))?;
        let nonce = b64_decode(nonce)
            .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
            .ok_or(OpenError::Malformed("nonce is not 12 bytes of base64"))?;
        let ciphertext = b64_decode(ciphertext)
            .filter(|c| c.len() >= TAG_LEN)
            .ok_or(OpenError::Malformed(
                "ciphertext is not base64 of at least 16 bytes",
            ))?;
        Ok(Sealed {
            key_version,
            nonce,
            ciphertext,
        })
    }

    /// Parses the binary form `0x01 ‖ version ‖ nonce ‖ ciphertext`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpenError> {
        let Some((&format, rest)) = bytes.split_first() else {
            return Err(OpenError::Malformed("empty"));
        };
        if format != BINARY_V1 {
            return Err(OpenError::UnsupportedFormat(format!("0x{format:02x}")));
        }
        if rest.len() < 4 + NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed("shorter than header, nonce and tag"));
        }
        let (version, rest) = rest.split_at(4);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Sealed {
            key_version: u32::from_be_bytes(version.try_into().expect("split at 4 bytes")),
            nonce: nonce.try_into().expect("split at 12 bytes"),
            ciphertext: ciphertext.to_vec(),
        })
    }

    /// The binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 4 + NONCE_LEN + self.ciphertext.len());
        out.push(BINARY_V1);
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Version of the data key that sealed this value: look that key up, then [`Sealed::open`].
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// Decrypts with `key` at `aad`.
    pub fn open(&self, key: &DataKey, aad: &Aad<'_>) -> Result<Vec<u8>, OpenError> {
        if self.key_version != key.version() {
            return Err(OpenError::WrongKey {
                sealed_with: self.key_version,
                given: key.version(),
            });
        }
        let aad = aad.seal_bytes(self.key_version);
        key.seal_cipher()
            .decrypt(
                &Nonce::from(self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Tampered)
    }
}

impl fmt::Display for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v1:{}:{}:{}",
            self.key_version,
            b64_encode(&self.nonce),
            b64_encode(&self.ciphertext)
        )
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_version", &self.key_version)
            .field("len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl FromStr for Sealed {
    type Err = OpenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Sealed::parse(text)
    }
}

/// Encrypts `plaintext` with `key` for the place `aad`. Store `sealed.to_string()` (text) or
/// `sealed.to_bytes()` (binary).
pub fn seal(key: &DataKey, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Sealed, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let ciphertext = key
        .seal_cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad.seal_bytes(key.version()),
            },
        )
        .map_err(|_| SealError::TooLong)?;
    Ok(Sealed {
        key_version: key.version(),
        nonce,
        ciphertext,
    })
}

/// Parses the text form and decrypts it with `key` at `aad`.
pub fn open(key: &DataKey, aad: &Aad<'_>, sealed: &str) -> Result<Vec<u8>, OpenError> {
    Sealed::parse(sealed)?.open(key, aad)
}

/// Parses the binary form and decrypts it with `key` at `aad`.
pub fn open_bytes(key: &DataKey, aad: &Aad<'_>, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    Sealed::from_bytes(sealed)?.open(key, aad)
}
