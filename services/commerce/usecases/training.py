"""Learning and training: a chamber's courses, enrolment of its active members, and completion (the
CourseCompleted event and the member's excellence points, once)."""

from __future__ import annotations

from datetime import datetime

from services.commerce.domain import training as rules
from services.commerce.domain.access import Visibility
from services.commerce.domain.model import MembershipStatus, PointSource
from services.commerce.domain.training import Course, Enrolment
from services.commerce.mapping.training import course_completed
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

__all__ = ["Training"]

log = get_logger()


class Training:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    def create_course(self, command: rules.CreateCourse, visibility: Visibility) -> Course:
        command.check()
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("create_course", command.request_id, command)
            if replay is not None:
                return _stored_course(tx, replay["course_id"])
            chamber = require_chamber(tx, command.chamber_id, visibility)
            course = Course(
                new_id("course"), chamber.chamber_id, command.title, command.hours, self._ctx.clock()
            )
            tx.repo.add_course(course)
            tx.remember("create_course", command.request_id, {"course_id": course.course_id})
        log.info("course_created", course_id=course.course_id, chamber_id=course.chamber_id)
        return course

    def list_courses(
        self, chamber_id: str, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Course], str]:
        if not chamber_id:
            raise InvalidArgumentError.of("chamber_id", "is required")
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            chamber = tx.repo.get_chamber(chamber_id)
            # A chamber's courses are shown to its staff and to its members (who enrol in them).
            if chamber is None or not (
                visibility.sees_chamber(chamber.chamber_id)
                or (
                    visibility.enterprises
                    and tx.repo.is_member_of(chamber.chamber_id, visibility.enterprises)
                )
            ):
                raise NotFoundError(f"no chamber {chamber_id!r}")
            courses = tx.repo.list_courses(
                chamber.chamber_id, (after[0], after[1]) if after else None, page.size + 1
            )
        return paginate(courses, page, lambda c: (c.created_at, c.course_id))

    def enrol(self, command: rules.EnrolInCourse, visibility: Visibility) -> Enrolment:
        command.check()
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("enrol_in_course", command.request_id, command)
            if replay is not None:
                return _stored_enrolment(tx, replay["enrolment_id"])
            member = require_membership(tx, command.membership_id, visibility)
            course = tx.repo.get_course(command.course_id)
            if course is None or course.chamber_id != member.chamber_id:
                # A member sees its own chamber's courses only: another chamber's is as good as missing.
                raise NotFoundError(f"no course {command.course_id!r} in the member's chamber")
            if member.status is not MembershipStatus.ACTIVE:
                raise FailedPreconditionError(
                    f"membership_id: membership {member.membership_id} is {member.status.value}, not ACTIVE"
                )
            enrolment = Enrolment(
                new_id("enr"), course.course_id, member.membership_id, self._ctx.clock(), None
            )
            if not tx.repo.add_enrolment(enrolment):
                raise AlreadyExistsError(
                    f"membership {member.membership_id} is enrolled in course {course.course_id} already"
                )
            tx.remember("enrol_in_course", command.request_id, {"enrolment_id": enrolment.enrolment_id})
        log.info("course_enrolled", course_id=enrolment.course_id, enrolment_id=enrolment.enrolment_id)
        return enrolment

    def complete(self, enrolment_id: str, visibility: Visibility) -> Enrolment:
        if not enrolment_id:
            raise InvalidArgumentError.of("enrolment_id", "is required")
        with self._ctx.uow.transaction() as tx:
            enrolment = tx.repo.get_enrolment(enrolment_id, for_update=True)
            course = tx.repo.get_course(enrolment.course_id) if enrolment else None
            if enrolment is None or course is None or not visibility.sees_chamber(course.chamber_id):
                raise NotFoundError(f"no enrolment {enrolment_id!r}")
            done = rules.completed(enrolment, self._ctx.clock())
            tx.repo.complete_enrolment(done)
            member = tx.repo.get_membership(done.membership_id)
            assert member is not None, "memberships are never deleted"
            assert done.completed_at is not None, "just completed"
            tx.repo.add_points(
                entry_id=new_id("pts"),
                membership_id=member.membership_id,
                chamber_id=course.chamber_id,
                source=PointSource.COURSE_COMPLETED,
                source_id=course.course_id,
                points=self._ctx.config.points[PointSource.COURSE_COMPLETED],
                note=f"completed course {course.title}",
                earned_at=done.completed_at,
            )
            tx.publish(
                key=course.chamber_id,
                subject=done.enrolment_id,
                message=course_completed(course, done, member.credit_code),
            )
        log.info("course_completed", course_id=course.course_id, enrolment_id=done.enrolment_id)
        return done


def _stored_course(tx: CommerceTx, course_id: str) -> Course:
    found = tx.repo.get_course(course_id)
    assert found is not None, "a remembered course is never deleted"
    return found


def _stored_enrolment(tx: CommerceTx, enrolment_id: str) -> Enrolment:
    found = tx.repo.get_enrolment(enrolment_id)
    assert found is not None, "a remembered enrolment is never deleted"
    return found
