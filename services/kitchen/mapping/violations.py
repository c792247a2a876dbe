"""Proto <-> domain for AI captures and violations: commands from requests, responses and events."""

from __future__ import annotations

from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.kitchen.domain.violations import (
    Capture,
    ListViolationsQuery,
    RectifyViolation,
    ReopenViolation,
    ReportCapture,
    VerifyViolation,
    Violation,
    ViolationKind,
    ViolationStatus,
    ViolationStep,
)
from services.platform.protoconv import EnumMap, datetime_of, time_range
from services.platform.protoconv import optional_timestamp as ts

__all__ = [
    "VIOLATION_KIND",
    "VIOLATION_STATUS",
    "list_violations",
    "page_pb",
    "rectify_violation",
    "reopen_violation",
    "report_capture",
    "verify_violation",
    "violation_opened",
    "violation_pb",
    "violation_rectified",
    "violation_reopened",
    "violation_verified",
]

VIOLATION_KIND = EnumMap(ViolationKind, kitchen_pb2.ViolationKind, "VIOLATION_KIND")
VIOLATION_STATUS = EnumMap(ViolationStatus, kitchen_pb2.ViolationStatus, "VIOLATION_STATUS")


# --- requests -> commands -------------------------------------------------------------------------------


def report_capture(request: kitchen_pb2.ReportCaptureRequest) -> ReportCapture:
    return ReportCapture(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        camera_id=request.camera_id,
        kind=VIOLATION_KIND.from_proto(request.kind),
        captured_at=datetime_of(request, "captured_at"),
        snapshot_ref=request.snapshot_ref,
        confidence=request.confidence,
    )


def rectify_violation(request: kitchen_pb2.RectifyViolationRequest) -> RectifyViolation:
    return RectifyViolation(request.violation_id, request.action, request.photo_ref)


def verify_violation(request: kitchen_pb2.VerifyViolationRequest) -> VerifyViolation:
    return VerifyViolation(request.violation_id, request.note)


def reopen_violation(request: kitchen_pb2.ReopenViolationRequest) -> ReopenViolation:
    return ReopenViolation(request.violation_id, request.reason)


def list_violations(request: kitchen_pb2.ListViolationsRequest) -> ListViolationsQuery:
    start, end = time_range(request.period)
    return ListViolationsQuery(
        kitchen_id=request.kitchen_id,
        statuses=tuple(VIOLATION_STATUS.from_proto(s) for s in request.statuses),
        kind=VIOLATION_KIND.from_proto(request.kind),
        start=start,
        end=end,
    )


# --- domain -> responses --------------------------------------------------------------------------------


def page_pb(next_token: str) -> common_pb2.PageResponse:
    """A list's page answer: the next token ("" on the last page); totals are not counted (-1)."""
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


def _capture_pb(capture: Capture) -> kitchen_pb2.Capture:
    return kitchen_pb2.Capture(
        capture_id=capture.capture_id,
        camera_id=capture.camera_id,
        kind=VIOLATION_KIND.to_proto(capture.kind),
        captured_at=ts(capture.captured_at),
        snapshot_ref=capture.snapshot_ref,
        confidence=capture.confidence,
    )


def _step_pb(step: ViolationStep) -> kitchen_pb2.ViolationStep:
    return kitchen_pb2.ViolationStep(
        status=VIOLATION_STATUS.to_proto(step.status),
        at=ts(step.at),
        by=step.by,
        note=step.note,
        photo_ref=step.photo_ref,
    )


def violation_pb(violation: Violation) -> kitchen_pb2.Violation:
    return kitchen_pb2.Violation(
        violation_id=violation.violation_id,
        kitchen_id=violation.kitchen_id,
        camera_id=violation.camera_id,
        kind=VIOLATION_KIND.to_proto(violation.kind),
        status=VIOLATION_STATUS.to_proto(violation.status),
        opened_at=ts(violation.opened_at),
        captures=[_capture_pb(c) for c in violation.captures],
        history=[_step_pb(s) for s in violation.history],
        seconds_to_rectify=violation.seconds_to_rectify,
    )


# --- events ---------------------------------------------------------------------------------------------


def violation_opened(violation: Violation) -> events_pb2.ViolationOpened:
    return events_pb2.ViolationOpened(
        kitchen_id=violation.kitchen_id,
        violation_id=violation.violation_id,
        camera_id=violation.camera_id,
        kind=VIOLATION_KIND.to_proto(violation.kind),
        opened_at=ts(violation.opened_at),
    )


def violation_rectified(violation: Violation, step: ViolationStep) -> events_pb2.ViolationRectified:
    return events_pb2.ViolationRectified(
        kitchen_id=violation.kitchen_id,
        violation_id=violation.violation_id,
        kind=VIOLATION_KIND.to_proto(violation.kind),
        seconds_to_rectify=violation.seconds_to_rectify,
        at=ts(step.at),
    )


def violation_verified(violation: Violation, step: ViolationStep) -> events_pb2.ViolationVerified:
    return events_pb2.ViolationVerified(
        kitchen_id=violation.kitchen_id,
        violation_id=violation.violation_id,
        kind=VIOLATION_KIND.to_proto(violation.kind),
        at=ts(step.at),
    )


def violation_reopened(violation: Violation, step: ViolationStep) -> events_pb2.ViolationReopened:
    return events_pb2.ViolationReopened(
        kitchen_id=violation.kitchen_id,
        violation_id=violation.violation_id,
        kind=VIOLATION_KIND.to_proto(violation.kind),
        at=ts(step.at),
    )
