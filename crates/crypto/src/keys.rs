//! Keys: the master key, per-tenant data keys, and wrapping one with the other.
//!
//! * [`MasterKey`]: 32 bytes that never touch the database. Loaded from an environment variable
//!   ([`MasterKey::from_env_var`]) or a key file readable by its owner only
//!   ([`MasterKey::from_file`]). Its only job is to wrap data keys. Its [`KeyId`] (a short hash)
//!   is stored next to each wrapped key so the right master key can be picked during a rotation.
//! * [`MasterKeyring`]: the current master key plus older ones that may still unwrap. This is
//!   what makes rotation work without downtime (see below).
//! * [`DataKey`]: 32 random bytes per tenant and version. From it come three subkeys (HKDF-SHA256
//!   with distinct labels): the column-sealing key, the media key and the blind-index key.
//! * [`WrappedKey`]: a data key encrypted under a master key, as one string for a DB column:
//!   `wk1:<master key id, 16 hex>:<data key version>:<nonce b64>:<ciphertext b64>`.
//!
//! Wrapping is AES-256-GCM with a random 96-bit nonce and associated data
//! `"switchboard/wrap/v1" ‖ tenant ‖ data-key version ‖ master key id` (length-prefixed), so a
//! wrapped key copied to another tenant or relabelled with another version does not unwrap.
//! A dedicated key-wrap mode (RFC 3394/5649) would also do; GCM is used because it is already
//! our one AEAD, its tag gives a precise "tampered" error, and the nonce costs 12 bytes once per
//! tenant.
//!
//! # Rotating the master key without downtime
//!
//! 1. Start every node with `current = old, decrypt-only = [new]` (nothing changes yet).
//! 2. Restart nodes one by one with `current = new, decrypt-only = [old]`. New tenants get keys
//!    wrapped under `new`; every node can unwrap both, so mixed versions during the roll are fine.
//! 3. Run `switchboard keys rotate`: for each wrapped key with [`MasterKeyring::needs_rewrap`],
//!    store [`MasterKeyring::rewrap`]'s result (compare-and-swap on the old value). Data keys
//!    themselves do not change, so no data is re-encrypted and in-memory caches stay valid.
//! 4. When no wrapped key names the old id, drop the old key from the configuration.
//!
//! Step 1 matters only for clusters: a node still on the old configuration could not unwrap a key
//! that a new node wrapped under `new`.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use aes_gcm::aead::Aead as _;
use aes_gcm::aead::Payload;
use aes_gcm::{Aes256Gcm, KeyInit as _, Nonce};
use hkdf::Hkdf;
use hmac::Hmac;
use secrecy::SecretString;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::encoding::{AadWriter, b64_decode, b64_encode, parse_canonical_u32, random_fill};

/// Length in bytes of every symmetric key in this crate (AES-256, HMAC-SHA256).
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce: 96 bits, GCM's native size.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of an AES-GCM authentication tag.
pub(crate) const TAG_LEN: usize = 16;
/// Largest key file we read; a key in any accepted encoding is under 100 bytes.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// The operating system's random number generator failed (for example `getrandom` is not
/// available in a sandbox). Nothing was encrypted.
#[derive(Debug, thiserror::Error)]
#[error("the operating system random number generator failed: {0}")]
pub struct RngError(pub(crate) getrandom::Error);

/// Why a master key could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The environment variable is not set.
    #[error(
        "environment variable {var} is not set; generate a key with `switchboard keys generate`"
    )]
    EnvNotSet {
        /// Name of the variable.
        var: String,
    },
    /// The key text is not 32 bytes in hex or base64. The text itself is never echoed.
    #[error(
        "master key in {source_name} is not 32 bytes encoded as 64 hex digits or base64 ({reason})"
    )]
    Encoding {
        /// Where the key came from (variable name or file path).
        source_name: String,
        /// What was wrong, without any key material.
        reason: String,
    },
    /// The key file could not be read.
    #[error("cannot read master key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The key file can be read or written by group or others (Unix).
    #[error(
        "master key file {path} is accessible by group or others (mode {mode:04o}); \
         restrict it with `chmod 600 {path}`"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key path is not a regular file, or is too large to be a key.
    #[error("master key file {path} is not a regular file of at most 1 KiB")]
    NotAKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// Generating a key failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Why a [`WrappedKey`] could not be parsed or unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum UnwrapError {
    /// The text is not a `wk1:` wrapped key.
    #[error("malformed wrapped key: {0}")]
    Malformed(&'static str),
    /// No master key in the keyring has this id: the key that wrapped it was not configured.
    #[error("wrapped key was made with master key {0}, which is not configured")]
    UnknownMasterKey(KeyId),
    /// A single master key was given, but the wrapped key names another.
    #[error("wrapped key was made with master key {wrapped_with}, not {given}")]
    WrongMasterKey {
        /// Id stored in the wrapped key.
        wrapped_with: KeyId,
        /// Id of the key that was given.
        given: KeyId,
    },
    /// Authentication failed: the ciphertext was altered, or it belongs to another tenant or
    /// data-key version than the one asked for.
    #[error("wrapped key failed authentication (altered, or it belongs to another tenant/version)")]
    Tampered,
    /// Wrapping the key again (during [`rewrap`]) needed randomness that failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Short public identifier of a master key: the first 8 bytes of
/// `SHA-256("switchboard/master-key-id/v1" ‖ key)`, shown as 16 hex digits.
///
/// It lets an operator and the rotation job see which master key wrapped what, without
/// revealing anything usable about the key (a 256-bit key cannot be recovered from its hash).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = UnwrapError;

    /// Parses 16 lowercase hex digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lowercase = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut id = [0u8; 8];
        match hex::decode_to_slice(text, &mut id) {
            Ok(()) if lowercase => Ok(KeyId(id)),
            _ => Err(UnwrapError::Malformed(
                "key id is not 16 lowercase hex digits",
            )),
        }
    }
}

/// The 32-byte key that wraps every tenant's data keys. Zeroed on drop; `Debug` shows only its id.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl MasterKey {
    /// A new random key from the operating system's CSPRNG (for `switchboard keys generate`).
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random_fill(bytes.as_mut())?;
        Ok(Self::from_array(bytes))
    }

    /// A key from exactly 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut array = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(KeyError::Encoding {
                source_name: "raw bytes".into(),
                reason: format!("got {} bytes", bytes.len()),
            });
        }
        array.copy_from_slice(bytes);
        Ok(Self::from_array(array))
    }

    /// Parses a key written as 64 hex digits or as base64 (standard or URL-safe alphabet, with or
    /// without padding). Surrounding whitespace is ignored. `source_name` only labels errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let decoded = Zeroizing::new(decode_key_text(text).ok_or_else(|| KeyError::Encoding {
            source_name: source_name.into(),
            reason: format!("{} characters that are neither hex nor base64", text.len()),
        })?);
        if decoded.len() != KEY_LEN {
            return Err(KeyError::Encoding {
                source_name: source_name.into(),
                reason: format!("decodes to {} bytes", decoded.len()),
            });
        }
        Self::from_bytes(&decoded)
    }

    /// Reads the key from an environment variable, e.g. `SWITCHBOARD_MASTER_KEY`, in hex or base64.
    pub fn from_env_var(var: &str) -> Result<Self, KeyError> {
        match std::env::var(var) {
            Ok(value) => Self::parse(&Zeroizing::new(value), var),
            Err(std::env::VarError::NotPresent) => Err(KeyError::EnvNotSet { var: var.into() }),
            Err(std::env::VarError::NotUnicode(_)) => Err(KeyError::Encoding {
                source_name: var.into(),
                reason: "the value is not valid UTF-8".into(),
            }),
        }
    }

    /// Reads the key from a file holding either the 32 raw bytes or the key in hex or base64.
    ///
    /// On Unix the file must not be accessible by group or others (mode `0600` or `0400`), as
    /// with SSH private keys: a key readable by every local user protects nothing. Keep the file
    /// outside the data directory and its backups, so a stolen backup holds no key.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let io_err = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() || meta.len() > MAX_KEY_FILE_LEN {
            return Err(KeyError::NotAKeyFile {
                path: path.to_path_buf(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut contents = Zeroizing::new(Vec::with_capacity(128));
        file.take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut contents)
            .map_err(io_err)?;
        // 32 bytes can only be the raw key: hex is 64 characters and base64 43 or 44.
        if contents.len() == KEY_LEN {
            return Self::from_bytes(&contents);
        }
        let source_name = path.display().to_string();
        let text = std::str::from_utf8(&contents).map_err(|_| KeyError::Encoding {
            source_name: source_name.clone(),
            reason: "not 32 raw bytes and not UTF-8 text".into(),
        })?;
        Self::parse(text, &source_name)
    }

    /// This key's public identifier.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key as standard padded base64, for `switchboard keys generate` to print once.
    pub fn to_base64(&self) -> SecretString {
        use base64::Engine as _;
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(self.bytes.as_ref()))
    }

    fn from_array(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let digest = Sha256::new()
            .chain_update(b"switchboard/master-key-id/v1")
            .chain_update(bytes.as_ref())
            .finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        MasterKey {
            bytes,
            id: KeyId(id),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&*self.bytes).into())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn decode_key_text(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    if text.len() == 2 * KEY_LEN
        && let Ok(bytes) = hex::decode(text)
    {
        return Some(bytes);
    }
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// The master keys a process knows: one current key that wraps, and older (or, during step 1
/// of a rotation, newer) keys that only unwrap. See the module docs for the rotation steps.
#[derive(Debug)]
pub struct MasterKeyring {
    current: MasterKey,
    decrypt_only: Vec<MasterKey>,
}

impl MasterKeyring {
    /// A keyring holding only `current`.
    pub fn new(current: MasterKey) -> Self {
        MasterKeyring {
            current,
            decrypt_only: Vec::new(),
        }
    }

    /// Adds a key that may unwrap but never wraps. A key with the same id as one already held
    /// is ignored.
    pub fn with_decrypt_only(mut self, key: MasterKey) -> Self {
        if self.get(key.id()).is_none() {
            self.decrypt_only.push(key);
        }
        self
    }

    /// The key new data keys are wrapped with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The key with this id, if held.
    pub fn get(&self, id: KeyId) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.decrypt_only)
            .find(|key| key.id == id)
    }

    /// Wraps `data_key` for `tenant` under the current master key.
    pub fn wrap(&self, tenant: &str, data_key: &DataKey) -> Result<WrappedKey, RngError> {
        wrap(&self.current, tenant, data_key)
    }

    /// Unwraps with whichever held key made `wrapped`.
    pub fn unwrap(&self, tenant: &str, wrapped: &WrappedKey) -> Result<DataKey, UnwrapError> {
        let key = self
            .get(wrapped.master_key_id)
            .ok_or(UnwrapError::UnknownMasterKey(wrapped.master_key_id))?;
        unwrap(key, tenant, wrapped)
    }

    /// Whether `wrapped` was made with a key other than the current one.
    pub fn needs_rewrap(&self, wrapped: &WrappedKey) -> bool {
        wrapped.master_key_id != self.current.id
    }

    /// Re-wraps `wrapped` under the current key, or returns `None` if it already is.
    /// The data key inside is unchanged.
    pub fn rewrap(
        &self,
        tenant: &str,
        wrapped: &WrappedKey,
    ) -> Result<Option<WrappedKey>, UnwrapError> {
        if !self.needs_rewrap(wrapped) {
            return Ok(None);
        }
        let data_key = self.unwrap(tenant, wrapped)?;
        Ok(Some(wrap(&self.current, tenant, &data_key)?))
    }
}

/// A tenant's data key of one version, with its derived subkeys. Zeroed on drop; `Debug` shows
/// only the version. Obtain one with [`DataKey::generate`] or by unwrapping a [`WrappedKey`];
/// share it behind an `Arc` (it is deliberately not `Clone`, so copies of key material stay few).
pub struct DataKey {
    version: u32,
    root: Zeroizing<[u8; KEY_LEN]>,
    seal: Aes256Gcm,
    media: Zeroizing<[u8; KEY_LEN]>,
    index: IndexKey,
}

impl DataKey {
    /// A new random data key; `version` numbers a tenant's keys (1 for the first).
    pub fn generate(version: u32) -> Result<Self, RngError> {
        let mut root = Zeroizing::new([0u8; KEY_LEN]);
        random_fill(root.as_mut())?;
        Ok(Self::from_root(version, root))
    }

    /// This key's version, as written into every [`crate::Sealed`] value and media header.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The tenant's blind-index key derived from this data key.
    pub fn index_key(&self) -> &IndexKey {
        &self.index
    }

    pub(crate) fn seal_cipher(&self) -> &Aes256Gcm {
        &self.seal
    }

    pub(crate) fn media_key(&self) -> &[u8; KEY_LEN] {
        &self.media
    }

    fn from_root(version: u32, root: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let seal_key = derive_subkey(&root, b"switchboard/subkey/seal/v1");
        let media = derive_subkey(&root, b"switchboard/subkey/media/v1");
        let index = IndexKey(derive_subkey(&root, b"switchboard/subkey/blind-index/v1"));
        DataKey {
            version,
            seal: Aes256Gcm::new((&*seal_key).into()),
            root,
            media,
            index,
        }
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// HKDF-SHA256 (RFC 5869) with no salt: the input is already a uniformly random key, so
/// "expand" with a distinct label per purpose is all that is needed for independent subkeys.
fn derive_subkey(root: &[u8; KEY_LEN], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(None, root)
        .expand(label, out.as_mut())
        .expect("32 bytes is far below HKDF-SHA256's 8160-byte output limit");
    out
}

/// HMAC-SHA256 key for blind indexes, derived per tenant from its data key. Zeroed on drop.
pub struct IndexKey(Zeroizing<[u8; KEY_LEN]>);

impl IndexKey {
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.0.as_ref()).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

/// A data key encrypted under a master key; store its [`Display`](fmt::Display) form in a text
/// column (`wk1:<master key id>:<data key version>:<nonce>:<ciphertext>`) and read it back with
/// [`str::parse`]. Serde uses the same string.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    master_key_id: KeyId,
    data_key_version: u32,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl WrappedKey {
    /// Id of the master key that wrapped this data key.
    pub fn master_key_id(&self) -> KeyId {
        self.master_key_id
    }

    /// Version of the data key inside.
    pub fn data_key_version(&self) -> u32 {
        self.data_key_version
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("master_key_id", &self.master_key_id)
            .field("data_key_version", &self.data_key_version)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wk1:{}:{}:{}:{}",
            self.master_key_id,
            self.data_key_version,
            b64_encode(&self.nonce),
            b64_encode(&self.ciphertext)
        )
    }
}

impl FromStr for WrappedKey {
    type Err = UnwrapError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(':');
        let (Some("wk1"), Some(id), Some(version), Some(nonce), Some(ciphertext), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(UnwrapError::Malformed(
                "expected wk1:<id>:<version>:<nonce>:<ciphertext>",
            ));
        };
        let master_key_id = id.parse()?;
        let data_key_version = parse_canonical_u32(version).ok_or(UnwrapError::Malformed(
            "data key version is not a decimal u32",
        ))?;
        let nonce = b64_decode(nonce)
            .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
            .ok_or(UnwrapError::Malformed("nonce is not 12 bytes of base64"))?;
        let ciphertext = b64_decode(ciphertext)
            .filter(|c| c.len() == KEY_LEN + TAG_LEN)
            .ok_or(UnwrapError::Malformed(
                "ciphertext is not 48 bytes of base64",
            ))?;
        Ok(WrappedKey {
            master_key_id,
            data_key_version,
            nonce,
            ciphertext,
        })
    }
}

impl serde::Serialize for WrappedKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for WrappedKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn wrap_aad(tenant: &str, data_key_version: u32, master_key_id: KeyId) -> Vec<u8> {
    AadWriter::new(b"switchboard/wrap/v1")
        .field(tenant.as_bytes())
        .u32(data_key_version)
        .field(&master_key_id.0)
        .finish()
}

/// Encrypts `data_key` for `tenant` under `master`.
pub fn wrap(master: &MasterKey, tenant: &str, data_key: &DataKey) -> Result<WrappedKey, RngError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce)?;
    let aad = wrap_aad(tenant, data_key.version, master.id);
    let ciphertext = master
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: data_key.root.as_ref(),
                aad: &aad,
            },
        )
        .expect("AES-GCM accepts a 32-byte message");
    Ok(WrappedKey {
        master_key_id: master.id,
        data_key_version: data_key.version,
        nonce,
        ciphertext,
    })
}

/// Decrypts `wrapped` for `tenant` with `master`, which must be the key that wrapped it.
pub fn unwrap(
    master: &MasterKey,
    tenant: &str,
    wrapped: &WrappedKey,
) -> Result<DataKey, UnwrapError> {
    if wrapped.master_key_id != master.id {
        return Err(UnwrapError::WrongMasterKey {
            wrapped_with: wrapped.master_key_id,
            given: master.id,
        });
    }
    let aad = wrap_aad(tenant, wrapped.data_key_version, master.id);
    let plain = Zeroizing::new(
        master
            .cipher()
            .decrypt(
                &Nonce::from(wrapped.nonce),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| UnwrapError::Tampered)?,
    );
    let mut root = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return Err(UnwrapError::Tampered);
    }
    root.copy_from_slice(&plain);
    Ok(DataKey::from_root(wrapped.data_key_version, root))
}

/// Moves a wrapped data key from `old` to `new` master key (one step of `switchboard keys
/// rotate`). The data key inside is unchanged, so nothing sealed with it needs re-encrypting.
pub fn rewrap(
    old: &MasterKey,
    new: &MasterKey,
    tenant: &str,
    wrapped: &WrappedKey,
) -> Result<WrappedKey, UnwrapError> {
    let data_key = unwrap(old, tenant, wrapped)?;
    Ok(wrap(new, tenant, &data_key)?)
}
