"""SQL of activities and sign-ups. The activity row is the lock every change of its sign-ups takes
(sign-up, cancellation with promotion, check-in), so two concurrent sign-ups never exceed its capacity."""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.access import Visibility
from services.commerce.domain.activities import Activity, ActivityView, SignUp, SignUpStatus
from services.platform.repository import SqlPart

__all__ = ["ActivitiesSql"]

_ACTIVITY_COLUMNS = (
    "a.activity_id, a.chamber_id, a.title, a.place, a.starts_at, a.capacity, a.sign_up_deadline, a.created_at"
)
# Figures counted from the sign-ups (the index sign_ups_order serves them).
_FIGURES = (
    "(SELECT count(*) FROM sign_ups s WHERE s.activity_id = a.activity_id"
    " AND s.status IN ('CONFIRMED', 'CHECKED_IN')) AS confirmed,"
    " (SELECT count(*) FROM sign_ups s WHERE s.activity_id = a.activity_id"
    " AND s.status = 'WAITLISTED') AS waitlisted,"
    " (SELECT count(*) FROM sign_ups s WHERE s.activity_id = a.activity_id"
    " AND s.status = 'CHECKED_IN') AS checked_in"
)
_SIGN_UP_COLUMNS = (
    "s.sign_up_id, s.activity_id, s.membership_id, s.credit_code, s.status, s.seq, s.signed_up_at,"
    " s.checked_in_at,"
    " CASE WHEN s.status = 'WAITLISTED' THEN (SELECT count(*) FROM sign_ups w"
    " WHERE w.activity_id = s.activity_id AND w.status = 'WAITLISTED' AND w.seq <= s.seq) ELSE 0 END"
    " AS waitlist_position"
)


def _activity_of(row: dict[str, Any]) -> Activity:
    return Activity(
        activity_id=row["activity_id"],
        chamber_id=row["chamber_id"],
        title=row["title"],
        place=row["place"],
        starts_at=row["starts_at"],
        capacity=row["capacity"],
        sign_up_deadline=row["sign_up_deadline"],
        created_at=row["created_at"],
    )


def _view_of(row: dict[str, Any]) -> ActivityView:
    return ActivityView(_activity_of(row), row["confirmed"], row["waitlisted"], row["checked_in"])


def _sign_up_of(row: dict[str, Any]) -> SignUp:
    return SignUp(
        sign_up_id=row["sign_up_id"],
        activity_id=row["activity_id"],
        membership_id=row["membership_id"],
        credit_code=row["credit_code"],
        status=SignUpStatus(row["status"]),
        seq=row["seq"],
        signed_up_at=row["signed_up_at"],
        checked_in_at=row["checked_in_at"],
        waitlist_position=row["waitlist_position"],
    )


class ActivitiesSql(SqlPart):
    # --- activities ---------------------------------------------------------------------------------

    def add_activity(self, activity: Activity) -> None:
        self._conn.execute(
            "INSERT INTO activities (activity_id, chamber_id, title, place, starts_at, capacity,"
            " sign_up_deadline, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                activity.activity_id,
                activity.chamber_id,
                activity.title,
                activity.place,
                activity.starts_at,
                activity.capacity,
                activity.sign_up_deadline,
                activity.created_at,
            ),
        )

    def get_activity(self, activity_id: str, *, for_update: bool = False) -> Activity | None:
        """The activity; ``for_update`` locks it (every change of its sign-ups does, in one order)."""
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_ACTIVITY_COLUMNS} FROM activities a WHERE a.activity_id = %s{lock}", (activity_id,)
            ).fetchone()
        return _activity_of(row) if row else None

    def get_activity_view(self, activity_id: str) -> ActivityView | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_ACTIVITY_COLUMNS}, {_FIGURES} FROM activities a WHERE a.activity_id = %s",
                (activity_id,),
            ).fetchone()
        return _view_of(row) if row else None

    def list_activities(
        self,
        visibility: Visibility,
        chamber_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ActivityView]:
        """Activities (of one chamber, or every chamber) the caller may see, latest start first: its
        chambers' as staff, those of chambers its enterprises belong to as a member."""
        where: list[str] = []
        params: list[Any] = []
        if chamber_id:
            where.append("a.chamber_id = %s")
            params.append(chamber_id)
        if not visibility.everything:
            where.append(
                "(a.chamber_id = ANY(%s) OR EXISTS (SELECT 1 FROM memberships m"
                " WHERE m.chamber_id = a.chamber_id AND m.credit_code = ANY(%s)))"
            )
            params += [list(visibility.chambers), list(visibility.enterprises)]
        if after is not None:
            where.append("(a.starts_at < %s OR (a.starts_at = %s AND a.activity_id > %s))")
            params += [after[0], after[0], after[1]]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_ACTIVITY_COLUMNS}, {_FIGURES} FROM activities a{clause}"
                " ORDER BY a.starts_at DESC, a.activity_id LIMIT %s",
                [*params, limit],
            ).fetchall()
        return [_view_of(row) for row in rows]

    def has_membership_in(self, chamber_id: str, credit_codes: Collection[str]) -> bool:
        """Whether any of these enterprises belongs (or belonged) to the chamber: a member sees its
        chamber's activities."""
        if not credit_codes:
            return False
        row = self._conn.execute(
            "SELECT 1 FROM memberships WHERE chamber_id = %s AND credit_code = ANY(%s) LIMIT 1",
            (chamber_id, list(credit_codes)),
        ).fetchone()
        return row is not None

    # --- sign-ups -----------------------------------------------------------------------------------

    def places_taken(self, activity_id: str) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM sign_ups WHERE activity_id = %s AND status IN ('CONFIRMED', 'CHECKED_IN')",
            (activity_id,),
        ).fetchone()
        return int(row[0]) if row else 0

    def add_sign_up(
        self,
        *,
        sign_up_id: str,
        activity_id: str,
        membership_id: str,
        credit_code: str,
        status: SignUpStatus,
        signed_up_at: datetime,
    ) -> None:
        """Insert a sign-up (its ``seq`` is its arrival number); a second live sign-up of the member for the
        activity violates sign_ups_live, which the unit of work answers ALREADY_EXISTS."""
        self._conn.execute(
            "INSERT INTO sign_ups (sign_up_id, activity_id, membership_id, credit_code, status, signed_up_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (sign_up_id, activity_id, membership_id, credit_code, status.value, signed_up_at),
        )

    def get_sign_up(self, sign_up_id: str) -> SignUp | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_SIGN_UP_COLUMNS} FROM sign_ups s WHERE s.sign_up_id = %s", (sign_up_id,)
            ).fetchone()
        return _sign_up_of(row) if row else None

    def live_sign_up(self, activity_id: str, membership_id: str) -> SignUp | None:
        """The member's sign-up for the activity that is not cancelled (at most one)."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_SIGN_UP_COLUMNS} FROM sign_ups s WHERE s.activity_id = %s"
                " AND s.membership_id = %s AND s.status <> 'CANCELLED'",
                (activity_id, membership_id),
            ).fetchone()
        return _sign_up_of(row) if row else None

    def first_waitlisted(self, activity_id: str) -> str | None:
        """The id of the sign-up next on the waitlist (earliest arrival)."""
        row = self._conn.execute(
            "SELECT sign_up_id FROM sign_ups WHERE activity_id = %s AND status = 'WAITLISTED'"
            " ORDER BY seq LIMIT 1",
            (activity_id,),
        ).fetchone()
        return str(row[0]) if row else None

    def set_sign_up_status(
        self, sign_up_id: str, status: SignUpStatus, *, checked_in_at: datetime | None = None
    ) -> None:
        self._conn.execute(
            "UPDATE sign_ups SET status = %s, checked_in_at = COALESCE(%s, checked_in_at)"
            " WHERE sign_up_id = %s",
            (status.value, checked_in_at, sign_up_id),
        )

    def list_sign_ups(self, activity_id: str, after_seq: int, limit: int) -> list[SignUp]:
        """The activity's sign-ups (every status) in arrival order, with waitlist positions."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_SIGN_UP_COLUMNS} FROM sign_ups s WHERE s.activity_id = %s AND s.seq > %s"
                " ORDER BY s.seq LIMIT %s",
                (activity_id, after_seq, limit),
            ).fetchall()
        return [_sign_up_of(row) for row in rows]
