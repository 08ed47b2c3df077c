-- Issue 6 (privacy): the media-store key of a message's stored file, in the clear.
-- Message content is sealed (AES-256-GCM), so SQL cannot see which messages use a file.
-- Erasure and retention need exactly that: a file shared by two messages with the same bytes
-- (the store is content-addressed per tenant) must stay while one of them remains, and
-- expiring media must find old files without opening every message. The key is
-- `ab/cd/<tenant-keyed hash>`: the file's name on disk, no personal data.
ALTER TABLE messages ADD COLUMN media_key TEXT;
-- "Is this file still used?" and "which files are older than the media period?".
CREATE INDEX messages_media_key ON messages (tenant_id, media_key) WHERE media_key IS NOT NULL;
-- retention_runs.media_cursor (20261125000700) is no longer written: media expiry finds files by
-- this column instead of scanning messages in id order.
