-- Self-service flows (issue 4): flow definitions, bot sessions, business records and consent.
-- Same conventions as the initial schema: UUIDv7 text ids, unix-millisecond times, JSON in
-- TEXT. Flow timers are not a table of their own: they are `jobs` rows (kind `flow_timeout`)
-- with a due time, so a restart loses none and one worker loop serves both.

-- Every version of every flow a tenant loaded. Loading the same YAML again matches the latest
-- version's source and adds nothing; a changed file becomes version N+1. Old versions stay
-- for audit ("which wording did the customer see?").
CREATE TABLE flow_definitions (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    flow_id     TEXT    NOT NULL,                     -- the `id:` inside the YAML
    version     BIGINT  NOT NULL,                     -- 1, 2, ... per (tenant, flow)
    source      TEXT    NOT NULL,                     -- the YAML exactly as loaded
    loaded_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, flow_id, version)
);

-- The bot's state in one conversation (a JSON FlowSession). `version` is bumped on every
-- write and checked by the writer (optimistic concurrency), so a flow timer and a customer
-- message handled on two nodes at once cannot both advance the same session.
CREATE TABLE flow_sessions (
    conversation_id TEXT    PRIMARY KEY REFERENCES conversations (id),
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    session         TEXT    NOT NULL,                 -- JSON FlowSession
    version         BIGINT  NOT NULL,
    timer_job_id    TEXT,                             -- the armed flow_timeout job, if any (one per session)
    updated_at      BIGINT  NOT NULL
);

-- What flows collected for the business: loan applications, promises to pay, orders, and
-- the hand-off summaries agents read. Written in the transaction of the step that made them.
CREATE TABLE flow_records (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    contact_id      TEXT    NOT NULL REFERENCES contacts (id),
    kind            TEXT    NOT NULL,                 -- loan_application | promise_to_pay | order | handoff | ...
    data            TEXT    NOT NULL,                 -- JSON object (money as decimal strings)
    created_at      BIGINT  NOT NULL
);
-- A conversation's records (agent view, hand-off summary).
CREATE INDEX flow_records_conversation ON flow_records (tenant_id, conversation_id, id);
-- Reports by kind ("today's promises to pay").
CREATE INDEX flow_records_kind ON flow_records (tenant_id, kind, created_at);

-- Consent history per contact and channel, append-only: the latest row is the current
-- state, and every row keeps when, how (source) and the exact wording the customer saw,
-- which is what a regulator asks for. The privacy issue builds on this table.
CREATE TABLE consents (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    contact_id  TEXT    NOT NULL REFERENCES contacts (id),
    channel_id  TEXT    NOT NULL REFERENCES channels (id),
    status      TEXT    NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    source      TEXT    NOT NULL,                     -- e.g. `flow:main_menu` (the customer typed stop), `api`
    wording     TEXT,                                 -- what the customer said or was shown
    at          BIGINT  NOT NULL
);
-- A contact's consent history, oldest first.
CREATE INDEX consents_contact ON consents (tenant_id, contact_id, id);
