-- Access control and accountability (issue #6): the audit log, API tokens, login throttling
-- and session idle tracking.

-- The audit log: append-only and hash-chained per tenant (crypto::audit). Each row carries
-- the hash of the previous row of the same tenant, so an edit, deletion or insertion breaks
-- the chain where it happened and `switchboard audit verify` names that entry. Rows hold ids,
-- action names and counts only, never personal data in clear.
CREATE TABLE audit_log (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
    seq        INTEGER NOT NULL,                 -- 1, 2, 3 … per tenant, no gaps
    at_us      INTEGER NOT NULL,                 -- unix microseconds: the hash covers µs
    actor      TEXT    NOT NULL,                 -- user:<id> | api-token:<id> | cli | system
    action     TEXT    NOT NULL,                 -- auth.login, contact.view, config.channel_add …
    subject    TEXT    NOT NULL,                 -- contact:<id>, user:<id> …
    details    TEXT    NOT NULL,                 -- canonical JSON text (never re-encoded)
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- The newest seq and hash of each tenant's chain. Appends lock this row (PostgreSQL
-- `FOR UPDATE`; SQLite has one writer), so concurrent appends queue instead of forking the
-- chain; `audit verify` compares it with the last row to notice deleted newest entries.
CREATE TABLE audit_heads (
    tenant_id  TEXT    PRIMARY KEY REFERENCES tenants (id),
    seq        INTEGER NOT NULL,
    hash       TEXT    NOT NULL
);

-- Append-only: the application never updates or deletes audit rows, and the database refuses
-- to. (Someone with full database rights can drop these triggers; the hash chain is what
-- catches that.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- API tokens for integrations (`Authorization: Bearer …`). The secret is shown once; only its
-- SHA-256 is kept. A token acts as the user who made it, capped by its scope.
CREATE TABLE api_tokens (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    user_id       TEXT    NOT NULL REFERENCES users (id),
    name          TEXT    NOT NULL,
    scope         TEXT    NOT NULL,              -- read | write | admin
    token_hash    TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,                       -- refreshed at most once a minute
    revoked_at    INTEGER
);
-- Listing a tenant's tokens.
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, created_at);

-- Failed logins per key (`account:<user id>` or `ip:<hash of the address>`) inside the
-- current window, and the lock they caused. A row disappears on a successful login or an
-- admin unlock; a lock also ends by itself at `locked_until`.
CREATE TABLE login_throttle (
    key           TEXT    PRIMARY KEY,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER
);

-- Idle timeout: the last time a session was used (refreshed at most once a minute).
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
