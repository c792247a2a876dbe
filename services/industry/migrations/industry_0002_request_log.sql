-- Idempotent creates moved to the platform's request log (table `requests`, platform_0004): the per-table
-- request ids (and their UNIQUE constraints) are no longer written or read.
ALTER TABLE parks DROP COLUMN request_id;
ALTER TABLE enterprises DROP COLUMN request_id;
ALTER TABLE devices DROP COLUMN request_id;
ALTER TABLE orders DROP COLUMN request_id;
