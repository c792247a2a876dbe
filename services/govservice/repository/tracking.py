"""SQL of tracking, statistics and people served: reads of the applications and steps tables only, and
never a column that names or identifies an applicant (no sealed person, name, actor or note)."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.govservice.domain.model import ApplicantKind, ApplicationStatus
from services.govservice.domain.statistics import PlaceServed, StatisticsCounts
from services.govservice.domain.tracking import TrackedApplication, TrackedStep
from services.platform.repository import SqlPart

__all__ = ["TrackingSql"]

_FINISHED = (ApplicationStatus.COMPLETED.value, ApplicationStatus.REJECTED.value)


class TrackingSql(SqlPart):
    def tracked_application(self, application_no: str) -> tuple[TrackedApplication, str] | None:
        """The application as tracking shows it, with its suffix digest; None when there is none. One
        query with the steps whether the pairing will turn out right or wrong: the same work either way."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT a.application_no, a.item_code, a.status, a.current_region, a.due_date,"
                " a.suffix_digest, s.status AS step_status, s.region AS step_region, s.at AS step_at"
                " FROM applications a LEFT JOIN steps s ON s.application_no = a.application_no"
                " WHERE a.application_no = %s ORDER BY s.sequence",
                (application_no,),
            ).fetchall()
        if not rows:
            return None
        first = rows[0]
        steps = tuple(
            TrackedStep(ApplicationStatus(row["step_status"]), row["step_region"], row["step_at"])
            for row in rows
            if row["step_status"] is not None
        )
        tracked = TrackedApplication(
            application_no=first["application_no"],
            item_code=first["item_code"],
            status=ApplicationStatus(first["status"]),
            current_region=first["current_region"],
            due_date=first["due_date"],
            steps=steps,
        )
        return tracked, str(first["suffix_digest"])

    def item_defined(self, item_code: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM items WHERE item_code = %s", (item_code,)).fetchone()
        return row is not None

    def statistics_counts(
        self,
        *,
        patterns: tuple[str, ...] | None,
        item_code: str,
        start: datetime,
        end: datetime,
        zone: str,
    ) -> StatisticsCounts:
        """Counts over the applications filed in or handled by a region matching one of ``patterns`` (None:
        every region), of ``item_code`` (empty: every item). Completion on time: the completion's local
        date (in ``zone``) no later than the due date."""
        clauses: list[str] = []
        params: dict[str, Any] = {
            "start": start,
            "end": end,
            "zone": zone,
            "completed": ApplicationStatus.COMPLETED.value,
            "finished": list(_FINISHED),
        }
        if patterns is not None:
            clauses.append("(filing_region LIKE ANY(%(patterns)s) OR handling_region LIKE ANY(%(patterns)s))")
            params["patterns"] = list(patterns)
        if item_code:
            clauses.append("item_code = %(item)s")
            params["item"] = item_code
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        done = "status = %(completed)s AND finished_at >= %(start)s AND finished_at < %(end)s"
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT"
                " count(*) FILTER (WHERE filed_at >= %(start)s AND filed_at < %(end)s) AS filed,"
                f" count(*) FILTER (WHERE {done}) AS completed,"
                f" count(*) FILTER (WHERE {done} AND due_date IS NOT NULL"
                "   AND (finished_at AT TIME ZONE %(zone)s)::date <= due_date) AS completed_on_time,"
                f" coalesce(sum(working_days_used) FILTER (WHERE {done}), 0) AS working_days,"
                " count(*) FILTER (WHERE overdue AND status <> ALL(%(finished)s)) AS overdue_now"
                f" FROM applications {where}",
                params,
            ).fetchone()
        assert row is not None
        return StatisticsCounts(
            filed=int(row["filed"]),
            completed=int(row["completed"]),
            completed_on_time=int(row["completed_on_time"]),
            working_days=int(row["working_days"]),
            overdue_now=int(row["overdue_now"]),
        )

    def partner_regions(self) -> list[tuple[str, str]]:
        """The partner (non-home) regions' codes and names, by code."""
        rows = self._conn.execute(
            "SELECT division_code, name FROM regions WHERE NOT home ORDER BY division_code"
        ).fetchall()
        return [(str(code), str(name)) for code, name in rows]

    def people_served(
        self, places: list[tuple[str, str, str]], *, start: datetime, end: datetime
    ) -> list[PlaceServed]:
        """For each (code, name, pattern): the distinct person applicants whose origin division matches the
        pattern and who filed in ``[start, end)``, and their applications; zero rows for a quiet place."""
        if not places:
            return []
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT p.code, p.name, count(DISTINCT a.applicant_token) AS people,"
                " count(a.application_no) AS applications"
                " FROM unnest(%(codes)s::text[], %(names)s::text[], %(patterns)s::text[])"
                "   WITH ORDINALITY AS p(code, name, pattern, position)"
                " LEFT JOIN applications a ON a.applicant_kind = %(person)s"
                "   AND a.origin_division LIKE p.pattern AND a.filed_at >= %(start)s AND a.filed_at < %(end)s"
                " GROUP BY p.code, p.name, p.position ORDER BY p.position",
                {
                    "codes": [code for code, _, _ in places],
                    "names": [name for _, name, _ in places],
                    "patterns": [pattern for _, _, pattern in places],
                    "person": ApplicantKind.PERSON.value,
                    "start": start,
                    "end": end,
                },
            ).fetchall()
        return [
            PlaceServed(
                division_code=row["code"],
                name=row["name"],
                people=int(row["people"]),
                applications=int(row["applications"]),
            )
            for row in rows
        ]
