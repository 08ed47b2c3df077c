-- Routing: queues, agents' routing settings, the routing fields of conversations, internal
-- notes, canned responses and routing timers. Same tables and columns on PostgreSQL.

-- Queues (teams). `settings` is JSON owned by the runtime (app::routing::QueueSettings:
-- priority, required skills, policy, business hours and time zone, out-of-hours answer,
-- SLA targets, overflow, wrap-up codes, position-update cadence) so the policy can grow
-- without schema changes; `name` is a column because flows hand off to a queue by name.
CREATE TABLE queues (
    id                TEXT    PRIMARY KEY,
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id),
    name              TEXT    NOT NULL,
    settings          TEXT    NOT NULL,               -- JSON QueueSettings
    round_robin_after TEXT,                           -- round-robin cursor: last agent served
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
-- Hand-off by name; one name per tenant.
CREATE UNIQUE INDEX queues_tenant_name ON queues (tenant_id, name);

-- An agent's routing settings. A user without a row is offline, capacity 3, no skills.
CREATE TABLE agent_settings (
    user_id              TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id            TEXT    NOT NULL REFERENCES tenants (id),
    presence             TEXT    NOT NULL CHECK (presence IN ('available', 'away', 'offline')),
    presence_since       INTEGER NOT NULL,
    capacity             INTEGER NOT NULL,            -- conversations at once
    capacity_per_channel TEXT    NOT NULL DEFAULT '{}', -- JSON {channel kind: limit}
    skills               TEXT    NOT NULL DEFAULT '{}', -- JSON {skill: level 0-255}
    queues               TEXT    NOT NULL DEFAULT '[]', -- JSON [queue id]
    last_assigned_at     INTEGER                      -- longest-idle policy
);
CREATE INDEX agent_settings_tenant ON agent_settings (tenant_id);

-- The routing fields of a conversation. A `queued` conversation with no queue_id has just
-- been handed off and waits for the next round to place it (by its hand-off record).
ALTER TABLE conversations ADD COLUMN queue_id TEXT;
ALTER TABLE conversations ADD COLUMN queue_priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN required_skills TEXT;     -- JSON {skill: level}
ALTER TABLE conversations ADD COLUMN enqueued_at INTEGER;      -- FIFO order, first-response clock
ALTER TABLE conversations ADD COLUMN in_queue_since INTEGER;   -- overflow clock
ALTER TABLE conversations ADD COLUMN opened_at INTEGER;        -- resolution clock
ALTER TABLE conversations ADD COLUMN last_agent TEXT;          -- returning customer goes back here
ALTER TABLE conversations ADD COLUMN first_response_at INTEGER;
ALTER TABLE conversations ADD COLUMN assigned_at INTEGER;      -- wait = assigned_at - enqueued_at
ALTER TABLE conversations ADD COLUMN routing_marks TEXT;       -- JSON RoutingMarks (notices sent)
ALTER TABLE conversations ADD COLUMN wrap_up_code TEXT;
ALTER TABLE conversations ADD COLUMN resolved_at INTEGER;
-- A round reads a tenant's backlog; agents' loads count their assigned conversations.
CREATE INDEX conversations_routing ON conversations (tenant_id, state, assignee);
-- The supervisor chart scans recent enqueues.
CREATE INDEX conversations_enqueued ON conversations (tenant_id, enqueued_at);

-- Internal notes (and transfer records): staff only, never sent to the customer.
CREATE TABLE conversation_notes (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    author          TEXT,                             -- user id; NULL for the system
    kind            TEXT    NOT NULL CHECK (kind IN ('note', 'transfer', 'system')),
    body            TEXT    NOT NULL,
    data            TEXT    NOT NULL DEFAULT '{}',    -- JSON details (transfer from/to)
    created_at      INTEGER NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes (conversation_id, id);

-- Canned responses with {{variables}}.
CREATE TABLE canned_responses (
    id         TEXT    PRIMARY KEY,
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    shortcut   TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX canned_responses_shortcut ON canned_responses (tenant_id, shortcut);

-- Timers are data: when a round must look at a waiting conversation again (SLA warning or
-- breach, overflow, position update, a closed queue opening). Survives restarts; any node
-- may run the round (rounds of a tenant are serialised).
CREATE TABLE routing_timers (
    conversation_id TEXT    PRIMARY KEY REFERENCES conversations (id),
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    due_at          INTEGER NOT NULL
);
CREATE INDEX routing_timers_due ON routing_timers (due_at);
