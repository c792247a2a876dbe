"""AI camera captures and the violations they open: the kinds, the lifecycle (OPEN -> RECTIFIED ->
VERIFIED, or RECTIFIED -> REOPENED -> RECTIFIED ...), the join rule for repeated captures, time to
rectify, and the commands with their checks. Pure: no grpc, psycopg or kafka."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.platform.errors import FailedPreconditionError, Violations
from services.platform.idempotency import check_request_id
from services.platform.validation import check_event_time, check_query_period, text_problem

__all__ = [
    "CAMERA_KIND",
    "JOINABLE",
    "Capture",
    "ListViolationsQuery",
    "RectifyViolation",
    "ReopenViolation",
    "ReportCapture",
    "VerifyViolation",
    "Violation",
    "ViolationKind",
    "ViolationStatus",
    "ViolationStep",
    "joins",
    "next_status",
]

# How the equipment family stores a camera's kind (its domain StrEnum value): only a camera reports
# captures.
CAMERA_KIND = "CAMERA"
_MAX_REF = 500
_MAX_NOTE = 2000


class ViolationKind(StrEnum):
    NO_HAT = "NO_HAT"
    NO_MASK = "NO_MASK"
    NO_GLOVES = "NO_GLOVES"
    SMOKING = "SMOKING"
    PHONE_USE = "PHONE_USE"
    RODENT_OR_PEST = "RODENT_OR_PEST"
    RAW_COOKED_MIXED = "RAW_COOKED_MIXED"


class ViolationStatus(StrEnum):
    OPEN = "OPEN"
    RECTIFIED = "RECTIFIED"
    VERIFIED = "VERIFIED"
    REOPENED = "REOPENED"


# A capture joins only a violation the manager still has to act on.
JOINABLE = frozenset({ViolationStatus.OPEN, ViolationStatus.REOPENED})

# Which statuses each step may leave from, and where it leads.
_STEPS: dict[ViolationStatus, frozenset[ViolationStatus]] = {
    ViolationStatus.RECTIFIED: frozenset({ViolationStatus.OPEN, ViolationStatus.REOPENED}),
    ViolationStatus.VERIFIED: frozenset({ViolationStatus.RECTIFIED}),
    ViolationStatus.REOPENED: frozenset({ViolationStatus.RECTIFIED}),
}


@dataclass(frozen=True, slots=True)
class Capture:
    capture_id: str
    camera_id: str
    kind: ViolationKind
    captured_at: datetime
    snapshot_ref: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ViolationStep:
    status: ViolationStatus
    at: datetime
    by: str
    note: str
    photo_ref: str


@dataclass(frozen=True, slots=True)
class Violation:
    violation_id: str
    kitchen_id: str
    camera_id: str
    kind: ViolationKind
    status: ViolationStatus
    opened_at: datetime
    last_capture_at: datetime
    first_rectified_at: datetime | None
    alert_id: str
    captures: tuple[Capture, ...] = ()
    history: tuple[ViolationStep, ...] = ()

    @property
    def seconds_to_rectify(self) -> int:
        """Seconds from opening to the first rectification (0 before it; never negative, as a capture's
        clock may run a little ahead of the server's)."""
        if self.first_rectified_at is None:
            return 0
        return max(0, int((self.first_rectified_at - self.opened_at).total_seconds()))

    def stepped(self, step: ViolationStep) -> Violation:
        """This violation after ``step`` (the first rectification fixes the time to rectify)."""
        first = self.first_rectified_at
        if step.status == ViolationStatus.RECTIFIED and first is None:
            first = step.at
        return replace(self, status=step.status, first_rectified_at=first, history=(*self.history, step))


def joins(violation: Violation, kind: ViolationKind, camera_id: str, at: datetime, window_s: float) -> bool:
    """A capture of ``kind`` at ``camera_id`` at ``at`` joins ``violation`` when the violation is still
    open (OPEN or REOPENED), of the same kind at the same camera, and its last capture is within the
    window (either side: cameras may report a little out of order)."""
    return (
        violation.status in JOINABLE
        and violation.kind == kind
        and violation.camera_id == camera_id
        and abs(at - violation.last_capture_at) <= timedelta(seconds=window_s)
    )


def next_status(current: ViolationStatus, target: ViolationStatus) -> ViolationStatus:
    """``target`` when the lifecycle allows it from ``current``; FAILED_PRECONDITION otherwise (a repeat
    of the same step included: the RPCs carry no request id, so a repeat cannot be told from a mistake)."""
    allowed = _STEPS.get(target, frozenset())
    if current not in allowed:
        expected = " or ".join(sorted(s.value for s in allowed)) or "none"
        raise FailedPreconditionError(
            f"violation_id: the violation is {current.value}; only a {expected} violation can become "
            f"{target.value}"
        )
    return target


def _text(v: Violations, field: str, value: str, limit: int, *, required: bool, free: bool = False) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    elif value:
        v.add_if(text_problem(value, max_chars=limit, free_text=free), field)


@dataclass(frozen=True, slots=True)
class ReportCapture:
    request_id: str
    kitchen_id: str
    camera_id: str
    kind: ViolationKind | None
    captured_at: datetime | None
    snapshot_ref: str
    confidence: float

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "kitchen_id", self.kitchen_id, 128, required=True)
        _text(v, "camera_id", self.camera_id, 128, required=True)
        if self.kind is None:
            v.add("kind", "is required (a violation kind)")
        check_event_time(v, "captured_at", self.captured_at, now)
        _text(v, "snapshot_ref", self.snapshot_ref, _MAX_REF, required=True)
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            v.add("confidence", "must be between 0 and 1")
        v.check()


@dataclass(frozen=True, slots=True)
class RectifyViolation:
    violation_id: str
    action: str
    photo_ref: str

    def check(self) -> None:
        v = Violations()
        _text(v, "violation_id", self.violation_id, 128, required=True)
        _text(v, "action", self.action, _MAX_NOTE, required=True, free=True)
        _text(v, "photo_ref", self.photo_ref, _MAX_REF, required=False)
        v.check()


@dataclass(frozen=True, slots=True)
class VerifyViolation:
    violation_id: str
    note: str

    def check(self) -> None:
        v = Violations()
        _text(v, "violation_id", self.violation_id, 128, required=True)
        _text(v, "note", self.note, _MAX_NOTE, required=False, free=True)
        v.check()


@dataclass(frozen=True, slots=True)
class ReopenViolation:
    violation_id: str
    reason: str

    def check(self) -> None:
        v = Violations()
        _text(v, "violation_id", self.violation_id, 128, required=True)
        _text(v, "reason", self.reason, _MAX_NOTE, required=True, free=True)
        v.check()


@dataclass(frozen=True, slots=True)
class ListViolationsQuery:
    kitchen_id: str
    # None in the tuple: UNSPECIFIED, which names no status (named by its index).
    statuses: tuple[ViolationStatus | None, ...]
    # None: every kind.
    kind: ViolationKind | None
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        v = Violations()
        _text(v, "kitchen_id", self.kitchen_id, 128, required=True)
        for i, status in enumerate(self.statuses):
            if status is None:
                v.add(f"statuses[{i}]", "must be a violation status")
        check_query_period(v, "period", self.start, self.end, required=False)
        v.check()

    @property
    def status_filter(self) -> frozenset[ViolationStatus]:
        return frozenset(s for s in self.statuses if s is not None)
