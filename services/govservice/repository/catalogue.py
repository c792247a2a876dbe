"""SQL of the item catalogue and the partnerships (regions and their keys are in regions.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from services.govservice.domain.model import (
    ApplicantKind,
    AuthorityLevel,
    Direction,
    Item,
    Material,
    Partnership,
    PartnershipItem,
)
from services.platform.repository import SqlPart

__all__ = ["CatalogueSql"]

_ITEM = (
    "SELECT item_code, name, materials, authority_level, promised_working_days, applicant_kinds, defined_at"
    " FROM items"
)
_PARTNERSHIP = "SELECT region_a, region_b, items, start_date, updated_at FROM partnerships"


def _item(row: dict[str, Any]) -> Item:
    return Item(
        code=row["item_code"],
        name=row["name"],
        materials=tuple(Material(m["code"], m["name"]) for m in row["materials"]),
        authority_level=AuthorityLevel(row["authority_level"]),
        promised_working_days=row["promised_working_days"],
        applicant_kinds=frozenset(ApplicantKind(k) for k in row["applicant_kinds"]),
        defined_at=row["defined_at"],
    )


def _partnership(row: dict[str, Any]) -> Partnership:
    return Partnership(
        region_a=row["region_a"],
        region_b=row["region_b"],
        items=tuple(PartnershipItem(i["item_code"], Direction(i["direction"])) for i in row["items"]),
        start_date=row["start_date"],
        updated_at=row["updated_at"],
    )


class CatalogueSql(SqlPart):
    # --- items ------------------------------------------------------------------------------------------

    def upsert_item(self, item: Item) -> None:
        """Define the item, or redefine it by its code."""
        self._conn.execute(
            "INSERT INTO items (item_code, name, materials, authority_level, promised_working_days,"
            " applicant_kinds, defined_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (item_code) DO UPDATE SET name = EXCLUDED.name, materials = EXCLUDED.materials,"
            " authority_level = EXCLUDED.authority_level,"
            " promised_working_days = EXCLUDED.promised_working_days,"
            " applicant_kinds = EXCLUDED.applicant_kinds, defined_at = EXCLUDED.defined_at",
            (
                item.code,
                item.name,
                Jsonb([{"code": m.code, "name": m.name} for m in item.materials]),
                item.authority_level.value,
                item.promised_working_days,
                [k.value for k in ApplicantKind if k in item.applicant_kinds],
                item.defined_at,
            ),
        )

    def get_item(self, item_code: str) -> Item | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_ITEM + " WHERE item_code = %s", (item_code,)).fetchone()
        return _item(row) if row else None

    def known_items(self, item_codes: list[str]) -> set[str]:
        """Which of ``item_codes`` are defined."""
        rows = self._conn.execute(
            "SELECT item_code FROM items WHERE item_code = ANY(%s)", (item_codes,)
        ).fetchall()
        return {str(r[0]) for r in rows}

    def list_items(self, after: str, limit: int) -> list[Item]:
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                _ITEM + " WHERE item_code > %s ORDER BY item_code LIMIT %s", (after, limit)
            ).fetchall()
        return [_item(r) for r in rows]

    # --- partnerships -----------------------------------------------------------------------------------

    def lock_pair(self, code_x: str, code_y: str) -> None:
        """Serialise changes of one pair of regions, whichever way round they are named, until commit
        (the primary key alone would let (a, b) and (b, a) be inserted side by side)."""
        low, high = sorted((code_x, code_y))
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('govservice-partnership'), hashtext(%s))",
            (f"{low}:{high}",),
        )

    def replace_partnership(
        self,
        *,
        region_a: str,
        region_b: str,
        items: list[tuple[str, str]],
        start_date: date,
        updated_at: datetime,
    ) -> None:
        """Store the pair's partnership as (region_a, region_b), replacing one stored either way round."""
        self._conn.execute(
            "DELETE FROM partnerships"
            " WHERE (region_a = %s AND region_b = %s) OR (region_a = %s AND region_b = %s)",
            (region_a, region_b, region_b, region_a),
        )
        self._conn.execute(
            "INSERT INTO partnerships (region_a, region_b, items, start_date, updated_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (
                region_a,
                region_b,
                Jsonb([{"item_code": code, "direction": direction} for code, direction in items]),
                start_date,
                updated_at,
            ),
        )

    def partnership_between(self, code_x: str, code_y: str) -> Partnership | None:
        """The partnership of the two regions, whichever way round it was stored."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                _PARTNERSHIP
                + " WHERE (region_a = %s AND region_b = %s) OR (region_a = %s AND region_b = %s)",
                (code_x, code_y, code_y, code_x),
            ).fetchone()
        return _partnership(row) if row else None

    def list_partnerships(self, division_code: str, after: tuple[str, str], limit: int) -> list[Partnership]:
        """Partnerships (of one region when ``division_code`` is set), ordered by their two codes."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                _PARTNERSHIP + " WHERE (%(code)s = '' OR region_a = %(code)s OR region_b = %(code)s)"
                " AND (region_a, region_b) > (%(a)s, %(b)s) ORDER BY region_a, region_b LIMIT %(limit)s",
                {"code": division_code, "a": after[0], "b": after[1], "limit": limit},
            ).fetchall()
        return [_partnership(r) for r in rows]
