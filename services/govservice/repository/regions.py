"""SQL of regions and their signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.govservice.domain.catalogue import RegionKey
from services.govservice.domain.model import Region
from services.platform.repository import SqlPart

__all__ = ["RegionsSql"]

# A region with its current key id (every registered region has one: it is made in the same transaction).
_REGION = (
    "SELECT r.division_code, r.name, r.province, r.home, r.registered_at, coalesce(k.key_id, '') AS key_id"
    " FROM regions r LEFT JOIN region_keys k ON k.division_code = r.division_code AND k.is_current"
)


def _region(row: dict[str, Any]) -> Region:
    return Region(
        division_code=row["division_code"],
        name=row["name"],
        province=row["province"],
        home=row["home"],
        key_id=row["key_id"],
        registered_at=row["registered_at"],
    )


class RegionsSql(SqlPart):
    def upsert_region(
        self, *, division_code: str, name: str, province: str, home: bool, registered_at: datetime
    ) -> bool:
        """Insert the region, or update its name, province and home flag; True when it was new."""
        row = self._conn.execute(
            "INSERT INTO regions (division_code, name, province, home, registered_at)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (division_code) DO UPDATE"
            " SET name = EXCLUDED.name, province = EXCLUDED.province, home = EXCLUDED.home"
            " RETURNING (xmax = 0) AS inserted",
            (division_code, name, province, home, registered_at),
        ).fetchone()
        return bool(row and row[0])

    def get_region(self, division_code: str) -> Region | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_REGION + " WHERE r.division_code = %s", (division_code,)).fetchone()
        return _region(row) if row else None

    def home_region(self) -> Region | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(_REGION + " WHERE r.home").fetchone()
        return _region(row) if row else None

    def list_regions(self, after: str, limit: int) -> list[Region]:
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                _REGION + " WHERE r.division_code > %s ORDER BY r.division_code LIMIT %s", (after, limit)
            ).fetchall()
        return [_region(r) for r in rows]

    def add_region_key(
        self,
        *,
        key_id: str,
        division_code: str,
        algorithm: str,
        public_key_pem: str,
        sealed_private: bytes,
        created_at: datetime,
    ) -> None:
        """Add a region's new current key (the caller retires the previous one first)."""
        self._conn.execute(
            "INSERT INTO region_keys (key_id, division_code, algorithm, public_key_pem, sealed_private,"
            " is_current, created_at) VALUES (%s, %s, %s, %s, %s, TRUE, %s)",
            (key_id, division_code, algorithm, public_key_pem, sealed_private, created_at),
        )

    def current_key(self, division_code: str) -> tuple[str, bytes] | None:
        """The region's current key id and its sealed private key."""
        row = self._conn.execute(
            "SELECT key_id, sealed_private FROM region_keys WHERE division_code = %s AND is_current",
            (division_code,),
        ).fetchone()
        return (str(row[0]), bytes(row[1])) if row else None

    def region_keys(self) -> list[RegionKey]:
        """Every key of every region (public parts only), oldest first within a region."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT key_id, division_code, algorithm, public_key_pem, created_at FROM region_keys"
                " ORDER BY division_code, created_at, key_id"
            ).fetchall()
        return [RegionKey(**r) for r in rows]
