-- At most one home region (the district): RegisterRegion checks it, this holds it against two concurrent
-- registrations of different homes.
CREATE UNIQUE INDEX regions_one_home ON regions (home) WHERE home;
