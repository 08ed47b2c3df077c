-- Issue 3: status reports that beat the sender, reachability and cross-channel identity.
-- Same tables and columns on both backends (only integer type names differ).

-- Status reports for a provider id no outbound message carries yet: the provider's webhook
-- can arrive before the sender committed the id it got back (a race, not an error).
-- outbox_sent applies the rows of its (channel, provider id) in its own transaction and
-- deletes them; rows nobody claims are purged after 7 days (Meta's longest retry).
CREATE TABLE pending_statuses (
    channel_id   TEXT    NOT NULL REFERENCES channels (id),
    provider_id  TEXT    NOT NULL,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    status       TEXT    NOT NULL,                    -- DeliveryStatus reported
    at           BIGINT  NOT NULL,                    -- provider time of the report
    failure      TEXT,                                -- JSON SendFailure for 'failed'
    received_at  BIGINT  NOT NULL,
    -- A provider retrying the same report adds nothing.
    PRIMARY KEY (channel_id, provider_id, status)
);
-- Purging unclaimed reports.
CREATE INDEX pending_statuses_received ON pending_statuses (received_at);

-- Reachability: set when the provider says the customer blocked us (Telegram "bot
-- blocked"); sends to such an identity fail at once with this reason. NULL = reachable.
ALTER TABLE identities ADD COLUMN unreachable_reason TEXT;
ALTER TABLE identities ADD COLUMN unreachable_since BIGINT;
-- Cross-channel matching key: HMAC-SHA256 of the E.164 number under a per-deployment key
-- (hex), so the lookup never needs the number in clear.
ALTER TABLE identities ADD COLUMN phone_hash TEXT;
-- How this identity came to its contact when it was linked rather than first seen there:
-- 'phone_e164' (automatic, equal verified numbers) or 'merge' (staff), and when.
ALTER TABLE identities ADD COLUMN linked_by TEXT;
ALTER TABLE identities ADD COLUMN linked_at BIGINT;
-- Finding a tenant's identities with the same number.
CREATE INDEX identities_phone_hash ON identities (tenant_id, phone_hash);

-- A contact merged into another keeps its row (records may point at it) and names the
-- survivor here; its identities and conversations moved to the survivor.
ALTER TABLE contacts ADD COLUMN merged_into TEXT;

-- Every link and merge, for audit: who (a user id, or NULL for automatic links), why, when.
CREATE TABLE contact_links (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    survivor_id  TEXT    NOT NULL REFERENCES contacts (id),
    merged_id    TEXT    NOT NULL REFERENCES contacts (id),
    proof        TEXT    NOT NULL,                    -- phone_e164 | merge
    actor        TEXT,                                -- staff user id, NULL when automatic
    at           BIGINT  NOT NULL
);
CREATE INDEX contact_links_survivor ON contact_links (tenant_id, survivor_id);
