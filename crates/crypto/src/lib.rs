//! Encryption at rest and tamper evidence for Switchboard: the primitives, pure and tested.
//!
//! This crate owns *how* bytes are protected. It does not know which tables exist, where
//! keys are stored or when a rotation runs: `storage` decides what to seal and keeps the
//! wrapped keys, `app`/`cli` load the master key and drive `switchboard keys rotate` and
//! `switchboard audit verify`. The only IO here is reading a key file and the
//! [`std::io::Read`]/[`std::io::Write`] streams handed to [`media`].
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | [`keys`] | [`MasterKey`] (env var / key file / generate), [`MasterKeyring`] for rotation, per-tenant [`DataKey`], [`WrappedKey`] and `wrap`/`unwrap`/`rewrap` |
//! | [`seal`](mod@seal) | [`Sealed`] column values (`v1:<key-version>:<nonce>:<ciphertext>`), [`Aad`] binding a value to tenant + table + column + row |
//! | [`media`] | chunked, streaming encryption of media files ([`encrypt_file`]/[`decrypt_file`]) that detects truncation, reordering and bit flips |
//! | [`blind_index`](mod@blind_index) | keyed hashes for equality lookups on encrypted columns (phone numbers), plus the normalisers they need |
//! | [`audit`] | the append-only, hash-chained audit log: [`chain_next`] and [`verify_chain`] |
//!
//! # Key hierarchy
//!
//! ```text
//! master key (env SWITCHBOARD_MASTER_KEY or a 0600 key file; never in the database)
//!   └─ wraps (AES-256-GCM, AAD = tenant + data-key version + master key id)
//!      data key, one or more versions per tenant (32 random bytes, stored only wrapped)
//!        ├─ HKDF-SHA256 "seal"        → AES-256-GCM key for column values
//!        ├─ HKDF-SHA256 "media"       → input to a fresh per-file key (HKDF with a random salt)
//!        └─ HKDF-SHA256 "blind-index" → HMAC-SHA256 key for lookups
//! ```
//!
//! Envelope encryption means rotating the master key only re-encrypts one 32-byte data key per
//! tenant ([`MasterKeyring::rewrap`]); no message, contact or media file is touched, so it runs
//! while the service serves traffic. Each purpose gets its own subkey (HKDF "info" labels) so a
//! ciphertext made for one purpose can never be replayed as another, and the blind-index key is
//! not the encryption key.
//!
//! # Why these choices
//!
//! * **No hand-rolled cryptography.** Every primitive is a RustCrypto crate (`aes-gcm`, `hkdf`,
//!   `hmac`, `sha2`) and randomness comes from the operating system (`getrandom`). This crate only
//!   *composes* them, and each composition follows a published design: envelope encryption
//!   (NIST SP 800-57 key wrapping with an AEAD), AEAD associated data for context binding, the
//!   STREAM construction for chunked files (Hoang, Reyhanitabar, Rogaway, Vizár 2015, as in
//!   Tink's `AesGcmHkdfStreaming`), HKDF (RFC 5869) for subkeys, HMAC blind indexes (CipherSweet),
//!   and a SHA-256 hash chain for the audit log.
//! * **AES-256-GCM** is what the architecture mandates; it is hardware accelerated on the x86-64
//!   and aarch64 machines we run on (the `aes` crate detects AES-NI/ARMv8 at runtime).
//! * **96-bit random nonces** for column values: 96 bits is GCM's native nonce size (other sizes
//!   are hashed through GHASH, with weaker bounds). Random nonces are safe up to about 2^32
//!   encryptions under one key (NIST SP 800-38D §8.3); the [`Sealed`] format carries the data-key
//!   version, so a tenant can move to a new data key long before that (see [`mod@seal`]).
//! * **Associated data** binds each ciphertext to where it lives (tenant, table, column, row id):
//!   a value copied to another row, column or tenant fails to decrypt, which stops an attacker
//!   with write access to the database from swapping encrypted fields around.
//! * **Media** is encrypted in 64 KiB chunks with a fresh key per file, so memory stays flat for
//!   any file size and a truncated, reordered or altered file is rejected (see [`media`]).
//! * **Secrets** are zeroed on drop (`zeroize`) and never printed: every key type has a
//!   hand-written `Debug` that shows only its id or version.

#![warn(missing_docs)]

pub mod audit;
pub mod blind_index;
mod encoding;
pub mod keys;
pub mod media;
pub mod seal;

pub use audit::{
    AuditEntry, ChainBreak, ChainError, ChainHead, ChainVerifier, GENESIS_HASH, NewAuditEntry,
    canonical_json, chain_next, verify_chain, verify_chain_to,
};
pub use blind_index::{NormalizeError, blind_index, normalize_email, normalize_phone, phone_index};
pub use keys::{
    DataKey, IndexKey, KeyError, KeyId, MasterKey, MasterKeyring, RngError, UnwrapError,
    WrappedKey, rewrap, unwrap, wrap,
};
pub use media::{FileError, decrypt_file, encrypt_file};
pub use seal::{Aad, OpenError, SealError, Sealed, open, open_bytes, seal};
