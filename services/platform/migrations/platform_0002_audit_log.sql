-- The audit log: who saw which sensitive fields (and every change to who may see what), append-only and
-- hash-chained. Each row stores the hash of the row before it and its own hash over that plus a canonical
-- JSON of its content (services/platform/security/audit.py), so a row changed, removed or inserted
-- behind the service's back breaks the chain at that row and `cityhub audit verify` names it.
-- depends: platform_0001_outbox_and_inbox

-- Ids come from this sequence *inside* the append lock, so the hash can cover the id and ids grow in
-- chain order (gaps from rolled-back appends are harmless: rows link by hash, not by id).
CREATE SEQUENCE audit_log_id_seq;

CREATE TABLE audit_log (
    id          BIGINT      PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT        NOT NULL,
    actor_roles TEXT[]      NOT NULL,
    action      TEXT        NOT NULL,
    rpc         TEXT        NOT NULL,
    subject     TEXT        NOT NULL,
    fields      TEXT[]      NOT NULL,
    purpose     TEXT        NOT NULL,
    outcome     TEXT        NOT NULL,
    request_id  TEXT        NOT NULL,
    trace_id    TEXT        NOT NULL,
    details     JSONB       NOT NULL,
    prev_hash   TEXT        NOT NULL,
    row_hash    TEXT        NOT NULL UNIQUE
);
ALTER SEQUENCE audit_log_id_seq OWNED BY audit_log.id;

-- Auditors search by whom the data was about, by who looked, and by period.
CREATE INDEX audit_log_subject_at ON audit_log (subject, at);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only. This migration runs as the service's role, so the table, its sequence and this function
-- start out as that role's; provisioning hands them to the schema's NOLOGIN owner role right after the
-- migrations (services/platform/db.py secure_audit_log), leaving the service SELECT and INSERT only: it
-- can neither rewrite rows nor disable, alter or drop anything here. (So no later migration, which runs
-- as the service's role too, can alter this table.) The triggers refuse changes even to the owner; a
-- superuser can still disable them, which is the tampering the hash chain and the anchors published to
-- Kafka (cityhub.audit.anchors.v1) exist to reveal.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
