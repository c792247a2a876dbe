-- The kitchen service's state: kitchens, staff (sealed) and their morning checks, alerts to managers,
-- equipment with its live rule state and per-day figures, AI captures and violations, deliveries (lots),
-- meals with their dishes and ingredients, ratings and inspections.

CREATE TABLE kitchens (
    kitchen_id            TEXT PRIMARY KEY,
    site_id               TEXT        NOT NULL,
    name                  TEXT        NOT NULL,
    operator_kind         TEXT        NOT NULL,
    operator_name         TEXT        NOT NULL,
    operator_credit_code  TEXT        NOT NULL,
    meals_per_day         INTEGER     NOT NULL,
    latitude              DOUBLE PRECISION,
    longitude             DOUBLE PRECISION,
    town                  TEXT        NOT NULL,
    division_code         TEXT        NOT NULL,
    -- [{"name": "lunch", "start_time": "09:00", "end_time": "13:30"}, ...]
    shifts                JSONB       NOT NULL,
    commitment            TEXT        NOT NULL,
    registered_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX kitchens_listing ON kitchens (registered_at, kitchen_id);
CREATE INDEX kitchens_site ON kitchens (site_id);

-- Names, identity numbers and certificate numbers are sealed (AES-GCM bound to the staff token); the
-- certificate's expiry date stays clear because the barring rule and the public profile read it, and a
-- date alone names no one.
CREATE TABLE staff (
    staff_id            TEXT PRIMARY KEY,
    kitchen_id          TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    staff_token         TEXT        NOT NULL,
    role                TEXT        NOT NULL,
    sealed              BYTEA       NOT NULL,
    certificate_expiry  DATE,
    face_template_ref   TEXT        NOT NULL,
    shifts              TEXT[]      NOT NULL,
    added_at            TIMESTAMPTZ NOT NULL,
    UNIQUE (kitchen_id, staff_token)
);
CREATE INDEX staff_listing ON staff (kitchen_id, added_at, staff_id);

-- One check per staff member per shift. The temperature and symptoms are sealed; the outcome and the
-- coarse bar reasons stay clear for statistics. A NO_CHECK bar has no checked_at.
CREATE TABLE morning_checks (
    check_id              TEXT PRIMARY KEY,
    kitchen_id            TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    staff_id              TEXT        NOT NULL REFERENCES staff (staff_id),
    shift_date            DATE        NOT NULL,
    shift                 TEXT        NOT NULL,
    shift_start           TIMESTAMPTZ NOT NULL,
    checked_at            TIMESTAMPTZ,
    face_match_score      DOUBLE PRECISION NOT NULL,
    sealed                BYTEA,
    outcome               TEXT        NOT NULL,
    bar_reasons           TEXT[]      NOT NULL,
    replaced_by_staff_id  TEXT REFERENCES staff (staff_id),
    recorded_at           TIMESTAMPTZ NOT NULL,
    UNIQUE (staff_id, shift_date, shift)
);
CREATE INDEX morning_checks_day ON morning_checks (kitchen_id, shift_date, shift);

-- Alerts to a kitchen's manager, from every rule of the service.
CREATE TABLE kitchen_alerts (
    alert_id    TEXT PRIMARY KEY,
    kitchen_id  TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    kind        TEXT        NOT NULL,
    severity    TEXT        NOT NULL,
    subject_id  TEXT        NOT NULL,
    message     TEXT        NOT NULL,
    raised_at   TIMESTAMPTZ NOT NULL,
    cleared_at  TIMESTAMPTZ
);
CREATE INDEX kitchen_alerts_listing ON kitchen_alerts (kitchen_id, raised_at DESC, alert_id);
CREATE INDEX kitchen_alerts_recent ON kitchen_alerts (raised_at DESC, alert_id);

-- A monitored unit: its effective limits and the live state the readings rules keep (a serialised domain
-- value, so the rules can evolve without a migration per field).
CREATE TABLE equipment (
    equipment_id        TEXT PRIMARY KEY,
    kitchen_id          TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    kind                TEXT        NOT NULL,
    name                TEXT        NOT NULL,
    limits              JSONB       NOT NULL,
    status              TEXT        NOT NULL,
    last_reading_at     TIMESTAMPTZ,
    last_temperature_c  DOUBLE PRECISION,
    state               JSONB       NOT NULL DEFAULT '{}'::jsonb,
    registered_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX equipment_listing ON equipment (kitchen_id, registered_at, equipment_id);
CREATE INDEX equipment_silence ON equipment (last_reading_at) WHERE status <> 'OFFLINE';

-- Per unit and local day: what the rules counted.
CREATE TABLE equipment_days (
    equipment_id              TEXT    NOT NULL REFERENCES equipment (equipment_id),
    day                       DATE    NOT NULL,
    kitchen_id                TEXT    NOT NULL,
    seconds_out_of_range      INTEGER NOT NULL DEFAULT 0,
    cycles                    INTEGER NOT NULL DEFAULT 0,
    short_cycles              INTEGER NOT NULL DEFAULT 0,
    uv_seconds                INTEGER NOT NULL DEFAULT 0,
    online_service_seconds    INTEGER NOT NULL DEFAULT 0,
    service_seconds           INTEGER NOT NULL DEFAULT 0,
    readings                  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (equipment_id, day)
);
CREATE INDEX equipment_days_kitchen ON equipment_days (kitchen_id, day);

CREATE TABLE violations (
    violation_id        TEXT PRIMARY KEY,
    kitchen_id          TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    camera_id           TEXT        NOT NULL REFERENCES equipment (equipment_id),
    kind                TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    opened_at           TIMESTAMPTZ NOT NULL,
    last_capture_at     TIMESTAMPTZ NOT NULL,
    first_rectified_at  TIMESTAMPTZ,
    alert_id            TEXT
);
CREATE INDEX violations_listing ON violations (kitchen_id, opened_at DESC, violation_id);
CREATE INDEX violations_open ON violations (camera_id, kind, last_capture_at) WHERE status = 'OPEN';

CREATE TABLE captures (
    capture_id    TEXT PRIMARY KEY,
    violation_id  TEXT             NOT NULL REFERENCES violations (violation_id),
    camera_id     TEXT             NOT NULL,
    kind          TEXT             NOT NULL,
    captured_at   TIMESTAMPTZ      NOT NULL,
    snapshot_ref  TEXT             NOT NULL,
    confidence    DOUBLE PRECISION NOT NULL
);
CREATE INDEX captures_violation ON captures (violation_id, captured_at);

CREATE TABLE violation_steps (
    violation_id  TEXT        NOT NULL REFERENCES violations (violation_id),
    seq           INTEGER     NOT NULL,
    status        TEXT        NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    by_subject    TEXT        NOT NULL,
    note          TEXT        NOT NULL,
    photo_ref     TEXT        NOT NULL,
    PRIMARY KEY (violation_id, seq)
);

-- One lot delivered to one kitchen, accepted or refused.
CREATE TABLE deliveries (
    delivery_id           TEXT PRIMARY KEY,
    kitchen_id            TEXT             NOT NULL REFERENCES kitchens (kitchen_id),
    supplier_credit_code  TEXT             NOT NULL,
    product               TEXT             NOT NULL,
    lot_number            TEXT             NOT NULL,
    quantity              DOUBLE PRECISION NOT NULL,
    unit                  TEXT             NOT NULL,
    production_date       DATE             NOT NULL,
    shelf_life_days       INTEGER          NOT NULL,
    use_by_date           DATE             NOT NULL,
    certificate_ref       TEXT             NOT NULL,
    received_at           TIMESTAMPTZ      NOT NULL,
    status                TEXT             NOT NULL,
    refusal_reasons       TEXT[]           NOT NULL
);
CREATE INDEX deliveries_listing ON deliveries (kitchen_id, received_at DESC, delivery_id);
CREATE INDEX deliveries_lot ON deliveries (supplier_credit_code, lot_number);

CREATE TABLE meals (
    meal_id             TEXT PRIMARY KEY,
    kitchen_id          TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    meal_date           DATE        NOT NULL,
    sitting             TEXT        NOT NULL,
    servings            INTEGER     NOT NULL,
    served_at           TIMESTAMPTZ NOT NULL,
    samples_kept_until  TIMESTAMPTZ NOT NULL,
    fully_traced        BOOLEAN     NOT NULL
);
CREATE INDEX meals_listing ON meals (kitchen_id, meal_date, served_at, meal_id);

CREATE TABLE meal_dishes (
    meal_id                TEXT             NOT NULL REFERENCES meals (meal_id),
    position               INTEGER          NOT NULL,
    name                   TEXT             NOT NULL,
    retained_sample_grams  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (meal_id, position)
);

CREATE TABLE meal_ingredients (
    meal_id        TEXT             NOT NULL,
    dish_position  INTEGER          NOT NULL,
    position       INTEGER          NOT NULL,
    delivery_id    TEXT             NOT NULL REFERENCES deliveries (delivery_id),
    quantity       DOUBLE PRECISION NOT NULL,
    unit           TEXT             NOT NULL,
    PRIMARY KEY (meal_id, dish_position, position),
    FOREIGN KEY (meal_id, dish_position) REFERENCES meal_dishes (meal_id, position)
);
CREATE INDEX meal_ingredients_delivery ON meal_ingredients (delivery_id);

-- The rater is kept only as a keyed digest (HMAC under the service's key): one rating per rater per meal,
-- and nobody can tell from the table who rated.
CREATE TABLE ratings (
    rating_id     TEXT PRIMARY KEY,
    meal_id       TEXT        NOT NULL REFERENCES meals (meal_id),
    kitchen_id    TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    rater_digest  TEXT        NOT NULL,
    score         INTEGER     NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment       TEXT        NOT NULL,
    rated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (meal_id, rater_digest)
);
CREATE INDEX ratings_listing ON ratings (kitchen_id, rated_at DESC, rating_id);

CREATE TABLE inspections (
    inspection_id  TEXT PRIMARY KEY,
    kitchen_id     TEXT        NOT NULL REFERENCES kitchens (kitchen_id),
    inspected_at   TIMESTAMPTZ NOT NULL,
    inspector      TEXT        NOT NULL,
    findings       TEXT[]      NOT NULL,
    result         TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX inspections_listing ON inspections (kitchen_id, inspected_at DESC, inspection_id);
