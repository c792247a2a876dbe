"""SQL of service requests, and the overdue sweep's atomic flip."""

# ruff: noqa: S608 - the statements are assembled from constant fragments; values are always bound

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.access import Visibility
from services.commerce.domain.requests import ServiceRequest, ServiceRequestStatus, ServiceType
from services.platform.repository import SqlPart

__all__ = ["RequestsSql"]

_COLUMNS = (
    "service_request_id, chamber_id, membership_id, credit_code, type, subject, description, status,"
    " assigned_to, submitted_at, due_at, overdue, resolved_at, resolution, satisfaction"
)


def _request_of(row: dict[str, Any]) -> ServiceRequest:
    return ServiceRequest(
        service_request_id=row["service_request_id"],
        chamber_id=row["chamber_id"],
        membership_id=row["membership_id"],
        credit_code=row["credit_code"],
        type=ServiceType(row["type"]),
        subject=row["subject"],
        description=row["description"],
        status=ServiceRequestStatus(row["status"]),
        assigned_to=row["assigned_to"],
        submitted_at=row["submitted_at"],
        due_at=row["due_at"],
        overdue=row["overdue"],
        resolved_at=row["resolved_at"],
        resolution=row["resolution"],
        satisfaction=row["satisfaction"],
    )


class RequestsSql(SqlPart):
    def add_service_request(self, request: ServiceRequest) -> None:
        self._conn.execute(
            f"INSERT INTO service_requests ({_COLUMNS})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                request.service_request_id,
                request.chamber_id,
                request.membership_id,
                request.credit_code,
                request.type.value,
                request.subject,
                request.description,
                request.status.value,
                request.assigned_to,
                request.submitted_at,
                request.due_at,
                request.overdue,
                request.resolved_at,
                request.resolution,
                request.satisfaction,
            ),
        )

    def get_service_request(self, request_id: str, *, for_update: bool = False) -> ServiceRequest | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM service_requests WHERE service_request_id = %s{lock}", (request_id,)
            ).fetchone()
        return _request_of(row) if row else None

    def save_service_request(self, request: ServiceRequest) -> None:
        """Store the request's mutable state (never ``overdue``: only the sweep sets it, atomically)."""
        self._conn.execute(
            "UPDATE service_requests SET status = %s, assigned_to = %s, resolved_at = %s, resolution = %s,"
            " satisfaction = %s WHERE service_request_id = %s",
            (
                request.status.value,
                request.assigned_to,
                request.resolved_at,
                request.resolution,
                request.satisfaction,
                request.service_request_id,
            ),
        )

    def is_chamber_staff(self, chamber_id: str, staff_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM chamber_staff WHERE chamber_id = %s AND staff_id = %s", (chamber_id, staff_id)
        ).fetchone()
        return row is not None

    def list_service_requests(
        self,
        visibility: Visibility,
        *,
        chamber_id: str,
        credit_code: str,
        overdue_only: bool,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ServiceRequest]:
        """Newest first, filtered to what the caller may see."""
        params: dict[str, Any] = {"limit": limit}
        where: list[str] = []
        if not visibility.everything:
            where.append("(chamber_id = ANY(%(seen_chambers)s) OR credit_code = ANY(%(seen_enterprises)s))")
            params["seen_chambers"] = sorted(visibility.chambers)
            params["seen_enterprises"] = sorted(visibility.enterprises)
        if chamber_id:
            where.append("chamber_id = %(chamber_id)s")
            params["chamber_id"] = chamber_id
        if credit_code:
            where.append("credit_code = %(credit_code)s")
            params["credit_code"] = credit_code
        if overdue_only:
            where.append("overdue")
        if after is not None:
            where.append("(submitted_at, service_request_id) < (%(after_at)s, %(after_id)s)")
            params["after_at"], params["after_id"] = after
        sql = (
            f"SELECT {_COLUMNS} FROM service_requests WHERE {' AND '.join(where) or 'TRUE'}"
            " ORDER BY submitted_at DESC, service_request_id DESC LIMIT %(limit)s"
        )
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_request_of(r) for r in cur.execute(sql, params).fetchall()]

    def flag_overdue(self, now: datetime, limit: int) -> list[ServiceRequest]:
        """Flag up to ``limit`` unresolved requests whose deadline passed before ``now``, and return exactly
        those this statement flipped: a replica sweeping at the same time skips the rows locked here
        (SKIP LOCKED) and, once they commit, no longer sees them as unflagged, so each is announced once."""
        sql = f"""
            UPDATE service_requests SET overdue = TRUE
             WHERE service_request_id IN (
                   SELECT service_request_id FROM service_requests
                    WHERE NOT overdue AND status <> 'RESOLVED' AND due_at < %(now)s
                    ORDER BY due_at
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED)
               AND NOT overdue
            RETURNING {_COLUMNS}
        """
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_request_of(r) for r in cur.execute(sql, {"now": now, "limit": limit}).fetchall()]
