-- Consumers forget processed ids past a retention (longer than any redelivery); this index keeps
-- that periodic delete from scanning the whole table.
CREATE INDEX processed_events_by_age ON processed_events (consumer, processed_at);
