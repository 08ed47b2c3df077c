-- Switchboard schema, PostgreSQL flavour. The SQLite migration holds the same tables and
-- columns; only the type names differ, so one set of SQL statements serves both backends.
--
-- Conventions (shared with SQLite):
--   * ids are UUIDv7 strings (TEXT): time-ordered, so B-tree inserts stay append-only and
--     "ORDER BY id" means "in order of creation";
--   * timestamps are BIGINT unix milliseconds (UTC);
--   * structured values (message content, sender, settings, failures) are JSON in TEXT;
--   * every tenant-owned row carries tenant_id, and every query filters on it.

-- One business. event_seq is the per-tenant event counter: the event writer bumps it with
-- `UPDATE .. RETURNING` inside the same transaction as the event rows, which makes the
-- sequence gap-free and ordered by commit.
CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,              -- used in URLs and the CLI
    name        TEXT    NOT NULL,
    event_seq   BIGINT NOT NULL DEFAULT 0,           -- last event number handed out
    created_at  BIGINT NOT NULL
);

-- Staff. E-mail is the login name, unique across all tenants (login finds the tenant by it).
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    password_hash TEXT    NOT NULL,                   -- argon2id PHC string
    created_at    BIGINT NOT NULL
);
-- list_users: a tenant's users by name.
CREATE INDEX users_tenant_name ON users (tenant_id, name);

-- Login sessions. Only the SHA-256 of the cookie token is stored, so a leaked database
-- does not hand out live sessions.
CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    csrf_token  TEXT    NOT NULL,
    expires_at  BIGINT NOT NULL
);
-- Purging expired sessions.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Channel instances (one WhatsApp number, one Telegram bot, one web chat widget).
CREATE TABLE channels (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    kind        TEXT    NOT NULL,                     -- webchat | whatsapp | telegram | signal
    name        TEXT    NOT NULL,
    credentials TEXT    NOT NULL,                     -- JSON; secrets, never sent to browsers
    settings    TEXT    NOT NULL,                     -- JSON ChannelSettings
    created_at  BIGINT NOT NULL
);
CREATE INDEX channels_tenant ON channels (tenant_id, created_at);

-- Customers.
CREATE TABLE contacts (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    display_name TEXT,
    attributes   TEXT    NOT NULL DEFAULT '{}',       -- JSON object
    created_at   BIGINT NOT NULL
);

-- A contact's address on one channel instance. The primary key is the lookup done for
-- every inbound message: (channel, the provider's key for the person).
CREATE TABLE identities (
    channel_id  TEXT    NOT NULL REFERENCES channels (id),
    external_id TEXT    NOT NULL,
    contact_id  TEXT    NOT NULL REFERENCES contacts (id),
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    kind        TEXT    NOT NULL,                     -- channel kind, denormalised for display
    phone       TEXT,                                 -- E.164 when the channel verified one
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, external_id)
);
-- A contact's identities.
CREATE INDEX identities_contact ON identities (contact_id);

-- Conversations: one contact and the business on one channel.
CREATE TABLE conversations (
    id                   TEXT    PRIMARY KEY,
    tenant_id            TEXT    NOT NULL REFERENCES tenants (id),
    channel_id           TEXT    NOT NULL REFERENCES channels (id),
    contact_id           TEXT    NOT NULL REFERENCES contacts (id),
    state                TEXT    NOT NULL CHECK (state IN ('bot', 'queued', 'assigned', 'resolved')),
    assignee             TEXT    REFERENCES users (id),
    last_inbound_at      BIGINT,                     -- customer's last message (24 h window)
    last_message_at      BIGINT NOT NULL,            -- inbox ordering
    last_message_preview TEXT,                        -- denormalised so the inbox needs no join on messages
    created_at           BIGINT NOT NULL
);
-- At most one open (not resolved) conversation per contact and channel: inbound messages
-- go to it, and two concurrent writers cannot both open one.
CREATE UNIQUE INDEX conversations_one_open ON conversations (channel_id, contact_id)
    WHERE state <> 'resolved';
-- A contact's latest conversation on a channel (web chat resume).
CREATE INDEX conversations_contact ON conversations (channel_id, contact_id, created_at);
-- The inbox: a tenant's conversations by recent activity.
CREATE INDEX conversations_inbox ON conversations (tenant_id, last_message_at);

-- Messages in both directions.
CREATE TABLE messages (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    channel_id      TEXT    NOT NULL REFERENCES channels (id),
    direction       TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    sender          TEXT    NOT NULL,                 -- JSON Sender
    content         TEXT    NOT NULL,                 -- JSON Content
    provider_id     TEXT,                             -- provider's message id (NULL until sent)
    status          TEXT    NOT NULL,                 -- current DeliveryStatus
    failure         TEXT,                             -- JSON SendFailure when failed
    provider_ts     BIGINT,
    created_at      BIGINT NOT NULL
);
-- Deduplication has no time window: a provider retrying days later hits this constraint.
-- It also finds our outbound message when a status report names its provider id.
-- NULL provider ids (outbound, not yet sent) never collide.
CREATE UNIQUE INDEX messages_provider ON messages (channel_id, provider_id);
-- A conversation's messages in order.
CREATE INDEX messages_conversation ON messages (conversation_id, id);

-- Delivery timeline of outbound messages: one row per status reached (queued, sent,
-- delivered, read, failed). Each status is reached at most once, hence the key.
CREATE TABLE message_status (
    message_id  TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status      TEXT    NOT NULL,
    at          BIGINT NOT NULL,                     -- provider time when reported by the provider
    failure     TEXT,                                 -- JSON SendFailure for 'failed'
    PRIMARY KEY (message_id, status)
);

-- The outbox: one row per outbound message until the provider accepted it or we gave up.
CREATE TABLE outbox (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    message_id      TEXT    NOT NULL UNIQUE REFERENCES messages (id),
    channel_id      TEXT    NOT NULL REFERENCES channels (id),
    priority        BIGINT NOT NULL,                 -- lane: 0 live, 1 bulk (live goes first)
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,       -- failed attempts so far
    next_attempt_at BIGINT NOT NULL,                 -- not claimable before
    lease_until     BIGINT,                          -- claimed by leased_by until then; expired leases are reclaimed
    leased_by       TEXT,
    idempotency_key TEXT    NOT NULL UNIQUE,          -- shown to providers/mocks to spot a resend
    last_error      TEXT,                             -- JSON SendFailure of the last attempt
    created_at      BIGINT NOT NULL,
    done_at         BIGINT
);
-- Ordering rule: a row is claimable only if no older pending row of its conversation exists.
CREATE INDEX outbox_pending_conversation ON outbox (conversation_id, id) WHERE state = 'pending';
-- Claim scan: pending rows by lane and due time.
CREATE INDEX outbox_pending_due ON outbox (priority, next_attempt_at) WHERE state = 'pending';

-- Durable background jobs. A finished job is deleted in the transaction that applies its
-- result, so every row here is work still to do.
CREATE TABLE jobs (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    kind            TEXT    NOT NULL,                 -- JobKind tag, for inspection
    payload         TEXT    NOT NULL,                 -- JSON JobKind
    conversation_id TEXT,                             -- jobs of one conversation run one at a time, in order
    run_at          BIGINT NOT NULL,                 -- due time
    lease_until     BIGINT,
    leased_by       TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,       -- times claimed so far
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
-- Claim scan by due time.
CREATE INDEX jobs_due ON jobs (run_at);
-- Ordering rule: only the oldest job of a conversation is claimable.
CREATE INDEX jobs_conversation ON jobs (conversation_id, id);

-- Per-tenant numbered events (live pages resume from the last number they saw).
CREATE TABLE events (
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    seq             BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    kind            TEXT    NOT NULL,                 -- event type, for inspection
    conversation_id TEXT,
    payload         TEXT    NOT NULL,                 -- JSON EventKind
    PRIMARY KEY (tenant_id, seq)
);

-- Web chat visitors: the browser keeps a random token; only its hash is stored.
CREATE TABLE webchat_visitors (
    channel_id  TEXT    NOT NULL REFERENCES channels (id),
    token_hash  TEXT    NOT NULL,
    visitor_id  TEXT    NOT NULL,                     -- the contact's external id on this channel
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, token_hash)
);
