"""Working-day arithmetic (domain/workdays.py): the real Chinese calendar across the 2026 National Day
holiday (Oct 1-7 off, Sunday Sep 20 and Saturday Oct 10 adjusted working days, Mid-Autumn Sep 25 off),
and a fake calendar for the edges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from services.govservice.adapters.calendar import HolidayCalendar
from services.govservice.domain.workdays import add_working_days, working_days_between

CN = HolidayCalendar("CN").is_working_day


def weekdays(day: date) -> bool:
    return day.weekday() < 5


def weekdays_except(*off: date) -> Callable[[date], bool]:
    def is_working_day(day: date) -> bool:
        return day.weekday() < 5 and day not in off

    return is_working_day


def test_the_calendar_knows_the_2026_national_day_holiday_and_its_adjusted_weekend() -> None:
    assert [CN(date(2026, 10, d)) for d in range(1, 8)] == [False] * 7
    assert CN(date(2026, 9, 20))  # a Sunday, worked
    assert CN(date(2026, 10, 10))  # a Saturday, worked
    assert not CN(date(2026, 10, 11))
    assert not CN(date(2026, 9, 25))  # Mid-Autumn Festival


def test_adding_working_days_skips_the_holiday_and_counts_the_adjusted_saturday() -> None:
    accepted = date(2026, 9, 29)
    assert [add_working_days(accepted, n, CN) for n in range(7)] == [
        accepted,
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
        date(2026, 10, 12),
        date(2026, 10, 13),
    ]


def test_counting_starts_the_day_after_even_from_a_holiday() -> None:
    assert add_working_days(date(2026, 10, 3), 1, CN) == date(2026, 10, 8)
    assert add_working_days(date(2026, 9, 19), 1, CN) == date(2026, 9, 20)


def test_working_days_between_excludes_the_start_and_includes_the_end() -> None:
    assert working_days_between(date(2026, 9, 29), date(2026, 9, 29), CN) == 0
    assert working_days_between(date(2026, 9, 29), date(2026, 10, 7), CN) == 1
    assert working_days_between(date(2026, 9, 29), date(2026, 10, 8), CN) == 2
    assert working_days_between(date(2026, 10, 9), date(2026, 10, 11), CN) == 1
    assert working_days_between(date(2026, 9, 24), date(2026, 9, 28), CN) == 1
    assert working_days_between(date(2026, 9, 19), date(2026, 9, 20), CN) == 1


def test_between_is_signed() -> None:
    assert working_days_between(date(2026, 10, 13), date(2026, 9, 29), CN) == -6


@pytest.mark.parametrize("start", [date(2026, 9, 18) + timedelta(days=k) for k in range(30)])
def test_adding_and_counting_agree_around_the_holiday(start: date) -> None:
    for n in range(12):
        due = add_working_days(start, n, CN)
        assert working_days_between(start, due, CN) == n
        if n:
            # The due date is a working day and the day before it leaves one day to go.
            assert CN(due)
            assert working_days_between(start, due - timedelta(days=1), CN) == n - 1


def test_a_fake_calendar_weekends_and_a_holiday() -> None:
    monday = date(2030, 1, 7)
    friday = monday + timedelta(days=4)
    assert add_working_days(friday, 1, weekdays) == monday + timedelta(days=7)
    assert add_working_days(monday + timedelta(days=5), 1, weekdays) == monday + timedelta(days=7)
    holiday = monday + timedelta(days=1)
    off = weekdays_except(holiday)
    assert add_working_days(monday, 1, off) == monday + timedelta(days=2)
    assert working_days_between(monday, friday, off) == 3


def test_zero_days_is_the_start_itself_even_on_a_day_off() -> None:
    sunday = date(2030, 1, 6)
    assert add_working_days(sunday, 0, weekdays) == sunday


def test_a_negative_count_and_a_calendar_without_working_days_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(date(2030, 1, 7), -1, weekdays)
    with pytest.raises(ValueError, match="no working day"):
        add_working_days(date(2030, 1, 7), 1, lambda _: False)
