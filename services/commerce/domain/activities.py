"""Activities (forums, visits, training days): capacity, a sign-up deadline, a waitlist promoted in arrival
order when a confirmed member cancels, and check-in by scanning the member code.

Rules:
* a sign-up is CONFIRMED while the places taken (CONFIRMED + CHECKED_IN) are fewer than the capacity,
  WAITLISTED after; its waitlist position is its rank among the waitlisted by arrival (``seq``), 1 = next;
* cancelling a CONFIRMED sign-up promotes the first waitlisted one (a cancelled WAITLISTED one frees no
  place); CHECKED_IN and CANCELLED sign-ups cannot be cancelled;
* the figures: ``confirmed`` counts every sign-up holding a place (CONFIRMED or CHECKED_IN), ``checked_in``
  those checked in, ``waitlisted`` the waitlist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.commerce.domain.codes import MAX_CODE_CHARS
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.validation import text_problem

__all__ = [
    "MAX_CAPACITY",
    "MAX_PLACE",
    "MAX_TITLE",
    "Activity",
    "ActivityView",
    "CheckIn",
    "CreateActivity",
    "SignUp",
    "SignUpForActivity",
    "SignUpStatus",
    "cancellable",
    "check_id",
    "status_for_new_sign_up",
]

MAX_CAPACITY = 100_000
MAX_TITLE = 200
MAX_PLACE = 500
# An activity planned further ahead than this is a typing mistake, not a plan.
MAX_AHEAD = timedelta(days=5 * 366)


class SignUpStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    WAITLISTED = "WAITLISTED"
    CANCELLED = "CANCELLED"
    CHECKED_IN = "CHECKED_IN"


@dataclass(frozen=True, slots=True)
class Activity:
    activity_id: str
    chamber_id: str
    title: str
    place: str
    starts_at: datetime
    capacity: int
    sign_up_deadline: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityView:
    """An activity with its attendance figures."""

    activity: Activity
    confirmed: int = 0
    waitlisted: int = 0
    checked_in: int = 0


@dataclass(frozen=True, slots=True)
class SignUp:
    sign_up_id: str
    activity_id: str
    membership_id: str
    credit_code: str
    status: SignUpStatus
    # Arrival order (the waitlist's order).
    seq: int
    signed_up_at: datetime
    checked_in_at: datetime | None = None
    # 1 = next on the waitlist; 0 when not waitlisted.
    waitlist_position: int = 0


def status_for_new_sign_up(places_taken: int, capacity: int) -> SignUpStatus:
    """CONFIRMED while a place is free, WAITLISTED after."""
    return SignUpStatus.CONFIRMED if places_taken < capacity else SignUpStatus.WAITLISTED


def cancellable(status: SignUpStatus) -> bool:
    return status in (SignUpStatus.CONFIRMED, SignUpStatus.WAITLISTED)


def check_id(violations: Violations, field: str, value: str) -> None:
    if not value:
        violations.add(field, "is required")


def _text(violations: Violations, field: str, value: str, limit: int) -> None:
    if not value.strip():
        violations.add(field, "is required")
    else:
        violations.add_if(text_problem(value, max_chars=limit), field)


@dataclass(frozen=True, slots=True)
class CreateActivity:
    request_id: str
    chamber_id: str
    title: str
    place: str
    starts_at: datetime | None
    capacity: int
    sign_up_deadline: datetime | None

    def check(self, now: datetime) -> None:
        """Every bad field at once; ``now`` is the server's clock (both times must lie ahead of it)."""
        v = Violations()
        check_request_id(v, self.request_id)
        check_id(v, "chamber_id", self.chamber_id)
        _text(v, "title", self.title, MAX_TITLE)
        _text(v, "place", self.place, MAX_PLACE)
        if not 1 <= self.capacity <= MAX_CAPACITY:
            v.add("capacity", f"must be 1 to {MAX_CAPACITY}")
        starts_ok = False
        if self.starts_at is None:
            v.add("starts_at", "is required")
        elif self.starts_at <= now:
            v.add("starts_at", "must be in the future")
        elif self.starts_at > now + MAX_AHEAD:
            v.add("starts_at", "must be within five years")
        else:
            starts_ok = True
        if self.sign_up_deadline is None:
            v.add("sign_up_deadline", "is required")
        elif self.sign_up_deadline <= now:
            v.add("sign_up_deadline", "must be in the future")
        elif starts_ok and self.starts_at is not None and self.sign_up_deadline >= self.starts_at:
            v.add("sign_up_deadline", "must be before starts_at")
        v.check()


@dataclass(frozen=True, slots=True)
class SignUpForActivity:
    request_id: str
    activity_id: str
    membership_id: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        check_id(v, "activity_id", self.activity_id)
        check_id(v, "membership_id", self.membership_id)
        v.check()


@dataclass(frozen=True, slots=True)
class CheckIn:
    activity_id: str
    code_text: str

    def check(self) -> None:
        v = Violations()
        check_id(v, "activity_id", self.activity_id)
        if not self.code_text:
            v.add("code_text", "is required (the scanned member code)")
        elif len(self.code_text) > MAX_CODE_CHARS:
            v.add("code_text", f"is not a member code (longer than {MAX_CODE_CHARS} characters)")
        v.check()
