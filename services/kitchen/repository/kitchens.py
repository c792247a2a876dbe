"""SQL of kitchens."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.model import GeoPoint, Kitchen, KitchenOperator, OperatorKind, Shift
from services.platform.repository import SqlPart

__all__ = ["KitchensSql", "kitchen_of"]

_COLUMNS = (
    "kitchen_id, site_id, name, operator_kind, operator_name, operator_credit_code, meals_per_day, "
    "latitude, longitude, town, division_code, shifts, commitment, registered_at"
)


def kitchen_of(row: dict[str, Any]) -> Kitchen:
    location = None
    if row["latitude"] is not None and row["longitude"] is not None:
        location = GeoPoint(row["latitude"], row["longitude"])
    return Kitchen(
        kitchen_id=row["kitchen_id"],
        site_id=row["site_id"],
        name=row["name"],
        operator=KitchenOperator(
            OperatorKind(row["operator_kind"]), row["operator_name"], row["operator_credit_code"]
        ),
        meals_per_day=row["meals_per_day"],
        location=location,
        town=row["town"],
        division_code=row["division_code"],
        shifts=tuple(Shift(s["name"], s["start_time"], s["end_time"]) for s in row["shifts"]),
        commitment=row["commitment"],
        registered_at=row["registered_at"],
    )


def visibility_clause(visibility: Visibility, alias: str = "") -> tuple[str, list[Any]]:
    """A SQL predicate (and its parameters) keeping the kitchens ``visibility`` sees."""
    if visibility.everything:
        return "TRUE", []
    prefix = f"{alias}." if alias else ""
    return (
        f"({prefix}kitchen_id = ANY(%s) OR {prefix}site_id = ANY(%s))",
        [list(visibility.kitchens), list(visibility.sites)],
    )


class KitchensSql(SqlPart):
    def get_kitchen(self, kitchen_id: str) -> Kitchen | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM kitchens WHERE kitchen_id = %s", (kitchen_id,)
            ).fetchone()
        return kitchen_of(row) if row else None

    def add_kitchen(self, kitchen: Kitchen) -> None:
        self._conn.execute(
            f"INSERT INTO kitchens ({_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})",
            (
                kitchen.kitchen_id,
                kitchen.site_id,
                kitchen.name,
                kitchen.operator.kind.value,
                kitchen.operator.name,
                kitchen.operator.credit_code,
                kitchen.meals_per_day,
                kitchen.location.latitude if kitchen.location else None,
                kitchen.location.longitude if kitchen.location else None,
                kitchen.town,
                kitchen.division_code,
                Jsonb(
                    [
                        {"name": s.name, "start_time": s.start_time, "end_time": s.end_time}
                        for s in kitchen.shifts
                    ]
                ),
                kitchen.commitment,
                kitchen.registered_at,
            ),
        )

    def list_kitchens(
        self, visibility: Visibility, *, site_id: str, town: str, after: tuple[Any, ...] | None, limit: int
    ) -> list[Kitchen]:
        where, params = visibility_clause(visibility)
        clauses = [where]
        if site_id:
            clauses.append("site_id = %s")
            params.append(site_id)
        if town:
            clauses.append("town = %s")
            params.append(town)
        if after is not None:
            clauses.append("(registered_at, kitchen_id) > (%s, %s)")
            params.extend(after)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM kitchens WHERE {' AND '.join(clauses)} "
                "ORDER BY registered_at, kitchen_id LIMIT %s",
                params,
            ).fetchall()
        return [kitchen_of(row) for row in rows]

    def visible_kitchen_ids(self, visibility: Visibility) -> list[str]:
        where, params = visibility_clause(visibility)
        rows = self._conn.execute(f"SELECT kitchen_id FROM kitchens WHERE {where}", params).fetchall()
        return [row[0] for row in rows]
