"""AI captures and violations over real gRPC, PostgreSQL and Kafka: a capture opens a violation that is
rectified and verified, or reopened and rectified again; a capture of the same kind at the same camera
within 10 minutes joins it, 11 minutes later opens another; concurrent captures open one violation; bad
cameras and skipped steps are refused; events read back from Kafka."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.platform.protoconv import to_timestamp
from tests.integration.kitchen.kitchen_support import INSPECTOR, Kitchen, rid
from tests.support import violations, wait_until

MANAGER = ("kitchen_manager",)
Violation = kitchen_pb2.Violation


def _error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _camera(
    kitchen: Kitchen,
    kitchen_id: str,
    kind: kitchen_pb2.EquipmentKind.ValueType = kitchen_pb2.EQUIPMENT_KIND_CAMERA,
) -> str:
    """A unit registered with RegisterEquipment (retried while that family is still being deployed)."""

    def register() -> str | None:
        try:
            reply = kitchen.call(
                "RegisterEquipment",
                kitchen_pb2.RegisterEquipmentRequest(
                    request_id=rid(), kitchen_id=kitchen_id, kind=kind, name="Prep room camera"
                ),
            )
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL):
                return None
            raise
        return str(reply.equipment.equipment_id)

    return wait_until(register, timeout_s=300, what="RegisterEquipment", interval_s=5)


def _capture(
    kitchen: Kitchen,
    kitchen_id: str,
    camera_id: str,
    at: datetime,
    kind: kitchen_pb2.ViolationKind.ValueType = kitchen_pb2.VIOLATION_KIND_NO_HAT,
    *,
    request_id: str = "",
) -> kitchen_pb2.ReportCaptureResponse:
    reply: kitchen_pb2.ReportCaptureResponse = kitchen.call(
        "ReportCapture",
        kitchen_pb2.ReportCaptureRequest(
            request_id=request_id or rid(),
            kitchen_id=kitchen_id,
            camera_id=camera_id,
            kind=kind,
            captured_at=to_timestamp(at),
            snapshot_ref=f"snap/{rid()}",
            confidence=0.93,
        ),
    )
    return reply


def _manager(kitchen_id: str) -> dict[str, Any]:
    return {"roles": MANAGER, "scopes": (f"kitchen:{kitchen_id}",)}


def _rectify(kitchen: Kitchen, violation: Violation, action: str = "Hats handed out") -> Violation:
    request = kitchen_pb2.RectifyViolationRequest(
        violation_id=violation.violation_id, action=action, photo_ref="photo/after.jpg"
    )
    reply: kitchen_pb2.RectifyViolationResponse = kitchen.call(
        "RectifyViolation", request, **_manager(violation.kitchen_id)
    )
    return reply.violation


def _events(kitchen: Kitchen, subject: str, count: int) -> list[tuple[str, Any]]:
    def enough() -> list[tuple[str, Any]] | None:
        found = kitchen.events({subject})
        return found if len(found) >= count else None

    return wait_until(enough, timeout_s=20, what=f"{count} events about {subject}")


def _violation_alerts(kitchen: Kitchen, kitchen_id: str, *, open_only: bool = False) -> list[Any]:
    request = kitchen_pb2.ListKitchenAlertsRequest(
        kitchen_id=kitchen_id, kinds=[kitchen_pb2.ALERT_KIND_VIOLATION], open_only=open_only
    )
    return list(kitchen.call("ListKitchenAlerts", request, roles=INSPECTOR).alerts)


def _statuses(violation: Violation) -> list[int]:
    return [step.status for step in violation.history]


def test_a_capture_is_rectified_then_verified(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    camera = _camera(kitchen, kitchen_id)
    seen = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    opened = _capture(kitchen, kitchen_id, camera, seen)
    assert not opened.joined
    violation = opened.violation
    assert violation.status == kitchen_pb2.VIOLATION_STATUS_OPEN
    assert violation.opened_at.ToDatetime(UTC) == seen
    assert (violation.camera_id, violation.seconds_to_rectify, len(violation.captures)) == (camera, 0, 1)
    alerts = _violation_alerts(kitchen, kitchen_id)
    assert [(a.subject_id, a.severity) for a in alerts] == [
        (violation.violation_id, common_pb2.SEVERITY_MEDIUM)
    ]

    rectified = _rectify(kitchen, violation)
    assert rectified.status == kitchen_pb2.VIOLATION_STATUS_RECTIFIED
    step = rectified.history[-1]
    assert (step.note, step.photo_ref) == ("Hats handed out", "photo/after.jpg")
    assert step.by.startswith("tester-")
    assert rectified.seconds_to_rectify == int((step.at.ToDatetime(UTC) - seen).total_seconds())
    assert 1200 <= rectified.seconds_to_rectify < 1300

    verified = kitchen.call(
        "VerifyViolation",
        kitchen_pb2.VerifyViolationRequest(violation_id=violation.violation_id, note="Checked on site"),
        roles=INSPECTOR,
    ).violation
    assert verified.status == kitchen_pb2.VIOLATION_STATUS_VERIFIED
    assert _statuses(verified) == [
        kitchen_pb2.VIOLATION_STATUS_OPEN,
        kitchen_pb2.VIOLATION_STATUS_RECTIFIED,
        kitchen_pb2.VIOLATION_STATUS_VERIFIED,
    ]
    assert verified.history[-1].note == "Checked on site"
    assert verified.history[-1].by != verified.history[1].by
    assert verified.seconds_to_rectify == rectified.seconds_to_rectify
    # Verified closes the matter: the manager's alert is cleared.
    assert _violation_alerts(kitchen, kitchen_id, open_only=True) == []

    # Rectifying (or verifying) a verified violation is a lifecycle step out of order.
    error = _error(lambda: _rectify(kitchen, violation))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "VERIFIED" in (error.details() or "")
    again = _error(
        lambda: kitchen.call(
            "VerifyViolation",
            kitchen_pb2.VerifyViolationRequest(violation_id=violation.violation_id),
            roles=INSPECTOR,
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    events = _events(kitchen, violation.violation_id, 3)
    assert [type(m) for _, m in events] == [
        events_pb2.ViolationOpened,
        events_pb2.ViolationRectified,
        events_pb2.ViolationVerified,
    ]
    opened_event, rectified_event = events[0][1], events[1][1]
    assert (opened_event.kitchen_id, opened_event.camera_id) == (kitchen_id, camera)
    assert opened_event.kind == kitchen_pb2.VIOLATION_KIND_NO_HAT
    assert rectified_event.seconds_to_rectify == rectified.seconds_to_rectify

    fetched = kitchen.call(
        "GetViolation", kitchen_pb2.GetViolationRequest(violation_id=violation.violation_id), roles=INSPECTOR
    ).violation
    assert fetched == verified


def test_a_reopened_violation_is_rectified_again_and_keeps_its_first_time_to_rectify(
    kitchen: Kitchen,
) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    camera = _camera(kitchen, kitchen_id)
    seen = datetime.now(UTC) - timedelta(minutes=45)
    violation = _capture(kitchen, kitchen_id, camera, seen, kitchen_pb2.VIOLATION_KIND_NO_MASK).violation
    first = _rectify(kitchen, violation, "Masks on")

    missing_reason = _error(
        lambda: kitchen.call(
            "ReopenViolation",
            kitchen_pb2.ReopenViolationRequest(violation_id=violation.violation_id),
            roles=INSPECTOR,
        )
    )
    assert missing_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(missing_reason)) == {"reason"}

    reopened = kitchen.call(
        "ReopenViolation",
        kitchen_pb2.ReopenViolationRequest(violation_id=violation.violation_id, reason="Still no masks"),
        roles=INSPECTOR,
    ).violation
    assert reopened.status == kitchen_pb2.VIOLATION_STATUS_REOPENED
    assert reopened.history[-1].note == "Still no masks"
    # Only a rectified violation can be reopened or verified.
    for rpc, request in (
        (
            "ReopenViolation",
            kitchen_pb2.ReopenViolationRequest(violation_id=violation.violation_id, reason="x"),
        ),
        ("VerifyViolation", kitchen_pb2.VerifyViolationRequest(violation_id=violation.violation_id)),
    ):
        refused = _error(partial(kitchen.call, rpc, request, roles=INSPECTOR))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION, rpc

    second = _rectify(kitchen, violation, "Masks on, supervisor checks hourly")
    assert second.status == kitchen_pb2.VIOLATION_STATUS_RECTIFIED
    assert second.seconds_to_rectify == first.seconds_to_rectify
    assert _statuses(second) == [
        kitchen_pb2.VIOLATION_STATUS_OPEN,
        kitchen_pb2.VIOLATION_STATUS_RECTIFIED,
        kitchen_pb2.VIOLATION_STATUS_REOPENED,
        kitchen_pb2.VIOLATION_STATUS_RECTIFIED,
    ]
    events = _events(kitchen, violation.violation_id, 4)
    assert [type(m).__name__ for _, m in events] == [
        "ViolationOpened",
        "ViolationRectified",
        "ViolationReopened",
        "ViolationRectified",
    ]

    # Another kitchen's manager cannot tell this violation from a missing one.
    other = kitchen.register_kitchen().kitchen_id
    hidden = _error(
        lambda: kitchen.call(
            "RectifyViolation",
            kitchen_pb2.RectifyViolationRequest(violation_id=violation.violation_id, action="x"),
            **_manager(other),
        )
    )
    assert hidden.code() == grpc.StatusCode.NOT_FOUND


def test_a_capture_within_ten_minutes_joins_and_one_eleven_minutes_later_opens_another(
    kitchen: Kitchen,
) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    camera = _camera(kitchen, kitchen_id)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    first = _capture(kitchen, kitchen_id, camera, start, kitchen_pb2.VIOLATION_KIND_SMOKING)
    joined = _capture(
        kitchen, kitchen_id, camera, start + timedelta(minutes=5), kitchen_pb2.VIOLATION_KIND_SMOKING
    )
    assert (first.joined, joined.joined) == (False, True)
    assert joined.violation.violation_id == first.violation.violation_id
    assert [c.captured_at.ToDatetime(UTC) for c in joined.violation.captures] == [
        start,
        start + timedelta(minutes=5),
    ]
    # Another kind at the same camera is another violation.
    phone = _capture(
        kitchen, kitchen_id, camera, start + timedelta(minutes=6), kitchen_pb2.VIOLATION_KIND_PHONE_USE
    )
    assert not phone.joined
    # Eleven minutes after the last capture: past the window, a new violation.
    later = _capture(
        kitchen, kitchen_id, camera, start + timedelta(minutes=16), kitchen_pb2.VIOLATION_KIND_SMOKING
    )
    assert not later.joined
    assert later.violation.violation_id != first.violation.violation_id

    # A replay of the joining capture answers the same and stores nothing twice.
    request_id = rid()
    once = _capture(
        kitchen,
        kitchen_id,
        camera,
        start + timedelta(minutes=17),
        kitchen_pb2.VIOLATION_KIND_SMOKING,
        request_id=request_id,
    )
    assert once.joined
    replay = kitchen.call(
        "ReportCapture",
        kitchen_pb2.ReportCaptureRequest(
            request_id=request_id,
            kitchen_id=kitchen_id,
            camera_id=camera,
            kind=kitchen_pb2.VIOLATION_KIND_SMOKING,
            captured_at=to_timestamp(start + timedelta(minutes=17)),
            snapshot_ref=once.violation.captures[-1].snapshot_ref,
            confidence=0.93,
        ),
    )
    assert replay.joined
    assert len(replay.violation.captures) == len(once.violation.captures) == 2

    fetched = kitchen.call(
        "GetViolation", kitchen_pb2.GetViolationRequest(violation_id=first.violation.violation_id)
    ).violation
    assert len(fetched.captures) == 2
    # One alert per violation opened; the joining captures raised none.
    assert sorted(a.subject_id for a in _violation_alerts(kitchen, kitchen_id)) == sorted(
        [first.violation.violation_id, phone.violation.violation_id, later.violation.violation_id]
    )

    listed = kitchen.call(
        "ListViolations", kitchen_pb2.ListViolationsRequest(kitchen_id=kitchen_id), **_manager(kitchen_id)
    ).violations
    # Newest first.
    assert [v.violation_id for v in listed] == [
        later.violation.violation_id,
        phone.violation.violation_id,
        first.violation.violation_id,
    ]
    smoking = kitchen.call(
        "ListViolations",
        kitchen_pb2.ListViolationsRequest(
            kitchen_id=kitchen_id,
            kind=kitchen_pb2.VIOLATION_KIND_SMOKING,
            statuses=[kitchen_pb2.VIOLATION_STATUS_OPEN],
            page=common_pb2.PageRequest(page_size=1),
        ),
    )
    assert [v.violation_id for v in smoking.violations] == [later.violation.violation_id]
    assert smoking.page.next_page_token

    wait_until(
        lambda: len(kitchen.events({first.violation.violation_id, later.violation.violation_id})) >= 2,
        timeout_s=20,
        what="two ViolationOpened events",
    )
    events = kitchen.events({first.violation.violation_id, later.violation.violation_id})
    opened = [m.violation_id for _, m in events if isinstance(m, events_pb2.ViolationOpened)]
    assert sorted(opened) == sorted([first.violation.violation_id, later.violation.violation_id])


def test_captures_arriving_at_once_open_one_violation(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    camera = _camera(kitchen, kitchen_id)
    at = datetime.now(UTC) - timedelta(minutes=3)
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(
            pool.map(
                lambda i: _capture(
                    kitchen,
                    kitchen_id,
                    camera,
                    at + timedelta(seconds=i),
                    kitchen_pb2.VIOLATION_KIND_NO_GLOVES,
                ),
                range(6),
            )
        )
    assert len({r.violation.violation_id for r in replies}) == 1
    assert sorted(r.joined for r in replies) == [False, True, True, True, True, True]
    fetched = kitchen.call(
        "GetViolation", kitchen_pb2.GetViolationRequest(violation_id=replies[0].violation.violation_id)
    ).violation
    assert len(fetched.captures) == 6


def test_a_capture_from_anything_but_this_kitchen_s_camera_is_refused(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    fridge = _camera(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_FRIDGE)
    elsewhere = _camera(kitchen, kitchen.register_kitchen().kitchen_id)
    now = datetime.now(UTC)
    for camera_id in ("cam-unknown", fridge, elsewhere):
        error = _error(partial(_capture, kitchen, kitchen_id, camera_id, now))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations(error)) == {"camera_id"}
    bad = _error(
        lambda: kitchen.call(
            "ReportCapture",
            kitchen_pb2.ReportCaptureRequest(
                request_id=rid(), kitchen_id=kitchen_id, camera_id=elsewhere, confidence=1.2
            ),
        )
    )
    assert set(violations(bad)) == {"kind", "captured_at", "snapshot_ref", "confidence"}
    listed = kitchen.call("ListViolations", kitchen_pb2.ListViolationsRequest(kitchen_id=kitchen_id))
    assert list(listed.violations) == []
