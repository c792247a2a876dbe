"""AI captures and violations as pure rules: the join window, the lifecycle and its refusals, time to
rectify, and every bad field of the commands named at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kitchen.domain.violations import (
    ListViolationsQuery,
    RectifyViolation,
    ReopenViolation,
    ReportCapture,
    Violation,
    ViolationKind,
    ViolationStatus,
    ViolationStep,
    joins,
    next_status,
)
from services.platform.errors import FailedPreconditionError, InvalidArgumentError

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
WINDOW = 600.0


def _violation(status: ViolationStatus = ViolationStatus.OPEN, last: datetime = NOW) -> Violation:
    return Violation(
        violation_id="vio_1",
        kitchen_id="kit_1",
        camera_id="cam_1",
        kind=ViolationKind.NO_HAT,
        status=status,
        opened_at=NOW - timedelta(minutes=30),
        last_capture_at=last,
        first_rectified_at=None,
        alert_id="kal_1",
    )


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def test_a_capture_within_the_window_joins_and_one_past_it_does_not() -> None:
    open_one = _violation()
    assert joins(open_one, ViolationKind.NO_HAT, "cam_1", NOW + timedelta(minutes=10), WINDOW)
    assert not joins(open_one, ViolationKind.NO_HAT, "cam_1", NOW + timedelta(minutes=10, seconds=1), WINDOW)
    # Cameras may report a little out of order: a capture just before the last one joins too.
    assert joins(open_one, ViolationKind.NO_HAT, "cam_1", NOW - timedelta(minutes=4), WINDOW)


def test_only_the_same_kind_at_the_same_camera_of_an_open_violation_joins() -> None:
    at = NOW + timedelta(minutes=1)
    assert not joins(_violation(), ViolationKind.NO_MASK, "cam_1", at, WINDOW)
    assert not joins(_violation(), ViolationKind.NO_HAT, "cam_2", at, WINDOW)
    assert joins(_violation(ViolationStatus.REOPENED), ViolationKind.NO_HAT, "cam_1", at, WINDOW)
    for closed in (ViolationStatus.RECTIFIED, ViolationStatus.VERIFIED):
        assert not joins(_violation(closed), ViolationKind.NO_HAT, "cam_1", at, WINDOW)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (ViolationStatus.OPEN, ViolationStatus.RECTIFIED),
        (ViolationStatus.REOPENED, ViolationStatus.RECTIFIED),
        (ViolationStatus.RECTIFIED, ViolationStatus.VERIFIED),
        (ViolationStatus.RECTIFIED, ViolationStatus.REOPENED),
    ],
)
def test_the_lifecycle_allows_each_step_from_its_status(
    current: ViolationStatus, target: ViolationStatus
) -> None:
    assert next_status(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (ViolationStatus.VERIFIED, ViolationStatus.RECTIFIED),
        (ViolationStatus.RECTIFIED, ViolationStatus.RECTIFIED),
        (ViolationStatus.OPEN, ViolationStatus.VERIFIED),
        (ViolationStatus.VERIFIED, ViolationStatus.VERIFIED),
        (ViolationStatus.OPEN, ViolationStatus.REOPENED),
        (ViolationStatus.REOPENED, ViolationStatus.REOPENED),
        (ViolationStatus.RECTIFIED, ViolationStatus.OPEN),
    ],
)
def test_a_skipped_or_repeated_step_is_a_failed_precondition(
    current: ViolationStatus, target: ViolationStatus
) -> None:
    with pytest.raises(FailedPreconditionError, match=current.value):
        next_status(current, target)


def test_time_to_rectify_counts_from_opening_to_the_first_rectification_only() -> None:
    violation = _violation()
    assert violation.seconds_to_rectify == 0
    first = violation.stepped(ViolationStep(ViolationStatus.RECTIFIED, NOW, "mgr", "hats on", "p1"))
    assert first.seconds_to_rectify == 1800
    again = first.stepped(
        ViolationStep(ViolationStatus.REOPENED, NOW + timedelta(hours=1), "insp", "still no hat", "")
    ).stepped(ViolationStep(ViolationStatus.RECTIFIED, NOW + timedelta(hours=2), "mgr", "done", ""))
    assert again.status is ViolationStatus.RECTIFIED
    assert again.seconds_to_rectify == 1800
    assert [s.status for s in again.history] == [
        ViolationStatus.RECTIFIED,
        ViolationStatus.REOPENED,
        ViolationStatus.RECTIFIED,
    ]


def test_a_capture_clock_ahead_of_the_server_never_gives_a_negative_time_to_rectify() -> None:
    ahead = Violation(
        "vio_2", "kit_1", "cam_1", ViolationKind.SMOKING, ViolationStatus.OPEN, NOW, NOW, None, ""
    ).stepped(ViolationStep(ViolationStatus.RECTIFIED, NOW - timedelta(seconds=90), "mgr", "x", ""))
    assert ahead.seconds_to_rectify == 0


def test_a_capture_names_every_bad_field_at_once() -> None:
    command = ReportCapture(
        request_id="",
        kitchen_id="",
        camera_id="",
        kind=None,
        captured_at=NOW + timedelta(minutes=6),
        snapshot_ref="",
        confidence=1.5,
    )
    with pytest.raises(InvalidArgumentError) as error:
        command.check(NOW)
    assert _fields(error) == {
        "request_id",
        "kitchen_id",
        "camera_id",
        "kind",
        "captured_at",
        "snapshot_ref",
        "confidence",
    }


def test_a_capture_needs_its_time_and_a_finite_confidence() -> None:
    command = ReportCapture("r-1", "kit_1", "cam_1", ViolationKind.NO_GLOVES, None, "snap/1", float("nan"))
    with pytest.raises(InvalidArgumentError) as error:
        command.check(NOW)
    assert _fields(error) == {"captured_at", "confidence"}
    ReportCapture("r-1", "kit_1", "cam_1", ViolationKind.NO_GLOVES, NOW, "snap/1", 0.0).check(NOW)


def test_rectify_needs_an_action_and_reopen_a_reason() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RectifyViolation("vio_1", " ", "").check()
    assert _fields(error) == {"action"}
    with pytest.raises(InvalidArgumentError) as error:
        ReopenViolation("vio_1", "").check()
    assert _fields(error) == {"reason"}
    RectifyViolation("vio_1", "Hats handed out.\nStaff briefed.", "").check()


def test_a_list_refuses_an_unspecified_status_and_a_backwards_period() -> None:
    query = ListViolationsQuery("kit_1", (ViolationStatus.OPEN, None), None, NOW, NOW - timedelta(days=1))
    with pytest.raises(InvalidArgumentError) as error:
        query.check()
    assert _fields(error) == {"statuses[1]", "period.end_time"}
