"""The five promises' arithmetic, the compliance score on known inputs, and the checks of the rating,
alert-list, profile and statistics requests (pure domain: no sockets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.kitchen.domain.model import AlertKind
from services.kitchen.domain.profile import (
    AlertsQuery,
    Checkable,
    Displayable,
    Observable,
    ProfileQuery,
    Ratable,
    StatisticsQuery,
    Traceable,
    compliance_parts,
    compliance_score,
    median_seconds,
    period_days,
    profile_period,
    round_half_up,
)
from services.kitchen.domain.ratings import RateMeal, RatingsQuery, rater_material
from services.platform.errors import InvalidArgumentError

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> list[str]:
    return [v.field for v in error.value.violations]


def _checkable(  # noqa: PLR0917 - every figure of the promise, in its order
    rostered: int = 10,
    before_start: int = 8,
    checked: int = 9,
    passed: int = 7,
    open_violations: int = 1,
    last: str = "PASS",
) -> Checkable:
    return Checkable(rostered, before_start, checked, passed, open_violations, last, T0 if last else None)


OBSERVABLE = Observable(cameras=2, online_service_seconds=10_800, service_seconds=14_400)
TRACEABLE = Traceable(meals=4, fully_traced_meals=3)
DISPLAYABLE = Displayable("We promise safe food.", staff=5, staff_with_valid_certificate=4)
RATED = Ratable(ratings=3, score_sum=12)
UNRATED = Ratable(ratings=0, score_sum=0)


# --- the promises' figures ------------------------------------------------------------------------


def test_shares_of_each_promise() -> None:
    assert OBSERVABLE.camera_coverage == 0.75
    assert TRACEABLE.traced_share == 0.75
    checkable = _checkable()
    assert checkable.morning_check_completion == 0.8
    assert checkable.morning_check_pass_rate == pytest.approx(7 / 9)
    assert DISPLAYABLE.certificate_share == 0.8
    assert RATED.mean_rating == 4.0


def test_empty_figures_are_zero_not_a_division_error() -> None:
    assert Observable(0, 0, 0).camera_coverage == 0.0
    assert Observable(1, 0, 0).camera_coverage == 0.0  # a camera but no service time
    assert Traceable(0, 0).traced_share == 0.0
    empty = _checkable(0, 0, 0, 0, 0, "")
    assert (empty.morning_check_completion, empty.morning_check_pass_rate) == (0.0, 0.0)
    assert Displayable("", 0, 0).certificate_share == 0.0
    assert UNRATED.mean_rating == 0.0


def test_camera_coverage_never_exceeds_one() -> None:
    assert Observable(1, 20_000, 14_400).camera_coverage == 1.0


# --- the compliance score -------------------------------------------------------------------------


def test_score_parts_on_known_inputs() -> None:
    parts = compliance_parts(OBSERVABLE, TRACEABLE, _checkable(), DISPLAYABLE, RATED)
    assert parts.observable == pytest.approx(15.0)
    assert parts.traceable == pytest.approx(15.0)
    # 10 x 0.8 completion + 8 x 7/9 pass rate + (4 - 1 open violation) + 3 for a PASS.
    assert parts.checkable == pytest.approx(8 + 56 / 9 + 3 + 3)
    # 10 x 4/5 valid certificates + 5 for the commitment.
    assert parts.displayable == pytest.approx(13.0)
    assert parts.ratable == pytest.approx(16.0)


def test_score_with_ratings_is_the_sum_of_the_parts() -> None:
    # 15 + 15 + 20.2222 + 13 + 16 = 79.2222
    assert compliance_score(OBSERVABLE, TRACEABLE, _checkable(), DISPLAYABLE, RATED) == 79.2


def test_score_without_ratings_redistributes_their_weight() -> None:
    # (15 + 15 + 20.2222 + 13) x 100 / 80 = 79.0278
    parts = compliance_parts(OBSERVABLE, TRACEABLE, _checkable(), DISPLAYABLE, UNRATED)
    assert parts.ratable is None
    assert compliance_score(OBSERVABLE, TRACEABLE, _checkable(), DISPLAYABLE, UNRATED) == 79.0


def test_a_perfect_kitchen_scores_100() -> None:
    score = compliance_score(
        Observable(3, 14_400, 14_400),
        Traceable(5, 5),
        _checkable(10, 10, 10, 10, 0, "PASS"),
        Displayable("We promise.", 4, 4),
        Ratable(2, 10),
    )
    assert score == 100.0


def test_an_empty_kitchen_keeps_only_the_violation_and_no_inspection_points() -> None:
    # Checkable: 4 (no open violation) + 1 (never inspected) = 5; scaled by 100/80 = 6.25 -> 6.3.
    score = compliance_score(
        Observable(0, 0, 0), Traceable(0, 0), _checkable(0, 0, 0, 0, 0, ""), Displayable("", 0, 0), UNRATED
    )
    assert score == 6.3


@pytest.mark.parametrize(
    ("open_violations", "last", "checkable_points"),
    [
        (0, "PASS", 8 + 56 / 9 + 4 + 3),
        (2, "PASS_WITH_REMARKS", 8 + 56 / 9 + 2 + 2),
        (4, "FAIL", 8 + 56 / 9 + 0 + 0),
        (9, "FAIL", 8 + 56 / 9),  # the violation points never go below zero
        (1, "", 8 + 56 / 9 + 3 + 1),
    ],
)
def test_open_violations_and_the_last_inspection_cost_points(
    open_violations: int, last: str, checkable_points: float
) -> None:
    parts = compliance_parts(
        OBSERVABLE, TRACEABLE, _checkable(open_violations=open_violations, last=last), DISPLAYABLE, RATED
    )
    assert parts.checkable == pytest.approx(checkable_points)


def test_low_ratings_lower_the_score() -> None:
    one_star = compliance_score(OBSERVABLE, TRACEABLE, _checkable(), DISPLAYABLE, Ratable(2, 2))
    # 15 + 15 + 20.2222 + 13 + 20 x 1/5 = 67.2222
    assert one_star == 67.2


def test_round_half_up_to_one_decimal() -> None:
    assert round_half_up(85.25) == 85.3
    assert round_half_up(85.24999) == 85.2
    assert round_half_up(0.05) == 0.1
    assert round_half_up(100.0) == 100.0


# --- periods and medians --------------------------------------------------------------------------


def test_profile_period_defaults_to_the_last_30_days() -> None:
    now = datetime(2025, 3, 31, 4, tzinfo=UTC)
    assert profile_period(None, None, now) == (now - timedelta(days=30), now)
    end = datetime(2025, 3, 10, tzinfo=UTC)
    assert profile_period(None, end, now) == (end - timedelta(days=30), end)
    start = datetime(2025, 3, 20, tzinfo=UTC)
    assert profile_period(start, None, now) == (start, now)
    with pytest.raises(InvalidArgumentError) as error:
        profile_period(now + timedelta(hours=1), None, now)
    assert _fields(error) == ["period.start_time"]


def test_period_days_are_local_days_of_a_half_open_period() -> None:
    # 2025-03-02T16:00Z is local midnight of 03-03 in Shanghai; an end at local midnight excludes that day.
    start = datetime(2025, 3, 2, 16, tzinfo=UTC)
    end = datetime(2025, 3, 4, 16, tzinfo=UTC)
    assert period_days(start, end, SHANGHAI) == (date(2025, 3, 3), date(2025, 3, 4))
    assert period_days(start, end + timedelta(seconds=1), SHANGHAI) == (date(2025, 3, 3), date(2025, 3, 5))


def test_median_seconds() -> None:
    assert median_seconds([]) == 0
    assert median_seconds([300.0, 100.0, 200.0]) == 200
    assert median_seconds([100.0, 201.0]) == 151  # 150.5 rounds up
    assert median_seconds([120.0, 60.0, 600.0, 900.0]) == 360


# --- request checks -------------------------------------------------------------------------------


def _rate(**overrides: object) -> RateMeal:
    values: dict[str, object] = {
        "request_id": "r-1",
        "meal_id": "meal_1",
        "rater_id": "parent-42",
        "score": 4,
        "comment": "Tasty.\nMore fruit please.",
    }
    values.update(overrides)
    return RateMeal(**values)  # type: ignore[arg-type]


def test_a_good_rating_passes() -> None:
    _rate().check()
    _rate(comment="", score=1).check()
    _rate(score=5, comment="x" * 500).check()


@pytest.mark.parametrize("score", [0, 6, -1, 100])
def test_a_score_outside_1_to_5_names_score(score: int) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _rate(score=score).check()
    assert _fields(error) == ["score"]


def test_every_bad_field_of_a_rating_is_named_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _rate(request_id="", meal_id="", rater_id="", score=9, comment="y" * 501).check()
    assert _fields(error) == ["request_id", "meal_id", "rater_id", "score", "comment"]


def test_rater_id_is_one_line_of_at_most_128_characters() -> None:
    for bad in ("a" * 129, "two\nlines", " padded"):
        with pytest.raises(InvalidArgumentError) as error:
            _rate(rater_id=bad).check()
        assert _fields(error) == ["rater_id"]
    _rate(rater_id="a" * 128).check()


def test_rater_material_is_domain_separated() -> None:
    assert rater_material("parent-42") == b"rater|parent-42"


def test_ratings_query_needs_a_kitchen_and_a_sane_period() -> None:
    RatingsQuery("kit_1", None, None).check()
    with pytest.raises(InvalidArgumentError) as error:
        RatingsQuery("", T0, T0).check()
    assert _fields(error) == ["kitchen_id", "period.end_time"]


def test_alerts_query_refuses_unspecified_kinds_and_backwards_periods() -> None:
    AlertsQuery("", (AlertKind.COLD_CHAIN,), True, None, None).check()
    with pytest.raises(InvalidArgumentError) as error:
        AlertsQuery("", (AlertKind.COLD_CHAIN, None), False, T0, T0 - timedelta(hours=1)).check()
    assert _fields(error) == ["kinds[1]", "period.end_time"]
    query = AlertsQuery(
        "", (AlertKind.COLD_CHAIN, AlertKind.COLD_CHAIN, AlertKind.UV_SHORT), False, None, None
    )
    assert query.kind_set == {AlertKind.COLD_CHAIN, AlertKind.UV_SHORT}


def test_profile_needs_a_kitchen_and_statistics_a_period() -> None:
    ProfileQuery("kit_1", None, None).check()
    with pytest.raises(InvalidArgumentError) as error:
        ProfileQuery("", None, None).check()
    assert _fields(error) == ["kitchen_id"]
    StatisticsQuery("", T0, T0 + timedelta(days=1)).check()
    with pytest.raises(InvalidArgumentError) as error:
        StatisticsQuery("", None, None).check()
    assert _fields(error) == ["period.start_time", "period.end_time"]
    with pytest.raises(InvalidArgumentError) as error:
        StatisticsQuery("", datetime(1800, 1, 1, tzinfo=UTC), T0).check()
    assert _fields(error) == ["period.start_time"]
