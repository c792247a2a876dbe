"""SQL of the equipment family: units (with their limits and the rules' live state) and their days."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.kitchen.domain.equipment import (
    DayFigures,
    Equipment,
    EquipmentDay,
    EquipmentKind,
    EquipmentLimits,
    EquipmentStatus,
)
from services.platform.repository import SqlPart

__all__ = ["EquipmentSql", "UnitRow"]

_COLUMNS = (
    "equipment_id, kitchen_id, kind, name, limits, status, last_reading_at, last_temperature_c, registered_at"
)
_DAY_COLUMNS = (
    "d.equipment_id, d.kitchen_id, e.kind, d.day, d.seconds_out_of_range, d.cycles, d.short_cycles,"
    " d.uv_seconds, d.online_service_seconds, d.service_seconds, d.readings"
)


def _equipment(row: dict[str, Any]) -> Equipment:
    return Equipment(
        equipment_id=row["equipment_id"],
        kitchen_id=row["kitchen_id"],
        kind=EquipmentKind(row["kind"]),
        name=row["name"],
        limits=EquipmentLimits.from_json(row["limits"]),
        status=EquipmentStatus(row["status"]),
        last_reading_at=row["last_reading_at"],
        last_temperature_c=row["last_temperature_c"],
        registered_at=row["registered_at"],
    )


@dataclass(slots=True)
class UnitRow:
    """A unit locked for the rules: what it is and its serialised rule state."""

    equipment: Equipment
    state: dict[str, Any]


class EquipmentSql(SqlPart):
    def add_equipment(self, equipment: Equipment) -> None:
        self._conn.execute(
            f"INSERT INTO equipment ({_COLUMNS}) VALUES ({', '.join(['%s'] * 9)})",
            (
                equipment.equipment_id,
                equipment.kitchen_id,
                equipment.kind.value,
                equipment.name,
                Jsonb(equipment.limits.as_json()),
                equipment.status.value,
                equipment.last_reading_at,
                equipment.last_temperature_c,
                equipment.registered_at,
            ),
        )

    def get_equipment(self, equipment_id: str) -> Equipment | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM equipment WHERE equipment_id = %s", (equipment_id,)
            ).fetchone()
        return _equipment(row) if row else None

    def equipment_by_ids(self, equipment_ids: Iterable[str]) -> dict[str, tuple[Equipment, str]]:
        """The units named (one query however many ids), each with its kitchen's site id."""
        ids = list(set(equipment_ids))
        if not ids:
            return {}
        columns = ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {columns}, k.site_id FROM equipment e JOIN kitchens k ON k.kitchen_id = e.kitchen_id"
                " WHERE e.equipment_id = ANY(%s)",
                (ids,),
            ).fetchall()
        return {row["equipment_id"]: (_equipment(row), row["site_id"]) for row in rows}

    def list_equipment(
        self, kitchen_id: str, kind: EquipmentKind | None, after: tuple[Any, ...] | None, limit: int
    ) -> list[Equipment]:
        clauses = ["kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if kind is not None:
            clauses.append("kind = %s")
            params.append(kind.value)
        if after is not None:
            clauses.append("(registered_at, equipment_id) > (%s, %s)")
            params.extend(after)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM equipment WHERE {' AND '.join(clauses)}"
                " ORDER BY registered_at, equipment_id LIMIT %s",
                params,
            ).fetchall()
        return [_equipment(row) for row in rows]

    # --- the rules' state ---------------------------------------------------------------------------

    def lock_units(self, equipment_ids: Iterable[str]) -> dict[str, UnitRow]:
        """The units named, locked for this transaction (in id order, so two consumers never deadlock)."""
        ids = sorted(set(equipment_ids))
        if not ids:
            return {}
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS}, state FROM equipment WHERE equipment_id = ANY(%s)"
                " ORDER BY equipment_id FOR UPDATE",
                (ids,),
            ).fetchall()
        return {row["equipment_id"]: UnitRow(_equipment(row), row["state"] or {}) for row in rows}

    def save_unit(
        self,
        equipment_id: str,
        *,
        status: EquipmentStatus,
        last_reading_at: datetime | None,
        last_temperature_c: float | None,
        state: dict[str, Any],
    ) -> None:
        self._conn.execute(
            "UPDATE equipment SET status = %s, last_reading_at = %s, last_temperature_c = %s, state = %s"
            " WHERE equipment_id = %s",
            (status.value, last_reading_at, last_temperature_c, Jsonb(state), equipment_id),
        )

    def add_equipment_days(self, figures: Sequence[DayFigures]) -> None:
        """Add each unit's figures to its days (rows created as needed); service_seconds is set, not
        added: it is the day's service hours, the same whatever the readings."""
        if not figures:
            return
        with self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO equipment_days (equipment_id, day, kitchen_id, seconds_out_of_range, cycles,"
                " short_cycles, uv_seconds, online_service_seconds, service_seconds, readings)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (equipment_id, day) DO UPDATE SET"
                " seconds_out_of_range = equipment_days.seconds_out_of_range"
                " + EXCLUDED.seconds_out_of_range,"
                " cycles = equipment_days.cycles + EXCLUDED.cycles,"
                " short_cycles = equipment_days.short_cycles + EXCLUDED.short_cycles,"
                " uv_seconds = equipment_days.uv_seconds + EXCLUDED.uv_seconds,"
                " online_service_seconds = equipment_days.online_service_seconds"
                " + EXCLUDED.online_service_seconds,"
                " service_seconds = EXCLUDED.service_seconds,"
                " readings = equipment_days.readings + EXCLUDED.readings",
                [
                    (
                        f.equipment_id,
                        f.day,
                        f.kitchen_id,
                        f.seconds_out_of_range,
                        f.cycles,
                        f.short_cycles,
                        f.uv_seconds,
                        f.online_service_seconds,
                        f.service_seconds,
                        f.readings,
                    )
                    for f in figures
                ],
            )

    def list_equipment_days(
        self,
        kitchen_id: str,
        *,
        equipment_id: str,
        first: date,
        last: date,
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> list[EquipmentDay]:
        clauses = ["d.kitchen_id = %s", "d.day >= %s", "d.day <= %s"]
        params: list[Any] = [kitchen_id, first, last]
        if equipment_id:
            clauses.append("d.equipment_id = %s")
            params.append(equipment_id)
        if after is not None:
            clauses.append("(d.day, d.equipment_id) > (%s::date, %s)")
            params.extend(after)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_DAY_COLUMNS} FROM equipment_days d"
                " JOIN equipment e ON e.equipment_id = d.equipment_id"
                f" WHERE {' AND '.join(clauses)} ORDER BY d.day, d.equipment_id LIMIT %s",
                params,
            ).fetchall()
        return [
            EquipmentDay(
                equipment_id=row["equipment_id"],
                kitchen_id=row["kitchen_id"],
                kind=EquipmentKind(row["kind"]),
                day=row["day"],
                seconds_out_of_range=row["seconds_out_of_range"],
                cycles=row["cycles"],
                short_cycles=row["short_cycles"],
                uv_seconds=row["uv_seconds"],
                online_service_seconds=row["online_service_seconds"],
                service_seconds=row["service_seconds"],
                readings=row["readings"],
            )
            for row in rows
        ]

    # --- the monitor --------------------------------------------------------------------------------

    def try_equipment_monitor_lock(self) -> bool:
        """One replica at a time runs the monitor's round (a transaction-scoped advisory lock)."""
        row = self._conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('cityhub_kitchen_equipment_monitor'), 0)"
        ).fetchone()
        return bool(row and row[0])

    def lock_silent_units(self, now: datetime, limit: int) -> list[UnitRow]:
        """Units heard from before, now silent for longer than their own offline window and not yet
        OFFLINE, locked (skipping rows the consumer holds: it is applying readings to them)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS}, state FROM equipment WHERE status <> 'OFFLINE'"
                " AND last_reading_at IS NOT NULL"
                " AND last_reading_at < %s - make_interval(mins => (limits->>'offline_after_minutes')::int)"
                " ORDER BY last_reading_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, limit),
            ).fetchall()
        return [UnitRow(_equipment(row), row["state"] or {}) for row in rows]

    def lock_uv_lamps_due(self, before_day: date, limit: int) -> list[UnitRow]:
        """UV lamps with a day before ``before_day`` (a local day that is over) not yet judged, locked."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS}, state FROM equipment WHERE kind = 'UV_LAMP'"
                " AND state ? 'judge_from' AND (state->>'judge_from')::date < %s"
                " ORDER BY equipment_id LIMIT %s FOR UPDATE SKIP LOCKED",
                (before_day, limit),
            ).fetchall()
        return [UnitRow(_equipment(row), row["state"] or {}) for row in rows]

    def uv_seconds_of(self, equipment_id: str, first: date, last: date) -> dict[date, int]:
        rows = self._conn.execute(
            "SELECT day, uv_seconds FROM equipment_days WHERE equipment_id = %s AND day >= %s AND day <= %s",
            (equipment_id, first, last),
        ).fetchall()
        return {row[0]: row[1] for row in rows}

    def save_state(
        self, equipment_id: str, state: dict[str, Any], status: EquipmentStatus | None = None
    ) -> None:
        if status is None:
            self._conn.execute(
                "UPDATE equipment SET state = %s WHERE equipment_id = %s", (Jsonb(state), equipment_id)
            )
        else:
            self._conn.execute(
                "UPDATE equipment SET state = %s, status = %s WHERE equipment_id = %s",
                (Jsonb(state), status.value, equipment_id),
            )
