"""SQL of federations and chambers (and chamber staff)."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.federations import ChamberStaff, StaffRole
from services.commerce.domain.model import Chamber, ChamberKind, Federation, FederationLevel, JoinRule
from services.platform.repository import SqlPart

__all__ = ["FederationsSql", "chamber_of"]

CHAMBER_COLUMNS = "chamber_id, federation_id, name, kind, sector, division_code, join_rule, created_at"
# A federation's current key id comes from signing_keys (one current key per federation).
_FEDERATION_SELECT = (
    "SELECT f.federation_id, f.name, f.level, f.division_code, COALESCE(f.parent_id, '') AS parent_id,"
    " f.created_at, COALESCE(k.key_id, '') AS current_key_id FROM federations f"
    " LEFT JOIN signing_keys k ON k.federation_id = f.federation_id AND k.is_current"
)
_STAFF_COLUMNS = "staff_id, chamber_id, subject, name, role, added_at"


def chamber_of(row: dict[str, Any]) -> Chamber:
    return Chamber(
        chamber_id=row["chamber_id"],
        federation_id=row["federation_id"],
        name=row["name"],
        kind=ChamberKind(row["kind"]),
        sector=row["sector"],
        division_code=row["division_code"],
        join_rule=JoinRule(row["join_rule"]),
        created_at=row["created_at"],
    )


def _federation_of(row: dict[str, Any]) -> Federation:
    return Federation(
        federation_id=row["federation_id"],
        name=row["name"],
        level=FederationLevel(row["level"]),
        division_code=row["division_code"],
        parent_id=row["parent_id"],
        current_key_id=row["current_key_id"],
        created_at=row["created_at"],
    )


def _staff_of(row: dict[str, Any]) -> ChamberStaff:
    return ChamberStaff(
        staff_id=row["staff_id"],
        chamber_id=row["chamber_id"],
        subject=row["subject"],
        name=row["name"],
        role=StaffRole(row["role"]),
        added_at=row["added_at"],
    )


class FederationsSql(SqlPart):
    # --- federations ---------------------------------------------------------------------------------

    def add_federation(self, federation: Federation) -> None:
        self._conn.execute(
            "INSERT INTO federations (federation_id, name, level, division_code, parent_id, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                federation.federation_id,
                federation.name,
                federation.level.value,
                federation.division_code,
                federation.parent_id or None,
                federation.created_at,
            ),
        )

    def get_federation(self, federation_id: str) -> Federation | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"{_FEDERATION_SELECT} WHERE f.federation_id = %s", (federation_id,)).fetchone()
        return _federation_of(row) if row else None

    def federation_with_division(self, division_code: str) -> Federation | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"{_FEDERATION_SELECT} WHERE f.division_code = %s", (division_code,)).fetchone()
        return _federation_of(row) if row else None

    def list_federations(
        self, parent_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Federation]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if parent_id:
            where.append("f.parent_id = %s")
            params.append(parent_id)
        if after is not None:
            where.append("(f.created_at, f.federation_id) > (%s, %s)")
            params.extend(after)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"{_FEDERATION_SELECT} WHERE {' AND '.join(where)}"
                " ORDER BY f.created_at, f.federation_id LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [_federation_of(r) for r in rows]

    # --- chambers ------------------------------------------------------------------------------------

    def get_chamber(self, chamber_id: str) -> Chamber | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {CHAMBER_COLUMNS} FROM chambers WHERE chamber_id = %s", (chamber_id,)
            ).fetchone()
        return chamber_of(row) if row else None

    def add_chamber(self, chamber: Chamber) -> None:
        self._conn.execute(
            f"INSERT INTO chambers ({CHAMBER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                chamber.chamber_id,
                chamber.federation_id,
                chamber.name,
                chamber.kind.value,
                chamber.sector,
                chamber.division_code,
                chamber.join_rule.value,
                chamber.created_at,
            ),
        )

    def list_chambers(
        self, federation_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Chamber]:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if federation_id:
            where.append("federation_id = %s")
            params.append(federation_id)
        if after is not None:
            where.append("(created_at, chamber_id) > (%s, %s)")
            params.extend(after)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {CHAMBER_COLUMNS} FROM chambers WHERE {' AND '.join(where)}"
                " ORDER BY created_at, chamber_id LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [chamber_of(r) for r in rows]

    # --- staff ---------------------------------------------------------------------------------------

    def get_staff_by_subject(self, chamber_id: str, subject: str) -> ChamberStaff | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_STAFF_COLUMNS} FROM chamber_staff WHERE chamber_id = %s AND subject = %s",
                (chamber_id, subject),
            ).fetchone()
        return _staff_of(row) if row else None

    def get_staff(self, staff_id: str) -> ChamberStaff | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_STAFF_COLUMNS} FROM chamber_staff WHERE staff_id = %s", (staff_id,)
            ).fetchone()
        return _staff_of(row) if row else None

    def add_staff(self, staff: ChamberStaff) -> None:
        self._conn.execute(
            f"INSERT INTO chamber_staff ({_STAFF_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
            (staff.staff_id, staff.chamber_id, staff.subject, staff.name, staff.role.value, staff.added_at),
        )

    def list_staff(
        self, chamber_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[ChamberStaff]:
        where = ["chamber_id = %s"]
        params: list[Any] = [chamber_id]
        if after is not None:
            where.append("(added_at, staff_id) > (%s, %s)")
            params.extend(after)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_STAFF_COLUMNS} FROM chamber_staff WHERE {' AND '.join(where)}"
                " ORDER BY added_at, staff_id LIMIT %s",
                (*params, limit),
            ).fetchall()
        return [_staff_of(r) for r in rows]
