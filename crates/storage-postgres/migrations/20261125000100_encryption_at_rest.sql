-- Encryption at rest (issue 6). Customer data and channel secrets are sealed with a data key
-- per tenant (AES-256-GCM, see crates/storage/src/keys.rs for the list of sealed columns).
-- The data keys are stored here ONLY wrapped by the master key, which never enters the
-- database: it comes from SWITCHBOARD_MASTER_KEY or a key file outside the data directory.

-- One row per tenant and data-key version. New values are sealed with the newest version;
-- older versions stay to open what they sealed. `switchboard keys rotate` re-wraps `wrapped`
-- under a new master key in place (the data key inside does not change).
CREATE TABLE tenant_keys (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    version       BIGINT  NOT NULL,                   -- 1, 2, ... per tenant
    wrapped       TEXT    NOT NULL,                   -- wk1:<master key id>:<version>:<nonce>:<ciphertext>
    master_key_id TEXT    NOT NULL,                   -- which master key wrapped it (for rotation reports)
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

-- identities.external_id now holds a keyed hash (blind index) of the provider's id for the
-- person, which for WhatsApp and Signal IS their phone number; the id itself is kept here,
-- sealed, for sending. The (channel_id, external_id) key stays the inbound lookup.
ALTER TABLE identities ADD COLUMN address TEXT;
