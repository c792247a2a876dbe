-- The safety service's state: sites, sensors, persons of concern (sealed), detections, alerts with their
-- units and timeline, venue inspections, and the memory of client request ids.

CREATE TABLE sites (
    site_id          TEXT PRIMARY KEY,
    name             TEXT        NOT NULL,
    kind             TEXT        NOT NULL,
    address          TEXT        NOT NULL,
    division_code    TEXT        NOT NULL,
    town             TEXT        NOT NULL,
    latitude         DOUBLE PRECISION,
    longitude        DOUBLE PRECISION,
    duty_room_name   TEXT        NOT NULL,
    duty_room_phone  TEXT        NOT NULL,
    registered_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sites_listing ON sites (registered_at, site_id);

CREATE TABLE sensors (
    sensor_id      TEXT PRIMARY KEY,
    site_id        TEXT        NOT NULL REFERENCES sites (site_id),
    kind           TEXT        NOT NULL,
    zone           TEXT        NOT NULL,
    name           TEXT        NOT NULL,
    device_code    TEXT        NOT NULL,
    registered_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sensors_site ON sensors (site_id, registered_at, sensor_id);

-- A person is found by token (HMAC of the identity number); everything else about them is sealed
-- (AES-GCM, bound to the token), so a dump of this table names nobody.
CREATE TABLE persons (
    person_token  TEXT PRIMARY KEY,
    sealed        BYTEA       NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- The purchase time stays clear so "the last 30 days" is an index range; what, how much and where are sealed.
CREATE TABLE hazardous_purchases (
    purchase_id   TEXT PRIMARY KEY,
    person_token  TEXT        NOT NULL REFERENCES persons (person_token),
    purchased_at  TIMESTAMPTZ NOT NULL,
    sealed        BYTEA       NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX hazardous_purchases_person ON hazardous_purchases (person_token, purchased_at);

CREATE TABLE detections (
    detection_id  TEXT PRIMARY KEY,
    site_id       TEXT             NOT NULL REFERENCES sites (site_id),
    sensor_id     TEXT             NOT NULL REFERENCES sensors (sensor_id),
    zone          TEXT             NOT NULL,
    kind          TEXT             NOT NULL,
    detected_at   TIMESTAMPTZ      NOT NULL,
    confidence    DOUBLE PRECISION NOT NULL,
    snapshot_ref  TEXT             NOT NULL,
    label         TEXT             NOT NULL,
    person_token  TEXT             NOT NULL,
    plate         TEXT             NOT NULL,
    received_at   TIMESTAMPTZ      NOT NULL
);
-- The risk window: one site's detections in a time range.
CREATE INDEX detections_site_time ON detections (site_id, detected_at);

CREATE TABLE alerts (
    alert_id           TEXT PRIMARY KEY,
    site_id            TEXT        NOT NULL REFERENCES sites (site_id),
    status             TEXT        NOT NULL,
    level              TEXT        NOT NULL,
    trigger            TEXT        NOT NULL,
    reasons            TEXT[]      NOT NULL,
    detection_kinds    TEXT[]      NOT NULL,
    person_tokens      TEXT[]      NOT NULL,
    occurrences        INTEGER     NOT NULL,
    first_detected_at  TIMESTAMPTZ NOT NULL,
    last_detected_at   TIMESTAMPTZ NOT NULL,
    raised_at          TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    acknowledged_at    TIMESTAMPTZ,
    dispatched_at      TIMESTAMPTZ,
    on_scene_at        TIMESTAMPTZ,
    closed_at          TIMESTAMPTZ,
    outcome            TEXT,
    joint_response     BOOLEAN     NOT NULL DEFAULT false,
    resolution_note    TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX alerts_site_raised ON alerts (site_id, raised_at DESC, alert_id DESC);
CREATE INDEX alerts_raised ON alerts (raised_at DESC, alert_id DESC);
-- Finding the open alert a new detection may update, and the open alerts a new watcher is sent.
CREATE INDEX alerts_open ON alerts (site_id) WHERE closed_at IS NULL;

CREATE TABLE alert_detections (
    alert_id      TEXT NOT NULL REFERENCES alerts (alert_id),
    detection_id  TEXT NOT NULL REFERENCES detections (detection_id),
    PRIMARY KEY (alert_id, detection_id)
);
CREATE INDEX alert_detections_detection ON alert_detections (detection_id);

CREATE TABLE alert_units (
    unit_id      TEXT PRIMARY KEY,
    alert_id     TEXT        NOT NULL REFERENCES alerts (alert_id),
    seq          INTEGER     NOT NULL,
    kind         TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    status       TEXT        NOT NULL,
    notified_at  TIMESTAMPTZ NOT NULL,
    en_route_at  TIMESTAMPTZ,
    arrived_at   TIMESTAMPTZ,
    done_at      TIMESTAMPTZ
);
CREATE INDEX alert_units_alert ON alert_units (alert_id, seq);

CREATE TABLE alert_timeline (
    id        BIGSERIAL PRIMARY KEY,
    alert_id  TEXT        NOT NULL REFERENCES alerts (alert_id),
    at        TIMESTAMPTZ NOT NULL,
    kind      TEXT        NOT NULL,
    actor     TEXT        NOT NULL,
    detail    TEXT        NOT NULL
);
CREATE INDEX alert_timeline_alert ON alert_timeline (alert_id, id);

CREATE TABLE inspections (
    inspection_id  TEXT PRIMARY KEY,
    site_id        TEXT        NOT NULL REFERENCES sites (site_id),
    method         TEXT        NOT NULL,
    inspector      TEXT        NOT NULL,
    inspected_at   TIMESTAMPTZ NOT NULL,
    sensor_id      TEXT        NOT NULL,
    summary        TEXT        NOT NULL,
    findings       JSONB       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX inspections_site ON inspections (site_id, inspected_at DESC, inspection_id DESC);
