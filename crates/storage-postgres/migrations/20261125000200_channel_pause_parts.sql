-- Issue 3: pausing a channel account whose credentials the provider refused, and resuming
-- a message that was split into parts after some parts were already accepted.
-- Same columns on both backends (only integer type names differ).

-- A channel is paused when the provider refuses the account itself (WhatsApp 190 "token
-- expired", Telegram 401, a locked account): the sender claims none of its outbox rows, so
-- they stay queued instead of failing, until an operator updates or re-tests the
-- credentials. NULL = sending normally.
ALTER TABLE channels ADD COLUMN paused_reason TEXT;
ALTER TABLE channels ADD COLUMN paused_at BIGINT;

-- Parts of a long (split) message the provider already accepted. A retry after a failure at
-- part k starts at part k, so the customer never gets a part twice; the first part's
-- provider id is the message's id (status webhooks and replies reference it).
ALTER TABLE outbox ADD COLUMN parts_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN first_part_id TEXT;
