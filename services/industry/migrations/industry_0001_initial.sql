-- The industry service's state. Names of enterprises, parks and customers live only here.

CREATE TABLE parks (
    park_id        TEXT PRIMARY KEY,
    name           TEXT        NOT NULL,
    division_code  TEXT        NOT NULL,
    address        TEXT        NOT NULL DEFAULT '',
    registered_at  TIMESTAMPTZ NOT NULL,
    request_id     TEXT        NOT NULL UNIQUE
);

CREATE TABLE enterprises (
    credit_code    TEXT PRIMARY KEY,
    name           TEXT        NOT NULL,
    sector         SMALLINT    NOT NULL,
    park_id        TEXT        REFERENCES parks (park_id),
    address        TEXT        NOT NULL DEFAULT '',
    onboarded_at   TIMESTAMPTZ NOT NULL,
    request_id     TEXT        NOT NULL UNIQUE
);
CREATE INDEX enterprises_park ON enterprises (park_id, credit_code);

CREATE TABLE devices (
    device_id            TEXT PRIMARY KEY,
    -- Lets the ingest path's device cache load only what is new since its last refresh.
    seq                  BIGSERIAL   NOT NULL UNIQUE,
    serial_number        TEXT        NOT NULL UNIQUE,
    enterprise_id        TEXT        NOT NULL REFERENCES enterprises (credit_code),
    park_id              TEXT,
    workshop             TEXT        NOT NULL,
    machine_type         SMALLINT    NOT NULL,
    rated_power_kw       DOUBLE PRECISION NOT NULL,
    ideal_cycle_seconds  DOUBLE PRECISION NOT NULL,
    sample_interval_ms   INTEGER     NOT NULL,
    registered_at        TIMESTAMPTZ NOT NULL,
    request_id           TEXT        NOT NULL UNIQUE
);
CREATE INDEX devices_enterprise ON devices (enterprise_id, workshop, device_id);
CREATE INDEX devices_park ON devices (park_id, device_id);

-- The newest known state of each device, maintained by the telemetry consumer (in sample-time order)
-- and read by the health monitor. One row per device, created with the device.
CREATE TABLE device_status (
    device_id        TEXT PRIMARY KEY REFERENCES devices (device_id),
    state            SMALLINT    NOT NULL DEFAULT 0,
    state_since      TIMESTAMPTZ,
    last_sample_at   TIMESTAMPTZ,
    -- When the service last heard from it (consumer wall clock) or, before that, when it was registered:
    -- silence is measured from here so a backlog replayed late does not look like a live device.
    last_seen_at     TIMESTAMPTZ NOT NULL,
    fault_alert_id   UUID,
    offline_alert_id UUID
);
CREATE INDEX device_status_silent ON device_status (last_seen_at) WHERE offline_alert_id IS NULL;

CREATE TABLE device_alerts (
    alert_id         UUID PRIMARY KEY,
    device_id        TEXT        NOT NULL REFERENCES devices (device_id),
    enterprise_id    TEXT        NOT NULL,
    park_id          TEXT,
    kind             SMALLINT    NOT NULL,
    severity         SMALLINT    NOT NULL,
    condition_since  TIMESTAMPTZ NOT NULL,
    raised_at        TIMESTAMPTZ NOT NULL,
    cleared_at       TIMESTAMPTZ
);
-- At most one open alert per device and kind.
CREATE UNIQUE INDEX device_alerts_open ON device_alerts (device_id, kind) WHERE cleared_at IS NULL;
CREATE INDEX device_alerts_enterprise ON device_alerts (enterprise_id, raised_at DESC);
CREATE INDEX device_alerts_park ON device_alerts (park_id, raised_at DESC);

-- Telemetry kept in compact form: one row per device and hour (UTC), summed by the telemetry consumer.
-- Additive, so samples may arrive in any order; ideal_ms is summed with the device's ideal cycle time
-- at the time the samples were counted.
CREATE TABLE utilisation_hourly (
    device_id    TEXT        NOT NULL REFERENCES devices (device_id),
    hour_start   TIMESTAMPTZ NOT NULL,
    running_ms   BIGINT      NOT NULL DEFAULT 0,
    idle_ms      BIGINT      NOT NULL DEFAULT 0,
    stopped_ms   BIGINT      NOT NULL DEFAULT 0,
    fault_ms     BIGINT      NOT NULL DEFAULT 0,
    good_count   BIGINT      NOT NULL DEFAULT 0,
    reject_count BIGINT      NOT NULL DEFAULT 0,
    ideal_ms     DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- Changed since its UtilisationRolledUp event was last published.
    dirty        BOOLEAN     NOT NULL DEFAULT TRUE,
    PRIMARY KEY (device_id, hour_start)
);
CREATE INDEX utilisation_hourly_dirty ON utilisation_hourly (hour_start) WHERE dirty;

CREATE TABLE orders (
    order_id       TEXT PRIMARY KEY,
    enterprise_id  TEXT        NOT NULL REFERENCES enterprises (credit_code),
    customer       TEXT        NOT NULL,
    product        TEXT        NOT NULL,
    customisation  TEXT        NOT NULL DEFAULT '',
    promised_date  DATE        NOT NULL,
    stage          SMALLINT    NOT NULL,
    ordered_at     TIMESTAMPTZ NOT NULL,
    delivered_at   TIMESTAMPTZ,
    request_id     TEXT        NOT NULL UNIQUE
);
CREATE INDEX orders_enterprise ON orders (enterprise_id, ordered_at DESC);
CREATE INDEX orders_delivered ON orders (delivered_at) WHERE delivered_at IS NOT NULL;

CREATE TABLE order_stage_times (
    order_id    TEXT        NOT NULL REFERENCES orders (order_id),
    stage       SMALLINT    NOT NULL,
    entered_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, stage)
);
