-- The deadline clock of an application (domain/applications.py): the promised working days as filed (an
-- item redefined later does not move the deadline of an application already filed), and the date the
-- clock last (re)started (acceptance, or the last supplement handed over; NULL while it is stopped).
-- depends: govservice_0001_initial

ALTER TABLE applications ADD COLUMN promised_working_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE applications ADD COLUMN clock_from DATE;
