"""SQL of AI captures and violations (with their captures and history steps)."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import dict_row

from services.kitchen.domain.violations import (
    Capture,
    Violation,
    ViolationKind,
    ViolationStatus,
    ViolationStep,
)
from services.platform.repository import SqlPart

__all__ = ["ViolationsSql"]

_COLUMNS = (
    "violation_id, kitchen_id, camera_id, kind, status, opened_at, last_capture_at, first_rectified_at, "
    "alert_id"
)


def _violation(row: dict[str, Any], captures: list[Capture], history: list[ViolationStep]) -> Violation:
    return Violation(
        violation_id=row["violation_id"],
        kitchen_id=row["kitchen_id"],
        camera_id=row["camera_id"],
        kind=ViolationKind(row["kind"]),
        status=ViolationStatus(row["status"]),
        opened_at=row["opened_at"],
        last_capture_at=row["last_capture_at"],
        first_rectified_at=row["first_rectified_at"],
        alert_id=row["alert_id"] or "",
        captures=tuple(captures),
        history=tuple(history),
    )


class ViolationsSql(SqlPart):
    def equipment_kind(self, kitchen_id: str, equipment_id: str) -> str | None:
        """The stored kind of a unit of ``kitchen_id`` (None: no such unit in that kitchen)."""
        row = self._conn.execute(
            "SELECT kind FROM equipment WHERE equipment_id = %s AND kitchen_id = %s",
            (equipment_id, kitchen_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def lock_camera_captures(self, camera_id: str) -> None:
        """Serialise captures of one camera until the transaction ends, so two captures arriving at once
        cannot both find no open violation and open two. An advisory lock rather than the camera's row:
        the readings consumer updates that row in batches, and a capture should not wait on them."""
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"kitchen.capture:{camera_id}",)
        )

    def joinable_violation(
        self,
        camera_id: str,
        kind: ViolationKind,
        statuses: Collection[ViolationStatus],
        at: datetime,
        window: timedelta,
    ) -> Violation | None:
        """The open violation of ``kind`` at ``camera_id`` whose last capture is nearest ``at`` within the
        window, locked for update (without its captures and history)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM violations WHERE camera_id = %s AND kind = %s AND status = ANY(%s) "
                "AND last_capture_at BETWEEN %s AND %s "
                "ORDER BY abs(extract(epoch FROM last_capture_at - %s)), violation_id LIMIT 1 FOR UPDATE",
                (camera_id, kind.value, [s.value for s in statuses], at - window, at + window, at),
            ).fetchone()
        return _violation(row, [], []) if row else None

    def add_violation(self, violation: Violation) -> None:
        self._conn.execute(
            f"INSERT INTO violations ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                violation.violation_id,
                violation.kitchen_id,
                violation.camera_id,
                violation.kind.value,
                violation.status.value,
                violation.opened_at,
                violation.last_capture_at,
                violation.first_rectified_at,
                violation.alert_id or None,
            ),
        )
        for step in violation.history:
            self.add_violation_step(violation.violation_id, step)

    def add_capture(self, violation_id: str, capture: Capture) -> None:
        self._conn.execute(
            "INSERT INTO captures (capture_id, violation_id, camera_id, kind, captured_at, snapshot_ref,"
            " confidence) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                capture.capture_id,
                violation_id,
                capture.camera_id,
                capture.kind.value,
                capture.captured_at,
                capture.snapshot_ref,
                capture.confidence,
            ),
        )
        self._conn.execute(
            "UPDATE violations SET last_capture_at = GREATEST(last_capture_at, %s) WHERE violation_id = %s",
            (capture.captured_at, violation_id),
        )

    def add_violation_step(self, violation_id: str, step: ViolationStep) -> None:
        self._conn.execute(
            "INSERT INTO violation_steps (violation_id, seq, status, at, by_subject, note, photo_ref) "
            "SELECT %s, COALESCE(MAX(seq), 0) + 1, %s, %s, %s, %s, %s FROM violation_steps "
            "WHERE violation_id = %s",
            (violation_id, step.status.value, step.at, step.by, step.note, step.photo_ref, violation_id),
        )

    def set_violation_status(
        self, violation_id: str, status: ViolationStatus, first_rectified_at: datetime | None
    ) -> None:
        self._conn.execute(
            "UPDATE violations SET status = %s, first_rectified_at = %s WHERE violation_id = %s",
            (status.value, first_rectified_at, violation_id),
        )

    def get_violation(self, violation_id: str, *, for_update: bool = False) -> Violation | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM violations WHERE violation_id = %s{lock}", (violation_id,)
            ).fetchone()
        if row is None:
            return None
        return self._complete([row])[0]

    def list_violations(
        self,
        kitchen_id: str,
        *,
        statuses: Collection[ViolationStatus],
        kind: ViolationKind | None,
        start: datetime | None,
        end: datetime | None,
        before: tuple[Any, ...] | None,
        limit: int,
    ) -> list[Violation]:
        clauses = ["kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if statuses:
            clauses.append("status = ANY(%s)")
            params.append([s.value for s in statuses])
        if kind is not None:
            clauses.append("kind = %s")
            params.append(kind.value)
        if start is not None:
            clauses.append("opened_at >= %s")
            params.append(start)
        if end is not None:
            clauses.append("opened_at < %s")
            params.append(end)
        if before is not None:
            clauses.append("(opened_at, violation_id) < (%s, %s)")
            params.extend(before)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM violations WHERE {' AND '.join(clauses)} "
                "ORDER BY opened_at DESC, violation_id DESC LIMIT %s",
                params,
            ).fetchall()
        return self._complete(rows)

    def _complete(self, rows: list[dict[str, Any]]) -> list[Violation]:
        """The violations of ``rows`` with their captures (oldest first) and history (in order)."""
        ids = [row["violation_id"] for row in rows]
        captures: dict[str, list[Capture]] = defaultdict(list)
        history: dict[str, list[ViolationStep]] = defaultdict(list)
        if ids:
            with self._conn.cursor(row_factory=dict_row) as cur:
                for c in cur.execute(
                    "SELECT violation_id, capture_id, camera_id, kind, captured_at, snapshot_ref, confidence "
                    "FROM captures WHERE violation_id = ANY(%s) ORDER BY captured_at, capture_id",
                    (ids,),
                ).fetchall():
                    captures[c["violation_id"]].append(
                        Capture(
                            c["capture_id"],
                            c["camera_id"],
                            ViolationKind(c["kind"]),
                            c["captured_at"],
                            c["snapshot_ref"],
                            c["confidence"],
                        )
                    )
                for s in cur.execute(
                    "SELECT violation_id, status, at, by_subject, note, photo_ref FROM violation_steps "
                    "WHERE violation_id = ANY(%s) ORDER BY violation_id, seq",
                    (ids,),
                ).fetchall():
                    history[s["violation_id"]].append(
                        ViolationStep(
                            ViolationStatus(s["status"]), s["at"], s["by_subject"], s["note"], s["photo_ref"]
                        )
                    )
        return [_violation(row, captures[row["violation_id"]], history[row["violation_id"]]) for row in rows]
