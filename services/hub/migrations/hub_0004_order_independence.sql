-- Order independence: every projection row a function of the SET of events applied, not of the order
-- events of different topics and partitions arrive in (a rebuild by replay must come out identical).
-- depends: hub_0001_entities hub_0002_inbox

-- An entity's name and town are chosen by a total order on their source: (rank, event time, value) — a
-- stronger source first, then the latest event, then the value itself — so two mentions of one rank from
-- different partitions (two chambers' approvals naming one enterprise) give the same result either way.
ALTER TABLE entities
    ADD COLUMN name_at   TIMESTAMPTZ,
    ADD COLUMN town_rank INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN town_at   TIMESTAMPTZ;

-- An item's severity is the highest of its occurrences': kept per occurrence so it can be recomputed.
ALTER TABLE inbox_occurrences ADD COLUMN severity TEXT NOT NULL DEFAULT '';

-- What the owning domains said about a source (ACKNOWLEDGED, CLEARED), whether or not an item with that
-- source exists yet: an acknowledgement may arrive before the alert it acknowledges.
CREATE TABLE inbox_source_signals (
    kind       TEXT        NOT NULL,
    source_id  TEXT        NOT NULL,
    signal     TEXT        NOT NULL,
    event_id   TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    by         TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (kind, source_id, signal, event_id)
);

-- The hub's own InboxItemAcknowledged / InboxItemResolved per item (action ACKNOWLEDGED / RESOLVED),
-- whether or not the item is opened yet (a replay reads the hub's topic beside the domains').
CREATE TABLE inbox_item_actions (
    item_id   TEXT        NOT NULL,
    event_id  TEXT        NOT NULL,
    action    TEXT        NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    by        TEXT        NOT NULL DEFAULT '',
    PRIMARY KEY (item_id, event_id)
);

-- Replaced by the two tables above: the state of a source is recomputed from its signals, and a hub event
-- about an item not opened yet is simply a fact waiting in inbox_item_actions / inbox_escalations.
DROP TABLE inbox_sources;
DROP TABLE inbox_pending;
