"""The platform's input rules (services/platform/validation.py, protoconv, errors, identifiers): what no
field of any service may hold, named by path, and errors that stay small whatever the input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import safety_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.errors import (
    MAX_MESSAGE_BYTES,
    MAX_VIOLATIONS,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    Violations,
    shown,
)
from services.platform.identifiers import (
    credit_code_check_char,
    identity_check_char,
    invalid_credit_code,
    invalid_division_code,
    invalid_identity_number,
)
from services.platform.protoconv import datetime_of, time_range
from services.platform.validation import (
    InputGuard,
    InputRules,
    check_event_time,
    check_query_period,
    request_problems,
    text_problem,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


# --- errors -------------------------------------------------------------------------------------------


def test_an_error_message_is_cut_to_a_kibibyte_whatever_it_quotes() -> None:
    error = NotFoundError(f"site {'s' * 10_240} not found")
    assert len(error.message.encode()) <= MAX_MESSAGE_BYTES
    wide = NotFoundError("站" * 10_000)
    assert len(wide.message.encode()) <= MAX_MESSAGE_BYTES
    assert wide.message.endswith("\u2026")


def test_invalid_argument_lists_at_most_twenty_violations_and_counts_the_rest() -> None:
    found = [FieldViolation(f"detections[{i}].confidence", "must be between 0 and 1") for i in range(1000)]
    error = InvalidArgumentError(found)
    assert len(error.violations) == MAX_VIOLATIONS
    assert error.unlisted == 1000 - MAX_VIOLATIONS
    assert error.message.startswith("980 more bad fields not listed")
    long = FieldViolation("x" * 5000, "y" * 5000)
    assert len(long.field) <= 200
    assert len(long.description) <= 300


def test_shown_bounds_and_escapes_a_quoted_value() -> None:
    assert shown("S-001") == "S-001"
    assert shown("a\x00b") == "a\\x00b"
    assert shown("z" * 1000) == "z" * 64 + "\u2026"


# --- text ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "tab\there", "line\nbreak", "esc\x1b[31m", "nel\x85", "del\x7f", "sep\u2028", "rtl\u202eabc"],
)
def test_one_line_text_refuses_control_and_invisible_characters(value: str) -> None:
    assert text_problem(value, max_chars=100) is not None


@pytest.mark.parametrize("value", ["trailing\n", " leading", "both ", "\u3000ideographic", ""])
def test_text_refuses_leading_and_trailing_whitespace(value: str) -> None:
    problem = text_problem(value, max_chars=100)
    assert (problem is None) == (value == "")


def test_free_text_keeps_tabs_and_line_breaks_inside_only() -> None:
    assert text_problem("first line\nsecond\tcolumn\r\nthird", max_chars=100, free_text=True) is None
    assert text_problem("nul\x00", max_chars=100, free_text=True) is not None
    assert text_problem("ends with a break\n", max_chars=100, free_text=True) is not None
    assert text_problem("学校 north wall · 东门", max_chars=100) is None
    assert text_problem("x" * 101, max_chars=100) == "must be at most 100 characters"


# --- times --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        Timestamp(seconds=253_402_300_800),
        Timestamp(seconds=-62_135_596_801),
        Timestamp(seconds=1, nanos=-1),
        Timestamp(seconds=1, nanos=1_000_000_000),
    ],
)
def test_a_timestamp_that_is_none_is_invalid_argument_naming_the_path(stamp: Timestamp) -> None:
    request = safety_pb2.DetectionInput(detected_at=stamp)
    with pytest.raises(InvalidArgumentError) as caught:
        datetime_of(request, "detected_at", path="detections[3].detected_at")
    assert [v.field for v in caught.value.violations] == ["detections[3].detected_at"]


def test_the_extreme_valid_timestamps_convert() -> None:
    largest = safety_pb2.DetectionInput(detected_at=Timestamp(seconds=253_402_300_799, nanos=999_999_999))
    assert datetime_of(largest, "detected_at") == datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    first = safety_pb2.DetectionInput(detected_at=Timestamp(seconds=-62_135_596_800))
    assert datetime_of(first, "detected_at") == datetime(1, 1, 1, tzinfo=UTC)


def test_a_time_range_names_both_bad_ends_and_an_end_before_its_start() -> None:
    bad = common_pb2.TimeRange(start_time=Timestamp(nanos=-1), end_time=Timestamp(seconds=10**12))
    with pytest.raises(InvalidArgumentError) as caught:
        time_range(bad, path="raised")
    assert {v.field for v in caught.value.violations} == {"raised.start_time", "raised.end_time"}
    backwards = common_pb2.TimeRange(start_time=Timestamp(seconds=200), end_time=Timestamp(seconds=100))
    with pytest.raises(InvalidArgumentError) as order:
        time_range(backwards)
    assert [v.field for v in order.value.violations] == ["period.end_time"]


def test_event_times_are_after_2000_and_at_most_five_minutes_ahead() -> None:
    v = Violations()
    check_event_time(v, "a", datetime(1970, 1, 1, tzinfo=UTC), NOW)
    check_event_time(v, "b", datetime(1, 1, 1, tzinfo=UTC), NOW)
    check_event_time(v, "c", NOW + timedelta(minutes=6), NOW)
    check_event_time(v, "d", NOW + timedelta(minutes=4), NOW)
    check_event_time(v, "e", None, NOW, required=False)
    check_event_time(v, "f", None, NOW)
    with pytest.raises(InvalidArgumentError) as caught:
        v.check()
    assert [x.field for x in caught.value.violations] == ["a", "b", "c", "f"]


def test_query_periods_stay_clear_of_what_datetime_can_represent() -> None:
    v = Violations()
    check_query_period(v, "period", NOW, datetime(9999, 12, 31, tzinfo=UTC), required=True)
    check_query_period(v, "base", datetime(1, 1, 1, tzinfo=UTC), NOW, required=True)
    check_query_period(v, "same", NOW, NOW, required=True)
    check_query_period(v, "open", None, None, required=False)
    check_query_period(v, "missing", None, NOW, required=True)
    with pytest.raises(InvalidArgumentError) as caught:
        v.check()
    assert [x.field for x in caught.value.violations] == [
        "period.end_time",
        "base.start_time",
        "same.end_time",
        "missing.start_time",
    ]


# --- the generic walk ---------------------------------------------------------------------------------


def test_the_walk_names_every_bad_field_by_its_path() -> None:
    request = safety_pb2.ReportDetectionsRequest(
        request_id="batch\n",
        detections=[
            safety_pb2.DetectionInput(sensor_id="ok", kind=safety_pb2.DETECTION_KIND_WEAPON, confidence=0.5),
            safety_pb2.DetectionInput(
                sensor_id="s" * 129,
                kind=99,  # type: ignore[arg-type]
                confidence=float("nan"),
                detected_at=Timestamp(nanos=-5),
                label="knife\x00",
            ),
        ],
    )
    found = {v.field: v.description for v in request_problems(request)}
    assert set(found) == {
        "request_id",
        "detections[1].sensor_id",
        "detections[1].kind",
        "detections[1].confidence",
        "detections[1].detected_at",
        "detections[1].label",
    }, found
    assert found["detections[1].kind"] == "is not a known DetectionKind value"
    assert found["detections[1].sensor_id"] == "must be at most 128 characters"


def test_repeated_enums_nested_messages_and_limits_by_name() -> None:
    listing = safety_pb2.ListAlertsRequest(
        statuses=[1, 77],  # type: ignore[list-item]
        raised=common_pb2.TimeRange(start_time=Timestamp(seconds=10**13)),
        page=common_pb2.PageRequest(page_token="t" * 600),
    )
    assert {v.field for v in request_problems(listing)} == {
        "statuses[1]",
        "raised.start_time",
        "page.page_token",
    }
    inspection = safety_pb2.RecordInspectionRequest(summary="a\nb" * 600, inspector="x" * 501)
    assert {v.field for v in request_problems(inspection)} == {"inspector"}
    shorter = InputGuard(InputRules(max_chars={"cityhub.safety.v1.RecordInspectionRequest.summary": 100}))
    assert {v.field for v in shorter.problems(inspection)} == {"inspector", "summary"}


def test_screened_message_types_are_skipped_and_huge_repeats_refused_once() -> None:
    guard = InputGuard(InputRules(screened=frozenset({"cityhub.safety.v1.DetectionInput"})))
    request = safety_pb2.ReportDetectionsRequest(detections=[safety_pb2.DetectionInput(sensor_id="\x00")])
    assert guard.problems(request) == []
    many = safety_pb2.ListAlertsRequest(statuses=[1] * 10_001)  # type: ignore[list-item]
    assert [v.field for v in request_problems(many)] == ["statuses"]


# --- identifiers --------------------------------------------------------------------------------------


def _identity(first17: str) -> str:
    return first17 + identity_check_char(first17)


def test_an_identity_number_born_after_today_is_invalid() -> None:
    assert invalid_identity_number(_identity("33100420990317123")) == "has a birth date in the future"
    born_today = _identity("331004" + date(2026, 11, 30).strftime("%Y%m%d") + "123")
    assert invalid_identity_number(born_today, today=date(2026, 11, 30)) is None
    assert invalid_identity_number(born_today, today=date(2026, 11, 29)) == "has a birth date in the future"


def test_identifiers_take_ascii_digits_only_and_the_whole_value() -> None:
    assert invalid_division_code("331004") is None
    for code in ("\u0663\u0663\u0661\u0660\u0660\u0664", "\uff13\uff13\uff11\uff10\uff10\uff14", "331004\n"):
        assert invalid_division_code(code) is not None
    arabic = "\u0663\u0663\u0661\u0660\u0660\u0664" + "19850317123"
    assert invalid_identity_number(arabic + "0") is not None
    assert invalid_identity_number(_identity("33100419850317123") + "\n") is not None
    first17 = "91331004MA2AB1234"
    assert invalid_credit_code(first17 + credit_code_check_char(first17)) is None
