"""SQL of staff and their morning checks."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from services.kitchen.domain.model import Shift
from services.kitchen.domain.staff import BarReason, CheckOutcome, CheckRecord, StaffRecord, StaffRole
from services.platform.repository import SqlPart

__all__ = ["DueCheck", "StaffSql"]

_STAFF = (
    "staff_id, kitchen_id, staff_token, role, sealed, certificate_expiry, face_template_ref, shifts, added_at"
)
_CHECK = (
    "c.check_id, c.kitchen_id, c.staff_id, s.staff_token, c.shift_date, c.shift, c.shift_start, c.checked_at,"
    " c.face_match_score, c.sealed, c.outcome, c.bar_reasons, c.replaced_by_staff_id, c.recorded_at"
)
_CHECK_FROM = "morning_checks c JOIN staff s ON s.staff_id = c.staff_id"


@dataclass(frozen=True, slots=True)
class DueCheck:
    """A rostered staff member without a check for a shift of the day that has started."""

    kitchen_id: str
    staff_id: str
    staff_token: str
    shift: Shift


def _staff(row: dict[str, Any]) -> StaffRecord:
    return StaffRecord(
        staff_id=row["staff_id"],
        kitchen_id=row["kitchen_id"],
        staff_token=row["staff_token"],
        role=StaffRole(row["role"]),
        sealed=bytes(row["sealed"]),
        certificate_expiry=row["certificate_expiry"],
        face_template_ref=row["face_template_ref"],
        shifts=tuple(row["shifts"]),
        added_at=row["added_at"],
    )


def _check(row: dict[str, Any]) -> CheckRecord:
    return CheckRecord(
        check_id=row["check_id"],
        kitchen_id=row["kitchen_id"],
        staff_id=row["staff_id"],
        staff_token=row["staff_token"],
        shift_date=row["shift_date"],
        shift=row["shift"],
        shift_start=row["shift_start"],
        checked_at=row["checked_at"],
        face_match_score=row["face_match_score"],
        sealed=bytes(row["sealed"]) if row["sealed"] is not None else None,
        outcome=CheckOutcome(row["outcome"]),
        bar_reasons=tuple(BarReason(r) for r in row["bar_reasons"]),
        replaced_by_staff_id=row["replaced_by_staff_id"],
        recorded_at=row["recorded_at"],
    )


class StaffSql(SqlPart):
    # --- staff ----------------------------------------------------------------------------------------

    def add_staff(self, staff: StaffRecord) -> bool:
        """Store a staff member; False when the same person (token) is already in the kitchen."""
        row = self._conn.execute(
            f"INSERT INTO staff ({_STAFF}) VALUES ({', '.join(['%s'] * 9)})"
            " ON CONFLICT (kitchen_id, staff_token) DO NOTHING RETURNING 1",
            (
                staff.staff_id,
                staff.kitchen_id,
                staff.staff_token,
                staff.role.value,
                staff.sealed,
                staff.certificate_expiry,
                staff.face_template_ref,
                list(staff.shifts),
                staff.added_at,
            ),
        ).fetchone()
        return row is not None

    def get_staff(self, staff_id: str) -> StaffRecord | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"SELECT {_STAFF} FROM staff WHERE staff_id = %s", (staff_id,)).fetchone()
        return _staff(row) if row else None

    def list_staff(self, kitchen_id: str, *, after: tuple[Any, ...] | None, limit: int) -> list[StaffRecord]:
        clauses = ["kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if after is not None:
            clauses.append("(added_at, staff_id) > (%s, %s)")
            params.extend(after)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_STAFF} FROM staff WHERE {' AND '.join(clauses)}"
                " ORDER BY added_at, staff_id LIMIT %s",
                params,
            ).fetchall()
        return [_staff(row) for row in rows]

    # --- morning checks -------------------------------------------------------------------------------

    def add_check(self, check: CheckRecord) -> bool:
        """Store a check; False (nothing stored) when the staff member has one for that shift already."""
        row = self._conn.execute(
            "INSERT INTO morning_checks (check_id, kitchen_id, staff_id, shift_date, shift, shift_start,"
            " checked_at, face_match_score, sealed, outcome, bar_reasons, replaced_by_staff_id, recorded_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (staff_id, shift_date, shift) DO NOTHING RETURNING 1",
            (
                check.check_id,
                check.kitchen_id,
                check.staff_id,
                check.shift_date,
                check.shift,
                check.shift_start,
                check.checked_at,
                check.face_match_score,
                check.sealed,
                check.outcome.value,
                [r.value for r in check.bar_reasons],
                check.replaced_by_staff_id,
                check.recorded_at,
            ),
        ).fetchone()
        return row is not None

    def get_check(self, check_id: str) -> CheckRecord | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_CHECK} FROM {_CHECK_FROM} WHERE c.check_id = %s", (check_id,)
            ).fetchone()
        return _check(row) if row else None

    def check_of(self, staff_id: str, shift_date: date, shift: str) -> CheckRecord | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_CHECK} FROM {_CHECK_FROM}"
                " WHERE c.staff_id = %s AND c.shift_date = %s AND c.shift = %s",
                (staff_id, shift_date, shift),
            ).fetchone()
        return _check(row) if row else None

    def set_replacement(self, check_id: str, staff_id: str) -> None:
        self._conn.execute(
            "UPDATE morning_checks SET replaced_by_staff_id = %s WHERE check_id = %s", (staff_id, check_id)
        )

    def list_checks(
        self, kitchen_id: str, shift_date: date, shift: str, *, after: tuple[Any, ...] | None, limit: int
    ) -> list[CheckRecord]:
        clauses = ["c.kitchen_id = %s", "c.shift_date = %s"]
        params: list[Any] = [kitchen_id, shift_date]
        if shift:
            clauses.append("c.shift = %s")
            params.append(shift)
        if after is not None:
            clauses.append("(c.shift, c.check_id) > (%s, %s)")
            params.extend(after)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_CHECK} FROM {_CHECK_FROM} WHERE {' AND '.join(clauses)}"
                " ORDER BY c.shift, c.check_id LIMIT %s",
                params,
            ).fetchall()
        return [_check(row) for row in rows]

    def due_checks(self, day: date, zone: str, now: datetime, limit: int) -> list[DueCheck]:
        """Rostered staff (no shifts listed: every shift) without a check for a shift of the local ``day``
        that started at or before ``now``; at most ``limit``, oldest shift first."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT k.kitchen_id, s.staff_id, s.staff_token, sh->>'name' AS shift,"
                " sh->>'start_time' AS start_time, sh->>'end_time' AS end_time"
                " FROM kitchens k CROSS JOIN LATERAL jsonb_array_elements(k.shifts) AS sh"
                " JOIN staff s ON s.kitchen_id = k.kitchen_id"
                "  AND (cardinality(s.shifts) = 0 OR sh->>'name' = ANY(s.shifts))"
                " WHERE ((%(day)s::date + (sh->>'start_time')::time) AT TIME ZONE %(zone)s) <= %(now)s"
                "  AND NOT EXISTS (SELECT 1 FROM morning_checks m WHERE m.staff_id = s.staff_id"
                "   AND m.shift_date = %(day)s AND m.shift = sh->>'name')"
                " ORDER BY (sh->>'start_time'), k.kitchen_id, s.staff_id LIMIT %(limit)s",
                {"day": day, "zone": zone, "now": now, "limit": limit},
            ).fetchall()
        return [
            DueCheck(
                row["kitchen_id"],
                row["staff_id"],
                row["staff_token"],
                Shift(row["shift"], row["start_time"], row["end_time"]),
            )
            for row in rows
        ]
