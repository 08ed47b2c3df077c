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
    let (key, created) = create_or_load(&path)?;
    if !created {
        return Ok((key, KeySource::File(path)));
    }
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

/// Makes a new key at `path`, or loads the one another process made there first (two nodes
/// or tests started at once on a fresh machine): whole, thanks to [`write_key_file`]. The
/// flag says whether this call made it.
fn create_or_load(path: &Path) -> anyhow::Result<(MasterKey, bool)> {
    let key = MasterKey::generate()?;
    match write_key_file(path, &key) {
        Ok(()) => Ok((key, true)),
        Err(e) if path.exists() => {
            tracing::debug!(error = %format!("{e:#}"), "another process created the master key first");
            let key = MasterKey::from_file(path).with_context(|| {
                format!("loading the default master key file {}", path.display())
            })?;
            Ok((key, false))
        }
        Err(e) => Err(e),
    }
}

/// Writes `key` (base64) to a new file with mode 0600, creating its folder (mode 0700).
/// Refuses to overwrite an existing file. The key is written whole to a temporary file
/// beside it and then hard-linked into place (which fails if the name exists), so no
/// process ever reads a half-written key, even when several create one at the same moment.
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
    anyhow::ensure!(
        !path.exists(),
        "the key file {} exists already; it is never overwritten (move it away first)",
        path.display()
    );
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = (|| -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        let text = key.to_base64();
        file.write_all(text.expose_secret().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| {
        format!(
            "creating the key file {} (it must not exist yet)",
            path.display()
        )
    })
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
    fn processes_creating_the_default_key_at_once_all_end_up_with_the_one_written() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("switchboard").join("master.key");
            let results: Vec<(MasterKey, bool)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| create_or_load(&path).expect("never fails")))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(results.iter().filter(|(_, made)| *made).count(), 1);
            let on_disk = MasterKey::from_file(&path).unwrap().id();
            assert!(results.iter().all(|(k, _)| k.id() == on_disk));
            let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
            assert_eq!(leftovers, 1, "no temporary file is left behind");
        }
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
