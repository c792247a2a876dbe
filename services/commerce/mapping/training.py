"""Proto <-> domain for learning and training: courses, enrolments and the CourseCompleted event."""

from __future__ import annotations

from cityhub.commerce.v1 import commerce_pb2, events_pb2

from services.commerce.domain import training as rules
from services.commerce.domain.training import Course, Enrolment
from services.platform.protoconv import optional_timestamp, to_timestamp

__all__ = ["course_completed", "course_pb", "create_course", "enrol_in_course", "enrolment_pb"]


def create_course(request: commerce_pb2.CreateCourseRequest) -> rules.CreateCourse:
    return rules.CreateCourse(
        request_id=request.request_id, chamber_id=request.chamber_id, title=request.title, hours=request.hours
    )


def enrol_in_course(request: commerce_pb2.EnrolInCourseRequest) -> rules.EnrolInCourse:
    return rules.EnrolInCourse(
        request_id=request.request_id, course_id=request.course_id, membership_id=request.membership_id
    )


def course_pb(course: Course) -> commerce_pb2.Course:
    return commerce_pb2.Course(
        course_id=course.course_id,
        chamber_id=course.chamber_id,
        title=course.title,
        hours=course.hours,
        enrolled=course.enrolled,
        completed=course.completed,
        created_at=to_timestamp(course.created_at),
    )


def enrolment_pb(enrolment: Enrolment) -> commerce_pb2.Enrolment:
    return commerce_pb2.Enrolment(
        enrolment_id=enrolment.enrolment_id,
        course_id=enrolment.course_id,
        membership_id=enrolment.membership_id,
        enrolled_at=to_timestamp(enrolment.enrolled_at),
        completed_at=optional_timestamp(enrolment.completed_at),
    )


def course_completed(course: Course, enrolment: Enrolment, credit_code: str) -> events_pb2.CourseCompleted:
    assert enrolment.completed_at is not None, "a completed enrolment has its time"
    return events_pb2.CourseCompleted(
        course_id=course.course_id,
        chamber_id=course.chamber_id,
        membership_id=enrolment.membership_id,
        credit_code=credit_code,
        at=to_timestamp(enrolment.completed_at),
    )
