"""SQL of applications: filing, the locked read a step starts from, the step's write, the lists, the overdue
sweep's atomic flip. (An application's steps are the trail family's: ``list_steps``.)"""

# ruff: noqa: S608 - the statements are assembled from constant fragments; values are always bound

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from services.govservice.domain.access import Visibility
from services.govservice.domain.applications import Application, EnterpriseApplicant
from services.govservice.domain.model import ApplicantKind, ApplicationStatus, Verification
from services.platform.repository import SqlPart

__all__ = ["ApplicationsSql", "region_patterns"]

_COLUMNS = (
    "application_no, item_code, filing_region, handling_region, applicant_kind, applicant_token,"
    " sealed_person, origin_division, credit_code, enterprise_name, enterprise_sector, enterprise_town,"
    " verification, suffix_digest, materials, status, current_region, promised_working_days, accepted_on,"
    " due_date, working_days_used, clock_from, paused_on, overdue, filed_at, finished_at"
)
_PLACEHOLDERS = ", ".join(["%s"] * len(_COLUMNS.split(",")))


def _application_of(row: dict[str, Any]) -> Application:
    kind = ApplicantKind(row["applicant_kind"])
    enterprise = (
        EnterpriseApplicant(
            credit_code=row["credit_code"],
            name=row["enterprise_name"],
            sector=row["enterprise_sector"],
            town=row["enterprise_town"],
            verification=Verification(row["verification"]),
        )
        if kind is ApplicantKind.ENTERPRISE
        else None
    )
    sealed = row["sealed_person"]
    return Application(
        application_no=row["application_no"],
        item_code=row["item_code"],
        filing_region=row["filing_region"],
        handling_region=row["handling_region"],
        applicant_kind=kind,
        applicant_token=row["applicant_token"],
        sealed_person=bytes(sealed) if sealed is not None else None,
        origin_division=row["origin_division"],
        enterprise=enterprise,
        suffix_digest=row["suffix_digest"],
        materials=tuple(row["materials"]),
        status=ApplicationStatus(row["status"]),
        current_region=row["current_region"],
        promised_working_days=row["promised_working_days"],
        accepted_on=row["accepted_on"],
        due_date=row["due_date"],
        working_days_used=row["working_days_used"],
        clock_from=row["clock_from"],
        paused_on=row["paused_on"],
        overdue=row["overdue"],
        filed_at=row["filed_at"],
        finished_at=row["finished_at"],
    )


def region_patterns(code: str) -> list[str]:
    """LIKE patterns of the division codes a scope ``code`` covers (domain/access.py's nesting); none for
    a scope that is no division code (it must never widen into a wildcard)."""
    if len(code) != 6 or not (code.isascii() and code.isdigit()):
        return []
    if code.endswith("0000"):
        return [code[:2] + "%"]
    if code.endswith("00"):
        return [code[:4] + "%"]
    return [code]


class ApplicationsSql(SqlPart):
    def add_application(self, application: Application) -> bool:
        """Store a new application; False (nothing stored) when its number is taken already."""
        a, e = application, application.enterprise
        row = self._conn.execute(
            f"INSERT INTO applications ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
            " ON CONFLICT (application_no) DO NOTHING RETURNING 1",
            (
                a.application_no,
                a.item_code,
                a.filing_region,
                a.handling_region,
                a.applicant_kind.value,
                a.applicant_token,
                a.sealed_person,
                a.origin_division,
                e.credit_code if e else "",
                e.name if e else "",
                e.sector if e else "",
                e.town if e else "",
                e.verification.value if e and e.verification else "",
                a.suffix_digest,
                list(a.materials),
                a.status.value,
                a.current_region,
                a.promised_working_days,
                a.accepted_on,
                a.due_date,
                a.working_days_used,
                a.clock_from,
                a.paused_on,
                a.overdue,
                a.filed_at,
                a.finished_at,
            ),
        ).fetchone()
        return row is not None

    def get_application(self, application_no: str, *, for_update: bool = False) -> Application | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM applications WHERE application_no = %s{lock}", (application_no,)
            ).fetchone()
        return _application_of(row) if row else None

    def save_application_state(self, application: Application) -> None:
        """Store what a step changes (never ``overdue``: only the sweep sets it, atomically)."""
        a = application
        self._conn.execute(
            "UPDATE applications SET status = %s, current_region = %s, accepted_on = %s, due_date = %s,"
            " working_days_used = %s, clock_from = %s, paused_on = %s, finished_at = %s"
            " WHERE application_no = %s",
            (
                a.status.value,
                a.current_region,
                a.accepted_on,
                a.due_date,
                a.working_days_used,
                a.clock_from,
                a.paused_on,
                a.finished_at,
                a.application_no,
            ),
        )

    def request_seen(self, operation: str, request_id: str) -> bool:
        """Whether a request id was claimed already (a replay need not look commerce up again)."""
        if not request_id:
            return False
        row = self._conn.execute(
            "SELECT 1 FROM requests WHERE operation = %s AND request_id = %s", (operation, request_id)
        ).fetchone()
        return row is not None

    def list_applications(
        self,
        visibility: Visibility,
        *,
        division_code: str,
        statuses: Sequence[ApplicationStatus],
        overdue_only: bool,
        filed_from: datetime | None,
        filed_to: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Application]:
        """Newest first: applications filed in or handled by a region under ``division_code`` ("" for any)
        and seen by the caller."""
        params: dict[str, Any] = {"limit": limit}
        where: list[str] = []
        if not visibility.everything:
            seen = sorted({p for scope in visibility.regions for p in region_patterns(scope)})
            where.append("(filing_region LIKE ANY(%(seen)s) OR handling_region LIKE ANY(%(seen)s))")
            params["seen"] = seen
        if division_code:
            where.append("(filing_region LIKE ANY(%(under)s) OR handling_region LIKE ANY(%(under)s))")
            params["under"] = region_patterns(division_code)
        if statuses:
            where.append("status = ANY(%(statuses)s)")
            params["statuses"] = sorted({s.value for s in statuses})
        if overdue_only:
            where.append("overdue")
        if filed_from is not None:
            where.append("filed_at >= %(filed_from)s")
            params["filed_from"] = filed_from
        if filed_to is not None:
            where.append("filed_at < %(filed_to)s")
            params["filed_to"] = filed_to
        if after is not None:
            where.append("(filed_at, application_no) < (%(after_at)s, %(after_no)s)")
            params["after_at"], params["after_no"] = after
        sql = (
            f"SELECT {_COLUMNS} FROM applications WHERE {' AND '.join(where) or 'TRUE'}"
            " ORDER BY filed_at DESC, application_no DESC LIMIT %(limit)s"
        )
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_application_of(r) for r in cur.execute(sql, params).fetchall()]

    def flag_overdue(self, today: date, limit: int) -> list[Application]:
        """Flag up to ``limit`` running applications whose due date is before ``today`` (local), and return
        exactly those this statement flipped: a replica sweeping at the same time skips the rows locked here
        (SKIP LOCKED) and, once they commit, no longer sees them unflagged, so each is announced once. A
        paused application (SUPPLEMENT_REQUESTED) is never overdue: its clock is stopped."""
        sql = f"""
            UPDATE applications SET overdue = TRUE
             WHERE application_no IN (
                   SELECT application_no FROM applications
                    WHERE NOT overdue AND status IN ('ACCEPTED', 'SUPPLEMENTED') AND due_date < %(today)s
                    ORDER BY due_date
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED)
               AND NOT overdue AND status IN ('ACCEPTED', 'SUPPLEMENTED') AND due_date < %(today)s
            RETURNING {_COLUMNS}
        """
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_application_of(r) for r in cur.execute(sql, {"today": today, "limit": limit}).fetchall()]
