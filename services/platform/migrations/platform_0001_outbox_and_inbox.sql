-- The transactional outbox: a service inserts its event rows in the same transaction as its state
-- change; the relay publishes them in id order per key and marks them sent.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    topic        TEXT        NOT NULL,
    record_key   TEXT        NOT NULL,
    ce_type      TEXT        NOT NULL,
    ce_source    TEXT        NOT NULL,
    ce_subject   TEXT        NOT NULL,
    ce_time      TIMESTAMPTZ NOT NULL,
    traceparent  TEXT,
    payload      BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at      TIMESTAMPTZ
);
-- The relay only ever scans unsent rows; a partial index keeps that cheap however long the table gets.
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
-- Pruning deletes sent rows past the retention; without this it would scan the whole table each time.
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wakes a LISTENing relay as soon as events commit instead of waiting for its next poll. Notifications
-- are delivered only on commit and collapse within one transaction, so one statement costs one notify.
-- The channel is per schema (LISTEN is per database) and cut to 63 bytes, the identifier limit that
-- pg_notify enforces; the relay derives the same name.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('cityhub_outbox_' || TG_TABLE_SCHEMA, 63), '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- The idempotent consumer's memory: a projection write and its event id commit together.
CREATE TABLE processed_events (
    consumer     TEXT        NOT NULL,
    event_id     TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
