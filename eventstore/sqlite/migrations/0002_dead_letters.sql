-- Messages a bus consumer gave up on (adapters/nats parks them after
-- MaxDeliver failures); `vega deadletters list|replay` shows and re-drives
-- them. One row per (consumer, stream sequence): parking is idempotent.
CREATE TABLE dead_letters (
    id         TEXT    PRIMARY KEY,
    consumer   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    stream_seq INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    error      TEXT    NOT NULL,
    deliveries INTEGER NOT NULL,
    parked_at  INTEGER NOT NULL, -- unix microseconds, UTC
    UNIQUE (consumer, stream_seq)
) STRICT;
CREATE INDEX dead_letters_parked ON dead_letters (parked_at, id);
