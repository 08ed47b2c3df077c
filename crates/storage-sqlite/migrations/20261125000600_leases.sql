-- Issue 7: named leases, so that exactly one node at a time does a job that must not run
-- twice at once and is not a row of a work queue (a Signal account's receiver: signal-cli
-- delivers each message to whichever connection reads it, and a REST poll drains the queue).
-- Same table on both backends (only the integer type name differs).
--
-- A holder renews its lease well before expires_at; a node that dies stops renewing and
-- another node takes the lease over once it expired. Nothing else is stored here: what the
-- holder does is described by the name (e.g. 'signal:<channel id>').
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,                    -- the node's name (App::node)
    expires_at  INTEGER  NOT NULL                     -- unix ms; free for others after this
);
