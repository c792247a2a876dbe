-- The memory of client request ids, for idempotent creates in every service (services/platform/idempotency.py).
-- IF NOT EXISTS: the safety service created this very table in its own first migration before it moved here.
CREATE TABLE IF NOT EXISTS requests (
    operation    TEXT        NOT NULL,
    request_id   TEXT        NOT NULL,
    fingerprint  TEXT        NOT NULL,
    result       JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (operation, request_id)
);
