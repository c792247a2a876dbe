-- The hub's alert inbox: items from every domain's alert-like events on one severity scale and one
-- lifecycle, each occurrence of an item, the domain ids (sources) behind each item and their state, the
-- incidents items were grouped into, and the escalation rounds published. Every row comes from an event
-- (the domains' and the hub's own), so a rebuild by replay makes the same rows; the subject's name and
-- town are read from the entities family when an item is read (the entity may be heard of later).
-- Enumerations are stored as the domain StrEnum values (SEVERITY names, ITEM_KIND names without prefix).

CREATE TABLE inbox_items (
    item_id             TEXT        PRIMARY KEY,
    kind                TEXT        NOT NULL,
    domain              TEXT        NOT NULL,
    severity            TEXT        NOT NULL,
    effective_severity  TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    subject_kind        TEXT        NOT NULL,
    subject_id          TEXT        NOT NULL,
    title               TEXT        NOT NULL,
    source_id           TEXT        NOT NULL DEFAULT '',
    opened_at           TIMESTAMPTZ NOT NULL,
    last_occurred_at    TIMESTAMPTZ NOT NULL,
    occurrence_count    INTEGER     NOT NULL,
    escalated           BOOLEAN     NOT NULL DEFAULT FALSE,
    escalation_round    INTEGER     NOT NULL DEFAULT 0,
    incident_id         TEXT        NOT NULL DEFAULT '',
    acknowledged_at     TIMESTAMPTZ,
    acknowledged_by     TEXT        NOT NULL DEFAULT '',
    resolved_at         TIMESTAMPTZ,
    resolved_by         TEXT        NOT NULL DEFAULT ''
);
-- Dedup: the latest item of a (subject, kind).
CREATE INDEX inbox_items_subject ON inbox_items (subject_kind, subject_id, kind, opened_at DESC);
-- Listing, newest first.
CREATE INDEX inbox_items_listing ON inbox_items (opened_at DESC, item_id DESC);
-- Escalation and correlation look at the items not resolved.
CREATE INDEX inbox_items_unresolved ON inbox_items (opened_at) WHERE status <> 'RESOLVED';
CREATE INDEX inbox_items_incident ON inbox_items (incident_id) WHERE incident_id <> '';

-- Every occurrence of an item: the event that opened it and each repeat.
CREATE TABLE inbox_occurrences (
    item_id    TEXT        NOT NULL REFERENCES inbox_items (item_id),
    event_id   TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    summary    TEXT        NOT NULL,
    source_id  TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (item_id, event_id)
);
CREATE INDEX inbox_occurrences_order ON inbox_occurrences (item_id, at, event_id);

-- The owning domain's ids behind an item (a safety alert, a device alert, a violation, a request...) and
-- how far the domain has taken each: the item is acknowledged when the domain acknowledges one (safety)
-- and resolved when the domain has cleared them all.
CREATE TABLE inbox_sources (
    kind             TEXT        NOT NULL,
    source_id        TEXT        NOT NULL,
    item_id          TEXT        NOT NULL REFERENCES inbox_items (item_id),
    acknowledged_at  TIMESTAMPTZ,
    cleared_at       TIMESTAMPTZ,
    PRIMARY KEY (kind, source_id)
);
CREATE INDEX inbox_sources_item ON inbox_sources (item_id);

-- Items grouped because their subjects are linked or near each other inside the correlation window; the
-- id derives from the earliest member, the reasons in the order members joined.
CREATE TABLE inbox_incidents (
    incident_id  TEXT        PRIMARY KEY,
    opened_at    TIMESTAMPTZ NOT NULL,
    severity     TEXT        NOT NULL,
    reasons      TEXT[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX inbox_incidents_listing ON inbox_incidents (opened_at DESC, incident_id DESC);

-- The escalation rounds published (InboxItemEscalated): the escalator records a round in the transaction
-- that publishes it, so no round is published twice; the projection records it too from the event (same
-- values), so a rebuild has the same rows.
CREATE TABLE inbox_escalations (
    item_id       TEXT        NOT NULL,
    round         INTEGER     NOT NULL,
    severity      TEXT        NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (item_id, round)
);

-- The hub's own events about an item not opened yet: a replay reads the hub's topic and the domains' side
-- by side, so an acknowledgement may come before the event that opens its item. Kept here and applied,
-- in (at, event_id) order, when the item opens.
CREATE TABLE inbox_pending (
    item_id   TEXT        NOT NULL,
    event_id  TEXT        NOT NULL,
    ce_type   TEXT        NOT NULL,
    payload   BYTEA       NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (item_id, event_id)
);
