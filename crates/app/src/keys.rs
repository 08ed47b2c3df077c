//! The master key: where it comes from, and making one on first start.
//!
//! The master key wraps every tenant's data key (see `switchboard_storage::keys`). It must
//! never sit beside the data: a stolen database file or backup then holds only ciphertext.
//! Sources, first match wins:
//!
//! 1. `keys.master_key` — the key itself, usually from the environment variable
//!    `SWITCHBOARD_MASTER_KEY` (64 hex digits or base64 of 32 bytes);
//! 2. `keys.master_key_file` / `SWITCHBOARD_MASTER_KEY_FILE` — a file readable by its owner
//!    only (mode 0600), outside the data directory;
//! 3. the default key file `$XDG_CONFIG_HOME/switchboard/master.key` (else
//!    `~/.config/switchboard/master.key`), made on first start with mode 0600 and announced on
//!    stdout with what to back up, so `switchboard demo` works with one command.
//!
//! `keys.previous_master_key_files` adds keys that only unwrap (the middle step of a master
//! key rotation on a cluster). A key that does not open the database's wrapped keys is
//! refused by `switchboard_storage::open`; no new key is ever made over existing data.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use switchboard_crypto::{MasterKey, MasterKeyring};

use crate::Config;

/// Where the master key came from (shown at start-up; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The configuration value / `SWITCHBOARD_MASTER_KEY`.
    Value,
    /// A key file.
    File(PathBuf),
    /// A key file made just now at this path.
    Created(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Value => f.write_str("SWITCHBOARD_MASTER_KEY"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
            KeySource::Created(p) => write!(f, "new key file {}", p.display()),
        }
    }
}

/// The default key file: `$XDG_CONFIG_HOME/switchboard/master.key`, else
/// `$HOME/.config/switchboard/master.key`; `None` without either variable.
pub fn default_key_file() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("switchboard").join("master.key"))
}

/// Loads the configured master key (and decrypt-only previous keys). With `create` and no key
/// configured anywhere, makes the default key file and prints where it is on stdout.
pub fn master_keyring(config: &Config, create: bool) -> anyhow::Result<(MasterKeyring, KeySource)> {
    let (current, source) = current_key(config, create)?;
    let mut ring = MasterKeyring::new(current);
    for path in &config.keys.previous_master_key_files {
        check_outside_data_dir(path, &config.data_dir)?;
        let key = MasterKey::from_file(path)
            .with_context(|| format!("loading previous master key {}", path.display()))?;
        ring = ring.with_decrypt_only(key);
    }
    Ok((ring, source))
}

/// The current master key alone (see the module docs for the order of sources).
pub fn current_key(config: &Config, create: bool) -> anyhow::Result<(MasterKey, KeySource)> {
    if let Some(text) = &config.keys.master_key {
        let key = MasterKey::parse(text.expose(), "SWITCHBOARD_MASTER_KEY")?;
        return Ok((key, KeySource::Value));
    }
    if let Some(path) = &config.keys.master_key_file {
        check_outside_data_dir(path, &config.data_dir)?;
        let key = MasterKey::from_file(path).with_context(|| {
            format!(
                "loading the master key file {} (keys.master_key_file / SWITCHBOARD_MASTER_KEY_FILE)",
                path.display()
            )
        })?;
        return Ok((key, KeySource::File(path.clone())));
    }
    let path = default_key_file().context(
        "no master key configured and neither XDG_CONFIG_HOME nor HOME is set: set \
         SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE (make a key with \
         `switchboard keys generate`)",
    )?;
    if path.exists() {
        let key = MasterKey::from_file(&path)
            .with_context(|| format!("loading the default master key file {}", path.display()))?;
        return Ok((key, KeySource::File(path)));
    }
    anyhow::ensure!(
        create,
        "no master key configured: set SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE \
         (the default file {} does not exist)",
        path.display()
    );
    check_outside_data_dir(&path, &config.data_dir)?;
    let key = MasterKey::generate()?;
    write_key_file(&path, &key)?;
    println!("Created a new master key: {}", path.display());
    println!(
        "  It encrypts every tenant's data key. Back it up apart from the data directory: \
         without it the database and media files cannot be read."
    );
    println!(
        "  Elsewhere, pass it with SWITCHBOARD_MASTER_KEY_FILE={} or SWITCHBOARD_MASTER_KEY.",
        path.display()
    );
    Ok((key, KeySource::Created(path)))
}

/// Writes `key` (base64) to a new file with mode 0600, creating its folder (mode 0700).
/// Refuses to overwrite an existing file.
pub fn write_key_file(path: &Path, key: &MasterKey) -> anyhow::Result<()> {
    use secrecy::ExposeSecret as _;
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the key folder {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating the key file {} (it must not exist yet)",
            path.display()
        )
    })?;
    let text = key.to_base64();
    file.write_all(text.expose_secret().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

/// Refuses a key file inside the data directory: a copy of the data folder would then carry
/// the key that opens it.
fn check_outside_data_dir(key: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let absolute = |p: &Path| -> PathBuf {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // Resolve what exists (symlinks, `..`); a missing tail is kept as given.
        match (
            p.parent().and_then(|d| d.canonicalize().ok()),
            p.file_name(),
        ) {
            (Some(dir), Some(name)) => dir.join(name),
            _ => p,
        }
    };
    let key = absolute(key);
    let data = data_dir
        .canonicalize()
        .unwrap_or_else(|_| absolute(data_dir));
    anyhow::ensure!(
        !key.starts_with(&data),
        "the master key file {} is inside the data directory {}: keep it elsewhere, so a copy \
         of the data never carries the key that opens it",
        key.display(),
        data.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_inside_the_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        assert!(check_outside_data_dir(&data.join("master.key"), &data).is_err());
        assert!(check_outside_data_dir(&dir.path().join("master.key"), &data).is_ok());
    }

    #[test]
    fn a_written_key_file_is_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("master.key");
        let key = MasterKey::generate().unwrap();
        write_key_file(&path, &key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(MasterKey::from_file(&path).unwrap().id(), key.id());
        assert!(
            write_key_file(&path, &key).is_err(),
            "never overwrites a key"
        );
    }
}
