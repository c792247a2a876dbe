"""Learning and training: a chamber's courses, its members' enrolments and completions (a completion earns
excellence points once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.platform.errors import FailedPreconditionError, Violations
from services.platform.idempotency import check_request_id
from services.platform.validation import text_problem

__all__ = [
    "MAX_HOURS",
    "Course",
    "CreateCourse",
    "EnrolInCourse",
    "Enrolment",
    "completed",
]

MAX_HOURS = 1000
_MAX_TITLE = 200


@dataclass(frozen=True, slots=True)
class Course:
    course_id: str
    chamber_id: str
    title: str
    hours: int
    created_at: datetime
    # Figures counted when listed (0 on a course just made).
    enrolled: int = 0
    completed: int = 0


@dataclass(frozen=True, slots=True)
class Enrolment:
    enrolment_id: str
    course_id: str
    membership_id: str
    enrolled_at: datetime
    completed_at: datetime | None


def completed(enrolment: Enrolment, now: datetime) -> Enrolment:
    if enrolment.completed_at is not None:
        raise FailedPreconditionError(f"enrolment {enrolment.enrolment_id} was completed already")
    return Enrolment(
        enrolment.enrolment_id, enrolment.course_id, enrolment.membership_id, enrolment.enrolled_at, now
    )


@dataclass(frozen=True, slots=True)
class CreateCourse:
    request_id: str
    chamber_id: str
    title: str
    hours: int

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.chamber_id:
            v.add("chamber_id", "is required")
        if not self.title.strip():
            v.add("title", "is required")
        else:
            v.add_if(text_problem(self.title, max_chars=_MAX_TITLE), "title")
        if not 1 <= self.hours <= MAX_HOURS:
            v.add("hours", f"must be 1-{MAX_HOURS}")
        v.check()


@dataclass(frozen=True, slots=True)
class EnrolInCourse:
    request_id: str
    course_id: str
    membership_id: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.course_id:
            v.add("course_id", "is required")
        if not self.membership_id:
            v.add("membership_id", "is required")
        v.check()
