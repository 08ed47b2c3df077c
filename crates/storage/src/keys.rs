//! Encryption at rest inside the store: the per-tenant data keys and the sealing of columns.
//!
//! The primitives live in `switchboard-crypto`; this module decides *where* they apply.
//!
//! # Keys
//!
//! * The **master key** ([`MasterKeyring`]) is handed to [`crate::open`] by the caller (the app
//!   reads it from `SWITCHBOARD_MASTER_KEY` or a key file). It is never written anywhere by
//!   the store.
//! * Each tenant has one or more **data keys** (table `tenant_keys`, one row per version),
//!   stored only wrapped by the master key. A tenant's first key is made in the transaction
//!   that creates the tenant. Unwrapped keys are cached in memory for the life of the
//!   process, so the hot path never unwraps; the crypto types zero them on drop. The cache is
//!   process-wide and keyed by tenant id (a UUIDv7, unique across databases), so row decoders
//!   anywhere in this crate find a tenant's keys without a handle being passed down: the data
//!   key inside does not depend on which master key unwrapped it, and a store only adds keys
//!   its own master key unwrapped.
//! * At open every wrapped key is unwrapped once: a wrong master key is refused before any
//!   request is served ([`crate::OpenError::MasterKey`]), instead of failing row by row.
//! * A tenant created by another node is loaded on this node's first store call that needs
//!   it ([`Keys::ensure`]); a value sealed with a data-key version this process has not
//!   loaded marks the tenant stale, and the next `ensure` reloads its versions.
//! * New values are sealed with the tenant's newest data-key version; older versions still
//!   open what they sealed (the version is written into every value).
//! * Blind indexes (identity addresses, phone numbers, media file names) always use the index
//!   key of the tenant's **first** data key, so adding a data-key version never changes a
//!   lookup key.
//!
//! # What is sealed (AES-256-GCM, associated data = tenant ‖ table ‖ column ‖ row)
//!
//! | table.column | row id in the associated data |
//! |---|---|
//! | `messages.content` | message id |
//! | `conversations.last_message_preview` | conversation id |
//! | `contacts.display_name`, `contacts.attributes` | contact id |
//! | `identities.address` (the provider's id for the person), `identities.phone` | `<channel id>/<external_id index>` |
//! | `events.payload` (message copies for live-page replay) | event sequence number |
//! | `channels.credentials` | channel id |
//! | `flow_sessions.session` | conversation id |
//! | `flow_records.data` | record id |
//! | `consents.wording` | consent id |
//! | `conversation_notes.body`, `conversation_notes.data` | note id |
//!
//! `identities.external_id` holds a blind index of the address (HMAC of channel id and
//! address), which keeps the `(channel_id, external_id)` primary key as the inbound lookup;
//! `identities.phone_hash` is the blind index of the E.164 number used for cross-channel
//! linking. What stays in clear, and why, is listed in `docs/encryption.md`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{AnyConnection, AnyPool};
use switchboard_core::ports::{StoreError, StoreResult};
use switchboard_core::{ChannelId, TenantId, Timestamp};
use switchboard_crypto::{Aad, DataKey, IndexKey, MasterKeyring, WrappedKey};

use crate::sql::{DbResult, RowExt, Sql, Val, chunks, ms};

/// Blind-index domain of identity addresses (the provider's id for a person on a channel).
const ADDRESS_DOMAIN: &str = "identity.address";
/// Blind-index domain of stored media files (a keyed hash of their SHA-256).
const MEDIA_DOMAIN: &str = "media.sha256";

/// One tenant's unwrapped data keys, every version, shared behind an `Arc`.
pub struct TenantKeys {
    tenant: String,
    current: Arc<DataKey>,
    versions: BTreeMap<u32, Arc<DataKey>>,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys")
            .field("tenant", &self.tenant)
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TenantKeys {
    fn new(tenant: TenantId, keys: Vec<DataKey>) -> Option<Self> {
        let versions: BTreeMap<u32, Arc<DataKey>> = keys
            .into_iter()
            .map(|k| (k.version(), Arc::new(k)))
            .collect();
        let current = versions.values().next_back()?.clone();
        Some(TenantKeys {
            tenant: tenant.to_string(),
            current,
            versions,
        })
    }

    /// The key new values are sealed with (the newest version).
    pub fn current(&self) -> &DataKey {
        &self.current
    }

    /// The key of one version, to open what it sealed.
    pub fn version(&self, version: u32) -> Option<&DataKey> {
        self.versions.get(&version).map(|k| &**k)
    }

    /// The tenant's blind-index key: always the first data key's (see the module docs).
    pub fn index_key(&self) -> &IndexKey {
        self.versions
            .values()
            .next()
            .unwrap_or(&self.current)
            .index_key()
    }

    /// The tenant id as written into associated data.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The keyed name of a media file with this plaintext SHA-256 (hex): the media store
    /// names files by it, so equal files of one tenant are stored once while the name says
    /// nothing about the content to someone without the key.
    pub fn media_name(&self, sha256_hex: &str) -> String {
        switchboard_crypto::blind_index(self.index_key(), MEDIA_DOMAIN, sha256_hex)
    }

    /// Seals `plain` for `table.column` of `row`, as the text column form.
    pub(crate) fn seal(
        &self,
        table: &str,
        column: &str,
        row: &str,
        plain: &[u8],
    ) -> StoreResult<String> {
        let aad = Aad::new(&self.tenant, table, column, row);
        switchboard_crypto::seal(&self.current, &aad, plain)
            .map(|s| s.to_string())
            .map_err(|e| StoreError::Backend(format!("cannot seal {table}.{column}: {e}")))
    }

    /// Opens a value sealed by [`TenantKeys::seal`] at the same place.
    pub(crate) fn open(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: &str,
    ) -> StoreResult<Vec<u8>> {
        let value = switchboard_crypto::Sealed::parse(sealed).map_err(|e| {
            StoreError::Backend(format!("cannot open {table}.{column} of {row}: {e}"))
        })?;
        let key = self.version(value.key_version()).ok_or_else(|| {
            // A version added since this process loaded the tenant (`switchboard keys
            // add-version`, used by a node that restarted since): the next store call for
            // the tenant reloads its keys.
            mark_stale(&self.tenant);
            StoreError::Backend(format!(
                "{table}.{column} of {row} was sealed with data key version {}, which this \
                 process had not loaded yet; it is being loaded, so retry",
                value.key_version()
            ))
        })?;
        value
            .open(key, &Aad::new(&self.tenant, table, column, row))
            .map_err(|e| StoreError::Backend(format!("cannot open {table}.{column} of {row}: {e}")))
    }

    /// Seals a text value.
    pub(crate) fn seal_text(
        &self,
        table: &str,
        column: &str,
        row: &str,
        plain: &str,
    ) -> StoreResult<String> {
        self.seal(table, column, row, plain.as_bytes())
    }

    /// Seals an optional text value (`None` stays NULL: whether a value exists is not secret).
    pub(crate) fn seal_opt(
        &self,
        table: &str,
        column: &str,
        row: &str,
        plain: Option<&str>,
    ) -> StoreResult<Option<String>> {
        plain
            .map(|p| self.seal_text(table, column, row, p))
            .transpose()
    }

    /// Opens a text value.
    pub(crate) fn open_text(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: &str,
    ) -> StoreResult<String> {
        String::from_utf8(self.open(table, column, row, sealed)?)
            .map_err(|_| StoreError::Backend(format!("{table}.{column} of {row} is not UTF-8")))
    }

    /// Opens an optional text value.
    pub(crate) fn open_opt(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: Option<&str>,
    ) -> StoreResult<Option<String>> {
        sealed
            .map(|s| self.open_text(table, column, row, s))
            .transpose()
    }

    /// Seals a value as JSON.
    pub(crate) fn seal_json<T: Serialize>(
        &self,
        table: &str,
        column: &str,
        row: &str,
        value: &T,
    ) -> StoreResult<String> {
        let json = serde_json::to_vec(value)
            .map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))?;
        self.seal(table, column, row, &json)
    }

    /// Opens a JSON value.
    pub(crate) fn open_json<T: DeserializeOwned>(
        &self,
        table: &str,
        column: &str,
        row: &str,
        sealed: &str,
    ) -> StoreResult<T> {
        let json = self.open(table, column, row, sealed)?;
        serde_json::from_slice(&json).map_err(|e| {
            StoreError::Backend(format!("cannot decode {table}.{column} of {row}: {e}"))
        })
    }

    /// The blind index stored in `identities.external_id` for an address on a channel.
    pub(crate) fn address_index(&self, channel: ChannelId, address: &str) -> String {
        switchboard_crypto::blind_index(
            self.index_key(),
            ADDRESS_DOMAIN,
            &format!("{channel}\u{0}{address}"),
        )
    }

    /// The blind index of a phone number (`identities.phone_hash`), or `None` when it is not
    /// an international number.
    pub(crate) fn phone_index(&self, phone: &str) -> Option<String> {
        let raw = phone.trim();
        let raw = if raw.starts_with('+') || raw.starts_with("00") {
            raw.to_string()
        } else {
            format!("+{raw}")
        };
        switchboard_crypto::phone_index(self.index_key(), &raw).ok()
    }
}

/// The row id of an identity in associated data: its channel and address index.
pub(crate) fn identity_row(channel: &str, address_index: &str) -> String {
    format!("{channel}/{address_index}")
}

/// The process-wide cache of unwrapped data keys (see the module docs).
static CACHE: std::sync::LazyLock<RwLock<HashMap<TenantId, Arc<TenantKeys>>>> =
    std::sync::LazyLock::new(Default::default);

/// A tenant's keys, which must have been loaded (at open, at tenant creation, or by
/// [`Keys::ensure`]).
pub(crate) fn tenant(tenant: TenantId) -> StoreResult<Arc<TenantKeys>> {
    cached(tenant).ok_or_else(|| {
        StoreError::Backend(format!("the data keys of tenant {tenant} are not loaded"))
    })
}

/// Tenants whose cached keys lack a version a stored value was sealed with: [`Keys::ensure`]
/// reloads them.
static STALE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

fn mark_stale(tenant: &str) {
    STALE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(tenant.to_string());
}

/// Forgets the cached keys of `tenant`, as if this process had never loaded them: the next
/// store call loads them again from `tenant_keys`. Tests use it to play a node that has not
/// seen a tenant (the cache is process-wide, so two stores in one test share it).
#[doc(hidden)]
pub fn forget_cached(tenant: TenantId) {
    CACHE
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&tenant);
}

/// Puts `keys` back into the cache as they were (tests play a node with an older view of a
/// tenant's data-key versions).
#[doc(hidden)]
pub fn put_cached(keys: Arc<TenantKeys>) {
    if let Ok(tenant) = keys.tenant.parse::<TenantId>() {
        CACHE
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, keys);
    }
}

fn cached(tenant: TenantId) -> Option<Arc<TenantKeys>> {
    CACHE
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&tenant)
        .cloned()
}

/// The master keyring of a [`crate::SqlStore`], which unwraps tenants' data keys into the
/// cache.
pub struct Keys {
    master: MasterKeyring,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("master", &self.master.current().id())
            .finish_non_exhaustive()
    }
}

/// Why the master key does not fit the database (see [`Keys::load_all`]).
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// A wrapped data key could not be unwrapped with the configured master key(s).
    #[error(
        "the master key {given} cannot unwrap the data key of tenant {tenant} (version \
         {version}): {reason}. This database was encrypted with another master key; start \
         with that key (SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE). No new keys \
         were created"
    )]
    WrongMasterKey {
        /// Id of the configured master key.
        given: String,
        /// The tenant whose key failed.
        tenant: String,
        /// Data-key version.
        version: i64,
        /// What the crypto layer said.
        reason: String,
    },
    /// Tenants exist without any data key: the database predates encryption at rest.
    #[error(
        "{count} tenant(s) have no data key: this database was created before encryption at \
         rest and holds plaintext rows; create a new database (for the demo: delete the data \
         directory and run `switchboard demo` again)"
    )]
    Unencrypted {
        /// How many tenants lack a key.
        count: usize,
    },
    /// The database could not be read.
    #[error("cannot read tenant keys: {0}")]
    Store(#[from] StoreError),
}

impl Keys {
    /// A cache over `master`, empty until loaded.
    pub fn new(master: MasterKeyring) -> Self {
        Keys { master }
    }

    /// The master keyring.
    pub fn master(&self) -> &MasterKeyring {
        &self.master
    }

    fn insert(&self, tenant: TenantId, keys: TenantKeys) {
        CACHE
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant, Arc::new(keys));
    }

    /// Loads the keys of the given tenants that are not cached yet (tenants created by another
    /// node since this one started). Unknown tenants are skipped: the query that follows
    /// finds nothing for them anyway.
    pub(crate) async fn ensure(
        &self,
        pool: &AnyPool,
        tenants: impl IntoIterator<Item = TenantId>,
    ) -> StoreResult<()> {
        let missing: Vec<TenantId> = {
            let cache = CACHE.read().unwrap_or_else(|p| p.into_inner());
            let stale = STALE.lock().unwrap_or_else(|p| p.into_inner());
            let mut missing: Vec<TenantId> = tenants
                .into_iter()
                .filter(|t| {
                    !cache.contains_key(t) || (!stale.is_empty() && stale.contains(&t.to_string()))
                })
                .collect();
            missing.sort();
            missing.dedup();
            missing
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut conn = pool.acquire().await.db()?;
        for chunk in chunks(&missing) {
            let mut sql = Sql::new(
                "SELECT tenant_id, version, wrapped FROM tenant_keys WHERE tenant_id IN (",
            );
            sql.list(chunk.iter().map(|t| t.to_string())).push(")");
            let rows = sql.fetch_all(&mut conn).await.db()?;
            self.unwrap_rows(&rows)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
        }
        let mut stale = STALE.lock().unwrap_or_else(|p| p.into_inner());
        for tenant in &missing {
            stale.remove(&tenant.to_string());
        }
        Ok(())
    }

    /// Unwraps every tenant's keys (at open): checks the master key against the database.
    pub(crate) async fn load_all(&self, pool: &AnyPool) -> Result<(), KeyCheckError> {
        let mut conn = pool.acquire().await.db()?;
        let rows = Sql::new("SELECT tenant_id, version, wrapped FROM tenant_keys")
            .fetch_all(&mut conn)
            .await
            .db()?;
        self.unwrap_rows(&rows)?;
        let row = Sql::new(
            "SELECT COUNT(*) AS n FROM tenants t \
             WHERE NOT EXISTS (SELECT 1 FROM tenant_keys k WHERE k.tenant_id = t.id)",
        )
        .fetch_optional(&mut conn)
        .await
        .db()?;
        let count = match row {
            Some(row) => row.int("n")?,
            None => 0,
        };
        if count > 0 {
            return Err(KeyCheckError::Unencrypted {
                count: usize::try_from(count).unwrap_or(usize::MAX),
            });
        }
        Ok(())
    }

    fn unwrap_rows(&self, rows: &[sqlx::any::AnyRow]) -> Result<(), KeyCheckError> {
        let mut by_tenant: BTreeMap<TenantId, Vec<DataKey>> = BTreeMap::new();
        for row in rows {
            let tenant: TenantId = row.parse("tenant_id")?;
            let version = row.int("version")?;
            let wrong = |reason: String| KeyCheckError::WrongMasterKey {
                given: self.master.current().id().to_string(),
                tenant: tenant.to_string(),
                version,
                reason,
            };
            let wrapped: WrappedKey = row
                .text("wrapped")?
                .parse()
                .map_err(|e: switchboard_crypto::UnwrapError| wrong(e.to_string()))?;
            let key = self
                .master
                .unwrap(&tenant.to_string(), &wrapped)
                .map_err(|e| wrong(e.to_string()))?;
            by_tenant.entry(tenant).or_default().push(key);
        }
        for (tenant, keys) in by_tenant {
            if let Some(keys) = TenantKeys::new(tenant, keys) {
                self.insert(tenant, keys);
            }
        }
        Ok(())
    }

    /// Makes a tenant's first data key and stores it wrapped, inside the caller's transaction
    /// (the one inserting the tenant). The cache is filled by the caller after commit.
    pub(crate) async fn create_first(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        now: Timestamp,
    ) -> StoreResult<TenantKeys> {
        let key = DataKey::generate(1).map_err(|e| StoreError::Backend(e.to_string()))?;
        insert_wrapped(conn, &self.master, tenant, &key, now).await?;
        TenantKeys::new(tenant, vec![key])
            .ok_or_else(|| StoreError::Backend("no data key was made".into()))
    }

    /// Caches keys made by [`Keys::create_first`] once their transaction committed.
    pub(crate) fn remember(&self, tenant: TenantId, keys: TenantKeys) {
        self.insert(tenant, keys);
    }
}

/// Inserts a wrapped data key row.
async fn insert_wrapped(
    conn: &mut AnyConnection,
    master: &MasterKeyring,
    tenant: TenantId,
    key: &DataKey,
    now: Timestamp,
) -> StoreResult<()> {
    let wrapped = master
        .wrap(&tenant.to_string(), key)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let mut sql = Sql::new(
        "INSERT INTO tenant_keys (tenant_id, version, wrapped, master_key_id, created_at) VALUES (",
    );
    sql.list::<Val>(vec![
        tenant.to_string().into(),
        i64::from(key.version()).into(),
        wrapped.to_string().into(),
        wrapped.master_key_id().to_string().into(),
        ms(now).into(),
    ])
    .push(")");
    sql.execute(conn).await.unique("data key version")?;
    Ok(())
}

/// What `switchboard keys rotate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// Wrapped keys moved to the new master key.
    pub rewrapped: usize,
    /// Wrapped keys that already used the new master key.
    pub already_current: usize,
}

/// Why a key operation on the database failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyOpError {
    /// The database could not be opened or read.
    #[error(transparent)]
    Open(#[from] crate::OpenError),
    /// A database statement failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A wrapped key could not be unwrapped by any of the given master keys.
    #[error(
        "tenant {tenant}'s data key version {version} was wrapped by master key {wrapped_with}, \
         which is neither the old nor the new key given; pass the key that wrapped it as the \
         old key. Nothing was changed"
    )]
    UnknownMasterKey {
        /// Tenant.
        tenant: String,
        /// Data-key version.
        version: i64,
        /// Master key id recorded with the wrapped key.
        wrapped_with: String,
    },
    /// A wrapped key failed authentication.
    #[error(
        "tenant {tenant}'s data key version {version} cannot be unwrapped: {reason}. Nothing was changed"
    )]
    Unwrap {
        /// Tenant.
        tenant: String,
        /// Data-key version.
        version: i64,
        /// What failed.
        reason: String,
    },
    /// No tenant has this slug.
    #[error("no tenant has the slug {0:?}; list tenants with `switchboard users list`")]
    NoSuchTenant(String),
}

/// Re-wraps every tenant's data keys under `keyring`'s current master key, in ONE transaction
/// (all or nothing). `keyring` must also hold the old key (decrypt-only). Data keys do not
/// change, so running servers keep working with the keys they cached; `progress` is called
/// after each key with (done, total).
pub async fn rotate_master_key(
    database_url: &str,
    keyring: MasterKeyring,
    mut progress: impl FnMut(usize, usize),
) -> Result<RotateReport, KeyOpError> {
    let store = crate::open_unchecked(database_url, keyring).await?;
    let keyring = store.keys.master();
    let mut tx = store.begin().await?;
    let mut sql =
        Sql::new("SELECT tenant_id, version, wrapped FROM tenant_keys ORDER BY tenant_id, version");
    if store.backend == crate::Backend::Postgres {
        sql.push(" FOR UPDATE");
    }
    let rows = sql.fetch_all(&mut tx).await.db()?;
    let total = rows.len();
    let mut report = RotateReport::default();
    for (i, row) in rows.iter().enumerate() {
        let tenant = row.text("tenant_id")?;
        let version = row.int("version")?;
        let text = row.text("wrapped")?;
        let unwrap_err = |reason: String| KeyOpError::Unwrap {
            tenant: tenant.clone(),
            version,
            reason,
        };
        let wrapped: WrappedKey = text
            .parse()
            .map_err(|e: switchboard_crypto::UnwrapError| unwrap_err(e.to_string()))?;
        let new = keyring.rewrap(&tenant, &wrapped).map_err(|e| match e {
            switchboard_crypto::UnwrapError::UnknownMasterKey(id) => KeyOpError::UnknownMasterKey {
                tenant: tenant.clone(),
                version,
                wrapped_with: id.to_string(),
            },
            other => unwrap_err(other.to_string()),
        })?;
        match new {
            None => report.already_current += 1,
            Some(new) => {
                // Compare-and-swap: a concurrent rotation that got here first wins.
                let mut up = Sql::new("UPDATE tenant_keys SET wrapped = ");
                up.bind(new.to_string())
                    .push(", master_key_id = ")
                    .bind(new.master_key_id().to_string())
                    .push(" WHERE tenant_id = ")
                    .bind(tenant.as_str())
                    .push(" AND version = ")
                    .bind(version)
                    .push(" AND wrapped = ")
                    .bind(text.as_str());
                if up.execute(&mut tx).await.db()? != 1 {
                    return Err(KeyOpError::Store(StoreError::Conflict(
                        "another rotation changed the keys meanwhile; run it again".into(),
                    )));
                }
                report.rewrapped += 1;
            }
        }
        progress(i + 1, total);
    }
    tx.commit().await.db()?;
    store.close().await;
    Ok(report)
}

/// Adds a new data-key version for the tenant `slug` (wrapped by `keyring`'s current key) and
/// returns its number. New values are sealed with it once servers restart; values sealed
/// with older versions stay readable.
pub async fn add_data_key_version(
    database_url: &str,
    keyring: MasterKeyring,
    slug: &str,
    now: Timestamp,
) -> Result<u32, KeyOpError> {
    let store = crate::open_unchecked(database_url, keyring).await?;
    let keyring = store.keys.master();
    let mut tx = store.begin().await?;
    let mut sql = Sql::new("SELECT id FROM tenants WHERE slug = ");
    sql.bind(slug);
    let tenant: TenantId = sql
        .fetch_optional(&mut tx)
        .await
        .db()?
        .ok_or_else(|| KeyOpError::NoSuchTenant(slug.to_string()))?
        .parse("id")?;
    let mut sql =
        Sql::new("SELECT tenant_id, version, wrapped FROM tenant_keys WHERE tenant_id = ");
    sql.bind(tenant.to_string());
    if store.backend == crate::Backend::Postgres {
        sql.push(" FOR UPDATE");
    }
    let rows = sql.fetch_all(&mut tx).await.db()?;
    // The new key is only added when the given master key opens the existing ones: a wrong
    // key must not leave the tenant with versions nobody can use together.
    let mut newest = 0u32;
    for row in &rows {
        let version = row.int("version")?;
        let wrapped: WrappedKey =
            row.text("wrapped")?
                .parse()
                .map_err(|e: switchboard_crypto::UnwrapError| KeyOpError::Unwrap {
                    tenant: tenant.to_string(),
                    version,
                    reason: e.to_string(),
                })?;
        keyring
            .unwrap(&tenant.to_string(), &wrapped)
            .map_err(|e| KeyOpError::Unwrap {
                tenant: tenant.to_string(),
                version,
                reason: e.to_string(),
            })?;
        newest = newest.max(u32::try_from(version).unwrap_or(0));
    }
    let version = newest + 1;
    let key = DataKey::generate(version).map_err(|e| StoreError::Backend(e.to_string()))?;
    insert_wrapped(&mut tx, keyring, tenant, &key, now).await?;
    tx.commit().await.db()?;
    store.close().await;
    Ok(version)
}
