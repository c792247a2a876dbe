"""Activities and sign-ups: requests -> commands, domain -> responses and events."""

from __future__ import annotations

from datetime import datetime

from cityhub.commerce.v1 import commerce_pb2, events_pb2
from cityhub.common.v1 import common_pb2

from services.commerce.domain.activities import (
    ActivityView,
    CheckIn,
    CreateActivity,
    SignUp,
    SignUpForActivity,
    SignUpStatus,
)
from services.platform.protoconv import EnumMap, datetime_of, optional_timestamp, to_timestamp

__all__ = [
    "SIGN_UP_STATUS",
    "activity_held",
    "activity_pb",
    "attendance_recorded",
    "check_in",
    "create_activity",
    "page_response",
    "sign_up_for_activity",
    "sign_up_pb",
]

SIGN_UP_STATUS = EnumMap(SignUpStatus, commerce_pb2.SignUpStatus, "SIGN_UP_STATUS")


def create_activity(request: commerce_pb2.CreateActivityRequest) -> CreateActivity:
    return CreateActivity(
        request_id=request.request_id,
        chamber_id=request.chamber_id,
        title=request.title,
        place=request.place,
        starts_at=datetime_of(request, "starts_at"),
        capacity=request.capacity,
        sign_up_deadline=datetime_of(request, "sign_up_deadline"),
    )


def sign_up_for_activity(request: commerce_pb2.SignUpForActivityRequest) -> SignUpForActivity:
    return SignUpForActivity(request.request_id, request.activity_id, request.membership_id)


def check_in(request: commerce_pb2.CheckInToActivityRequest) -> CheckIn:
    return CheckIn(request.activity_id, request.code_text)


def page_response(next_token: str) -> common_pb2.PageResponse:
    """A list's page answer; total_size -1: lists are not counted."""
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


def activity_pb(view: ActivityView) -> commerce_pb2.Activity:
    activity = view.activity
    return commerce_pb2.Activity(
        activity_id=activity.activity_id,
        chamber_id=activity.chamber_id,
        title=activity.title,
        place=activity.place,
        starts_at=to_timestamp(activity.starts_at),
        capacity=activity.capacity,
        sign_up_deadline=to_timestamp(activity.sign_up_deadline),
        confirmed=view.confirmed,
        waitlisted=view.waitlisted,
        checked_in=view.checked_in,
        created_at=to_timestamp(activity.created_at),
    )


def sign_up_pb(sign_up: SignUp) -> commerce_pb2.SignUp:
    return commerce_pb2.SignUp(
        sign_up_id=sign_up.sign_up_id,
        activity_id=sign_up.activity_id,
        membership_id=sign_up.membership_id,
        credit_code=sign_up.credit_code,
        status=SIGN_UP_STATUS.to_proto(sign_up.status),
        waitlist_position=sign_up.waitlist_position,
        signed_up_at=to_timestamp(sign_up.signed_up_at),
        checked_in_at=optional_timestamp(sign_up.checked_in_at),
    )


def activity_held(view: ActivityView) -> events_pb2.ActivityHeld:
    activity = view.activity
    return events_pb2.ActivityHeld(
        activity_id=activity.activity_id,
        chamber_id=activity.chamber_id,
        title=activity.title,
        starts_at=to_timestamp(activity.starts_at),
        capacity=activity.capacity,
    )


def attendance_recorded(chamber_id: str, sign_up: SignUp, at: datetime) -> events_pb2.AttendanceRecorded:
    return events_pb2.AttendanceRecorded(
        activity_id=sign_up.activity_id,
        chamber_id=chamber_id,
        membership_id=sign_up.membership_id,
        credit_code=sign_up.credit_code,
        at=to_timestamp(at),
    )
