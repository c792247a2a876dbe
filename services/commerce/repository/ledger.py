"""SQL of the excellence ledger's writes (every family that earns points calls ``add_points``)."""

from __future__ import annotations

from datetime import datetime

from services.commerce.domain.model import PointSource
from services.platform.repository import SqlPart

__all__ = ["LedgerSql"]


class LedgerSql(SqlPart):
    def add_points(
        self,
        *,
        entry_id: str,
        membership_id: str,
        chamber_id: str,
        source: PointSource,
        source_id: str,
        points: int,
        note: str,
        earned_at: datetime,
    ) -> bool:
        """Credit points once per (member, source, source id); False when that was credited already."""
        row = self._conn.execute(
            "INSERT INTO ledger (entry_id, membership_id, chamber_id, source, source_id, points, note,"
            " earned_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (membership_id, source, source_id) DO NOTHING RETURNING 1",
            (entry_id, membership_id, chamber_id, source.value, source_id, points, note, earned_at),
        ).fetchone()
        return row is not None
