"""Activities: creation, sign-up with a waitlist, cancellation with automatic promotion, check-in by the
member code (verified online) and the attendance figures.

Every change of an activity's sign-ups locks the activity's row first, so the count of places taken and
the change it decides are one step: two concurrent sign-ups for the last place never both get it, and a
promotion never overfills the activity.
"""

from __future__ import annotations

from datetime import datetime

from services.commerce.domain.access import Visibility
from services.commerce.domain.activities import (
    Activity,
    ActivityView,
    CheckIn,
    CreateActivity,
    SignUp,
    SignUpForActivity,
    SignUpStatus,
    cancellable,
    status_for_new_sign_up,
)
from services.commerce.domain.codes import CodeVerdict
from services.commerce.domain.model import MembershipStatus, PointSource
from services.commerce.mapping import activities as mapping
from services.commerce.usecases.codes import verify_online
from services.commerce.usecases.common import (
    CommerceContext,
    CommerceTx,
    new_id,
    require_chamber,
    require_membership,
)
from services.platform.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["Activities"]

log = get_logger()


def _sees_activity(tx: CommerceTx, activity: Activity, visibility: Visibility) -> bool:
    """Its chamber's staff and federation staff see an activity, and so do the chamber's members."""
    if visibility.sees_chamber(activity.chamber_id):
        return True
    return tx.repo.has_membership_in(activity.chamber_id, visibility.enterprises)


def _required(field: str, value: str) -> None:
    if not value:
        raise InvalidArgumentError.of(field, "is required")


class Activities:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    # --- activities ---------------------------------------------------------------------------------

    def create_activity(self, command: CreateActivity, visibility: Visibility) -> ActivityView:
        command.check(self._ctx.clock())
        assert command.starts_at is not None, "checked"
        assert command.sign_up_deadline is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("create_activity", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_activity_view(replay["activity_id"])
                assert found is not None, "a remembered activity is never deleted"
                return found
            chamber = require_chamber(tx, command.chamber_id, visibility)
            view = ActivityView(
                Activity(
                    activity_id=new_id("act"),
                    chamber_id=chamber.chamber_id,
                    title=command.title,
                    place=command.place,
                    starts_at=command.starts_at,
                    capacity=command.capacity,
                    sign_up_deadline=command.sign_up_deadline,
                    created_at=self._ctx.clock(),
                )
            )
            activity = view.activity
            tx.repo.add_activity(activity)
            tx.publish(
                key=activity.chamber_id, subject=activity.activity_id, message=mapping.activity_held(view)
            )
            tx.remember("create_activity", command.request_id, {"activity_id": activity.activity_id})
        log.info("activity_created", activity_id=activity.activity_id, chamber_id=activity.chamber_id)
        return view

    def get_activity(self, activity_id: str, visibility: Visibility) -> ActivityView:
        _required("activity_id", activity_id)
        with self._ctx.uow.transaction() as tx:
            view = tx.repo.get_activity_view(activity_id)
            if view is None or not _sees_activity(tx, view.activity, visibility):
                raise NotFoundError(f"no activity {activity_id!r}")
        return view

    def list_activities(
        self, chamber_id: str, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[ActivityView], str]:
        """A chamber's activities (or every one the caller sees), latest start first."""
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            items = tx.repo.list_activities(
                visibility, chamber_id, (after[0], after[1]) if after else None, page.size + 1
            )
        return paginate(items, page, lambda v: (v.activity.starts_at, v.activity.activity_id))

    # --- sign-ups -----------------------------------------------------------------------------------

    def sign_up(self, command: SignUpForActivity, visibility: Visibility) -> SignUp:
        """CONFIRMED while a place is free, WAITLISTED after. A second live sign-up of the member for the
        activity is ALREADY_EXISTS; after the deadline INVALID_ARGUMENT naming ``activity_id``."""
        command.check()
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("sign_up_for_activity", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_sign_up(replay["sign_up_id"])
                assert found is not None, "a remembered sign-up is never deleted"
                return found
            membership = require_membership(tx, command.membership_id, visibility)
            activity = tx.repo.get_activity(command.activity_id, for_update=True)
            if activity is None:
                raise NotFoundError(f"no activity {command.activity_id!r}")
            if membership.chamber_id != activity.chamber_id:
                raise FailedPreconditionError(
                    "membership_id: the membership is of another chamber than the activity's"
                )
            now = self._ctx.clock()
            if now >= activity.sign_up_deadline:
                # The issue counts a late sign-up as bad input: the activity named is closed to sign-ups.
                raise InvalidArgumentError.of(
                    "activity_id",
                    f"sign-up closed at its sign_up_deadline {activity.sign_up_deadline.isoformat()}",
                )
            if membership.status is not MembershipStatus.ACTIVE:
                raise FailedPreconditionError(
                    f"membership_id: the membership is {membership.status.value}; only an ACTIVE member"
                    " signs up"
                )
            existing = tx.repo.live_sign_up(activity.activity_id, membership.membership_id)
            if existing is not None:
                raise AlreadyExistsError(
                    f"the member is already signed up (sign-up {existing.sign_up_id},"
                    f" {existing.status.value})"
                )
            status = status_for_new_sign_up(tx.repo.places_taken(activity.activity_id), activity.capacity)
            sign_up_id = new_id("su")
            tx.repo.add_sign_up(
                sign_up_id=sign_up_id,
                activity_id=activity.activity_id,
                membership_id=membership.membership_id,
                credit_code=membership.credit_code,
                status=status,
                signed_up_at=now,
            )
            tx.remember("sign_up_for_activity", command.request_id, {"sign_up_id": sign_up_id})
            sign_up = tx.repo.get_sign_up(sign_up_id)
        assert sign_up is not None, "just added"
        log.info(
            "activity_sign_up", activity_id=activity.activity_id, sign_up_id=sign_up_id, status=status.value
        )
        return sign_up

    def cancel(self, sign_up_id: str, visibility: Visibility) -> tuple[SignUp, SignUp | None]:
        """Cancel a CONFIRMED or WAITLISTED sign-up before the activity starts; a freed place goes to the
        first on the waitlist (returned as the second value)."""
        _required("sign_up_id", sign_up_id)
        with self._ctx.uow.transaction() as tx:
            found = tx.repo.get_sign_up(sign_up_id)
            activity = tx.repo.get_activity(found.activity_id, for_update=True) if found else None
            if (
                found is None
                or activity is None
                or not visibility.sees_member(activity.chamber_id, found.credit_code)
            ):
                raise NotFoundError(f"no sign-up {sign_up_id!r}")
            # Read again under the activity's lock: a concurrent cancellation or check-in may have won.
            current = tx.repo.get_sign_up(sign_up_id)
            assert current is not None, "sign-ups are never deleted"
            if not cancellable(current.status):
                raise FailedPreconditionError(f"sign_up_id: the sign-up is {current.status.value}")
            if self._ctx.clock() >= activity.starts_at:
                raise FailedPreconditionError("sign_up_id: the activity has started")
            tx.repo.set_sign_up_status(sign_up_id, SignUpStatus.CANCELLED)
            promoted: SignUp | None = None
            if current.status is SignUpStatus.CONFIRMED and (
                tx.repo.places_taken(activity.activity_id) < activity.capacity
            ):
                next_id = tx.repo.first_waitlisted(activity.activity_id)
                if next_id is not None:
                    tx.repo.set_sign_up_status(next_id, SignUpStatus.CONFIRMED)
                    promoted = tx.repo.get_sign_up(next_id)
            cancelled = tx.repo.get_sign_up(sign_up_id)
        assert cancelled is not None, "sign-ups are never deleted"
        log.info(
            "activity_sign_up_cancelled",
            activity_id=activity.activity_id,
            sign_up_id=sign_up_id,
            promoted=promoted.sign_up_id if promoted else "",
        )
        return cancelled, promoted

    def check_in(self, command: CheckIn, visibility: Visibility) -> SignUp:
        """Check a member in by its scanned code: the code must verify online (VALID, the membership
        ACTIVE) and the member must hold a CONFIRMED sign-up. Earns the attendance points once."""
        command.check()
        with self._ctx.uow.transaction() as tx:
            activity = tx.repo.get_activity(command.activity_id, for_update=True)
            if activity is None or not visibility.sees_chamber(activity.chamber_id):
                raise NotFoundError(f"no activity {command.activity_id!r}")
            result = verify_online(tx, self._ctx, command.code_text)
            if result.verdict is not CodeVerdict.VALID:
                raise FailedPreconditionError(
                    f"code_text: the member code's verdict is {result.verdict.value}"
                )
            sign_up = tx.repo.live_sign_up(activity.activity_id, result.membership_id)
            if sign_up is None:
                raise FailedPreconditionError("code_text: the member has not signed up for this activity")
            if sign_up.status is SignUpStatus.WAITLISTED:
                raise FailedPreconditionError(
                    f"code_text: the member is on the waitlist (position {sign_up.waitlist_position}),"
                    " not confirmed"
                )
            if sign_up.status is SignUpStatus.CHECKED_IN:
                at = sign_up.checked_in_at.isoformat() if sign_up.checked_in_at else ""
                raise FailedPreconditionError(f"code_text: the member was already checked in at {at}")
            now = self._ctx.clock()
            tx.repo.set_sign_up_status(sign_up.sign_up_id, SignUpStatus.CHECKED_IN, checked_in_at=now)
            tx.repo.add_points(
                entry_id=new_id("led"),
                membership_id=sign_up.membership_id,
                chamber_id=activity.chamber_id,
                source=PointSource.ACTIVITY_ATTENDANCE,
                source_id=activity.activity_id,
                points=self._ctx.config.points[PointSource.ACTIVITY_ATTENDANCE],
                note=f"attended {activity.title}",
                earned_at=now,
            )
            checked = tx.repo.get_sign_up(sign_up.sign_up_id)
            assert checked is not None, "sign-ups are never deleted"
            tx.publish(
                key=activity.chamber_id,
                subject=activity.activity_id,
                message=mapping.attendance_recorded(activity.chamber_id, checked, now),
            )
        log.info("activity_check_in", activity_id=activity.activity_id, sign_up_id=checked.sign_up_id)
        return checked

    def list_sign_ups(
        self, activity_id: str, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[SignUp], str]:
        """Every sign-up of the activity in arrival order, waitlisted ones with their positions."""
        _required("activity_id", activity_id)
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, int)
        with self._ctx.uow.transaction() as tx:
            activity = tx.repo.get_activity(activity_id)
            if activity is None or not visibility.sees_chamber(activity.chamber_id):
                raise NotFoundError(f"no activity {activity_id!r}")
            items = tx.repo.list_sign_ups(activity_id, int(after[0]) if after else 0, page.size + 1)
        return paginate(items, page, lambda s: (s.seq,))
