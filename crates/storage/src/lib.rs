//! Switchboard persistence: [`SqlStore`] implements [`switchboard_core::ports::Store`] on
//! SQLite (one machine) and PostgreSQL (several nodes) with the same SQL.
//!
//! How it is built:
//! - Queries go through `sqlx::Any`, so each one is written once. The two schemas
//!   (crates `storage-sqlite` and `storage-postgres`) match column for column: ids are UUIDv7
//!   strings, timestamps unix milliseconds, JSON is text, placeholders are `$n`.
//! - Only work claiming differs: PostgreSQL adds `FOR UPDATE SKIP LOCKED` so nodes never
//!   claim the same row; SQLite has a single writer and needs nothing more.
//! - On SQLite every write transaction starts with `BEGIN IMMEDIATE`, taking the write lock
//!   up front: a deferred transaction that reads and then writes could fail with
//!   `SQLITE_BUSY` when another connection committed in between.
//! - Events get their per-tenant number from a counter on the tenant row, bumped in the
//!   transaction that writes them: gap-free, and in commit order on both backends.
//!
//! Modules, one per area of the [`Store`](switchboard_core::ports::Store) contract:
//! [`accounts`] (tenants, users, sessions), [`channels`] (channels, web chat visitors),
//! [`ingest`] (the inbound hot path), [`conversations`], [`outbound`] (outbox, delivery
//! status), [`jobs`], [`events`], [`flows`] (flow definitions, bot sessions and their
//! timers, records, consent), [`security`] (audit log, API tokens, login throttling,
//! session activity, role changes), [`leases`] (one node at a time: receivers), [`desk`]
//! (the desk's view counts).

mod accounts;
mod audit;
mod channels;
mod contacts;
mod conversations;
mod desk;
mod events;
mod flows;
mod ingest;
mod jobs;
pub mod keys;
mod leases;
mod media;
mod outbound;
mod privacy;
mod retention;
mod routing;
mod rows;
mod security;
mod sql;
mod staff;
mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Executor, Transaction};
use switchboard_core::ports::{
    ConversationFilter, Decision, IngestItem, IngestOutcome, Job, NewOutbound, OutboxItem, Session,
    Store, StoreResult, WebchatVisitor,
};
use switchboard_core::{
    Channel, ChannelId, Contact, ContactId, Conversation, ConversationId, ConversationSummary,
    Event, Identity, JobId, Message, NewChannel, NewUser, OutboxId, SendFailure, StatusReport,
    Tenant, TenantId, Timestamp, Transition, User, UserId,
};

use crate::sql::DbResult;

pub use keys::{
    KeyCheckError, KeyOpError, Keys, RotateReport, TenantKeys, add_data_key_version,
    rotate_master_key,
};
pub use switchboard_crypto::{MasterKey, MasterKeyring};

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A local SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL: `postgres://` / `postgresql://` is PostgreSQL;
    /// `sqlite:` URLs and plain file paths are SQLite.
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Why a database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Connecting failed (bad URL, server down, file not writable).
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        /// Which backend.
        backend: &'static str,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot migrate the {backend} database: {source}")]
    Migrate {
        /// Which backend.
        backend: &'static str,
        /// The cause.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// The master key does not fit the database (wrong key, or a database from before
    /// encryption at rest). Nothing was written.
    #[error(transparent)]
    MasterKey(#[from] KeyCheckError),
}

/// The [`Store`] implementation over SQLite or PostgreSQL. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: this process's writers take turns here before `BEGIN IMMEDIATE`.
    /// SQLite admits one writer at a time and makes the others wait in its busy handler,
    /// which sleeps (1, 2, 5, 10 … ms) and retries; with the ingest writer, the job worker
    /// and the sender all writing, those sleeps left the CPU half idle. A FIFO async mutex
    /// hands the lock over at once instead. Other processes still meet the busy handler.
    write_turn: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The master keyring and the tenants' unwrapped data keys (see [`keys`]).
    pub(crate) keys: std::sync::Arc<Keys>,
}

/// A write transaction or connection holding this process's SQLite write turn (see
/// [`SqlStore`]); dereferences to the transaction or connection. The turn is released
/// after the inner value is dropped (fields drop in declaration order).
pub(crate) struct Turn<T> {
    inner: T,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<T> std::ops::Deref for Turn<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for Turn<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl Turn<Transaction<'static, Any>> {
    /// Commits, then gives the turn to the next writer.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.inner.commit().await
    }

    /// Rolls back, then gives the turn to the next writer.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }
}

/// Runs the migrations of the backend named by `database_url` (creating a SQLite file and
/// its directories when missing). Safe to run repeatedly.
pub async fn migrate(database_url: &str) -> Result<(), OpenError> {
    let backend = Backend::from_url(database_url);
    let connect = |source| OpenError::Connect {
        backend: backend.name(),
        source,
    };
    let migrate = |source| OpenError::Migrate {
        backend: backend.name(),
        source,
    };
    match backend {
        Backend::Sqlite => {
            let pool = switchboard_storage_sqlite::connect(database_url)
                .await
                .map_err(connect)?;
            let result = switchboard_storage_sqlite::migrator().run(&pool).await;
            pool.close().await;
            result.map_err(migrate)
        }
        Backend::Postgres => {
            let pool = switchboard_storage_postgres::connect(database_url)
                .await
                .map_err(connect)?;
            let result = switchboard_storage_postgres::migrator().run(&pool).await;
            pool.close().await;
            result.map_err(migrate)
        }
    }
}

/// Opens the database named by `database_url`, brings its schema up to date and unwraps every
/// tenant's data key with `master` (see [`keys`]).
///
/// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://path`, `sqlite:path` or a
/// plain file path selects SQLite (the file and its directories are created when missing).
/// [`OpenError::MasterKey`] when `master` cannot unwrap the stored data keys: a wrong key is
/// refused before anything is written, and no key is ever replaced.
pub async fn open(database_url: &str, master: MasterKeyring) -> Result<SqlStore, OpenError> {
    let store = open_unchecked(database_url, master).await?;
    if let Err(e) = store.keys.load_all(&store.pool).await {
        store.close().await;
        return Err(e.into());
    }
    Ok(store)
}

/// [`open`] without unwrapping the stored keys (for the key commands, which check each key
/// themselves).
pub(crate) async fn open_unchecked(
    database_url: &str,
    master: MasterKeyring,
) -> Result<SqlStore, OpenError> {
    sqlx::any::install_default_drivers();
    migrate(database_url).await?;
    let backend = Backend::from_url(database_url);
    let connect = |source| OpenError::Connect {
        backend: backend.name(),
        source,
    };
    let pool = match backend {
        Backend::Sqlite => {
            let path = switchboard_storage_sqlite::file_path(database_url);
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(switchboard_storage_sqlite::CONNECTION_PRAGMAS)
                            .await?;
                        Ok(())
                    })
                })
                .connect(&format!("sqlite://{path}"))
                .await
                .map_err(connect)?;
            // The pool's connections do not checkpoint inside commits; this task does,
            // and ends when the pool is closed.
            switchboard_storage_sqlite::spawn_checkpointer(pool.clone());
            pool
        }
        Backend::Postgres => AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(database_url)
            .await
            .map_err(connect)?,
    };
    Ok(SqlStore {
        pool,
        backend,
        write_turn: Default::default(),
        keys: std::sync::Arc::new(Keys::new(master)),
    })
}

impl SqlStore {
    /// `"sqlite"` or `"postgres"` (shown by `/readyz` and start-up logs).
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A tenant's unwrapped data keys (loaded on first use; cached for the process), e.g. for
    /// encrypting its media files.
    pub async fn data_keys(&self, tenant: TenantId) -> StoreResult<std::sync::Arc<TenantKeys>> {
        self.keys.ensure(&self.pool, [tenant]).await?;
        keys::tenant(tenant)
    }

    /// Loads the keys of `tenant` when this process has not yet (a tenant created by another
    /// node), so the synchronous sealing code that follows finds them.
    pub(crate) async fn ensure_keys(
        &self,
        tenants: impl IntoIterator<Item = TenantId>,
    ) -> StoreResult<()> {
        self.keys.ensure(&self.pool, tenants).await
    }

    /// [`SqlStore::ensure_keys`] for the tenants (column `tenant_id`) of rows about to be
    /// decoded.
    pub(crate) async fn ensure_row_keys(&self, rows: &[sqlx::any::AnyRow]) -> StoreResult<()> {
        use crate::sql::RowExt as _;
        let tenants = rows
            .iter()
            .map(|r| r.parse::<TenantId>("tenant_id"))
            .collect::<StoreResult<Vec<_>>>()?;
        self.ensure_keys(tenants).await
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite, see the module docs).
    pub(crate) async fn begin(&self) -> StoreResult<Turn<Transaction<'static, Any>>> {
        let turn = self.turn().await;
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await.db()?,
            Backend::Postgres => self.pool.begin().await.db()?,
        };
        Ok(Turn { inner, _turn: turn })
    }

    /// A pooled connection for a single-statement write (claims, retries), holding the
    /// SQLite write turn like [`SqlStore::begin`].
    pub(crate) async fn write_conn(&self) -> StoreResult<Turn<sqlx::pool::PoolConnection<Any>>> {
        let turn = self.turn().await;
        Ok(Turn {
            inner: self.pool.acquire().await.db()?,
            _turn: turn,
        })
    }

    async fn turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// A pooled connection for reads.
    pub(crate) async fn conn(&self) -> StoreResult<sqlx::pool::PoolConnection<Any>> {
        self.pool.acquire().await.db()
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        conn.execute("SELECT 1").await.db()?;
        Ok(())
    }

    async fn create_tenant(&self, slug: &str, name: &str, now: Timestamp) -> StoreResult<Tenant> {
        self.create_tenant_impl(slug, name, now).await
    }
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        self.tenant_by_slug_impl(slug).await
    }
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.tenant_impl(id).await
    }
    async fn create_user(&self, user: NewUser, now: Timestamp) -> StoreResult<User> {
        self.create_user_impl(user, now).await
    }
    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        self.list_users_impl(tenant).await
    }
    async fn count_users(&self) -> StoreResult<i64> {
        self.count_users_impl().await
    }
    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>> {
        self.user_impl(tenant, id).await
    }
    async fn user_for_login(&self, email: &str) -> StoreResult<Option<(User, String)>> {
        self.user_for_login_impl(email).await
    }
    async fn set_password(&self, tenant: TenantId, id: UserId, hash: &str) -> StoreResult<()> {
        self.set_password_impl(tenant, id, hash).await
    }

    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        self.create_session_impl(session).await
    }
    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Session, User)>> {
        self.session_impl(token_hash, now).await
    }
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.delete_session_impl(token_hash).await
    }

    async fn create_channel(&self, channel: NewChannel, now: Timestamp) -> StoreResult<Channel> {
        self.create_channel_impl(channel, now).await
    }
    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        self.channel_impl(id).await
    }
    async fn list_channels(&self, tenant: TenantId) -> StoreResult<Vec<Channel>> {
        self.list_channels_impl(tenant).await
    }
    async fn channels_of_kind(
        &self,
        kind: switchboard_core::ChannelKind,
    ) -> StoreResult<Vec<Channel>> {
        self.channels_of_kind_impl(kind).await
    }

    async fn ingest(&self, items: &[IngestItem]) -> StoreResult<Vec<IngestOutcome>> {
        self.ingest_impl(items).await
    }
    async fn apply_status(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        report: &StatusReport,
    ) -> StoreResult<Option<Event>> {
        self.apply_status_impl(tenant, channel, report).await
    }

    async fn list_conversations(
        &self,
        tenant: TenantId,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<ConversationSummary>> {
        self.list_conversations_impl(tenant, filter).await
    }
    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<ConversationSummary>> {
        self.conversation_impl(tenant, id).await
    }
    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.list_messages_impl(tenant, conversation, limit).await
    }
    async fn message(
        &self,
        tenant: TenantId,
        id: switchboard_core::MessageId,
    ) -> StoreResult<Option<Message>> {
        self.message_impl(tenant, id).await
    }
    async fn contact(
        &self,
        tenant: TenantId,
        id: ContactId,
    ) -> StoreResult<Option<(Contact, Vec<Identity>)>> {
        self.contact_impl(tenant, id).await
    }
    async fn assign(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.assign_impl(tenant, conversation, agent, now).await
    }
    async fn transition(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        transition: Transition,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.transition_impl(tenant, conversation, transition, now)
            .await
    }

    async fn enqueue_outbound(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        outbound: NewOutbound,
        now: Timestamp,
    ) -> StoreResult<(Message, Vec<Event>)> {
        self.enqueue_outbound_impl(tenant, conversation, outbound, now)
            .await
    }
    async fn claim_outbox(
        &self,
        node: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        self.claim_outbox_impl(node, now, lease, limit).await
    }
    async fn outbox_sent(
        &self,
        id: OutboxId,
        provider_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.outbox_sent_impl(id, provider_id, now).await
    }
    async fn outbox_sent_many(
        &self,
        sent: &[(OutboxId, Option<String>)],
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.outbox_sent_many_impl(sent, now).await
    }
    async fn outbox_retry(
        &self,
        id: OutboxId,
        next_attempt_at: Timestamp,
        failure: &SendFailure,
    ) -> StoreResult<()> {
        self.outbox_retry_impl(id, next_attempt_at, failure).await
    }
    async fn outbox_defer(&self, id: OutboxId, next_attempt_at: Timestamp) -> StoreResult<()> {
        self.outbox_defer_impl(id, next_attempt_at).await
    }
    async fn outbox_failed(
        &self,
        id: OutboxId,
        failure: &SendFailure,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.outbox_failed_impl(id, failure, now).await
    }
    async fn outbox_parts_sent(&self, id: OutboxId, part_ids: &[String]) -> StoreResult<()> {
        self.outbox_parts_sent_impl(id, part_ids).await
    }
    async fn desk_counts(
        &self,
        tenant: TenantId,
        me: UserId,
        my_queues: &[switchboard_core::QueueId],
    ) -> StoreResult<switchboard_core::ports::DeskCounts> {
        self.desk_counts_impl(tenant, me, my_queues).await
    }
    async fn outbox_requeue(
        &self,
        tenant: TenantId,
        message: switchboard_core::MessageId,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.outbox_requeue_impl(tenant, message, now).await
    }

    async fn claim_jobs(
        &self,
        node: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        self.claim_jobs_impl(node, now, lease, limit).await
    }
    async fn cancel_job(&self, tenant: TenantId, id: JobId) -> StoreResult<bool> {
        self.cancel_job_impl(tenant, id).await
    }
    async fn cancel_media_downloads(
        &self,
        tenant: TenantId,
        message: switchboard_core::MessageId,
    ) -> StoreResult<u64> {
        self.cancel_media_downloads_impl(tenant, message).await
    }
    async fn apply_decision(&self, decision: Decision, now: Timestamp) -> StoreResult<Vec<Event>> {
        self.apply_decision_impl(decision, now).await
    }
    async fn decision_inputs(
        &self,
        tenant: TenantId,
        conversations: &[ConversationId],
        messages: &[switchboard_core::MessageId],
    ) -> StoreResult<switchboard_core::ports::DecisionInputs> {
        self.decision_inputs_impl(tenant, conversations, messages)
            .await
    }
    async fn apply_decisions(
        &self,
        batch: Vec<(Decision, switchboard_core::ports::FlowEffects)>,
        now: Timestamp,
    ) -> StoreResult<Vec<Vec<Event>>> {
        self.apply_decisions_impl(batch, now).await
    }
    async fn retry_job(&self, id: JobId, at: Timestamp, error: &str) -> StoreResult<()> {
        self.retry_job_impl(id, at, error).await
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.take_lease_impl(name, holder, now, ttl).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.release_lease_impl(name, holder).await
    }
    async fn lease_holder(&self, name: &str, now: Timestamp) -> StoreResult<Option<String>> {
        self.lease_holder_impl(name, now).await
    }
    async fn record_media(
        &self,
        tenant: TenantId,
        message: switchboard_core::MessageId,
        media: switchboard_core::MediaRef,
        failure: Option<switchboard_core::SendFailure>,
        job: Option<JobId>,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.record_media_impl(tenant, message, media, failure, job, now)
            .await
    }

    async fn events_after(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        self.events_after_impl(tenant, after, limit).await
    }
    async fn last_event_seq(&self, tenant: TenantId) -> StoreResult<i64> {
        self.last_event_seq_impl(tenant).await
    }

    async fn create_webchat_visitor(
        &self,
        channel: ChannelId,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<WebchatVisitor> {
        self.create_webchat_visitor_impl(channel, token_hash, now)
            .await
    }
    async fn webchat_visitor(
        &self,
        channel: ChannelId,
        token_hash: &str,
    ) -> StoreResult<Option<WebchatVisitor>> {
        self.webchat_visitor_impl(channel, token_hash).await
    }
    async fn webchat_conversation(
        &self,
        channel: ChannelId,
        visitor_id: &str,
    ) -> StoreResult<Option<Conversation>> {
        self.webchat_conversation_impl(channel, visitor_id).await
    }

    async fn save_flow(
        &self,
        tenant: TenantId,
        flow_id: &str,
        source: &str,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::ports::SavedFlow> {
        self.save_flow_impl(tenant, flow_id, source, now).await
    }
    async fn flows(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<switchboard_core::ports::StoredFlow>> {
        self.flows_impl(tenant).await
    }
    async fn flow_version(
        &self,
        tenant: TenantId,
        flow_id: &str,
        version: i64,
    ) -> StoreResult<Option<switchboard_core::ports::StoredFlow>> {
        self.flow_version_impl(tenant, flow_id, version).await
    }
    async fn open_conversation(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        flow_id: &str,
        campaign: switchboard_core::ports::CampaignStart,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::ports::OpenedConversation> {
        self.open_conversation_impl(tenant, contact, channel, flow_id, campaign, now)
            .await
    }
    async fn set_channel_settings(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        settings: &switchboard_core::ChannelSettings,
    ) -> StoreResult<Channel> {
        self.set_channel_settings_impl(tenant, channel, settings)
            .await
    }
    async fn set_channel_pause(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Channel> {
        self.set_channel_pause_impl(tenant, channel, reason, now)
            .await
    }
    async fn set_channel_credentials(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: &serde_json::Value,
    ) -> StoreResult<Channel> {
        self.set_channel_credentials_impl(tenant, channel, credentials)
            .await
    }
    async fn flow_session(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Option<switchboard_core::ports::StoredFlowSession>> {
        self.flow_session_impl(tenant, conversation).await
    }
    async fn apply_flow_decision(
        &self,
        decision: Decision,
        effects: switchboard_core::ports::FlowEffects,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.apply_decision_with(decision, Some(effects), now).await
    }
    async fn enqueue_job(
        &self,
        tenant: TenantId,
        kind: switchboard_core::ports::JobKind,
        run_at: Timestamp,
    ) -> StoreResult<JobId> {
        self.enqueue_job_impl(tenant, kind, run_at).await
    }
    async fn records(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<switchboard_core::ports::FlowRecord>> {
        self.records_impl(tenant, conversation).await
    }
    async fn latest_records(
        &self,
        tenant: TenantId,
        kind: &str,
        conversations: &[ConversationId],
    ) -> StoreResult<std::collections::HashMap<ConversationId, switchboard_core::ports::FlowRecord>>
    {
        self.latest_records_impl(tenant, kind, conversations).await
    }
    async fn consents(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Vec<switchboard_core::ports::Consent>> {
        self.consents_impl(tenant, contact).await
    }
    async fn set_reachability(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        external_id: &str,
        unreachable: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.set_reachability_impl(tenant, channel, external_id, unreachable, now)
            .await
    }
    async fn link_by_phone(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        external_id: &str,
        phone_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<switchboard_core::ports::ContactMerge>> {
        self.link_by_phone_impl(tenant, channel, external_id, phone_hash, now)
            .await
    }
    async fn merge_contacts(
        &self,
        tenant: TenantId,
        survivor: ContactId,
        other: ContactId,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::ports::ContactMerge> {
        self.merge_contacts_impl(tenant, survivor, other, actor, now)
            .await
    }
    async fn contact_conversations(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Vec<ConversationSummary>> {
        self.contact_conversations_impl(tenant, contact).await
    }

    async fn save_queue(
        &self,
        tenant: TenantId,
        id: Option<switchboard_core::QueueId>,
        name: &str,
        settings: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<(switchboard_core::routing::QueueRecord, Vec<Event>)> {
        self.save_queue_impl(tenant, id, name, settings, now).await
    }
    async fn queues(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<switchboard_core::routing::QueueRecord>> {
        self.queues_impl(tenant).await
    }
    async fn delete_queue(
        &self,
        tenant: TenantId,
        id: switchboard_core::QueueId,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.delete_queue_impl(tenant, id, now).await
    }
    async fn agent_settings(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<switchboard_core::routing::AgentSettings>> {
        self.agent_settings_impl(tenant, now).await
    }
    async fn save_agent_settings(
        &self,
        tenant: TenantId,
        settings: &switchboard_core::routing::AgentSettings,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.save_agent_settings_impl(tenant, settings, now).await
    }
    async fn routing_round(
        &self,
        tenant: TenantId,
        focus: Option<ConversationId>,
        now: Timestamp,
        plan: switchboard_core::routing::RoutingPlan<'_>,
    ) -> StoreResult<switchboard_core::routing::RoutingOutcome> {
        self.routing_round_impl(tenant, focus, now, plan).await
    }
    async fn routing_due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<TenantId>> {
        self.routing_due_impl(now, limit).await
    }
    async fn routed_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<switchboard_core::routing::RoutedConversation>> {
        self.routed_conversation_impl(tenant, id).await
    }
    async fn desk_conversations(
        &self,
        tenant: TenantId,
        filter: &switchboard_core::routing::DeskFilter,
    ) -> StoreResult<
        Vec<(
            ConversationSummary,
            switchboard_core::routing::RoutedConversation,
        )>,
    > {
        self.desk_conversations_impl(tenant, filter).await
    }
    async fn record_first_response(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.record_first_response_impl(tenant, id, at).await
    }
    async fn queue_visits(
        &self,
        tenant: TenantId,
        since: Timestamp,
    ) -> StoreResult<Vec<switchboard_core::routing::QueueVisit>> {
        self.queue_visits_impl(tenant, since).await
    }
    async fn notes(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<switchboard_core::routing::Note>> {
        self.notes_impl(tenant, conversation).await
    }
    async fn save_canned(
        &self,
        tenant: TenantId,
        id: Option<switchboard_core::CannedId>,
        shortcut: &str,
        title: &str,
        body: &str,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::routing::CannedResponse> {
        self.save_canned_impl(tenant, id, shortcut, title, body, now)
            .await
    }
    async fn canned_responses(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<switchboard_core::routing::CannedResponse>> {
        self.canned_responses_impl(tenant).await
    }
    async fn delete_canned(
        &self,
        tenant: TenantId,
        id: switchboard_core::CannedId,
    ) -> StoreResult<()> {
        self.delete_canned_impl(tenant, id).await
    }

    // ---- privacy (privacy.rs, retention.rs) ----
    async fn privacy_settings(
        &self,
        tenant: TenantId,
    ) -> StoreResult<switchboard_core::privacy::PrivacySettings> {
        self.privacy_settings_impl(tenant).await
    }
    async fn set_privacy_settings(
        &self,
        tenant: TenantId,
        settings: &switchboard_core::privacy::PrivacySettings,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.set_privacy_settings_impl(tenant, settings, now).await
    }
    async fn record_consent(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        consent: switchboard_core::ports::NewConsent,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::ports::Consent> {
        self.record_consent_impl(tenant, contact, channel, consent, now)
            .await
    }
    async fn opted_out_conversations(
        &self,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<ConversationId>> {
        self.opted_out_conversations_impl(conversations).await
    }
    async fn open_erasure_request(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Option<switchboard_core::privacy::ErasureRequest>> {
        self.open_erasure_request_impl(tenant, contact).await
    }
    async fn erasure_requests(
        &self,
        tenant: TenantId,
        status: Option<switchboard_core::privacy::ErasureStatus>,
        limit: u32,
    ) -> StoreResult<Vec<switchboard_core::privacy::ErasureRequest>> {
        self.erasure_requests_impl(tenant, status, limit).await
    }
    async fn erasure_request(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<switchboard_core::privacy::ErasureRequest>> {
        self.erasure_request_impl(tenant, id).await
    }
    async fn apply_privacy_decision(
        &self,
        decision: Decision,
        effects: switchboard_core::ports::PrivacyEffects,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>> {
        self.apply_privacy_decision_impl(decision, effects, now)
            .await
    }
    async fn export_contact(
        &self,
        tenant: TenantId,
        contact: ContactId,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::ports::ContactExport> {
        self.export_contact_impl(tenant, contact, now).await
    }
    async fn erase_contact(
        &self,
        tenant: TenantId,
        contact: ContactId,
        reason: &str,
        request: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<switchboard_core::privacy::Erasure> {
        self.erase_contact_impl(tenant, contact, reason, request, now)
            .await
    }
    async fn pending_outbox_for_contact(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<i64> {
        self.pending_outbox_for_contact_impl(tenant, contact).await
    }
    async fn tombstones(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<switchboard_core::privacy::ContactTombstone>> {
        self.tombstones_impl(tenant, limit).await
    }
    async fn purge_step(
        &self,
        tenant: TenantId,
        policy: &switchboard_core::privacy::RetentionPolicy,
        now: Timestamp,
        batch: u32,
    ) -> StoreResult<switchboard_core::privacy::PurgeStep> {
        self.purge_step_impl(tenant, policy, now, batch).await
    }
    async fn finish_retention_run(
        &self,
        run: &switchboard_core::privacy::RetentionRun,
        job: Option<JobId>,
        next_at: Timestamp,
    ) -> StoreResult<()> {
        self.finish_retention_run_impl(run, job, next_at).await
    }
    async fn arm_retention_timers(&self, at: Timestamp) -> StoreResult<u64> {
        self.arm_retention_timers_impl(at).await
    }
    async fn retention_runs(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<switchboard_core::privacy::RetentionRun>> {
        self.retention_runs_impl(tenant, limit).await
    }
}
