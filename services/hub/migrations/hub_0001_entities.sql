-- The hub's entities family: entities resolved across the domains by the keys their events carry, the
-- links between them, what each domain's events say about each (a part: counters and last values), and
-- every event per entity it concerns (the timeline). All of it is a projection of the domains' topics, so
-- every column comes from an event (ce_time, payload) or a row an earlier event made — never the clock.

-- kind: the common EntityKind name without its prefix ("SITE", "ENTERPRISE", ...); id: the id within it
-- (site id, credit code, kitchen id, park id, chamber id, application number, GB/T 2260 division code).
-- An entity first named by another's event (a kitchen's operator before it is onboarded) is a stub
-- (registered = false) until its own event arrives; name_rank says which source gave the name (its own
-- event beats another domain's mention) so a later, weaker mention never overwrites it.
CREATE TABLE entities (
    kind           TEXT        NOT NULL,
    id             TEXT        NOT NULL,
    name           TEXT        NOT NULL DEFAULT '',
    name_rank      INTEGER     NOT NULL DEFAULT 0,
    town           TEXT        NOT NULL DEFAULT '',
    division_code  TEXT        NOT NULL DEFAULT '',
    latitude       DOUBLE PRECISION,
    longitude      DOUBLE PRECISION,
    owner_domain   TEXT        NOT NULL DEFAULT '',
    registered     BOOLEAN     NOT NULL DEFAULT FALSE,
    first_seen_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, id)
);
-- Search: prefix on the lowered name and id (substring falls back to a scan, fine at a district's scale).
CREATE INDEX entities_name_prefix ON entities (lower(name) text_pattern_ops);
CREATE INDEX entities_id_prefix ON entities (lower(id) text_pattern_ops);
CREATE INDEX entities_town ON entities (town);
-- Nearby: a bounding-box prefilter on the coordinates.
CREATE INDEX entities_location ON entities (latitude, longitude) WHERE latitude IS NOT NULL;

-- A directed link (from -relation-> to), made by one domain's event; a 360 view shows it from both ends.
CREATE TABLE entity_links (
    from_kind  TEXT        NOT NULL,
    from_id    TEXT        NOT NULL,
    relation   TEXT        NOT NULL,
    to_kind    TEXT        NOT NULL,
    to_id      TEXT        NOT NULL,
    domain     TEXT        NOT NULL,
    linked_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (from_kind, from_id, relation, to_kind, to_id)
);
CREATE INDEX entity_links_to ON entity_links (to_kind, to_id);

-- One domain's part of an entity: the counters and last values its events made (state, JSON), from
-- which the facts are computed; the latest event time behind it and how many events made it.
CREATE TABLE entity_parts (
    kind           TEXT        NOT NULL,
    id             TEXT        NOT NULL,
    domain         TEXT        NOT NULL,
    state          JSONB       NOT NULL DEFAULT '{}'::jsonb,
    last_event_at  TIMESTAMPTZ NOT NULL,
    event_count    INTEGER     NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id, domain)
);

-- Every event about an entity, one row per entity it concerns (a kitchen's registration is on the
-- kitchen's, its school's and its operator's timelines).
CREATE TABLE entity_timeline (
    kind      TEXT        NOT NULL,
    id        TEXT        NOT NULL,
    event_id  TEXT        NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    domain    TEXT        NOT NULL,
    ce_type   TEXT        NOT NULL,
    summary   TEXT        NOT NULL,
    PRIMARY KEY (kind, id, event_id)
);
CREATE INDEX entity_timeline_order ON entity_timeline (kind, id, at, event_id);
