"""SQL of the public profile (五个可) and the statistics: read-only counts over the tables every other
family writes (the 0001 schema), returned as the domain's figures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from services.kitchen.domain.profile import (
    Checkable,
    Displayable,
    KitchenStatistics,
    Observable,
    Ratable,
    Traceable,
)
from services.platform.repository import SqlPart

__all__ = ["ProfileSql"]

# Stored values of other families' enumerations (their domain StrEnum values).
_CAMERA = "CAMERA"
_PASSED = "PASSED"
_OPEN_STATUSES = ["OPEN", "REOPENED"]
_COLD_CHAIN = "COLD_CHAIN"


def _one(row: Sequence[Any] | None) -> Sequence[Any]:
    assert row is not None  # aggregates always answer one row
    return row


class ProfileSql(SqlPart):
    # --- the five promises of one kitchen ------------------------------------------------------------

    def profile_observable(self, kitchen_id: str, first_day: date, last_day: date) -> Observable:
        cameras = _one(
            self._conn.execute(
                "SELECT count(*) FROM equipment WHERE kitchen_id = %s AND kind = %s", (kitchen_id, _CAMERA)
            ).fetchone()
        )[0]
        # Per day the best-covering camera's online service seconds, against the day's service seconds.
        online, service = _one(
            self._conn.execute(
                "SELECT COALESCE(sum(online), 0), COALESCE(sum(service), 0) FROM ("
                " SELECT d.day, max(d.online_service_seconds) AS online, max(d.service_seconds) AS service"
                " FROM equipment_days d JOIN equipment e ON e.equipment_id = d.equipment_id"
                " WHERE e.kitchen_id = %s AND e.kind = %s AND d.day BETWEEN %s AND %s"
                " GROUP BY d.day) AS per_day",
                (kitchen_id, _CAMERA, first_day, last_day),
            ).fetchone()
        )
        return Observable(int(cameras), int(online), int(service))

    def profile_traceable(self, kitchen_id: str, start: datetime, end: datetime) -> Traceable:
        meals, traced = _one(
            self._conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE fully_traced) FROM meals"
                " WHERE kitchen_id = %s AND served_at >= %s AND served_at < %s",
                (kitchen_id, start, end),
            ).fetchone()
        )
        return Traceable(int(meals), int(traced))

    def profile_checkable(self, kitchen_id: str, start: datetime, end: datetime) -> Checkable:
        rostered, before_start, checked, passed = _one(
            self._conn.execute(
                "SELECT count(*),"
                " count(*) FILTER (WHERE checked_at IS NOT NULL AND checked_at < shift_start),"
                " count(*) FILTER (WHERE checked_at IS NOT NULL),"
                " count(*) FILTER (WHERE checked_at IS NOT NULL AND outcome = %s)"
                " FROM morning_checks WHERE kitchen_id = %s AND shift_start >= %s AND shift_start < %s",
                (_PASSED, kitchen_id, start, end),
            ).fetchone()
        )
        open_violations = _one(
            self._conn.execute(
                "SELECT count(*) FROM violations WHERE kitchen_id = %s AND status = ANY(%s)",
                (kitchen_id, _OPEN_STATUSES),
            ).fetchone()
        )[0]
        last = self._conn.execute(
            "SELECT result, inspected_at FROM inspections WHERE kitchen_id = %s AND inspected_at < %s"
            " ORDER BY inspected_at DESC, inspection_id DESC LIMIT 1",
            (kitchen_id, end),
        ).fetchone()
        return Checkable(
            rostered=int(rostered),
            checked_before_start=int(before_start),
            checked=int(checked),
            passed=int(passed),
            open_violations=int(open_violations),
            last_inspection_result=last[0] if last else "",
            last_inspected_at=last[1] if last else None,
        )

    def profile_displayable(self, kitchen_id: str, commitment: str, today: date) -> Displayable:
        staff, valid = _one(
            self._conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE certificate_expiry >= %s)"
                " FROM staff WHERE kitchen_id = %s",
                (today, kitchen_id),
            ).fetchone()
        )
        return Displayable(commitment, int(staff), int(valid))

    def profile_ratable(self, kitchen_ids: list[str], start: datetime, end: datetime) -> Ratable:
        count, total = _one(
            self._conn.execute(
                "SELECT count(*), COALESCE(sum(score), 0) FROM ratings"
                " WHERE kitchen_id = ANY(%s) AND rated_at >= %s AND rated_at < %s",
                (kitchen_ids, start, end),
            ).fetchone()
        )
        return Ratable(int(count), int(total))

    # --- statistics over kitchens ---------------------------------------------------------------------

    def kitchen_statistics(
        self, kitchen_ids: list[str], start: datetime, end: datetime, first_day: date, last_day: date
    ) -> KitchenStatistics:
        checks, passed = _one(
            self._conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE outcome = %s) FROM morning_checks"
                " WHERE kitchen_id = ANY(%s) AND checked_at IS NOT NULL"
                " AND shift_start >= %s AND shift_start < %s",
                (_PASSED, kitchen_ids, start, end),
            ).fetchone()
        )
        cold_chain = _one(
            self._conn.execute(
                "SELECT count(*) FROM kitchen_alerts WHERE kitchen_id = ANY(%s) AND kind = %s"
                " AND raised_at >= %s AND raised_at < %s",
                (kitchen_ids, _COLD_CHAIN, start, end),
            ).fetchone()
        )[0]
        out_of_range = _one(
            self._conn.execute(
                "SELECT COALESCE(sum(seconds_out_of_range), 0) FROM equipment_days"
                " WHERE kitchen_id = ANY(%s) AND day BETWEEN %s AND %s",
                (kitchen_ids, first_day, last_day),
            ).fetchone()
        )[0]
        by_kind = self._conn.execute(
            "SELECT kind, count(*) FROM violations WHERE kitchen_id = ANY(%s)"
            " AND opened_at >= %s AND opened_at < %s GROUP BY kind ORDER BY kind",
            (kitchen_ids, start, end),
        ).fetchall()
        rectify = self._conn.execute(
            "SELECT EXTRACT(EPOCH FROM first_rectified_at - opened_at) FROM violations"
            " WHERE kitchen_id = ANY(%s) AND first_rectified_at >= %s AND first_rectified_at < %s",
            (kitchen_ids, start, end),
        ).fetchall()
        ratable = self.profile_ratable(kitchen_ids, start, end)
        return KitchenStatistics(
            kitchens=len(kitchen_ids),
            morning_checks=int(checks),
            passed_checks=int(passed),
            cold_chain_alerts=int(cold_chain),
            seconds_out_of_range=int(out_of_range),
            violations_by_kind=tuple((str(kind), int(count)) for kind, count in by_kind),
            rectify_seconds=tuple(float(row[0]) for row in rectify),
            ratings=ratable.ratings,
            score_sum=ratable.score_sum,
        )
