-- Issue 6 (privacy): per-tenant privacy settings, erasure requests, the tombstones erasure
-- leaves for statistics, and retention purge reports. Same tables and columns on both
-- backends (only integer type names differ). Consent stays in `consents` (flows migration).

-- One JSON PrivacySettings per tenant (command words per language, self-service erasure,
-- retention periods, purge interval). No row = the defaults.
CREATE TABLE privacy_settings (
    tenant_id   TEXT    PRIMARY KEY REFERENCES tenants (id),
    settings    TEXT    NOT NULL,                     -- JSON PrivacySettings
    updated_at  INTEGER NOT NULL
);

-- A customer's "forget me": confirming (asked yes/no) → pending (staff decide) or approved
-- → completed; or cancelled / denied. contact_id has no foreign key on purpose: the contact
-- row is deleted by the erasure, and its bare id is no personal data.
CREATE TABLE erasure_requests (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    contact_id    TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN
                  ('confirming', 'pending', 'approved', 'denied', 'cancelled', 'completed')),
    source        TEXT    NOT NULL,                   -- chat:<channel kind>
    requested_at  INTEGER NOT NULL,
    decided_at    INTEGER,
    decided_by    TEXT,                               -- staff user id; NULL = self-service
    note          TEXT,                               -- reason given when denied
    tombstone_id  TEXT                                -- set when completed
);
-- Staff's list, newest first; and "does this contact have an open request" during ingest.
CREATE INDEX erasure_requests_tenant ON erasure_requests (tenant_id, status, requested_at);
CREATE INDEX erasure_requests_contact ON erasure_requests (tenant_id, contact_id);

-- What remains of an erased contact: counts, dates and channel kinds only.
CREATE TABLE contact_tombstones (
    id                  TEXT    PRIMARY KEY,
    tenant_id           TEXT    NOT NULL REFERENCES tenants (id),
    erased_at           INTEGER NOT NULL,
    contact_created_at  INTEGER,
    conversations       INTEGER NOT NULL,
    messages_inbound    INTEGER NOT NULL,
    messages_outbound   INTEGER NOT NULL,
    channel_kinds       TEXT    NOT NULL,             -- JSON array of kinds, e.g. ["webchat"]
    first_activity_at   INTEGER,
    last_activity_at    INTEGER,
    reason              TEXT    NOT NULL              -- admin | customer_request | self_service | cli
);
CREATE INDEX contact_tombstones_tenant ON contact_tombstones (tenant_id, erased_at);

-- One row per retention purge run: what it deleted (the report staff and the CLI read).
CREATE TABLE retention_runs (
    id                     TEXT    PRIMARY KEY,
    tenant_id              TEXT    NOT NULL REFERENCES tenants (id),
    started_at             INTEGER NOT NULL,
    finished_at            INTEGER NOT NULL,
    policy                 TEXT    NOT NULL,          -- JSON RetentionPolicy applied
    messages_deleted       INTEGER NOT NULL,
    media_deleted          INTEGER NOT NULL,
    conversations_deleted  INTEGER NOT NULL,
    batches                INTEGER NOT NULL,
    media_cursor           TEXT                       -- last message id the media scan looked at
);
CREATE INDEX retention_runs_tenant ON retention_runs (tenant_id, started_at);

-- The purge timer is a `jobs` row (kind retention_purge) that re-arms itself; at most one
-- per tenant, so nodes that arm it at start-up at the same time cannot double it.
CREATE UNIQUE INDEX jobs_one_retention_purge ON jobs (tenant_id) WHERE kind = 'retention_purge';
-- Retention scans by age.
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
