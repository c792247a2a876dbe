"""The working-day calendar from the maintained `holidays` library: public holidays are days off and the
adjusted working weekends (调休) it publishes are working days, for every year it knows."""

from __future__ import annotations

from datetime import date

import holidays

__all__ = ["HolidayCalendar"]


class HolidayCalendar:
    def __init__(self, country: str = "CN") -> None:
        # The library fills years in lazily as dates are asked for.
        self._days = holidays.country_holidays(country)

    def is_working_day(self, day: date) -> bool:
        return bool(self._days.is_working_day(day))
