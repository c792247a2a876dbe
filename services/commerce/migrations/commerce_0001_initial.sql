-- The commerce service's state: federations and their code-signing keys (private keys sealed), chambers
-- and their staff, memberships, activities and sign-ups, posts and matches, service requests, courses and
-- enrolments, and the excellence points ledger.

CREATE TABLE federations (
    federation_id  TEXT PRIMARY KEY,
    name           TEXT        NOT NULL,
    level          TEXT        NOT NULL,
    division_code  TEXT        NOT NULL UNIQUE,
    parent_id      TEXT REFERENCES federations (federation_id),
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX federations_listing ON federations (created_at, federation_id);

-- One current key per federation; retired keys stay (with retires_at) so codes signed just before a
-- rotation still verify until then, and so a key id is never reused.
CREATE TABLE signing_keys (
    key_id          TEXT PRIMARY KEY,
    federation_id   TEXT        NOT NULL REFERENCES federations (federation_id),
    algorithm       TEXT        NOT NULL,
    public_key_pem  TEXT        NOT NULL,
    sealed_private  BYTEA       NOT NULL,
    is_current      BOOLEAN     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    retires_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX signing_keys_current ON signing_keys (federation_id) WHERE is_current;

CREATE TABLE chambers (
    chamber_id     TEXT PRIMARY KEY,
    federation_id  TEXT        NOT NULL REFERENCES federations (federation_id),
    name           TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    sector         TEXT        NOT NULL,
    division_code  TEXT        NOT NULL,
    join_rule      TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX chambers_listing ON chambers (federation_id, created_at, chamber_id);

CREATE TABLE chamber_staff (
    staff_id    TEXT PRIMARY KEY,
    chamber_id  TEXT        NOT NULL REFERENCES chambers (chamber_id),
    subject     TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    role        TEXT        NOT NULL,
    added_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (chamber_id, subject)
);

CREATE TABLE memberships (
    membership_id    TEXT PRIMARY KEY,
    chamber_id       TEXT        NOT NULL REFERENCES chambers (chamber_id),
    credit_code      TEXT        NOT NULL,
    enterprise_name  TEXT        NOT NULL,
    park_id          TEXT        NOT NULL,
    sector           TEXT        NOT NULL,
    latitude         DOUBLE PRECISION,
    longitude        DOUBLE PRECISION,
    town             TEXT        NOT NULL,
    lookup           TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    reason           TEXT        NOT NULL,
    applied_at       TIMESTAMPTZ NOT NULL,
    decided_at       TIMESTAMPTZ,
    auto_approved    BOOLEAN     NOT NULL
);
-- One live membership (pending, active or suspended) per enterprise and chamber.
CREATE UNIQUE INDEX memberships_live ON memberships (chamber_id, credit_code)
    WHERE status IN ('PENDING', 'ACTIVE', 'SUSPENDED');
CREATE INDEX memberships_chamber ON memberships (chamber_id, applied_at, membership_id);
CREATE INDEX memberships_enterprise ON memberships (credit_code, applied_at, membership_id);
CREATE INDEX memberships_map ON memberships (latitude, longitude) WHERE status = 'ACTIVE';

CREATE TABLE activities (
    activity_id       TEXT PRIMARY KEY,
    chamber_id        TEXT        NOT NULL REFERENCES chambers (chamber_id),
    title             TEXT        NOT NULL,
    place             TEXT        NOT NULL,
    starts_at         TIMESTAMPTZ NOT NULL,
    capacity          INTEGER     NOT NULL,
    sign_up_deadline  TIMESTAMPTZ NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX activities_listing ON activities (chamber_id, starts_at DESC, activity_id);

-- seq orders sign-ups (and so the waitlist) by arrival.
CREATE TABLE sign_ups (
    sign_up_id     TEXT PRIMARY KEY,
    activity_id    TEXT        NOT NULL REFERENCES activities (activity_id),
    membership_id  TEXT        NOT NULL REFERENCES memberships (membership_id),
    credit_code    TEXT        NOT NULL,
    status         TEXT        NOT NULL,
    seq            BIGSERIAL   NOT NULL,
    signed_up_at   TIMESTAMPTZ NOT NULL,
    checked_in_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX sign_ups_live ON sign_ups (activity_id, membership_id) WHERE status <> 'CANCELLED';
CREATE INDEX sign_ups_order ON sign_ups (activity_id, seq);

CREATE TABLE posts (
    post_id        TEXT PRIMARY KEY,
    chamber_id     TEXT             NOT NULL REFERENCES chambers (chamber_id),
    membership_id  TEXT             NOT NULL REFERENCES memberships (membership_id),
    credit_code    TEXT             NOT NULL,
    kind           TEXT             NOT NULL,
    category       TEXT             NOT NULL,
    division_code  TEXT             NOT NULL,
    quantity       DOUBLE PRECISION NOT NULL,
    unit           TEXT             NOT NULL,
    description    TEXT             NOT NULL,
    valid_until    DATE             NOT NULL,
    created_at     TIMESTAMPTZ      NOT NULL
);
CREATE INDEX posts_listing ON posts (chamber_id, created_at DESC, post_id);
CREATE INDEX posts_open ON posts (kind, valid_until);

CREATE TABLE matches (
    match_id            TEXT PRIMARY KEY,
    supply_post_id      TEXT             NOT NULL REFERENCES posts (post_id),
    demand_post_id      TEXT             NOT NULL REFERENCES posts (post_id),
    supply_credit_code  TEXT             NOT NULL,
    demand_credit_code  TEXT             NOT NULL,
    status              TEXT             NOT NULL,
    supply_accepted     BOOLEAN          NOT NULL,
    demand_accepted     BOOLEAN          NOT NULL,
    score               DOUBLE PRECISION NOT NULL,
    proposed_at         TIMESTAMPTZ      NOT NULL,
    matched_at          TIMESTAMPTZ,
    UNIQUE (supply_post_id, demand_post_id)
);
CREATE INDEX matches_supply ON matches (supply_credit_code, proposed_at);
CREATE INDEX matches_demand ON matches (demand_credit_code, proposed_at);

CREATE TABLE service_requests (
    service_request_id  TEXT PRIMARY KEY,
    chamber_id          TEXT        NOT NULL REFERENCES chambers (chamber_id),
    membership_id       TEXT        NOT NULL REFERENCES memberships (membership_id),
    credit_code         TEXT        NOT NULL,
    type                TEXT        NOT NULL,
    subject             TEXT        NOT NULL,
    description         TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    assigned_to         TEXT        NOT NULL,
    submitted_at        TIMESTAMPTZ NOT NULL,
    due_at              TIMESTAMPTZ NOT NULL,
    overdue             BOOLEAN     NOT NULL DEFAULT FALSE,
    resolved_at         TIMESTAMPTZ,
    resolution          TEXT        NOT NULL,
    satisfaction        INTEGER     NOT NULL DEFAULT 0
);
CREATE INDEX service_requests_listing ON service_requests (chamber_id, submitted_at DESC, service_request_id);
CREATE INDEX service_requests_due ON service_requests (due_at) WHERE status <> 'RESOLVED' AND NOT overdue;

CREATE TABLE courses (
    course_id   TEXT PRIMARY KEY,
    chamber_id  TEXT        NOT NULL REFERENCES chambers (chamber_id),
    title       TEXT        NOT NULL,
    hours       INTEGER     NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE enrolments (
    enrolment_id   TEXT PRIMARY KEY,
    course_id      TEXT        NOT NULL REFERENCES courses (course_id),
    membership_id  TEXT        NOT NULL REFERENCES memberships (membership_id),
    enrolled_at    TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ,
    UNIQUE (course_id, membership_id)
);

-- The excellence ledger: one entry per member and thing that earned points (a second check-in at the same
-- activity earns nothing more).
CREATE TABLE ledger (
    entry_id       TEXT PRIMARY KEY,
    membership_id  TEXT        NOT NULL REFERENCES memberships (membership_id),
    chamber_id     TEXT        NOT NULL,
    source         TEXT        NOT NULL,
    source_id      TEXT        NOT NULL,
    points         INTEGER     NOT NULL,
    note           TEXT        NOT NULL,
    earned_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (membership_id, source, source_id)
);
CREATE INDEX ledger_chamber ON ledger (chamber_id, earned_at);
CREATE INDEX ledger_member ON ledger (membership_id, earned_at DESC, entry_id);
