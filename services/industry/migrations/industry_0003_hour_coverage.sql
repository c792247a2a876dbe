-- What each hourly row already counts, so that a sample sent again (in any later request) or overlapping
-- another adds nothing twice (issue 17): little-endian bitmaps, bit k = tick k of the hour (1 s, or 100 ms
-- for devices reporting faster than once a second) in `covered`, start slot k in `starts`. Up to 450 bytes
-- each for a whole-second device (4,500 for a sub-second one), growing with the hour.
-- Rows rolled up before this migration start empty: their samples were summed without coverage, so a
-- re-send of one of them arriving afterwards would still be added once more (within the 7-day late window).
ALTER TABLE utilisation_hourly
    ADD COLUMN covered BYTEA NOT NULL DEFAULT ''::bytea,
    ADD COLUMN starts  BYTEA NOT NULL DEFAULT ''::bytea;
