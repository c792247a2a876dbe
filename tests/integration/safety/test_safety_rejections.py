"""Every rejection the issue names, over the real service, with the status docs/status-codes.md gives
it: INVALID_ARGUMENT naming every malformed field; FAILED_PRECONDITION naming the field when a referenced
entity is missing or of the wrong kind, or for a skipped lifecycle step. Nothing stored or published."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest
from cityhub.safety.v1 import safety_pb2

from tests.integration.safety.safety_support import (
    OPERATOR,
    POLICE,
    SERVICE,
    Safety,
    made_up_identity,
    now,
    ts,
    wrong_check_digit,
)
from tests.support import violations

pytestmark = pytest.mark.integration


@dataclass
class Place:
    site_id: str
    camera_id: str


@pytest.fixture(scope="module")
def place(safety: Safety) -> Place:
    site = safety.register_site("Luqiao Central Kindergarten", kind=safety_pb2.SITE_KIND_KINDERGARTEN)
    camera = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "east fence")
    return Place(site.site_id, camera.sensor_id)


@pytest.fixture
def unchanged(safety: Safety) -> Iterator[None]:
    """Fails the test if the rejected request stored anything or queued any event."""
    tables = (
        "sites",
        "sensors",
        "persons",
        "hazardous_purchases",
        "detections",
        "alerts",
        "alert_units",
        "requests",
    )

    def snapshot() -> dict[str, int]:
        counts = {t: safety.sql(f"SELECT count(*) FROM {t}")[0][0] for t in tables}
        counts["outbox"] = safety.sql("SELECT count(*) FROM outbox")[0][0]
        counts["timeline"] = safety.sql("SELECT count(*) FROM alert_timeline")[0][0]
        return counts

    before = snapshot()
    yield
    assert snapshot() == before


def refused_with(
    safety: Safety, rpc: str, request: object, *, roles: tuple[str, ...] = SERVICE
) -> dict[str, str]:
    error = safety.refused(rpc, request, roles=roles)  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return violations(error)


def precondition_failed(
    safety: Safety, rpc: str, request: object, *, roles: tuple[str, ...] = SERVICE
) -> str:
    """The message of a FAILED_PRECONDITION refusal (it names the field and what is wrong with it)."""
    error = safety.refused(rpc, request, roles=roles)  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    return str(error.details())


@pytest.mark.usefixtures("unchanged")
def test_a_sensor_at_an_unknown_site(safety: Safety) -> None:
    message = precondition_failed(
        safety,
        "RegisterSensor",
        safety_pb2.RegisterSensorRequest(
            request_id="sensor-nowhere",
            site_id="site_doesnotexist",
            kind=safety_pb2.SENSOR_KIND_DRONE,
            zone="roof",
        ),
        roles=OPERATOR,
    )
    assert message.startswith("site_id:")
    assert "site_doesnotexist" in message


@pytest.mark.usefixtures("unchanged")
def test_a_detection_from_an_unknown_sensor_rejects_the_whole_batch(safety: Safety, place: Place) -> None:
    good = safety.detection(place.camera_id, safety_pb2.DETECTION_KIND_PERIMETER_BREACH)
    bad = safety.detection("sensor_doesnotexist", safety_pb2.DETECTION_KIND_LOITERING)
    message = precondition_failed(
        safety,
        "ReportDetections",
        safety_pb2.ReportDetectionsRequest(request_id="b-1", detections=[good, bad]),
    )
    assert message.startswith("detections[1].sensor_id:")
    assert "detections[0]" not in message


@pytest.mark.usefixtures("unchanged")
def test_an_identity_number_with_a_wrong_check_digit(safety: Safety) -> None:
    number = wrong_check_digit(made_up_identity(5))
    found = refused_with(
        safety,
        "RecordPerson",
        safety_pb2.RecordPersonRequest(request_id="person-bad", identity_number=number, name="Li Si"),
        roles=POLICE,
    )
    assert set(found) == {"identity_number"}
    assert "check digit" in found["identity_number"]
    # The refusal does not echo the number back.
    assert number not in found["identity_number"]


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("confidence", [-0.1, 1.5])
def test_confidence_outside_0_to_1(safety: Safety, place: Place, confidence: float) -> None:
    bad = safety.detection(place.camera_id, safety_pb2.DETECTION_KIND_LOITERING, confidence=confidence)
    found = refused_with(
        safety, "ReportDetections", safety_pb2.ReportDetectionsRequest(request_id="b-2", detections=[bad])
    )
    assert set(found) == {"detections[0].confidence"}


@pytest.mark.usefixtures("unchanged")
def test_a_detection_more_than_5_minutes_in_the_future(safety: Safety, place: Place) -> None:
    future = safety.detection(
        place.camera_id, safety_pb2.DETECTION_KIND_CROWDING, at=now() + timedelta(minutes=6)
    )
    found = refused_with(
        safety, "ReportDetections", safety_pb2.ReportDetectionsRequest(request_id="b-3", detections=[future])
    )
    assert set(found) == {"detections[0].detected_at"}


@pytest.mark.usefixtures("unchanged")
def test_an_empty_batch(safety: Safety) -> None:
    found = refused_with(safety, "ReportDetections", safety_pb2.ReportDetectionsRequest(request_id="b-4"))
    assert set(found) == {"detections"}


@pytest.mark.usefixtures("unchanged")
def test_a_panic_button_of_another_site(safety: Safety, place: Place) -> None:
    message = precondition_failed(
        safety,
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(request_id="press-x", site_id=place.site_id, sensor_id=place.camera_id),
    )
    assert message.startswith("sensor_id:")
    assert "panic button" in message


@pytest.mark.usefixtures("unchanged")
def test_a_purchase_by_an_unknown_person(safety: Safety) -> None:
    message = precondition_failed(
        safety,
        "RecordHazardousPurchase",
        safety_pb2.RecordHazardousPurchaseRequest(
            request_id="buy-x",
            person_token="p_00000000000000000000000000000000",
            item=safety_pb2.HAZARDOUS_ITEM_LOOSE_PETROL,
            quantity=2,
            unit="L",
            purchased_at=ts(now() - timedelta(days=1)),
            place="somewhere",
        ),
    )
    assert message.startswith("person_token:")


def test_a_request_id_reused_for_a_different_request(safety: Safety, place: Place) -> None:
    first = safety.detection(place.camera_id, safety_pb2.DETECTION_KIND_LOITERING, confidence=0.7)
    safety.report(first, request_id="b-reused")
    other = safety.detection(place.camera_id, safety_pb2.DETECTION_KIND_LOITERING, confidence=0.8)
    found = refused_with(
        safety,
        "ReportDetections",
        safety_pb2.ReportDetectionsRequest(request_id="b-reused", detections=[other]),
    )
    assert set(found) == {"request_id"}


def test_transitions_that_skip_a_lifecycle_step(safety: Safety) -> None:
    site = safety.register_site("Luqiao People's Hospital", kind=safety_pb2.SITE_KIND_HOSPITAL)
    button = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_PANIC_BUTTON, "emergency ward")
    pressed = safety.call(
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(request_id="press-h1", site_id=site.site_id, sensor_id=button.sensor_id),
        **safety.duty_room(site.site_id),
    )
    assert pressed.alert_raised
    assert pressed.alert.level == safety_pb2.RISK_LEVEL_CRITICAL
    alert_id = pressed.alert.alert_id

    def refused(rpc: str, request: object, roles: tuple[str, ...] = OPERATOR) -> str:
        before = (
            safety.outbox_subjects(),
            safety.sql("SELECT status FROM alerts WHERE alert_id = %s", (alert_id,)),
        )
        error = safety.refused(rpc, request, roles=roles)  # type: ignore[arg-type]
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
        after = (
            safety.outbox_subjects(),
            safety.sql("SELECT status FROM alerts WHERE alert_id = %s", (alert_id,)),
        )
        assert after == before
        return str(error.details())

    dispatch = safety_pb2.DispatchUnitsRequest(
        request_id="d-h1",
        alert_id=alert_id,
        units=[safety_pb2.UnitAssignment(kind=safety_pb2.UNIT_KIND_POLICE_STATION, name="car 1")],
    )
    assert "acknowledged first" in refused("DispatchUnits", dispatch)
    resolve = safety_pb2.ResolveAlertRequest(alert_id=alert_id, outcome=safety_pb2.ALERT_OUTCOME_RESOLVED)
    refused("ResolveAlert", resolve)
    refused(
        "ResolveAlert",
        safety_pb2.ResolveAlertRequest(alert_id=alert_id, outcome=safety_pb2.ALERT_OUTCOME_FALSE_ALARM),
    )

    safety.call("AcknowledgeAlert", safety_pb2.AcknowledgeAlertRequest(alert_id=alert_id), roles=OPERATOR)
    refused("AcknowledgeAlert", safety_pb2.AcknowledgeAlertRequest(alert_id=alert_id))
    unit_id = safety.call("DispatchUnits", dispatch, roles=OPERATOR).unit_ids[0]
    refused("ResolveAlert", resolve)  # nobody has arrived
    arrive = safety_pb2.UpdateUnitStatusRequest(
        alert_id=alert_id, unit_id=unit_id, status=safety_pb2.UNIT_STATUS_ARRIVED
    )
    assert "next status is en route" in refused("UpdateUnitStatus", arrive, roles=SERVICE)

    # The same dispatch request again is a replay, not a second dispatch.
    again = safety.call("DispatchUnits", dispatch, roles=OPERATOR)
    assert list(again.unit_ids) == [unit_id]
    assert len(again.alert.units) == 1

    # A false alarm once someone has looked closes it; nothing moves afterwards.
    closed = safety.call(
        "ResolveAlert",
        safety_pb2.ResolveAlertRequest(
            alert_id=alert_id, outcome=safety_pb2.ALERT_OUTCOME_FALSE_ALARM, note="drill"
        ),
        roles=POLICE,
    )
    assert closed.alert.status == safety_pb2.ALERT_STATUS_FALSE_ALARM
    assert not closed.alert.joint_response
    en_route = safety_pb2.UpdateUnitStatusRequest(
        alert_id=alert_id, unit_id=unit_id, status=safety_pb2.UNIT_STATUS_EN_ROUTE
    )
    refused("UpdateUnitStatus", en_route, roles=SERVICE)
    refused(
        "DispatchUnits",
        safety_pb2.DispatchUnitsRequest(request_id="d-h2", alert_id=alert_id, units=dispatch.units),
    )
