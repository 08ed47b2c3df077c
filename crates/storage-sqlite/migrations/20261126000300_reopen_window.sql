-- Resolve, then a customer message: until `reopen_until` the customer's next message on the
-- same channel reopens this conversation (back to its queue and, when available, its last
-- agent) instead of starting a new one. Set at resolve time from the queue's
-- `reopen_within_secs` setting (app::routing::QueueSettings); NULL: the next message starts
-- a new conversation. Read by ingest only for contacts with no open conversation.
ALTER TABLE conversations ADD COLUMN reopen_until INTEGER;
