"""Issue #9 part 2 on the safety service: input a tester generated that answered INTERNAL (or was stored
as data) now answers INVALID_ARGUMENT naming the field, or the documented code, and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import safety_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.safety.safety_support import (
    OPERATOR,
    POLICE,
    PURPOSE,
    SERVICE,
    Safety,
    now,
    ts,
)
from tests.support import violations

pytestmark = pytest.mark.integration

# Beyond 9999-12-31, negative nanos, a whole second of nanos: none of them is a Timestamp.
BAD_STAMPS = {
    "year 10000": Timestamp(seconds=253_402_300_800),
    "negative nanos": Timestamp(seconds=1_700_000_000, nanos=-1),
    "nanos of a second": Timestamp(seconds=1_700_000_000, nanos=1_000_000_000),
    "before year 1": Timestamp(seconds=-62_135_596_801),
}
YEAR_1 = Timestamp(seconds=-62_135_596_800)
LARGEST = Timestamp(seconds=253_402_300_799, nanos=999_999_999)


@dataclass
class Place:
    site_id: str
    camera_id: str
    button_id: str


@pytest.fixture(scope="module")
def place(safety: Safety) -> Place:
    site = safety.register_site("Luqiao Bad Input School")
    camera = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "south gate")
    button = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_PANIC_BUTTON, "gate lodge")
    return Place(site.site_id, camera.sensor_id, button.sensor_id)


@pytest.fixture(scope="module")
def person(safety: Safety) -> str:
    return safety.record_person(731, [safety_pb2.RISK_FLAG_PRIOR_VIOLENCE])


@pytest.fixture
def unchanged(safety: Safety) -> Iterator[None]:
    """Fails the test if a refused request stored anything or queued any event."""
    tables = ["sites", "sensors", "persons", "hazardous_purchases", "detections", "alerts", "alert_units"]
    tables += ["alert_timeline", "inspections", "requests", "outbox"]

    def snapshot() -> dict[str, int]:
        return {t: safety.sql(f"SELECT count(*) FROM {t}")[0][0] for t in tables}

    before = snapshot()
    yield
    assert snapshot() == before


def invalid(safety: Safety, rpc: str, request: object, *, roles: tuple[str, ...] = SERVICE) -> dict[str, str]:
    error = safety.refused(rpc, request, roles=roles, purpose=PURPOSE)  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    return violations(error)


def detection(sensor_id: str, **fields: object) -> safety_pb2.DetectionInput:
    values: dict[str, object] = {
        "sensor_id": sensor_id,
        "kind": safety_pb2.DETECTION_KIND_LOITERING,
        "detected_at": ts(now() - timedelta(seconds=5)),
        "confidence": 0.7,
        **fields,
    }
    return safety_pb2.DetectionInput(**values)  # type: ignore[arg-type]


def report(sensor_id: str, **fields: object) -> safety_pb2.ReportDetectionsRequest:
    return safety_pb2.ReportDetectionsRequest(
        request_id="bad-batch", detections=[detection(sensor_id, **fields)]
    )


def purchase(person: str, at: Timestamp) -> safety_pb2.RecordHazardousPurchaseRequest:
    return safety_pb2.RecordHazardousPurchaseRequest(
        request_id="bad-purchase",
        person_token=person,
        item=safety_pb2.HAZARDOUS_ITEM_LOOSE_PETROL,
        quantity=2,
        unit="L",
        purchased_at=at,
        place="Tongyu Road filling station",
    )


# --- class 1: timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", list(BAD_STAMPS), ids=list(BAD_STAMPS))
@pytest.mark.usefixtures("unchanged")
def test_an_unrepresentable_timestamp_is_invalid_in_every_rpc_that_takes_one(
    safety: Safety, place: Place, person: str, stamp: str
) -> None:
    bad = BAD_STAMPS[stamp]
    good = ts(now() - timedelta(minutes=1))
    assert "purchased_at" in invalid(safety, "RecordHazardousPurchase", purchase(person, bad), roles=POLICE)
    assert "detections[0].detected_at" in invalid(
        safety, "ReportDetections", report(place.camera_id, detected_at=bad)
    )
    alarm = safety_pb2.RaiseAlarmRequest(
        request_id="bad-alarm", site_id=place.site_id, sensor_id=place.button_id, pressed_at=bad
    )
    assert "pressed_at" in invalid(safety, "RaiseAlarm", alarm)
    listing = safety_pb2.ListAlertsRequest(raised=common_pb2.TimeRange(start_time=bad, end_time=good))
    assert "raised.start_time" in invalid(safety, "ListAlerts", listing, roles=OPERATOR)
    inspection = safety_pb2.RecordInspectionRequest(
        request_id="bad-inspection",
        site_id=place.site_id,
        method=safety_pb2.INSPECTION_METHOD_DRONE,
        inspector="Officer Wang",
        inspected_at=bad,
    )
    assert "inspected_at" in invalid(safety, "RecordInspection", inspection, roles=OPERATOR)
    statistics = safety_pb2.GetStatisticsRequest(period=common_pb2.TimeRange(start_time=good, end_time=bad))
    assert "period.end_time" in invalid(safety, "GetStatistics", statistics, roles=OPERATOR)


@pytest.mark.usefixtures("unchanged")
def test_event_times_from_before_2000_are_refused(safety: Safety, place: Place, person: str) -> None:
    # Year 1 overflowed a date calculation (INTERNAL); 1970 and year 1 were stored as data.
    assert "detections[0].detected_at" in invalid(
        safety, "ReportDetections", report(place.camera_id, detected_at=YEAR_1)
    )
    epoch = ts(datetime(1970, 1, 1, tzinfo=UTC))
    assert "detections[0].detected_at" in invalid(
        safety, "ReportDetections", report(place.camera_id, detected_at=epoch)
    )
    assert "purchased_at" in invalid(
        safety, "RecordHazardousPurchase", purchase(person, YEAR_1), roles=POLICE
    )


@pytest.mark.usefixtures("unchanged")
def test_query_periods_must_be_ordered_and_within_bounds(safety: Safety) -> None:
    start, end = ts(now() - timedelta(days=1)), ts(now() - timedelta(days=2))
    backwards = safety_pb2.ListAlertsRequest(raised=common_pb2.TimeRange(start_time=start, end_time=end))
    assert "raised.end_time" in invalid(safety, "ListAlerts", backwards, roles=OPERATOR)
    forever = safety_pb2.GetStatisticsRequest(
        period=common_pb2.TimeRange(start_time=start, end_time=LARGEST),
        bucket=safety_pb2.STATISTICS_BUCKET_MONTH,
    )
    assert "period.end_time" in invalid(safety, "GetStatistics", forever, roles=OPERATOR)


# --- class 2 and 6: text ------------------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_control_characters_and_stray_whitespace_in_text_are_invalid(safety: Safety, place: Place) -> None:
    site = safety_pb2.RegisterSiteRequest(
        request_id="bad-site",
        name="Luqiao\x00School",
        kind=safety_pb2.SITE_KIND_SCHOOL,
        address="18 Tongyu Road\n",
        division_code="331004",
        town=" Luqiao Street",
        duty_room=safety_pb2.DutyRoomContact(name="Gate\x85duty room", phone="0576-8288 1234"),
    )
    bad = invalid(safety, "RegisterSite", site, roles=OPERATOR)
    assert {"name", "address", "town", "duty_room.name"} <= set(bad), bad
    sensor = safety_pb2.RegisterSensorRequest(
        request_id="bad-sensor", site_id=place.site_id, kind=safety_pb2.SENSOR_KIND_DRONE, zone="roof\x00"
    )
    assert "zone" in invalid(safety, "RegisterSensor", sensor, roles=OPERATOR)
    weapon = report(place.camera_id, kind=safety_pb2.DETECTION_KIND_WEAPON, label="kni\x00fe")
    assert "detections[0].label" in invalid(safety, "ReportDetections", weapon)


@pytest.mark.usefixtures("unchanged")
def test_a_division_code_must_be_ascii_digits_without_a_newline(safety: Safety) -> None:
    for code in ("\u0663\u0663\u0661\u0660\u0660\u0664", "331004\n", "\uff13\uff13\uff11\uff10\uff10\uff14"):
        site = safety_pb2.RegisterSiteRequest(
            request_id="bad-division",
            name="Luqiao School",
            kind=safety_pb2.SITE_KIND_SCHOOL,
            address="18 Tongyu Road",
            division_code=code,
            town="Luqiao Street",
            duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
        )
        assert "division_code" in invalid(safety, "RegisterSite", site, roles=OPERATOR), code


@pytest.mark.usefixtures("unchanged")
def test_an_identity_number_born_in_the_future_is_invalid(safety: Safety) -> None:
    first17 = "33100420990317123"
    from services.platform.identifiers import identity_check_char

    request = safety_pb2.RecordPersonRequest(
        request_id="bad-person", identity_number=first17 + identity_check_char(first17), name="Made-up Person"
    )
    assert "identity_number" in invalid(safety, "RecordPerson", request, roles=POLICE)


# --- class 3: echoed ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rpc", "request_"),
    [
        ("GetSite", safety_pb2.GetSiteRequest(site_id="s" * 10_240)),
        ("GetAlert", safety_pb2.GetAlertRequest(alert_id="a" * 10_240)),
        ("GetPerson", safety_pb2.GetPersonRequest(person_token="p" * 10_240)),
    ],
    ids=["GetSite", "GetAlert", "GetPerson"],
)
def test_a_huge_id_is_invalid_and_never_echoed(safety: Safety, rpc: str, request_: object) -> None:
    error = safety.refused(rpc, request_, roles=POLICE, purpose=PURPOSE)  # type: ignore[arg-type]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    assert len(error.details() or "") < 1100


# --- class 8: a duty room reports its own guards only --------------------------------------------------


def test_a_duty_room_moves_its_guards_but_not_the_police(safety: Safety, place: Place) -> None:
    raised = safety.call(
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(
            request_id="guards-alarm", site_id=place.site_id, sensor_id=place.button_id
        ),
        roles=SERVICE,
    )
    alert_id = raised.alert.alert_id
    safety.call("AcknowledgeAlert", safety_pb2.AcknowledgeAlertRequest(alert_id=alert_id), roles=OPERATOR)
    dispatched = safety.call(
        "DispatchUnits",
        safety_pb2.DispatchUnitsRequest(
            request_id="guards-dispatch",
            alert_id=alert_id,
            units=[
                safety_pb2.UnitAssignment(kind=safety_pb2.UNIT_KIND_PATROL_SWAT, name="SWAT 3"),
                safety_pb2.UnitAssignment(kind=safety_pb2.UNIT_KIND_SITE_GUARDS, name="gate team"),
            ],
        ),
        roles=OPERATOR,
    )
    swat, guards = dispatched.unit_ids
    duty = safety.duty_room(place.site_id)
    before = safety.outbox_subjects()
    error = safety.refused(
        "UpdateUnitStatus",
        safety_pb2.UpdateUnitStatusRequest(
            alert_id=alert_id, unit_id=swat, status=safety_pb2.UNIT_STATUS_EN_ROUTE
        ),
        **duty,
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert safety.outbox_subjects() == before
    moved = safety.call(
        "UpdateUnitStatus",
        safety_pb2.UpdateUnitStatusRequest(
            alert_id=alert_id, unit_id=guards, status=safety_pb2.UNIT_STATUS_EN_ROUTE
        ),
        **duty,
    )
    assert {u.unit_id: u.status for u in moved.alert.units}[guards] == safety_pb2.UNIT_STATUS_EN_ROUTE


# --- class 9: filters and plates ----------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_unknown_enum_values_in_filters_are_invalid(safety: Safety, place: Place) -> None:
    assert "kind" in invalid(safety, "ListSites", safety_pb2.ListSitesRequest(kind=99), roles=OPERATOR)  # type: ignore[arg-type]
    sensors = safety_pb2.ListSensorsRequest(site_id=place.site_id, kind=42)  # type: ignore[arg-type]
    assert "kind" in invalid(safety, "ListSensors", sensors, roles=OPERATOR)
    alerts = safety_pb2.ListAlertsRequest(statuses=[1, 77])  # type: ignore[list-item]
    assert "statuses[1]" in invalid(safety, "ListAlerts", alerts, roles=OPERATOR)


@pytest.mark.usefixtures("unchanged")
def test_a_plate_belongs_to_a_vehicle_match_only_and_is_bounded(safety: Safety, place: Place) -> None:
    assert "detections[0].plate" in invalid(
        safety, "ReportDetections", report(place.camera_id, plate="浙J12345")
    )
    huge = report(place.camera_id, plate="浙" * (1 << 20))
    assert "detections[0].plate" in invalid(safety, "ReportDetections", huge)
