-- Messages a bus consumer gave up on (adapters/nats parks them after
-- MaxDeliver failures); `vega deadletters list|replay` shows and re-drives
-- them. One row per (consumer, stream sequence): parking is idempotent.
CREATE TABLE dead_letters (
    id         text    PRIMARY KEY,
    consumer   text    NOT NULL,
    subject    text    NOT NULL,
    stream_seq bigint  NOT NULL,
    event_id   text    NOT NULL,
    data       bytea   NOT NULL,
    error      text    NOT NULL,
    deliveries integer NOT NULL,
    parked_at  bigint  NOT NULL, -- unix microseconds, UTC
    UNIQUE (consumer, stream_seq)
);
CREATE INDEX dead_letters_parked ON dead_letters (parked_at, id);
