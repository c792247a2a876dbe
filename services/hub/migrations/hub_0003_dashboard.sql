-- The district dashboard's facts. One row per counted thing, keyed by its business key (an alert id, a
-- credit code, an application number...), so a repeat of the same fact under another event id counts once.
-- Counting rows rather than incrementing (town, day, metric) counters keeps the figures independent of the
-- order events of different topics and partitions arrive in (a rebuild by replay must come out identical):
-- an event that carries no town of its own names the entity whose town applies (ref_kind, ref_id), and
-- that town is read from `entities` when the dashboard is asked, whenever the entity's town became known.
-- depends: hub_0001_entities

CREATE TABLE dashboard_facts (
    metric    TEXT        NOT NULL,
    fact_key  TEXT        NOT NULL,
    -- The district's local date of the event (ce_time).
    day       DATE        NOT NULL,
    -- The event's own town (乡镇/街道), '' when it carries none.
    town      TEXT        NOT NULL DEFAULT '',
    -- The entity whose town applies otherwise (entities.kind / entities.id), '' when none.
    ref_kind  TEXT        NOT NULL DEFAULT '',
    ref_id    TEXT        NOT NULL DEFAULT '',
    -- The event that made the row: of two events for one fact the earliest (at, event_id) wins, whatever
    -- order they arrive in.
    at        TIMESTAMPTZ NOT NULL,
    event_id  TEXT        NOT NULL,
    PRIMARY KEY (metric, fact_key)
);
CREATE INDEX dashboard_facts_by_day ON dashboard_facts (metric, day);

-- Industry's hourly utilisation summaries, one row per device and hour (a summary published again after
-- late samples replaces the earlier one: the latest (at, event_id) wins). Figures in parts per million, as
-- integers, so sums do not depend on the order they were added in.
CREATE TABLE dashboard_device_hours (
    device_id         TEXT        NOT NULL,
    hour_started_at   TIMESTAMPTZ NOT NULL,
    -- The district's local date of the hour.
    day               DATE        NOT NULL,
    credit_code       TEXT        NOT NULL DEFAULT '',
    availability_ppm  BIGINT      NOT NULL,
    oee_ppm           BIGINT      NOT NULL,
    at                TIMESTAMPTZ NOT NULL,
    event_id          TEXT        NOT NULL,
    PRIMARY KEY (device_id, hour_started_at)
);
CREATE INDEX dashboard_device_hours_by_day ON dashboard_device_hours (day);
