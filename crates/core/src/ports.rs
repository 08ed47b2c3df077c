//! Ports: the traits the outside world implements, and the plain data they exchange.
//!
//! [`Store`] is the whole persistence contract. Every call that reads or writes tenant data
//! takes the [`TenantId`]; implementations must filter on it, so no caller can reach another
//! tenant's rows by guessing an id. The contract test suite in the `storage` crate runs
//! against every backend.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::routing::{
    AgentSettings, CannedResponse, DeskFilter, Note, QueueRecord, QueueVisit, RoutedConversation,
    RoutingOutcome, RoutingPlan,
};
use crate::{
    CannedId, Channel, ChannelId, Contact, ContactId, Content, Conversation, ConversationId,
    ConversationState, ConversationSummary, Event, Identity, InboundMessage, JobId, Message,
    MessageId, NewChannel, NewUser, OutboxId, QueueId, SendFailure, Sender, StatusReport, Tenant,
    TenantId, Timestamp, User, UserId,
};

/// Errors every store operation may return.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated (the message names the field).
    #[error("{0}")]
    Conflict(String),
    /// The requested change breaks a domain rule (e.g. an invalid state transition).
    #[error("{0}")]
    Invalid(String),
    /// The database failed or is unreachable.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// One inbound customer message to store.
#[derive(Debug, Clone)]
pub struct IngestItem {
    /// Owner of the channel.
    pub tenant_id: TenantId,
    /// The channel it arrived on.
    pub channel_id: ChannelId,
    /// The parsed message.
    pub message: InboundMessage,
    /// State a brand-new conversation starts in.
    pub new_conversation_state: ConversationState,
    /// When we received it.
    pub received_at: Timestamp,
}

/// What happened to one [`IngestItem`].
// Most outcomes are `Stored`; boxing the large variant would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum IngestOutcome {
    /// Stored, with the events to publish after commit.
    Stored {
        /// The stored message.
        message: Message,
        /// Whether a new conversation was opened for it.
        new_conversation: bool,
        /// Events recorded in the same transaction.
        events: Vec<Event>,
    },
    /// Already stored earlier (provider retry); nothing changed.
    Duplicate {
        /// Id of the earlier copy.
        message_id: MessageId,
        /// Its conversation.
        conversation_id: ConversationId,
    },
}

/// A durable background job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Owner.
    pub tenant_id: TenantId,
    /// What to do.
    pub kind: JobKind,
    /// How many times it was claimed before.
    pub attempts: i32,
}

/// The kinds of background work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobKind {
    /// Decide what happens after a customer message (flow step, routing, notification).
    ProcessInbound {
        /// The conversation.
        conversation_id: ConversationId,
        /// The new message.
        message_id: MessageId,
        /// Whether the message opened a new conversation.
        new_conversation: bool,
    },
    /// A flow session's timer fired (inactivity expiry, `wait` deadline). Stored without a
    /// conversation key so a timer waiting for its due time never holds back the
    /// conversation's other jobs; the session's `timer_job` says whether it is still current.
    FlowTimeout {
        /// The conversation whose session armed it.
        conversation_id: ConversationId,
    },
    /// Staff started a flow on a conversation (`POST /api/v1/conversations/{id}/flow`), or a
    /// campaign did for a contact (`POST /api/v1/flows/{flow_id}/start`).
    StartFlow {
        /// The conversation.
        conversation_id: ConversationId,
        /// The flow to start.
        flow_id: String,
        /// Set when a campaign started it: its messages go on the bulk lane.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign: Option<CampaignStart>,
    },
    /// Download an inbound message's media from the provider into the media store. Runs
    /// whenever due (no conversation ordering): a slow download never holds back replies.
    DownloadMedia {
        /// The inbound message whose `MediaRef` has a provider id and no `stored_key`.
        message_id: MessageId,
    },
    /// The tenant's retention purge timer: deletes data older than the privacy settings'
    /// periods in small batches, writes a report, and re-arms itself (one per tenant).
    RetentionPurge,
    /// Erases a contact whose erasure was approved, once the customer's last notice left
    /// the outbox (or after a bounded wait): every row about them, and their media files.
    EraseContact {
        /// The contact.
        contact_id: ContactId,
        /// The request being completed.
        request_id: String,
    },
}

impl JobKind {
    /// Stable snake_case tag (the `kind` column).
    pub fn tag(&self) -> &'static str {
        match self {
            JobKind::ProcessInbound { .. } => "process_inbound",
            JobKind::FlowTimeout { .. } => "flow_timeout",
            JobKind::StartFlow { .. } => "start_flow",
            JobKind::DownloadMedia { .. } => "download_media",
            JobKind::RetentionPurge => "retention_purge",
            JobKind::EraseContact { .. } => "erase_contact",
        }
    }

    /// The conversation whose jobs this one is ordered with (`None`: runs whenever due).
    pub fn ordering_key(&self) -> Option<ConversationId> {
        match self {
            JobKind::ProcessInbound {
                conversation_id, ..
            }
            | JobKind::StartFlow {
                conversation_id, ..
            } => Some(*conversation_id),
            JobKind::FlowTimeout { .. }
            | JobKind::DownloadMedia { .. }
            | JobKind::RetentionPurge
            | JobKind::EraseContact { .. } => None,
        }
    }
}

/// How a campaign starts a flow ([`JobKind::StartFlow`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CampaignStart {
    /// A pre-approved template (a `Content::Template`) to send INSTEAD of starting the flow
    /// now: the customer is outside WhatsApp's 24-hour window, where only a template may go.
    /// The flow then starts when they reply. `None`: the flow starts at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opening_template: Option<Content>,
}

/// Where the runtime reads the time. Production uses the system clock; tests inject one they
/// move forward, so timers (flow expiry, `wait` deadlines) are tested without sleeping. The
/// domain itself never reads a clock: it takes the time as an argument.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// What [`Store::open_conversation`] did.
#[derive(Debug, Clone)]
pub struct OpenedConversation {
    /// The conversation (new, or the contact's open one on the channel).
    pub conversation: ConversationSummary,
    /// Whether this call created it (and enqueued the flow start).
    pub created: bool,
    /// Events to publish (`conversation_changed` of a new conversation).
    pub events: Vec<Event>,
}

/// An outbound message to create, with its outbox row.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    /// Who writes it.
    pub sender: Sender,
    /// What it says.
    pub content: Content,
    /// Priority lane: live replies go before bulk sends.
    pub lane: Lane,
}

/// Sending priority on one channel account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Replies in a live conversation.
    Live,
    /// Campaign and other bulk sends.
    Bulk,
}

/// A decision taken by a worker: applied with its outbound messages in one transaction,
/// and the job completed in that same transaction.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The job being completed.
    pub job_id: JobId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The conversation decided about.
    pub conversation_id: ConversationId,
    /// New state, if it changes.
    pub new_state: Option<ConversationState>,
    /// Messages to send.
    pub outbound: Vec<NewOutbound>,
}

/// An outbox row claimed for sending, with everything the sender needs.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// The row.
    pub id: OutboxId,
    /// The message being sent.
    pub message: Message,
    /// The channel instance to send through.
    pub channel: Channel,
    /// The recipient's key on that channel.
    pub recipient: String,
    /// Earlier failed attempts.
    pub attempts: i32,
    /// Stable key the provider (or mock) can use to spot a resend.
    pub idempotency_key: String,
    /// The row's lane (live replies go ahead of bulk sends in the rate limiters too).
    pub lane: Lane,
    /// The customer's last message in this conversation (provider time): WhatsApp's 24 h
    /// window is checked against it before a free-form message is sent.
    pub last_inbound_at: Option<Timestamp>,
    /// Why the recipient cannot be reached on this channel (they blocked the bot), when they
    /// cannot: the sender fails the row without calling the provider.
    pub recipient_unreachable: Option<String>,
    /// Parts of a split message the provider accepted in earlier attempts (skipped now).
    pub parts_sent: u32,
    /// Provider id of the first accepted part, when an earlier attempt sent some parts.
    pub first_part_id: Option<String>,
}

/// A staff login session (the token itself is never stored, only its hash).
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie token, hex.
    pub token_hash: String,
    /// Who.
    pub user_id: UserId,
    /// Their tenant.
    pub tenant_id: TenantId,
    /// Anti-CSRF token the page must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// Expiry.
    pub expires_at: Timestamp,
}

/// Which conversations an inbox shows.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only these states (empty: all but resolved).
    pub states: Vec<ConversationState>,
    /// Only assigned to this user.
    pub assignee: Option<UserId>,
    /// At most this many (newest activity first).
    pub limit: u32,
}

/// A web chat visitor, identified by a browser token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebchatVisitor {
    /// Stable visitor id: the contact's external id on the web chat channel.
    pub visitor_id: String,
    /// The channel.
    pub channel_id: ChannelId,
}

/// The persistence contract. See the module documentation.
#[async_trait]
pub trait Store: crate::security::SecurityStore + Send + Sync + 'static {
    /// Checks the database answers (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    // ---- tenants and users ----
    /// Creates a tenant; `Conflict` when the slug is taken.
    async fn create_tenant(&self, slug: &str, name: &str, now: Timestamp) -> StoreResult<Tenant>;
    /// Finds a tenant by slug.
    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>>;
    /// Finds a tenant by id.
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    /// Creates a user; `Conflict` when the e-mail is taken.
    async fn create_user(&self, user: NewUser, now: Timestamp) -> StoreResult<User>;
    /// Lists a tenant's users by name.
    async fn list_users(&self, tenant: TenantId) -> StoreResult<Vec<User>>;
    /// How many staff users exist across all tenants (first-run hints; not tenant data).
    async fn count_users(&self) -> StoreResult<i64>;
    /// One user of a tenant.
    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>>;
    /// A user and password hash by e-mail, for login (the only call not scoped by tenant:
    /// the e-mail identifies the tenant).
    async fn user_for_login(&self, email: &str) -> StoreResult<Option<(User, String)>>;
    /// Replaces a user's password hash.
    async fn set_password(&self, tenant: TenantId, id: UserId, hash: &str) -> StoreResult<()>;

    // ---- sessions ----
    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// A live session and its user by token hash (expired ones are not returned).
    async fn session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(Session, User)>>;
    /// Ends a session.
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    // ---- channels ----
    /// Creates a channel instance.
    async fn create_channel(&self, channel: NewChannel, now: Timestamp) -> StoreResult<Channel>;
    /// A channel by id alone: webhooks and the web chat find their tenant this way.
    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>>;
    /// A tenant's channels.
    async fn list_channels(&self, tenant: TenantId) -> StoreResult<Vec<Channel>>;
    /// Every channel of one kind, across tenants (background receivers such as Signal's
    /// start one task per channel; not tenant data exposed to anyone).
    async fn channels_of_kind(&self, kind: crate::ChannelKind) -> StoreResult<Vec<Channel>>;

    // ---- inbound ----
    /// Stores a batch of inbound messages in ONE transaction (group commit): for each, dedupe
    /// on (channel, provider id), upsert contact and identity, find or open the conversation,
    /// insert the message, a `message_created` event, a `conversation_changed` event and a
    /// `ProcessInbound` job, except for a message to an existing conversation in state
    /// `queued` or `assigned` (nothing to decide: the agent is told by the events). Outcomes
    /// are returned in input order.
    async fn ingest(&self, items: &[IngestItem]) -> StoreResult<Vec<IngestOutcome>>;
    /// Applies a provider status report to the matching outbound message of that channel,
    /// honouring [`crate::DeliveryStatus::should_advance`]. Returns the event when it changed.
    async fn apply_status(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        report: &StatusReport,
    ) -> StoreResult<Option<Event>>;

    // ---- conversations and messages ----
    /// Inbox rows, most recent activity first.
    async fn list_conversations(
        &self,
        tenant: TenantId,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<ConversationSummary>>;
    /// One conversation as an inbox row.
    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<ConversationSummary>>;
    /// Messages of a conversation, oldest first, at most `limit`, the newest ones.
    async fn list_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// One message of a tenant by id (the job worker reads the message a job is about).
    async fn message(&self, tenant: TenantId, id: MessageId) -> StoreResult<Option<Message>>;
    /// A contact with its identities.
    async fn contact(
        &self,
        tenant: TenantId,
        id: crate::ContactId,
    ) -> StoreResult<Option<(Contact, Vec<Identity>)>>;
    /// Assigns a conversation to an agent (state `assigned`), recording an event.
    async fn assign(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        agent: UserId,
        now: Timestamp,
    ) -> StoreResult<Event>;
    /// Moves a conversation through the state machine (resolve, reopen, back to queue).
    async fn transition(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        transition: crate::Transition,
        now: Timestamp,
    ) -> StoreResult<Event>;

    // ---- outbound ----
    /// Creates an outbound message and its outbox row, with a `message_created` event, in one
    /// transaction.
    async fn enqueue_outbound(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        outbound: NewOutbound,
        now: Timestamp,
    ) -> StoreResult<(Message, Vec<Event>)>;
    /// Claims up to `limit` sendable outbox rows: due, not leased, and each the oldest unsent
    /// row of its conversation (so at most one message per conversation is in flight, in
    /// order). Live-lane rows come before bulk ones. Claimed rows are leased until
    /// `now + lease`.
    async fn claim_outbox(
        &self,
        node: &str,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>>;
    /// Records a provider's acceptance: message `sent`, outbox row done.
    async fn outbox_sent(
        &self,
        id: OutboxId,
        provider_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Event>;
    /// Schedules another attempt after a retryable failure.
    async fn outbox_retry(
        &self,
        id: OutboxId,
        next_attempt_at: Timestamp,
        failure: &SendFailure,
    ) -> StoreResult<()>;
    /// Puts a claimed row back until `next_attempt_at` without counting an attempt or
    /// recording an error: this node's own rate limiter said the row's turn is later (a local
    /// wait is not a failed send, so it never brings the row closer to giving up).
    /// `NotFound` unless the row is pending.
    async fn outbox_defer(&self, id: OutboxId, next_attempt_at: Timestamp) -> StoreResult<()>;
    /// [`Store::outbox_sent`] for several rows in ONE transaction (the sender's group
    /// commit). All or nothing: when any row fails (e.g. it is no longer pending) nothing is
    /// recorded and the caller records the rows one by one. Returns one event per row.
    async fn outbox_sent_many(
        &self,
        sent: &[(OutboxId, Option<String>)],
        now: Timestamp,
    ) -> StoreResult<Vec<Event>>;
    /// Gives up: message `failed` with the reason, outbox row done.
    async fn outbox_failed(
        &self,
        id: OutboxId,
        failure: &SendFailure,
        now: Timestamp,
    ) -> StoreResult<Event>;
    /// Records parts of a split message that the provider accepted in an attempt that then
    /// failed: `parts_sent` grows by their count and the first one ever accepted is kept, so
    /// the next claim of the row resumes after them. `NotFound` unless the row is pending.
    async fn outbox_parts_sent(&self, id: OutboxId, part_ids: &[String]) -> StoreResult<()>;
    /// How many open conversations each desk view holds for staff member `me` (who serves
    /// `my_queues`): the counts the desk lists' filters would give, in one query.
    async fn desk_counts(
        &self,
        tenant: TenantId,
        me: UserId,
        my_queues: &[QueueId],
    ) -> StoreResult<DeskCounts>;
    /// Puts a failed outbound message back in the outbox for another try (an agent's
    /// retry): the SAME message and outbox row go back to `queued`/pending, due now, with
    /// the attempts reset and the failure cleared, in one transaction with a
    /// `message_status` (queued) event. A row the provider had accepted before reporting the
    /// failure resends every part, one that the sender gave up on only the parts not yet
    /// accepted. `NotFound` for an unknown message (or another tenant's); `Conflict` unless
    /// the message is outbound, failed and its row not already pending.
    async fn outbox_requeue(
        &self,
        tenant: TenantId,
        message: MessageId,
        now: Timestamp,
    ) -> StoreResult<Event>;

    // ---- jobs ----
    /// Claims up to `limit` due jobs, leasing them until `now + lease`.
    async fn claim_jobs(
        &self,
        node: &str,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// What the job worker reads to decide a batch of one tenant's claimed jobs, in a few
    /// statements for the whole batch instead of several per job: the `conversations` (as
    /// inbox rows), their channels, their stored bot sessions and the `messages` by id. Ids
    /// of another tenant, or gone, are simply absent from the maps.
    async fn decision_inputs(
        &self,
        tenant: TenantId,
        conversations: &[ConversationId],
        messages: &[MessageId],
    ) -> StoreResult<DecisionInputs>;
    /// Deletes a job that has not finished (e.g. its message was erased). Returns whether
    /// the tenant had such a job; a worker holding it finds it gone and drops it.
    async fn cancel_job(&self, tenant: TenantId, id: JobId) -> StoreResult<bool>;
    /// Deletes the pending media download jobs of a message (it was erased); returns how many.
    async fn cancel_media_downloads(
        &self,
        tenant: TenantId,
        message: MessageId,
    ) -> StoreResult<u64>;
    /// Applies a decision and completes its job in one transaction; returns the events.
    async fn apply_decision(&self, decision: Decision, now: Timestamp) -> StoreResult<Vec<Event>>;
    /// Applies several decisions, each with its flow effects (`FlowEffects::default()` for
    /// none), and completes their jobs in ONE transaction (the job worker's group commit).
    /// Each decision keeps the guarantees of [`Store::apply_flow_decision`]; the batch is all
    /// or nothing, so when one fails (a stale session is `Conflict`) nothing changes and the
    /// caller applies them one by one. Returns the events of each decision, in input order.
    async fn apply_decisions(
        &self,
        batch: Vec<(Decision, FlowEffects)>,
        now: Timestamp,
    ) -> StoreResult<Vec<Vec<Event>>>;
    /// Puts a job back to run at `at` after a failure.
    async fn retry_job(&self, id: JobId, at: Timestamp, error: &str) -> StoreResult<()>;

    // ---- named leases (one node at a time) ----
    /// Takes or renews the lease `name` for `holder` until `now + ttl`: `true` when `holder`
    /// has it now (it was free, expired, or already `holder`'s), `false` while another holder's
    /// lease is still running. Atomic: two nodes racing for a free lease never both win.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> StoreResult<bool>;
    /// Gives the lease `name` up if `holder` has it (a clean shutdown), so another node may
    /// take it at once instead of waiting for it to expire.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// Who holds the lease `name` at `now` (`None` when free or expired).
    async fn lease_holder(&self, name: &str, now: Timestamp) -> StoreResult<Option<String>>;

    /// Records the outcome of an inbound media download: replaces the `MediaRef` of the
    /// message's `Content::Media` (only that message, only in `tenant`), sets or clears the
    /// message's `failure` (a refused file), deletes `job` when given, and emits
    /// `message_created` again with the updated message (the desk replaces it in place), all
    /// in one transaction. `NotFound` for an unknown or another tenant's message, `Invalid`
    /// when the message holds no media.
    async fn record_media(
        &self,
        tenant: TenantId,
        message: MessageId,
        media: crate::MediaRef,
        failure: Option<crate::SendFailure>,
        job: Option<JobId>,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>>;

    // ---- events ----
    /// Events of a tenant with `seq > after`, in order, at most `limit`.
    async fn events_after(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
    /// The tenant's latest event sequence number (0 when none).
    async fn last_event_seq(&self, tenant: TenantId) -> StoreResult<i64>;

    // ---- web chat visitors ----
    /// Registers a visitor token (stored as a hash) on a web chat channel.
    async fn create_webchat_visitor(
        &self,
        channel: ChannelId,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<WebchatVisitor>;
    /// Finds a visitor by token hash.
    async fn webchat_visitor(
        &self,
        channel: ChannelId,
        token_hash: &str,
    ) -> StoreResult<Option<WebchatVisitor>>;
    /// The visitor's latest conversation on that channel, if any.
    async fn webchat_conversation(
        &self,
        channel: ChannelId,
        visitor_id: &str,
    ) -> StoreResult<Option<Conversation>>;

    // ---- flows (self-service bots) ----
    /// Stores a flow's YAML as the tenant's next version of `flow_id`; the same source as the
    /// latest version is not stored again (`created: false`, that version returned).
    async fn save_flow(
        &self,
        tenant: TenantId,
        flow_id: &str,
        source: &str,
        now: Timestamp,
    ) -> StoreResult<SavedFlow>;
    /// The latest version of each of the tenant's flows, by flow id.
    async fn flows(&self, tenant: TenantId) -> StoreResult<Vec<StoredFlow>>;
    /// One stored version of a flow (the one a running session is pinned to).
    async fn flow_version(
        &self,
        tenant: TenantId,
        flow_id: &str,
        version: i64,
    ) -> StoreResult<Option<StoredFlow>>;
    /// Opens a conversation with a contact on a channel for a flow the business starts (a
    /// campaign). When the contact has an open conversation there, returns it unchanged
    /// (`created: false`, nothing enqueued). Otherwise, in ONE transaction: creates one in
    /// state `bot` whose `last_inbound_at` is the contact's latest on that channel (WhatsApp's
    /// 24-hour window belongs to the customer, not to a conversation), enqueues
    /// `JobKind::StartFlow { flow_id, campaign }` for it and appends its
    /// `conversation_changed` event. `NotFound` when the contact has no address on the
    /// channel (or either is another tenant's).
    async fn open_conversation(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        flow_id: &str,
        campaign: CampaignStart,
        now: Timestamp,
    ) -> StoreResult<OpenedConversation>;
    /// Replaces a channel's settings (e.g. its default flow).
    async fn set_channel_settings(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        settings: &crate::ChannelSettings,
    ) -> StoreResult<Channel>;
    /// Pauses a channel's sending with the provider's reason (`Some`), or resumes it
    /// (`None`). While paused, `claim_outbox` claims none of its rows: they stay queued.
    /// `NotFound` for another tenant's or an unknown channel.
    async fn set_channel_pause(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        reason: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Channel>;
    /// Replaces a channel's provider credentials (already checked by the caller).
    async fn set_channel_credentials(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        credentials: &serde_json::Value,
    ) -> StoreResult<Channel>;
    /// The bot session of a conversation, if one was ever stored.
    async fn flow_session(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Option<StoredFlowSession>>;
    /// [`Store::apply_decision`] plus the flow's effects (session with its timer, records,
    /// consent, contact attributes), all in ONE transaction. A session write whose
    /// `expected_version` is stale fails with `Conflict` and changes nothing.
    async fn apply_flow_decision(
        &self,
        decision: Decision,
        effects: FlowEffects,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>>;
    /// Adds a job due at `run_at` (API-started flows).
    async fn enqueue_job(
        &self,
        tenant: TenantId,
        kind: JobKind,
        run_at: Timestamp,
    ) -> StoreResult<JobId>;
    /// Records flows collected in a conversation, oldest first.
    async fn records(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Vec<FlowRecord>>;
    /// The latest record of `kind` of each of `conversations` (those with one), read in a
    /// few queries: a routing round places thousands of handed-off conversations by their
    /// `handoff` records at once.
    async fn latest_records(
        &self,
        tenant: TenantId,
        kind: &str,
        conversations: &[ConversationId],
    ) -> StoreResult<std::collections::HashMap<ConversationId, FlowRecord>>;
    /// A contact's consent history on every channel, oldest first (the latest per channel is
    /// the current state).
    async fn consents(&self, tenant: TenantId, contact: ContactId) -> StoreResult<Vec<Consent>>;

    // ---- contacts across channels ----
    /// Marks a customer's identity on a channel unreachable with a reason (e.g. they blocked
    /// the Telegram bot), or reachable again with `None`. Returns whether the identity exists.
    async fn set_reachability(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        external_id: &str,
        unreachable: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Records the keyed hash of an identity's verified E.164 number and, for WhatsApp and
    /// Signal identities, links it: when a live contact of the tenant has an identity of the
    /// other kind with the same hash, the identity's contact is merged into that one (proof
    /// `phone_e164`). `None` when nothing was linked (no match, or both contacts have an open
    /// conversation on one channel). `NotFound` for an unknown identity.
    async fn link_by_phone(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        external_id: &str,
        phone_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ContactMerge>>;
    /// Merges contact `other` into `survivor`: identities, conversations, records and consents
    /// move, `other` is marked merged, and the merge is recorded with its actor for audit.
    /// `NotFound` when either is not a live contact of the tenant, `Invalid` for the same id
    /// twice, `Conflict` when both have an open conversation on one channel.
    async fn merge_contacts(
        &self,
        tenant: TenantId,
        survivor: ContactId,
        other: ContactId,
        actor: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<ContactMerge>;
    /// Every conversation of a contact on every channel, most recent activity first.
    async fn contact_conversations(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Vec<ConversationSummary>>;

    // ---- privacy: consent, data rights, retention (issue 6; storage/src/privacy.rs) ----
    /// The tenant's privacy settings (the defaults when none were saved).
    async fn privacy_settings(
        &self,
        tenant: TenantId,
    ) -> StoreResult<crate::privacy::PrivacySettings>;
    /// Replaces the tenant's privacy settings (the caller validated them).
    async fn set_privacy_settings(
        &self,
        tenant: TenantId,
        settings: &crate::privacy::PrivacySettings,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Appends a consent entry for a contact on a channel (staff or API); `NotFound` for a
    /// contact or channel the tenant does not have.
    async fn record_consent(
        &self,
        tenant: TenantId,
        contact: ContactId,
        channel: ChannelId,
        consent: NewConsent,
        now: Timestamp,
    ) -> StoreResult<Consent>;
    /// Of the given conversations, those whose contact's latest consent on the
    /// conversation's channel is `opted_out`. The sender asks before every proactive send
    /// ([`crate::privacy::is_proactive`]), so a campaign queued before an opt-out never goes.
    async fn opted_out_conversations(
        &self,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<ConversationId>>;
    /// The contact's open erasure request (confirming, pending or approved), if any.
    async fn open_erasure_request(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<Option<crate::privacy::ErasureRequest>>;
    /// A tenant's erasure requests, newest first, optionally only those in `status`.
    async fn erasure_requests(
        &self,
        tenant: TenantId,
        status: Option<crate::privacy::ErasureStatus>,
        limit: u32,
    ) -> StoreResult<Vec<crate::privacy::ErasureRequest>>;
    /// One erasure request.
    async fn erasure_request(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<crate::privacy::ErasureRequest>>;
    /// Applies a privacy decision taken from a customer's chat command (or a staff decision
    /// on a request) in ONE transaction: the decision (its job completed when it has one,
    /// outbound notices, state change), consents for the conversation's contact on its
    /// channel, the erasure request change, and jobs to add. Returns the events.
    async fn apply_privacy_decision(
        &self,
        decision: Decision,
        effects: PrivacyEffects,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>>;
    /// Everything held about one contact (`NotFound` for an unknown or another tenant's).
    async fn export_contact(
        &self,
        tenant: TenantId,
        contact: ContactId,
        now: Timestamp,
    ) -> StoreResult<ContactExport>;
    /// Erases a contact across every table in ONE transaction, leaving an anonymised
    /// tombstone (and completing `request` when given). Contacts merged into it go too.
    /// The caller deletes the returned media files after the commit.
    async fn erase_contact(
        &self,
        tenant: TenantId,
        contact: ContactId,
        reason: &str,
        request: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<crate::privacy::Erasure>;
    /// Pending outbox rows of a contact's conversations (the erasure job waits for the
    /// customer's last notice to leave).
    async fn pending_outbox_for_contact(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> StoreResult<i64>;
    /// Tombstones of erased contacts, newest first.
    async fn tombstones(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<crate::privacy::ContactTombstone>>;
    /// One bounded step of a retention purge (at most `batch` rows per table, one short
    /// transaction), deleting what is older than `policy` allows at `now`. Call again while
    /// the step says `more`.
    async fn purge_step(
        &self,
        tenant: TenantId,
        policy: &crate::privacy::RetentionPolicy,
        now: Timestamp,
        batch: u32,
    ) -> StoreResult<crate::privacy::PurgeStep>;
    /// Stores a purge report and re-arms the tenant's purge timer at `next_at` (replacing
    /// the job `job` that ran, when given) in one transaction.
    async fn finish_retention_run(
        &self,
        run: &crate::privacy::RetentionRun,
        job: Option<JobId>,
        next_at: Timestamp,
    ) -> StoreResult<()>;
    /// Adds the retention purge timer of every tenant that has none (start-up; idempotent,
    /// safe on several nodes at once). Returns how many were added.
    async fn arm_retention_timers(&self, at: Timestamp) -> StoreResult<u64>;
    /// Purge reports, newest first.
    async fn retention_runs(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<crate::privacy::RetentionRun>>;

    // ---- routing: queues, agents, rounds, notes, canned responses ----
    /// Creates (`id: None`) or replaces a queue's name and settings, with a `queue_changed`
    /// event. `Conflict` when another queue of the tenant has the name; `NotFound` for an
    /// unknown id.
    async fn save_queue(
        &self,
        tenant: TenantId,
        id: Option<QueueId>,
        name: &str,
        settings: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<(QueueRecord, Vec<Event>)>;
    /// The tenant's queues by name.
    async fn queues(&self, tenant: TenantId) -> StoreResult<Vec<QueueRecord>>;
    /// Deletes a queue. `Conflict` while conversations wait in it; `NotFound` when unknown.
    async fn delete_queue(
        &self,
        tenant: TenantId,
        id: QueueId,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>>;
    /// Routing settings of every staff user of the tenant (defaults for users without a
    /// stored row; see [`AgentSettings::default_for`]).
    async fn agent_settings(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<AgentSettings>>;
    /// Stores a user's routing settings with an `agent_changed` event. `NotFound` for a user
    /// of another tenant; `Invalid` for a queue id the tenant does not have.
    async fn save_agent_settings(
        &self,
        tenant: TenantId,
        settings: &AgentSettings,
        now: Timestamp,
    ) -> StoreResult<Vec<Event>>;
    /// One routing round in ONE transaction under the tenant's routing lock (PostgreSQL: a
    /// transaction-scoped advisory lock per tenant; SQLite: the single writer): reads the
    /// [`RoutingSnapshot`] (with `focus` when given; `NotFound` when it is not the
    /// tenant's), calls `plan`, applies its changes in order and records their events. An
    /// error from `plan` or from a change (e.g. an invalid state transition) writes nothing.
    async fn routing_round(
        &self,
        tenant: TenantId,
        focus: Option<ConversationId>,
        now: Timestamp,
        plan: RoutingPlan<'_>,
    ) -> StoreResult<RoutingOutcome>;
    /// Tenants that need a round now: a routing timer is due, or a `queued` conversation
    /// waits to be placed in a queue while the tenant has queues. At most `limit`.
    async fn routing_due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<TenantId>>;
    /// A conversation's routing fields.
    async fn routed_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> StoreResult<Option<RoutedConversation>>;
    /// Desk lists: inbox rows with their routing fields, newest activity first.
    async fn desk_conversations(
        &self,
        tenant: TenantId,
        filter: &DeskFilter,
    ) -> StoreResult<Vec<(ConversationSummary, RoutedConversation)>>;
    /// Records an agent's first reply since the conversation was enqueued (stops the
    /// first-response clock); later calls keep the first time.
    async fn record_first_response(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Conversations that joined a queue's backlog since `since` (supervisor chart).
    async fn queue_visits(
        &self,
        tenant: TenantId,
        since: Timestamp,
    ) -> StoreResult<Vec<QueueVisit>>;
    /// A conversation's internal notes, oldest first.
    async fn notes(&self, tenant: TenantId, conversation: ConversationId)
    -> StoreResult<Vec<Note>>;
    /// Creates (`id: None`) or replaces a canned response. `Conflict` when the shortcut is
    /// taken; `NotFound` for an unknown id.
    async fn save_canned(
        &self,
        tenant: TenantId,
        id: Option<CannedId>,
        shortcut: &str,
        title: &str,
        body: &str,
        now: Timestamp,
    ) -> StoreResult<CannedResponse>;
    /// The tenant's canned responses by shortcut.
    async fn canned_responses(&self, tenant: TenantId) -> StoreResult<Vec<CannedResponse>>;
    /// Deletes a canned response; `NotFound` when unknown.
    async fn delete_canned(&self, tenant: TenantId, id: CannedId) -> StoreResult<()>;
}

/// How many conversations each desk view holds ([`Store::desk_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeskCounts {
    /// Assigned to me.
    pub mine: i64,
    /// Waiting in the queues I serve.
    pub my_queues: i64,
    /// Open with nobody assigned (bot or queued).
    pub unassigned: i64,
    /// Every open conversation (`bot`, `queued`, `assigned`).
    pub all: i64,
}

/// What a contact merge did.
#[derive(Debug, Clone)]
pub struct ContactMerge {
    /// The contact that remains.
    pub survivor: ContactId,
    /// The contact merged into it.
    pub merged: ContactId,
    /// Conversations that moved to the survivor.
    pub conversations: Vec<ConversationId>,
    /// `conversation_changed` events of the moved conversations.
    pub events: Vec<Event>,
}

/// One stored version of a flow definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFlow {
    /// Owner.
    pub tenant_id: TenantId,
    /// The flow's `id`.
    pub flow_id: String,
    /// 1, 2, ... per tenant and flow.
    pub version: i64,
    /// The YAML as loaded.
    pub source: String,
    /// When this version was loaded.
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: Timestamp,
}

/// What [`Store::save_flow`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFlow {
    /// The version now current.
    pub flow: StoredFlow,
    /// Whether this call created it (false: the same source was already the latest).
    pub created: bool,
}

/// What [`Store::decision_inputs`] read for a batch of jobs, by id.
#[derive(Debug, Clone, Default)]
pub struct DecisionInputs {
    /// The conversations, as inbox rows.
    pub conversations: std::collections::HashMap<ConversationId, ConversationSummary>,
    /// The channels of those conversations.
    pub channels: std::collections::HashMap<ChannelId, Channel>,
    /// The conversations' stored bot sessions (those that have one).
    pub sessions: std::collections::HashMap<ConversationId, StoredFlowSession>,
    /// The messages asked for.
    pub messages: std::collections::HashMap<MessageId, Message>,
}

/// A conversation's bot session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFlowSession {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The flow engine's session (opaque to storage).
    pub session: serde_json::Value,
    /// Bumped on every write; pass it back as [`FlowSessionWrite::expected_version`].
    pub version: i64,
    /// The armed timer job, if any.
    pub timer_job: Option<JobId>,
}

/// What happens to a session's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerChange {
    /// Leave it as it is.
    Keep,
    /// Disarm it (the bot is done).
    Cancel,
    /// Replace it with one due at this time.
    Set(Timestamp),
}

/// The new session to store.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSessionWrite {
    /// The session.
    pub session: serde_json::Value,
    /// The version read before stepping (`None`: the conversation had no session).
    pub expected_version: Option<i64>,
    /// Its timer.
    pub timer: TimerChange,
}

/// A business record to store with a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// `loan_application`, `promise_to_pay`, `order`, `handoff`, ...
    pub kind: String,
    /// Fields.
    pub data: serde_json::Value,
}

/// A stored business record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Its id.
    pub id: crate::RecordId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Where it was collected.
    pub conversation_id: ConversationId,
    /// The customer.
    pub contact_id: ContactId,
    /// Record type.
    pub kind: String,
    /// Fields.
    pub data: serde_json::Value,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// Whether a contact agreed to messages on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// Agreed.
    OptedIn,
    /// Asked to stop.
    OptedOut,
}

impl ConsentStatus {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::OptedIn => "opted_in",
            ConsentStatus::OptedOut => "opted_out",
        }
    }
}

impl std::str::FromStr for ConsentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opted_in" => Ok(ConsentStatus::OptedIn),
            "opted_out" => Ok(ConsentStatus::OptedOut),
            other => Err(format!("unknown consent status `{other}`")),
        }
    }
}

/// A consent change to record for the decision's contact on its channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConsent {
    /// New state.
    pub status: ConsentStatus,
    /// How it was given (`flow:main_menu`, `api`, ...).
    pub source: String,
    /// What the customer said or was shown.
    pub wording: Option<String>,
}

/// One entry of a contact's consent history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    /// Owner.
    pub tenant_id: TenantId,
    /// The customer.
    pub contact_id: ContactId,
    /// The channel it applies to.
    pub channel_id: ChannelId,
    /// The state from then on.
    pub status: ConsentStatus,
    /// How it was given.
    pub source: String,
    /// What the customer said or was shown.
    pub wording: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: Timestamp,
}

/// What a flow step changes besides the conversation and its outbound messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowEffects {
    /// The session to store (`None`: leave the stored one alone).
    pub session: Option<FlowSessionWrite>,
    /// Business records.
    pub records: Vec<NewRecord>,
    /// Consent changes for the conversation's contact on its channel.
    pub consents: Vec<NewConsent>,
    /// Attributes merged into the contact's attributes.
    pub contact_attributes: Vec<(String, serde_json::Value)>,
}

/// What a privacy decision changes besides the conversation and its outbound messages
/// ([`Store::apply_privacy_decision`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivacyEffects {
    /// Consent changes for the conversation's contact on its channel.
    pub consents: Vec<NewConsent>,
    /// The erasure request change.
    pub erasure: Option<ErasureChange>,
    /// Jobs to add (kind, due time), e.g. the erasure job.
    pub jobs: Vec<(JobKind, Timestamp)>,
    /// Whether the decision completes a job (`false`: staff decisions, no job to delete).
    pub completes_job: bool,
}

/// A change to a contact's erasure request.
#[derive(Debug, Clone, PartialEq)]
pub enum ErasureChange {
    /// Opens a request for the conversation's contact in this status (`Conflict` when one is
    /// open already).
    Open {
        /// `confirming` (asked yes/no) normally.
        status: crate::privacy::ErasureStatus,
        /// `chat:<channel kind>`.
        source: String,
    },
    /// Moves an open request on; `Conflict` unless it is in `from`.
    Set {
        /// The request.
        id: String,
        /// The status it must be in now.
        from: crate::privacy::ErasureStatus,
        /// The new status.
        to: crate::privacy::ErasureStatus,
        /// Staff member deciding (`None`: the customer or self-service).
        by: Option<UserId>,
        /// Reason (denials).
        note: Option<String>,
    },
}

/// Everything held about one contact, machine-readable (`GET /api/v1/contacts/{id}/export`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactExport {
    /// Format version of this document.
    pub format: String,
    /// When it was produced.
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: Timestamp,
    /// The contact (name, attributes, first seen).
    pub contact: Contact,
    /// Addresses on each channel (phone numbers included).
    pub identities: Vec<Identity>,
    /// Contacts merged into this one (their ids and names).
    pub merged_contacts: Vec<Contact>,
    /// Conversations on every channel.
    pub conversations: Vec<ConversationSummary>,
    /// Every message in both directions, oldest first per conversation.
    pub messages: Vec<Message>,
    /// Consent history.
    pub consents: Vec<Consent>,
    /// Business records (loan applications, orders, promises to pay, hand-offs).
    pub records: Vec<FlowRecord>,
    /// Bot sessions (variables the bot collected), per conversation.
    pub flow_sessions: Vec<serde_json::Value>,
    /// Erasure requests.
    pub erasure_requests: Vec<crate::privacy::ErasureRequest>,
    /// How long the business keeps data.
    pub retention: crate::privacy::RetentionPolicy,
}
