"""The govservice service: cross-region one-stop government services (跨区域通办) — partner regions, the
item catalogue, applications handed between regions with signed steps, tracking, deadlines in working
days, statistics. See docs/services/govservice.md."""
