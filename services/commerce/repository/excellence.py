"""SQL of the excellence family: the ledger's reads, the points totals rankings are made of, and the
showcase figures (read from the other families' tables with this family's own queries).

Every period is half-open, ``start <= t < end``."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.excellence import LedgerEntry, MemberTotal
from services.commerce.domain.model import PointSource
from services.platform.repository import SqlPart

__all__ = ["ExcellenceSql", "ShowcaseFigures"]

_LEDGER_COLUMNS = "entry_id, membership_id, chamber_id, source, source_id, points, note, earned_at"
# The statuses of a membership that was approved at its decided_at (rejected ones were decided too).
_APPROVED = ("ACTIVE", "SUSPENDED", "ENDED")

ShowcaseFigures = dict[str, int]


def _entry_of(row: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        entry_id=row["entry_id"],
        membership_id=row["membership_id"],
        chamber_id=row["chamber_id"],
        source=PointSource(row["source"]),
        source_id=row["source_id"],
        points=row["points"],
        note=row["note"],
        earned_at=row["earned_at"],
    )


def _period_sql(start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    clauses, params = "", []
    if start is not None:
        clauses += " AND earned_at >= %s"
        params.append(start)
    if end is not None:
        clauses += " AND earned_at < %s"
        params.append(end)
    return clauses, params


class ExcellenceSql(SqlPart):
    def get_ledger_entry(self, entry_id: str) -> LedgerEntry | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE entry_id = %s", (entry_id,)
            ).fetchone()
        return _entry_of(row) if row else None

    def list_ledger_entries(
        self,
        membership_id: str,
        start: datetime | None,
        end: datetime | None,
        *,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[LedgerEntry]:
        """A member's entries in the period, newest first (earned_at, then entry id, descending)."""
        period, params = _period_sql(start, end)
        after = ""
        if before is not None:
            after = " AND (earned_at, entry_id) < (%s, %s)"
            params.extend(before)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE membership_id = %s{period}{after}"
                " ORDER BY earned_at DESC, entry_id DESC LIMIT %s",
                (membership_id, *params, limit),
            ).fetchall()
        return [_entry_of(row) for row in rows]

    def ledger_total(self, membership_id: str, start: datetime | None, end: datetime | None) -> int:
        period, params = _period_sql(start, end)
        row = self._conn.execute(
            f"SELECT COALESCE(SUM(points), 0) FROM ledger WHERE membership_id = %s{period}",
            (membership_id, *params),
        ).fetchone()
        return int(row[0]) if row else 0

    def excellence_federation_exists(self, federation_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM federations WHERE federation_id = %s", (federation_id,)
        ).fetchone()
        return row is not None

    def excellence_subtree_chambers(self, federation_id: str) -> dict[str, str]:
        """Every chamber under the federation or any federation below it: chamber id -> name."""
        rows = self._conn.execute(
            "WITH RECURSIVE tree AS ("
            " SELECT federation_id FROM federations WHERE federation_id = %s"
            " UNION SELECT f.federation_id FROM federations f JOIN tree t ON f.parent_id = t.federation_id)"
            " SELECT c.chamber_id, c.name FROM chambers c JOIN tree t ON c.federation_id = t.federation_id",
            (federation_id,),
        ).fetchall()
        return {row[0]: row[1] for row in rows}

    def excellence_member_of(self, chamber_id: str, credit_codes: frozenset[str]) -> bool:
        """Whether one of these enterprises is an active or suspended member of the chamber."""
        if not credit_codes:
            return False
        row = self._conn.execute(
            "SELECT 1 FROM memberships WHERE chamber_id = %s AND credit_code = ANY(%s)"
            " AND status IN ('ACTIVE', 'SUSPENDED') LIMIT 1",
            (chamber_id, list(credit_codes)),
        ).fetchone()
        return row is not None

    def excellence_member_totals(
        self, chamber_ids: list[str], start: datetime, end: datetime
    ) -> list[MemberTotal]:
        """Per member of these chambers: points earned in the period and the time of its last entry there."""
        if not chamber_ids:
            return []
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT l.membership_id, l.chamber_id, m.enterprise_name, SUM(l.points) AS points,"
                " MAX(l.earned_at) AS reached_at"
                " FROM ledger l JOIN memberships m ON m.membership_id = l.membership_id"
                " WHERE l.chamber_id = ANY(%s) AND l.earned_at >= %s AND l.earned_at < %s"
                " GROUP BY l.membership_id, l.chamber_id, m.enterprise_name",
                (chamber_ids, start, end),
            ).fetchall()
        return [
            MemberTotal(
                membership_id=row["membership_id"],
                chamber_id=row["chamber_id"],
                name=row["enterprise_name"],
                points=int(row["points"]),
                reached_at=row["reached_at"],
            )
            for row in rows
        ]

    def excellence_showcase(self, chamber_ids: list[str], start: datetime, end: datetime) -> ShowcaseFigures:
        """The showcase counts over these chambers (docs/services/commerce.md, "Showcase")."""
        params = {"c": chamber_ids, "start": start, "end": end, "approved": list(_APPROVED)}
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT"
                " (SELECT count(*) FROM memberships WHERE chamber_id = ANY(%(c)s) AND status = 'ACTIVE'"
                "   AND decided_at < %(end)s) AS members,"
                " (SELECT count(*) FROM memberships WHERE chamber_id = ANY(%(c)s)"
                "   AND status = ANY(%(approved)s) AND decided_at >= %(start)s AND decided_at < %(end)s)"
                "   AS new_joins,"
                " (SELECT count(*) FROM activities WHERE chamber_id = ANY(%(c)s)"
                "   AND starts_at >= %(start)s AND starts_at < %(end)s) AS activities,"
                # A match between two of the chambers counts once.
                " (SELECT count(*) FROM matches mt WHERE mt.matched_at >= %(start)s"
                "   AND mt.matched_at < %(end)s AND EXISTS (SELECT 1 FROM posts p"
                "   WHERE p.post_id IN (mt.supply_post_id, mt.demand_post_id) AND p.chamber_id = ANY(%(c)s)))"
                "   AS matches,"
                " (SELECT count(*) FROM service_requests WHERE chamber_id = ANY(%(c)s)"
                "   AND resolved_at >= %(start)s AND resolved_at < %(end)s) AS requests_resolved,"
                " (SELECT count(*) FROM service_requests WHERE chamber_id = ANY(%(c)s)"
                "   AND resolved_at >= %(start)s AND resolved_at < %(end)s AND resolved_at <= due_at)"
                "   AS requests_resolved_on_time",
                params,
            ).fetchone()
        assert row is not None, "a SELECT of counts returns one row"
        return {name: int(value) for name, value in row.items()}
