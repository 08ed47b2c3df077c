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
//! session activity, role changes), [`leases`] (one node at a time: receivers).

mod accounts;
mod audit;
mod channels;
mod contacts;
mod conversations;
mod events;
mod flows;
mod ingest;
mod jobs;
mod leases;
mod media;
mod outbound;
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

/// Opens the database named by `database_url` and brings its schema up to date.
///
/// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://path`, `sqlite:path` or a
/// plain file path selects SQLite (the file and its directories are created when missing).
pub async fn open(database_url: &str) -> Result<SqlStore, OpenError> {
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
    async fn outbox_failed(
        &self,
        id: OutboxId,
        failure: &SendFailure,
        now: Timestamp,
    ) -> StoreResult<Event> {
        self.outbox_failed_impl(id, failure, now).await
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
    async fn apply_decision(&self, decision: Decision, now: Timestamp) -> StoreResult<Vec<Event>> {
        self.apply_decision_impl(decision, now).await
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
    async fn set_channel_settings(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        settings: &switchboard_core::ChannelSettings,
    ) -> StoreResult<Channel> {
        self.set_channel_settings_impl(tenant, channel, settings)
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
}
