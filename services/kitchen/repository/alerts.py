"""SQL of the alerts to kitchen managers (raised by every family's rules)."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.model import AlertKind, KitchenAlert, Severity
from services.platform.repository import SqlPart

__all__ = ["AlertsSql"]

_COLUMNS = "a.alert_id, a.kitchen_id, a.kind, a.severity, a.subject_id, a.message, a.raised_at, a.cleared_at"


def _alert(row: dict[str, Any]) -> KitchenAlert:
    return KitchenAlert(
        alert_id=row["alert_id"],
        kitchen_id=row["kitchen_id"],
        kind=AlertKind(row["kind"]),
        severity=Severity(row["severity"]),
        subject_id=row["subject_id"],
        message=row["message"],
        raised_at=row["raised_at"],
        cleared_at=row["cleared_at"],
    )


class AlertsSql(SqlPart):
    def add_alert(self, alert: KitchenAlert) -> None:
        self._conn.execute(
            "INSERT INTO kitchen_alerts (alert_id, kitchen_id, kind, severity, subject_id, message,"
            " raised_at, cleared_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                alert.alert_id,
                alert.kitchen_id,
                alert.kind.value,
                alert.severity.value,
                alert.subject_id,
                alert.message,
                alert.raised_at,
                alert.cleared_at,
            ),
        )

    def clear_alert(self, alert_id: str, at: datetime) -> bool:
        """Mark an open alert cleared; False when it was not open."""
        row = self._conn.execute(
            "UPDATE kitchen_alerts SET cleared_at = %s"
            " WHERE alert_id = %s AND cleared_at IS NULL RETURNING 1",
            (at, alert_id),
        ).fetchone()
        return row is not None

    def get_alert(self, alert_id: str) -> KitchenAlert | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM kitchen_alerts a WHERE a.alert_id = %s", (alert_id,)
            ).fetchone()
        return _alert(row) if row else None

    def list_alerts(
        self,
        visibility: Visibility,
        *,
        kitchen_id: str,
        kinds: frozenset[AlertKind],
        open_only: bool,
        start: datetime | None,
        end: datetime | None,
        before: tuple[Any, ...] | None,
        limit: int,
    ) -> list[KitchenAlert]:
        clauses: list[str] = []
        params: list[Any] = []
        if not visibility.everything:
            clauses.append("(k.kitchen_id = ANY(%s) OR k.site_id = ANY(%s))")
            params += [list(visibility.kitchens), list(visibility.sites)]
        if kitchen_id:
            clauses.append("a.kitchen_id = %s")
            params.append(kitchen_id)
        if kinds:
            clauses.append("a.kind = ANY(%s)")
            params.append([k.value for k in kinds])
        if open_only:
            clauses.append("a.cleared_at IS NULL")
        if start is not None:
            clauses.append("a.raised_at >= %s")
            params.append(start)
        if end is not None:
            clauses.append("a.raised_at < %s")
            params.append(end)
        if before is not None:
            clauses.append("(a.raised_at, a.alert_id) < (%s, %s)")
            params.extend(before)
        params.append(limit)
        where = " AND ".join(clauses) or "TRUE"
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM kitchen_alerts a JOIN kitchens k ON k.kitchen_id = a.kitchen_id "
                f"WHERE {where} ORDER BY a.raised_at DESC, a.alert_id DESC LIMIT %s",
                params,
            ).fetchall()
        return [_alert(row) for row in rows]
