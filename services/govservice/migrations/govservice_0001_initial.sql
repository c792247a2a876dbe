-- The govservice service's state: regions and their signing keys (private keys sealed), the item
-- catalogue, partnerships, applications (person applicants sealed) and their signed steps.

CREATE TABLE regions (
    division_code  TEXT PRIMARY KEY,
    name           TEXT        NOT NULL,
    province       TEXT        NOT NULL,
    home           BOOLEAN     NOT NULL,
    registered_at  TIMESTAMPTZ NOT NULL
);

-- One current key per region (Ed25519); old keys stay so old steps still verify.
CREATE TABLE region_keys (
    key_id          TEXT PRIMARY KEY,
    division_code   TEXT        NOT NULL REFERENCES regions (division_code),
    algorithm       TEXT        NOT NULL,
    public_key_pem  TEXT        NOT NULL,
    sealed_private  BYTEA       NOT NULL,
    is_current      BOOLEAN     NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX region_keys_current ON region_keys (division_code) WHERE is_current;

CREATE TABLE items (
    item_code              TEXT PRIMARY KEY,
    name                   TEXT        NOT NULL,
    -- [{"code": "id_card_copy", "name": "Copy of the identity card"}, ...]
    materials              JSONB       NOT NULL,
    authority_level        TEXT        NOT NULL,
    promised_working_days  INTEGER     NOT NULL,
    applicant_kinds        TEXT[]      NOT NULL,
    defined_at             TIMESTAMPTZ NOT NULL
);

-- A partnership between two regions (stored with region_a < region_b is NOT assumed: region_a is the
-- side the directions are relative to).
CREATE TABLE partnerships (
    region_a    TEXT        NOT NULL REFERENCES regions (division_code),
    region_b    TEXT        NOT NULL REFERENCES regions (division_code),
    -- [{"item_code": "...", "direction": "A_TO_B" | "B_TO_A" | "BOTH"}, ...]
    items       JSONB       NOT NULL,
    start_date  DATE        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (region_a, region_b)
);

-- A person applicant is sealed (identity number, name, phone bound to the applicant token); the token,
-- the last six characters' digest (tracking) and the origin division (people served per partner place,
-- a county code, no more) stay clear.
CREATE TABLE applications (
    application_no      TEXT PRIMARY KEY,
    item_code           TEXT        NOT NULL REFERENCES items (item_code),
    filing_region       TEXT        NOT NULL REFERENCES regions (division_code),
    handling_region     TEXT        NOT NULL REFERENCES regions (division_code),
    applicant_kind      TEXT        NOT NULL,
    applicant_token     TEXT        NOT NULL,
    sealed_person       BYTEA,
    origin_division     TEXT        NOT NULL,
    credit_code         TEXT        NOT NULL,
    enterprise_name     TEXT        NOT NULL,
    enterprise_sector   TEXT        NOT NULL,
    enterprise_town     TEXT        NOT NULL,
    verification        TEXT        NOT NULL,
    -- Keyed digest of the last six characters of the identity number or credit code (tracking).
    suffix_digest       TEXT        NOT NULL,
    materials           TEXT[]      NOT NULL,
    status              TEXT        NOT NULL,
    current_region      TEXT        NOT NULL,
    accepted_on         DATE,
    due_date            DATE,
    -- Working days used before the clock last paused (supplement requested), and when it paused.
    working_days_used   INTEGER     NOT NULL DEFAULT 0,
    paused_on           DATE,
    overdue             BOOLEAN     NOT NULL DEFAULT FALSE,
    filed_at            TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ
);
CREATE INDEX applications_filing ON applications (filing_region, filed_at DESC, application_no);
CREATE INDEX applications_handling ON applications (handling_region, filed_at DESC, application_no);
CREATE INDEX applications_due ON applications (due_date)
    WHERE NOT overdue AND status IN ('ACCEPTED', 'SUPPLEMENTED');

-- The signed trail: one row per step, each carrying the previous step's hash.
CREATE TABLE steps (
    application_no  TEXT        NOT NULL REFERENCES applications (application_no),
    sequence        INTEGER     NOT NULL,
    status          TEXT        NOT NULL,
    region          TEXT        NOT NULL,
    actor           TEXT        NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    note            TEXT        NOT NULL,
    previous_hash   TEXT        NOT NULL,
    hash            TEXT        NOT NULL,
    signature       TEXT        NOT NULL,
    key_id          TEXT        NOT NULL,
    PRIMARY KEY (application_no, sequence)
);
