"""Request checks: every bad field named by its request path, all at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.platform.errors import InvalidArgumentError, PermissionDeniedError
from services.platform.idempotency import fingerprint_material
from services.platform.identifiers import identity_check_char
from services.safety.domain.access import Viewer
from services.safety.domain.commands import (
    Dispatch,
    RaiseAlarm,
    RecordInspection,
    RecordPerson,
    RecordPurchase,
    RegisterSite,
    ReportDetections,
    ReportedDetection,
    StatisticsQuery,
    UnitInput,
    UpdateUnit,
)
from services.safety.domain.model import (
    DetectionKind,
    HazardousItem,
    InspectionMethod,
    RiskFlag,
    SiteKind,
    UnitKind,
    UnitStatus,
)

NOW = datetime(2026, 3, 16, 15, 40, tzinfo=UTC)


def fields_of(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def identity(seq: str = "123") -> str:
    first17 = "33100419850317" + seq
    return first17 + identity_check_char(first17)


def detection(**changes: object) -> ReportedDetection:
    base = ReportedDetection(
        sensor_id="sensor_1",
        kind=DetectionKind.PERIMETER_BREACH,
        detected_at=NOW - timedelta(seconds=10),
        confidence=0.9,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_good_batch_passes() -> None:
    ReportDetections("batch-1", (detection(), detection(kind=DetectionKind.WEAPON, label="bat"))).check(NOW)


def test_an_empty_batch_is_refused_naming_detections() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        ReportDetections("batch-1", ()).check(NOW)
    assert fields_of(error) == {"detections"}


@pytest.mark.parametrize("confidence", [-0.01, 1.01, float("nan"), float("inf")])
def test_confidence_outside_0_to_1_is_refused(confidence: float) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        ReportDetections("b", (detection(), detection(confidence=confidence))).check(NOW)
    assert fields_of(error) == {"detections[1].confidence"}


def test_a_detection_more_than_5_minutes_ahead_is_refused_but_a_little_skew_is_fine() -> None:
    ReportDetections("b", (detection(detected_at=NOW + timedelta(minutes=4, seconds=59)),)).check(NOW)
    with pytest.raises(InvalidArgumentError) as error:
        ReportDetections("b", (detection(detected_at=NOW + timedelta(minutes=5, seconds=1)),)).check(NOW)
    assert fields_of(error) == {"detections[0].detected_at"}


def test_every_bad_field_is_named_at_once() -> None:
    bad = (
        detection(kind=None),
        detection(kind=DetectionKind.WEAPON, label=""),
        detection(kind=DetectionKind.FACE_MATCH, person_token=""),
        detection(kind=DetectionKind.VEHICLE_MATCH, plate=""),
        detection(detected_at=None, sensor_id=""),
    )
    with pytest.raises(InvalidArgumentError) as error:
        ReportDetections("", bad).check(NOW)
    assert fields_of(error) == {
        "request_id",
        "detections[0].kind",
        "detections[1].label",
        "detections[2].person_token",
        "detections[3].plate",
        "detections[4].detected_at",
        "detections[4].sensor_id",
    }


def test_an_identity_number_with_a_wrong_check_digit_is_refused() -> None:
    good = identity()
    RecordPerson("p-1", good, "Zhang San", (RiskFlag.PSYCHIATRIC_HISTORY,)).check()
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(InvalidArgumentError) as error:
        RecordPerson("p-1", wrong, "Zhang San", ()).check()
    assert fields_of(error) == {"identity_number"}
    assert "check digit" in str(error.value)


def test_a_person_command_never_shows_the_identity_in_its_repr() -> None:
    number = identity()
    command = RecordPerson("p-1", number, "Zhang San", ())
    assert number not in repr(command)
    assert "Zhang San" not in repr(command)


def test_unknown_flags_are_named_by_position() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RecordPerson("p-1", identity(), "Zhang San", (RiskFlag.PRIOR_VIOLENCE, None)).check()
    assert fields_of(error) == {"risk_flags[1]"}


def test_purchase_checks() -> None:
    good = RecordPurchase(
        "buy-1", "p_x", HazardousItem.LOOSE_PETROL, "", 2.0, "L", NOW - timedelta(days=3), "S-9"
    )
    good.check(NOW)
    with pytest.raises(InvalidArgumentError) as error:
        replace(good, quantity=0.0, item=None, purchased_at=NOW + timedelta(hours=1)).check(NOW)
    assert fields_of(error) == {"quantity", "item", "purchased_at"}


def test_site_checks_division_code_location_and_duty_room() -> None:
    good = RegisterSite(
        "site-1",
        "Luqiao No. 1",
        SiteKind.SCHOOL,
        "1 Road",
        "331004",
        "Luqiao Street",
        28.58,
        121.38,
        "Gate",
        "0576-123",
    )
    good.check()
    with pytest.raises(InvalidArgumentError) as error:
        replace(good, division_code="33100", latitude=91.0, duty_room_phone="call me", kind=None).check()
    assert fields_of(error) == {"division_code", "location.latitude", "duty_room.phone", "kind"}


def test_alarm_and_dispatch_and_unit_checks() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RaiseAlarm("a-1", "", "sensor_1", NOW + timedelta(minutes=6), "").check(NOW)
    assert fields_of(error) == {"site_id", "pressed_at"}
    with pytest.raises(InvalidArgumentError) as error:
        Dispatch("d-1", "alert_1", ()).check()
    assert fields_of(error) == {"units"}
    with pytest.raises(InvalidArgumentError) as error:
        Dispatch("d-1", "alert_1", (UnitInput(UnitKind.POLICE_STATION, ""), UnitInput(None, ""))).check()
    assert fields_of(error) == {"units[1].kind"}
    with pytest.raises(InvalidArgumentError) as error:
        UpdateUnit("", "alert_1", "unit_1", UnitStatus.NOTIFIED).check()
    assert fields_of(error) == {"status"}


def test_inspection_checks() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RecordInspection("i-1", "site_1", None, "", None, "", "", ()).check(NOW)
    assert fields_of(error) == {"method", "inspector", "inspected_at"}
    RecordInspection("i-1", "site_1", InspectionMethod.DRONE, "team 3", NOW, "", "", ()).check(NOW)


def test_statistics_period_checks() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        StatisticsQuery("", None, None, None).check()
    assert fields_of(error) == {"period.start_time", "period.end_time"}
    with pytest.raises(InvalidArgumentError) as error:
        StatisticsQuery("", NOW, NOW, None).check()
    assert fields_of(error) == {"period.end_time"}
    with pytest.raises(InvalidArgumentError) as error:
        StatisticsQuery("", NOW - timedelta(days=500), NOW, "day").check()
    assert fields_of(error) == {"bucket"}


def test_request_ids_must_be_plain() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        ReportDetections("has space", (detection(),)).check(NOW)
    assert fields_of(error) == {"request_id"}


def test_a_replay_fingerprint_ignores_the_request_id_but_not_the_content() -> None:
    first = ReportDetections("a", (detection(),))
    assert fingerprint_material(first) == fingerprint_material(replace(first, request_id="b"))
    assert fingerprint_material(first) != fingerprint_material(
        replace(first, detections=(detection(confidence=0.5),))
    )


def test_a_duty_room_sees_its_own_site_only() -> None:
    viewer = Viewer("officer-7", all_sites=False, site_ids=frozenset({"site_a"}))
    assert viewer.sees("site_a")
    assert not viewer.sees("site_b")
    assert viewer.sites_for("") == frozenset({"site_a"})
    with pytest.raises(PermissionDeniedError):
        viewer.sites_for("site_b")
    assert Viewer("op", all_sites=True).sites_for("") is None
