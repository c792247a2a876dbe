"""SQL of the dashboard family: the facts it counts and industry's hourly device figures, and the
aggregates GetDashboard reads (the town of a fact without one of its own read from ``entities``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from services.hub.domain.dashboard import DeviceFigures, Fact, Metric, MetricCounts, Period
from services.platform.repository import SqlPart

__all__ = ["DashboardSql"]

PPM = 1_000_000

# Of two events for one fact the earliest (at, event_id) wins, so the row does not depend on arrival order.
_RECORD_FACT = """
INSERT INTO dashboard_facts AS f (metric, fact_key, day, town, ref_kind, ref_id, at, event_id)
VALUES (%(metric)s, %(key)s, %(day)s, %(town)s, %(ref_kind)s, %(ref_id)s, %(at)s, %(event_id)s)
ON CONFLICT (metric, fact_key) DO UPDATE
SET day = excluded.day, town = excluded.town, ref_kind = excluded.ref_kind, ref_id = excluded.ref_id,
    at = excluded.at, event_id = excluded.event_id
WHERE (excluded.at, excluded.event_id) < (f.at, f.event_id)
"""

# A summary published again (late samples) replaces the earlier one: the latest (at, event_id) wins.
_RECORD_HOUR = """
INSERT INTO dashboard_device_hours AS h
    (device_id, hour_started_at, day, credit_code, availability_ppm, oee_ppm, at, event_id)
VALUES (%(device_id)s, %(hour)s, %(day)s, %(credit_code)s, %(availability)s, %(oee)s, %(at)s, %(event_id)s)
ON CONFLICT (device_id, hour_started_at) DO UPDATE
SET day = excluded.day, credit_code = excluded.credit_code, availability_ppm = excluded.availability_ppm,
    oee_ppm = excluded.oee_ppm, at = excluded.at, event_id = excluded.event_id
WHERE (excluded.at, excluded.event_id) > (h.at, h.event_id)
"""

# The town of a fact: its event's own, else its entity's (known now, whenever it became known), else ''.
_FACT_TOWN = "COALESCE(NULLIF(f.town, ''), e.town, '')"

_COUNTS = """
SELECT f.metric,
       count(*) AS to_end,
       count(*) FILTER (WHERE f.day < %(first)s) AS to_previous_end,
       count(*) FILTER (WHERE f.day >= %(first)s) AS in_period,
       count(*) FILTER (WHERE f.day >= %(previous)s AND f.day < %(first)s) AS in_previous
FROM dashboard_facts f {join}
WHERE f.metric = ANY(%(metrics)s) AND f.day < %(end)s {town}
GROUP BY f.metric
"""

_DEVICES = """
SELECT count(DISTINCT h.device_id) AS reporting,
       coalesce(avg(h.availability_ppm), 0)::float8 AS availability,
       coalesce(avg(h.oee_ppm), 0)::float8 AS oee
FROM dashboard_device_hours h {join}
WHERE h.day >= %(first)s AND h.day < %(end)s {town}
"""


class DashboardSql(SqlPart):
    # --- the projection ---------------------------------------------------------------------------

    def record_fact(self, fact: Fact) -> None:
        self._conn.execute(
            _RECORD_FACT,
            {
                "metric": fact.metric.value,
                "key": fact.key,
                "day": fact.day,
                "town": fact.town,
                "ref_kind": fact.ref_kind,
                "ref_id": fact.ref_id,
                "at": fact.at,
                "event_id": fact.event_id,
            },
        )

    def dashboard_fact(self, metric: Metric, key: str) -> Fact | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT metric, fact_key, day, town, ref_kind, ref_id, at, event_id FROM dashboard_facts"
                " WHERE metric = %s AND fact_key = %s",
                (metric.value, key),
            ).fetchone()
        if row is None:
            return None
        return Fact(
            metric=Metric(row["metric"]),
            key=row["fact_key"],
            day=row["day"],
            town=row["town"],
            ref_kind=row["ref_kind"],
            ref_id=row["ref_id"],
            at=row["at"],
            event_id=row["event_id"],
        )

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
        self._conn.execute(
            _RECORD_HOUR,
            {
                "device_id": device_id,
                "hour": hour_started_at,
                "day": day,
                "credit_code": credit_code,
                "availability": round(availability * PPM),
                "oee": round(oee * PPM),
                "at": at,
                "event_id": event_id,
            },
        )

    # --- GetDashboard ------------------------------------------------------------------------------

    def metric_counts(
        self, town: str, metrics: tuple[Metric, ...], period: Period, previous: Period
    ) -> dict[Metric, MetricCounts]:
        """Per metric: facts up to the period's end and the previous period's end, and in each period."""
        join, where = "", ""
        params: dict[str, Any] = {
            "metrics": [m.value for m in metrics],
            "first": period.first,
            "end": period.end,
            "previous": previous.first,
            "town": town,
        }
        if town:
            join = "LEFT JOIN entities e ON e.kind = f.ref_kind AND e.id = f.ref_id"
            where = f"AND {_FACT_TOWN} = %(town)s"
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(_COUNTS.format(join=join, town=where), params).fetchall()
        found = {
            Metric(row["metric"]): MetricCounts(
                to_end=int(row["to_end"]),
                to_previous_end=int(row["to_previous_end"]),
                in_period=int(row["in_period"]),
                in_previous=int(row["in_previous"]),
            )
            for row in rows
        }
        return {metric: found.get(metric, MetricCounts()) for metric in metrics}

    def device_figures(self, town: str, period: Period) -> DeviceFigures:
        """Devices with an hourly summary in the period and their mean availability and OEE."""
        join, where = "", ""
        if town:
            join = "LEFT JOIN entities e ON e.kind = 'ENTERPRISE' AND e.id = h.credit_code"
            where = "AND COALESCE(e.town, '') = %(town)s"
        params = {"first": period.first, "end": period.end, "town": town}
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_DEVICES.format(join=join, town=where), params).fetchone()
        if row is None:
            return DeviceFigures()
        return DeviceFigures(
            reporting=int(row["reporting"]),
            utilisation=float(row["availability"]) / PPM,
            oee=float(row["oee"]) / PPM,
        )
