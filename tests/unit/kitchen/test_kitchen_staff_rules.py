"""The kitchens and staff families' pure rules: the barring rule at its edges, the certificate rule, shift
starts in the district's zone, and the commands' checks (every bad field named at once)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.kitchen.domain.kitchens import (
    InspectionResult,
    RecordInspection,
    RegisterKitchen,
    minute_of,
    parse_date,
)
from services.kitchen.domain.model import GeoPoint, OperatorKind, Shift
from services.kitchen.domain.staff import (
    AddStaff,
    BarReason,
    CertificateStatus,
    RecordMorningCheck,
    StaffRole,
    Symptom,
    bar_reasons,
    certificate_status,
    local_today,
    shift_start,
)
from services.platform.errors import InvalidArgumentError
from services.platform.identifiers import credit_code_check_char, identity_check_char

ZONE = ZoneInfo("Asia/Shanghai")
SHIFT_DAY = date(2024, 3, 1)
# 06:00 local on the shift day.
STARTS = datetime(2024, 2, 29, 22, 0, tzinfo=UTC)


def _identity(first17: str = "33100419900307123") -> str:
    return first17 + identity_check_char(first17)


def _code(first17: str = "91331004MA2K7Q5R1") -> str:
    return first17 + credit_code_check_char(first17)


def _wrong_check(value: str) -> str:
    """``value`` with another check character (so it fails only its check)."""
    return value[:-1] + ("1" if value[-1] != "1" else "2")


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def _reasons(
    *,
    temperature_c: float = 36.5,
    symptoms: frozenset[Symptom] = frozenset(),
    expiry: date | None = date(2024, 12, 31),
    face: float = 0.95,
    checked_at: datetime = STARTS - timedelta(minutes=30),
) -> tuple[BarReason, ...]:
    return bar_reasons(
        temperature_c=temperature_c,
        symptoms=symptoms,
        certificate_expiry=expiry,
        shift_date=SHIFT_DAY,
        face_match_score=face,
        checked_at=checked_at,
        starts_at=STARTS,
        fever_threshold_c=37.3,
        face_match_threshold=0.8,
    )


# --- the barring rule -----------------------------------------------------------------------------------


def test_a_healthy_member_checked_before_the_start_passes() -> None:
    assert _reasons() == ()


def test_37_2_passes_and_37_3_bars() -> None:
    assert _reasons(temperature_c=37.2) == ()
    assert _reasons(temperature_c=37.3) == (BarReason.HEALTH_SCREEN,)
    assert _reasons(temperature_c=37.8) == (BarReason.HEALTH_SCREEN,)


def test_any_symptom_bars_with_the_same_coarse_reason() -> None:
    assert _reasons(symptoms=frozenset({Symptom.HAND_WOUND_OR_SKIN_INFECTION})) == (BarReason.HEALTH_SCREEN,)
    # Fever and a symptom together are still one coarse reason: the reason never says which.
    assert _reasons(temperature_c=38.5, symptoms=frozenset({Symptom.COUGH})) == (BarReason.HEALTH_SCREEN,)


def test_a_certificate_is_valid_through_its_expiry_date() -> None:
    assert _reasons(expiry=SHIFT_DAY) == ()
    assert _reasons(expiry=SHIFT_DAY - timedelta(days=1)) == (BarReason.CERTIFICATE_EXPIRED,)
    assert _reasons(expiry=None) == (BarReason.CERTIFICATE_MISSING,)
    assert certificate_status(date(2024, 3, 1), date(2024, 3, 1)) is CertificateStatus.VALID
    assert certificate_status(date(2024, 3, 1), date(2024, 3, 2)) is CertificateStatus.EXPIRED
    assert certificate_status(None, date(2024, 3, 2)) is CertificateStatus.MISSING


def test_a_face_score_below_the_threshold_bars_and_at_it_passes() -> None:
    assert _reasons(face=0.8) == ()
    assert _reasons(face=0.79) == (BarReason.FACE_MISMATCH,)


def test_a_check_at_or_after_the_start_is_no_check() -> None:
    assert _reasons(checked_at=STARTS - timedelta(seconds=1)) == ()
    assert _reasons(checked_at=STARTS) == (BarReason.NO_CHECK,)
    assert _reasons(checked_at=STARTS + timedelta(hours=2)) == (BarReason.NO_CHECK,)


def test_every_reason_is_named_in_the_contract_order() -> None:
    assert _reasons(temperature_c=39.0, expiry=None, face=0.1, checked_at=STARTS) == (
        BarReason.HEALTH_SCREEN,
        BarReason.CERTIFICATE_MISSING,
        BarReason.FACE_MISMATCH,
        BarReason.NO_CHECK,
    )


def test_a_shift_starts_at_its_local_time_in_the_district_zone() -> None:
    assert shift_start(SHIFT_DAY, Shift("breakfast", "06:00", "09:00"), ZONE) == STARTS
    # 23:30 UTC is already the next day in the district.
    assert local_today(datetime(2024, 3, 1, 23, 30, tzinfo=UTC), ZONE) == date(2024, 3, 2)


# --- commands -------------------------------------------------------------------------------------------


def _kitchen(**changes: object) -> RegisterKitchen:
    values: dict[str, object] = {
        "request_id": "r-1",
        "site_id": "site-1",
        "name": "Sunshine kitchen",
        "operator_kind": OperatorKind.SCHOOL_RUN,
        "operator_name": "No. 1 Kindergarten",
        "operator_credit_code": "",
        "meals_per_day": 600,
        "location": None,
        "shifts": (Shift("breakfast", "06:00", "09:00"), Shift("lunch", "09:00", "13:30")),
        "commitment": "",
    }
    values.update(changes)
    return RegisterKitchen(**values)  # type: ignore[arg-type]


def test_a_good_kitchen_passes_and_a_contractor_needs_a_valid_credit_code() -> None:
    _kitchen().check()
    _kitchen(operator_kind=OperatorKind.CONTRACTOR, operator_credit_code=_code()).check()
    with pytest.raises(InvalidArgumentError) as missing:
        _kitchen(operator_kind=OperatorKind.CONTRACTOR).check()
    assert _fields(missing) == {"operator.credit_code"}
    # A school may give a code; then it must be a valid one.
    with pytest.raises(InvalidArgumentError) as wrong:
        _kitchen(operator_credit_code=_wrong_check(_code())).check()
    assert _fields(wrong) == {"operator.credit_code"}


def test_every_bad_kitchen_field_is_named_at_once() -> None:
    command = _kitchen(
        request_id="",
        site_id="",
        operator_kind=None,
        meals_per_day=100_001,
        location=GeoPoint(91.0, 0.0),
        shifts=(
            Shift("lunch", "09:00", "13:30"),
            Shift("lunch", "14:00", "15:00"),
            Shift("dinner", "17:00", "16:00"),
            Shift("", "25:00", "9:00"),
        ),
    )
    with pytest.raises(InvalidArgumentError) as error:
        command.check()
    assert _fields(error) == {
        "request_id",
        "site_id",
        "operator.kind",
        "meals_per_day",
        "location.latitude",
        "shifts[1].name",
        "shifts[2].end_time",
        "shifts[3].name",
        "shifts[3].start_time",
        "shifts[3].end_time",
    }


def test_a_kitchen_needs_a_shift_and_a_meal() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _kitchen(shifts=(), meals_per_day=0).check()
    assert _fields(error) == {"shifts", "meals_per_day"}


def test_times_and_dates_are_parsed_strictly() -> None:
    assert minute_of("06:00") == 360
    assert minute_of("23:59") == 1439
    assert minute_of("24:00") is None
    assert minute_of("6:00") is None
    assert parse_date("2024-02-29") == date(2024, 2, 29)
    assert parse_date("2023-02-29") is None
    assert parse_date("2024-2-1") is None


def _staff(**changes: object) -> AddStaff:
    values: dict[str, object] = {
        "request_id": "r-2",
        "kitchen_id": "kit_1",
        "name": "Wang Fang",
        "identity_number": _identity(),
        "role": StaffRole.COOK,
        "certificate_number": "JK-2024-0001",
        "certificate_expiry": "2025-01-31",
        "face_template_ref": "face/0001",
        "shifts": ("lunch",),
    }
    values.update(changes)
    return AddStaff(**values)  # type: ignore[arg-type]


def test_a_certificate_number_and_its_expiry_come_together() -> None:
    _staff().check()
    _staff(certificate_number="", certificate_expiry="").check()
    with pytest.raises(InvalidArgumentError) as no_expiry:
        _staff(certificate_expiry="").check()
    assert _fields(no_expiry) == {"health_certificate_expiry"}
    with pytest.raises(InvalidArgumentError) as no_number:
        _staff(certificate_number="").check()
    assert _fields(no_number) == {"health_certificate_number"}


def test_bad_staff_fields_are_named() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _staff(
            identity_number=_wrong_check(_identity()),
            role=None,
            certificate_expiry="2025-02-30",
            shifts=("lunch", "lunch", ""),
        ).check()
    assert _fields(error) == {
        "identity_number",
        "role",
        "health_certificate_expiry",
        "shifts[1]",
        "shifts[2]",
    }


def _check(**changes: object) -> RecordMorningCheck:
    values: dict[str, object] = {
        "request_id": "r-3",
        "kitchen_id": "kit_1",
        "staff_id": "stf_1",
        "shift_date": "2024-03-01",
        "shift": "breakfast",
        "checked_at": datetime(2024, 2, 29, 21, 30, tzinfo=UTC),
        "face_match_score": 0.97,
        "temperature_c": 36.6,
        "symptoms": (),
    }
    values.update(changes)
    return RecordMorningCheck(**values)  # type: ignore[arg-type]


NOW = datetime(2024, 2, 29, 21, 31, tzinfo=UTC)
TODAY = date(2024, 3, 1)


def test_a_person_temperature_is_30_to_45() -> None:
    _check(temperature_c=30.0).check(NOW, TODAY)
    _check(temperature_c=45.0).check(NOW, TODAY)
    for bad in (29.9, 45.1, 0.0):
        with pytest.raises(InvalidArgumentError) as error:
            _check(temperature_c=bad).check(NOW, TODAY)
        assert _fields(error) == {"temperature_c"}


def test_a_check_names_every_bad_field() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _check(
            shift_date="2024-03-03",
            checked_at=None,
            face_match_score=1.5,
            symptoms=(Symptom.COUGH, None),
            shift="",
        ).check(NOW, TODAY)
    assert _fields(error) == {"shift_date", "checked_at", "face_match_score", "symptoms[1]", "shift"}


def test_the_shift_date_is_yesterday_today_or_tomorrow() -> None:
    for day in ("2024-02-29", "2024-03-01", "2024-03-02"):
        _check(shift_date=day).check(NOW, TODAY)
    with pytest.raises(InvalidArgumentError):
        _check(shift_date="2024-02-28").check(NOW, TODAY)


def test_a_check_time_ahead_of_the_clock_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _check(checked_at=NOW + timedelta(minutes=6)).check(NOW, TODAY)
    assert _fields(error) == {"checked_at"}


def test_an_inspection_needs_a_time_a_result_and_real_findings() -> None:
    RecordInspection("r-4", "kit_1", NOW, "Inspector Li", (), InspectionResult.PASS).check(NOW)
    with pytest.raises(InvalidArgumentError) as error:
        RecordInspection("r-4", "kit_1", None, "", ("dusty hood", ""), None).check(NOW)
    assert _fields(error) == {"inspected_at", "inspector", "findings[1]", "result"}
