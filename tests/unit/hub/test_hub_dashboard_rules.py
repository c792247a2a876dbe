"""The dashboard's pure rules: periods (ISO weeks, month and year boundaries, the previous period), change
ratios and the GetDashboard query's checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.hub.domain.dashboard import (
    FIGURES,
    DashboardQuery,
    Granularity,
    Period,
    change_of,
    figure,
    local_day,
    period_of,
    previous_of,
)
from services.platform.errors import InvalidArgumentError

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("granularity", "day", "first", "end"),
    [
        (Granularity.DAY, date(2024, 2, 29), date(2024, 2, 29), date(2024, 3, 1)),
        (Granularity.DAY, date(2024, 12, 31), date(2024, 12, 31), date(2025, 1, 1)),
        # ISO weeks start on Monday; a Sunday belongs to the week that began six days before.
        (Granularity.WEEK, date(2024, 5, 15), date(2024, 5, 13), date(2024, 5, 20)),
        (Granularity.WEEK, date(2024, 5, 13), date(2024, 5, 13), date(2024, 5, 20)),
        (Granularity.WEEK, date(2024, 5, 19), date(2024, 5, 13), date(2024, 5, 20)),
        # A week across the year boundary (ISO week 1 of 2025 starts on Monday 30 December 2024).
        (Granularity.WEEK, date(2025, 1, 1), date(2024, 12, 30), date(2025, 1, 6)),
        (Granularity.MONTH, date(2024, 2, 10), date(2024, 2, 1), date(2024, 3, 1)),
        (Granularity.MONTH, date(2024, 12, 31), date(2024, 12, 1), date(2025, 1, 1)),
        (Granularity.YEAR, date(2024, 7, 4), date(2024, 1, 1), date(2025, 1, 1)),
    ],
)
def test_period_of(granularity: Granularity, day: date, first: date, end: date) -> None:
    assert period_of(granularity, day) == Period(first, end)


@pytest.mark.parametrize(
    ("granularity", "day", "first", "end"),
    [
        (Granularity.DAY, date(2024, 3, 1), date(2024, 2, 29), date(2024, 3, 1)),
        (Granularity.DAY, date(2025, 1, 1), date(2024, 12, 31), date(2025, 1, 1)),
        (Granularity.WEEK, date(2025, 1, 1), date(2024, 12, 23), date(2024, 12, 30)),
        # The month before March 2024 is February with its 29 days; before January, the last December.
        (Granularity.MONTH, date(2024, 3, 31), date(2024, 2, 1), date(2024, 3, 1)),
        (Granularity.MONTH, date(2024, 1, 15), date(2023, 12, 1), date(2024, 1, 1)),
        (Granularity.YEAR, date(2024, 1, 1), date(2023, 1, 1), date(2024, 1, 1)),
    ],
)
def test_previous_period_has_the_same_granularity_and_ends_where_the_period_starts(
    granularity: Granularity, day: date, first: date, end: date
) -> None:
    period = period_of(granularity, day)
    previous = previous_of(granularity, period)
    assert previous == Period(first, end)
    assert previous.end == period.first


def test_period_bounds_are_local_midnights() -> None:
    start, end = period_of(Granularity.DAY, date(2024, 5, 13)).bounds(SHANGHAI)
    assert start == datetime(2024, 5, 12, 16, tzinfo=UTC)
    assert end == datetime(2024, 5, 13, 16, tzinfo=UTC)


def test_local_day_is_the_district_calendar_date() -> None:
    # 17:30 UTC is 01:30 the next morning in the district.
    assert local_day(datetime(2024, 5, 12, 17, 30, tzinfo=UTC), SHANGHAI) == date(2024, 5, 13)
    assert local_day(datetime(2024, 5, 12, 15, 59, tzinfo=UTC), SHANGHAI) == date(2024, 5, 12)


@pytest.mark.parametrize(
    ("value", "previous", "change", "ratio"),
    [
        (15.0, 10.0, 5.0, 0.5),
        (5.0, 10.0, -5.0, -0.5),
        (10.0, 10.0, 0.0, 0.0),
        (3.0, 0.0, 3.0, 0.0),  # no previous: the ratio is 0, not infinite
        (0.0, 0.0, 0.0, 0.0),
    ],
)
def test_change_and_ratio(value: float, previous: float, change: float, ratio: float) -> None:
    assert change_of(value, previous) == pytest.approx((change, ratio))
    made = figure("x", value, previous)
    assert (made.value, made.previous, made.change, made.change_ratio) == pytest.approx(
        (value, previous, change, ratio)
    )


def test_query_names_every_bad_field() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        DashboardQuery(town="t" * 101, granularity=None, date="2024-02-30").check()
    assert {v.field for v in caught.value.violations} == {"town", "granularity", "date"}


@pytest.mark.parametrize("text", ["20240301", "2024-3-1", "0001-01-01", "9999-12-31", "yesterday"])
def test_query_refuses_dates_it_cannot_use(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        DashboardQuery(town="", granularity=Granularity.DAY, date=text).check()
    assert [v.field for v in caught.value.violations] == ["date"]


def test_query_date_defaults_to_today() -> None:
    query = DashboardQuery(town="", granularity=Granularity.WEEK, date="")
    query.check()
    assert query.day(date(2024, 5, 15)) == date(2024, 5, 15)
    assert DashboardQuery(town="", granularity=Granularity.WEEK, date="2024-01-02").day(
        date(2024, 5, 15)
    ) == date(2024, 1, 2)


def test_figures_are_named_once() -> None:
    assert len(set(FIGURES)) == len(FIGURES)
    assert "morning_check_pass_rate" not in FIGURES  # the kitchen publishes no passed checks
