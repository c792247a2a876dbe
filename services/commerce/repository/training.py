"""SQL of courses and enrolments."""

# ruff: noqa: S608 - the statements are assembled from constant fragments; values are always bound

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.training import Course, Enrolment
from services.platform.repository import SqlPart

__all__ = ["TrainingSql"]

_ENROLMENT_COLUMNS = "enrolment_id, course_id, membership_id, enrolled_at, completed_at"


def _course_of(row: dict[str, Any]) -> Course:
    return Course(
        course_id=row["course_id"],
        chamber_id=row["chamber_id"],
        title=row["title"],
        hours=row["hours"],
        created_at=row["created_at"],
        enrolled=row.get("enrolled", 0),
        completed=row.get("completed", 0),
    )


def _enrolment_of(row: dict[str, Any]) -> Enrolment:
    return Enrolment(
        enrolment_id=row["enrolment_id"],
        course_id=row["course_id"],
        membership_id=row["membership_id"],
        enrolled_at=row["enrolled_at"],
        completed_at=row["completed_at"],
    )


class TrainingSql(SqlPart):
    def add_course(self, course: Course) -> None:
        self._conn.execute(
            "INSERT INTO courses (course_id, chamber_id, title, hours, created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (course.course_id, course.chamber_id, course.title, course.hours, course.created_at),
        )

    def get_course(self, course_id: str) -> Course | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT course_id, chamber_id, title, hours, created_at FROM courses WHERE course_id = %s",
                (course_id,),
            ).fetchone()
        return _course_of(row) if row else None

    def list_courses(self, chamber_id: str, after: tuple[datetime, str] | None, limit: int) -> list[Course]:
        """A chamber's courses, newest first, with how many members enrolled and completed each."""
        params: dict[str, Any] = {"chamber_id": chamber_id, "limit": limit}
        page = ""
        if after is not None:
            page = " AND (c.created_at, c.course_id) < (%(after_at)s, %(after_id)s)"
            params["after_at"], params["after_id"] = after
        sql = f"""
            SELECT c.course_id, c.chamber_id, c.title, c.hours, c.created_at,
                   count(e.enrolment_id) AS enrolled, count(e.completed_at) AS completed
              FROM courses c LEFT JOIN enrolments e ON e.course_id = c.course_id
             WHERE c.chamber_id = %(chamber_id)s{page}
             GROUP BY c.course_id
             ORDER BY c.created_at DESC, c.course_id DESC
             LIMIT %(limit)s
        """
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_course_of(r) for r in cur.execute(sql, params).fetchall()]

    def is_member_of(self, chamber_id: str, credit_codes: Iterable[str]) -> bool:
        """Whether any of these enterprises has (or had) a membership of the chamber."""
        row = self._conn.execute(
            "SELECT 1 FROM memberships WHERE chamber_id = %s AND credit_code = ANY(%s) LIMIT 1",
            (chamber_id, sorted(credit_codes)),
        ).fetchone()
        return row is not None

    def add_enrolment(self, enrolment: Enrolment) -> bool:
        """False when the member is enrolled in the course already."""
        row = self._conn.execute(
            f"INSERT INTO enrolments ({_ENROLMENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (course_id, membership_id) DO NOTHING RETURNING 1",
            (
                enrolment.enrolment_id,
                enrolment.course_id,
                enrolment.membership_id,
                enrolment.enrolled_at,
                enrolment.completed_at,
            ),
        ).fetchone()
        return row is not None

    def get_enrolment(self, enrolment_id: str, *, for_update: bool = False) -> Enrolment | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_ENROLMENT_COLUMNS} FROM enrolments WHERE enrolment_id = %s{lock}", (enrolment_id,)
            ).fetchone()
        return _enrolment_of(row) if row else None

    def complete_enrolment(self, enrolment: Enrolment) -> None:
        self._conn.execute(
            "UPDATE enrolments SET completed_at = %s WHERE enrolment_id = %s",
            (enrolment.completed_at, enrolment.enrolment_id),
        )
