//! `switchboard keys …`: make a master key, rotate it, add a data-key version. Thin wrappers
//! over `switchboard_app::keys` and `switchboard_storage::keys`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use switchboard_crypto::{MasterKey, MasterKeyring};

use crate::{StoreArgs, load_config};

/// `switchboard keys …`
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new random master key and write it to a file (mode 0600) that must not exist
    /// yet. Keep it outside the data directory and back it up apart from the data.
    Generate {
        /// Where to write the key (default: ~/.config/switchboard/master.key).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-wrap every tenant's data keys under a new master key, in one transaction. Safe
    /// while servers run: data keys do not change, so nothing is re-encrypted and running
    /// servers keep working; restart them with the new key afterwards.
    ///
    /// The old key is the configured one (SWITCHBOARD_MASTER_KEY / SWITCHBOARD_MASTER_KEY_FILE
    /// / the default key file) unless --old-key-file is given.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// File holding the NEW master key (make one with `switchboard keys generate --out`).
        /// Or set SWITCHBOARD_NEW_MASTER_KEY.
        #[arg(long, env = "SWITCHBOARD_NEW_MASTER_KEY_FILE")]
        new_key_file: Option<PathBuf>,
        /// File holding the OLD master key (default: the configured key).
        #[arg(long)]
        old_key_file: Option<PathBuf>,
    },
    /// Add a new data-key version for a tenant: new values are sealed with it once servers
    /// restart, and values sealed with older versions stay readable. Do this long before a
    /// tenant has sealed 2^32 values under one key.
    AddVersion {
        #[command(flatten)]
        store: StoreArgs,
        /// Tenant slug.
        #[arg(long)]
        tenant: String,
    },
}

/// Runs a `keys` command.
pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Generate { out } => {
            let path = match out {
                Some(p) => p,
                None => switchboard_app::keys::default_key_file()
                    .context("HOME is not set: pass --out FILE")?,
            };
            let key = MasterKey::generate()?;
            switchboard_app::keys::write_key_file(&path, &key)?;
            println!("Wrote master key {} to {}", key.id(), path.display());
            println!("Next: back it up apart from the data, then start with");
            println!(
                "  SWITCHBOARD_MASTER_KEY_FILE={} switchboard serve",
                path.display()
            );
            println!(
                "or, to replace the current key, run `switchboard keys rotate --new-key-file {}`.",
                path.display()
            );
            Ok(())
        }
        KeysCommand::Rotate {
            store,
            new_key_file,
            old_key_file,
        } => {
            let config = load_config(&store, None)?;
            let new = match (new_key_file, std::env::var("SWITCHBOARD_NEW_MASTER_KEY")) {
                (Some(path), _) => MasterKey::from_file(&path)
                    .with_context(|| format!("loading the new master key {}", path.display()))?,
                (None, Ok(text)) if !text.trim().is_empty() => {
                    MasterKey::parse(&text, "SWITCHBOARD_NEW_MASTER_KEY")?
                }
                _ => anyhow::bail!(
                    "give the new master key with --new-key-file FILE (make one with \
                     `switchboard keys generate --out FILE`) or SWITCHBOARD_NEW_MASTER_KEY"
                ),
            };
            let old = match old_key_file {
                Some(path) => MasterKey::from_file(&path)
                    .with_context(|| format!("loading the old master key {}", path.display()))?,
                None => {
                    let (key, source) = switchboard_app::keys::current_key(&config, false)?;
                    println!("Old master key: {} ({source})", key.id());
                    key
                }
            };
            let (old_id, new_id) = (old.id(), new.id());
            anyhow::ensure!(
                old_id != new_id,
                "the new master key is the same as the old one ({new_id}); make a new one with \
                 `switchboard keys generate --out FILE`"
            );
            println!("Re-wrapping data keys: master key {old_id} -> {new_id}");
            let ring = MasterKeyring::new(new).with_decrypt_only(old);
            let report = switchboard_storage::rotate_master_key(
                &config.database_url(),
                ring,
                |done, total| println!("  {done}/{total} data keys"),
            )
            .await?;
            println!(
                "Done: {} data keys re-wrapped, {} already used the new key.",
                report.rewrapped, report.already_current
            );
            println!(
                "Next: restart every server with the new key (SWITCHBOARD_MASTER_KEY_FILE / SWITCHBOARD_MASTER_KEY),"
            );
            println!("      then destroy the old key; it no longer opens this database.");
            Ok(())
        }
        KeysCommand::AddVersion { store, tenant } => {
            let config = load_config(&store, None)?;
            let (ring, source) = switchboard_app::keys::master_keyring(&config, false)?;
            println!("Master key: {} ({source})", ring.current().id());
            let version = switchboard_storage::add_data_key_version(
                &config.database_url(),
                ring,
                &tenant,
                switchboard_app::now(),
            )
            .await?;
            println!("Added data key version {version} for tenant {tenant}.");
            println!(
                "Next: restart the servers; new values are then sealed with version {version}."
            );
            Ok(())
        }
    }
}
