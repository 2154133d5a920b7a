-- 0001: the event log and the checkpoints of its readers.
--
-- position is the global order (Position.Seq; Position.Tx is always 0 on
-- SQLite). AUTOINCREMENT keeps a position from ever being reused. A single
-- writer commits one transaction at a time, so positions become visible in
-- order and a reader that follows them never skips one.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    type           TEXT    NOT NULL,
    schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
    -- data as the writer sent it (numbers keep their exact text); metadata in
    -- its canonical form. The hash chain covers the canonical form of both.
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    -- unix microseconds, UTC: the precision the hash chain covers.
    recorded_at    INTEGER NOT NULL,
    prev_hash      BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash           BLOB    NOT NULL CHECK (length(hash) = 32),
    UNIQUE (stream_id, version)
) STRICT;

CREATE INDEX events_category_position ON events (category, position);
CREATE INDEX events_type_position ON events (type, position);

-- History is never rewritten: refuse changes made through SQL by mistake. (A
-- person with the file can drop these triggers; the hash chain is what
-- detects that.)
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TABLE checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= 0)
) STRICT;
