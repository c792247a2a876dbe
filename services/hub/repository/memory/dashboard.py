"""The dashboard family's tables held in memory for the rebuild: the same rows as
:class:`services.hub.repository.dashboard.DashboardSql` for the calls the projection makes."""

from __future__ import annotations

from datetime import date, datetime

from services.hub.domain.dashboard import Fact, Metric
from services.hub.repository.dashboard import PPM
from services.hub.repository.memory.tables import Tables

__all__ = ["MemoryDashboard"]

_FactRow = tuple[date, str, str, str, datetime, str]  # day, town, ref_kind, ref_id, at, event_id
_HourRow = tuple[date, str, int, int, datetime, str]  # day, credit_code, availability, oee, at, event_id


class MemoryDashboard:
    def __init__(self) -> None:
        super().__init__()
        self._facts: dict[tuple[str, str], _FactRow] = {}
        self._hours: dict[tuple[str, datetime], _HourRow] = {}

    def record_fact(self, fact: Fact) -> None:
        # Of two events for one fact the earliest (at, event_id) wins (DashboardSql._RECORD_FACT).
        key = (fact.metric.value, fact.key)
        held = self._facts.get(key)
        if held is None or (fact.at, fact.event_id) < (held[4], held[5]):
            self._facts[key] = (fact.day, fact.town, fact.ref_kind, fact.ref_id, fact.at, fact.event_id)

    def dashboard_fact(self, metric: Metric, key: str) -> Fact | None:
        held = self._facts.get((metric.value, key))
        if held is None:
            return None
        day, town, ref_kind, ref_id, at, event_id = held
        return Fact(metric, key, day, town, ref_kind, ref_id, at, event_id)

    def record_device_hour(
        self,
        *,
        device_id: str,
        hour_started_at: datetime,
        day: date,
        credit_code: str,
        availability: float,
        oee: float,
        at: datetime,
        event_id: str,
    ) -> None:
        # A summary published again replaces the earlier one: the latest (at, event_id) wins.
        key = (device_id, hour_started_at)
        held = self._hours.get(key)
        if held is None or (at, event_id) > (held[4], held[5]):
            self._hours[key] = (day, credit_code, round(availability * PPM), round(oee * PPM), at, event_id)

    def tables(self) -> Tables:
        return {
            "dashboard_facts": (
                ("metric", "fact_key", "day", "town", "ref_kind", "ref_id", "at", "event_id"),
                ((*key, *row) for key, row in self._facts.items()),
            ),
            "dashboard_device_hours": (
                ("device_id", "hour_started_at", "day", "credit_code", "availability_ppm", "oee_ppm", "at",
                 "event_id"),
                ((*key, *row) for key, row in self._hours.items()),
            ),
        }  # fmt: skip
