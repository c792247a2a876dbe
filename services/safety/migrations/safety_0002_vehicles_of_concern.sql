-- Vehicles of concern: a plate linked to a recorded person. Found by token (v_ + HMAC of the normalised
-- plate, so a plate read by a camera is matched without decrypting anything); the plate itself is sealed
-- (AES-GCM, bound to the token), so a dump of this table names no car and no owner.
CREATE TABLE vehicles_of_concern (
    vehicle_token  TEXT PRIMARY KEY,
    person_token   TEXT        NOT NULL REFERENCES persons (person_token),
    sealed         BYTEA       NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
-- A person's vehicles, oldest record first (ListVehiclesOfConcern's cursor).
CREATE INDEX vehicles_of_concern_person ON vehicles_of_concern (person_token, recorded_at, vehicle_token);

-- Detections keep the token of the plate read, never the plate: a plate identifies the car's owner, and
-- the district's vehicle-recognition units read every car that passes. Plates stored in clear before this
-- migration cannot be tokenised in SQL (the key is the service's), so they are dropped with the column.
ALTER TABLE detections ADD COLUMN vehicle_token TEXT NOT NULL DEFAULT '';
ALTER TABLE detections DROP COLUMN plate;
