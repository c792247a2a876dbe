"""SQL of inspections by food inspectors."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row

from services.kitchen.domain.kitchens import Inspection, InspectionResult
from services.platform.repository import SqlPart

__all__ = ["InspectionsSql"]

_COLUMNS = "inspection_id, kitchen_id, inspected_at, inspector, findings, result, recorded_at"


def _inspection(row: dict[str, Any]) -> Inspection:
    return Inspection(
        inspection_id=row["inspection_id"],
        kitchen_id=row["kitchen_id"],
        inspected_at=row["inspected_at"],
        inspector=row["inspector"],
        findings=tuple(row["findings"]),
        result=InspectionResult(row["result"]),
        recorded_at=row["recorded_at"],
    )


class InspectionsSql(SqlPart):
    def add_inspection(self, inspection: Inspection) -> None:
        self._conn.execute(
            f"INSERT INTO inspections ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
            (
                inspection.inspection_id,
                inspection.kitchen_id,
                inspection.inspected_at,
                inspection.inspector,
                list(inspection.findings),
                inspection.result.value,
                inspection.recorded_at,
            ),
        )

    def get_inspection(self, inspection_id: str) -> Inspection | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM inspections WHERE inspection_id = %s",  # noqa: S608
                (inspection_id,),
            ).fetchone()
        return _inspection(row) if row else None

    def list_inspections(
        self, kitchen_id: str, *, before: tuple[Any, ...] | None, limit: int
    ) -> list[Inspection]:
        """Newest first."""
        clauses = ["kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if before is not None:
            clauses.append("(inspected_at, inspection_id) < (%s, %s)")
            params.extend(before)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM inspections WHERE {' AND '.join(clauses)}"  # noqa: S608
                " ORDER BY inspected_at DESC, inspection_id DESC LIMIT %s",
                params,
            ).fetchall()
        return [_inspection(row) for row in rows]
