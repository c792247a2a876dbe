"""Working-day arithmetic for deadlines (pure: the calendar is passed in as a predicate).

The one convention everything here follows: **a day counts when its working day is over**, so the day
something happens is never counted, the next working day is day 1.

- ``add_working_days(start, n)`` is the ``n``-th working day strictly after ``start`` (``start`` itself for
  ``n == 0``). An application accepted on ``a`` with ``P`` promised working days is due on
  ``add_working_days(a, P)``: counting starts on the next working day after acceptance, and the handling
  authority has the whole of the due date.
- ``working_days_between(a, b)`` is the number of working days ``d`` with ``a < d <= b`` (``a`` exclusive,
  ``b`` inclusive), negative when ``b`` is before ``a``. So ``working_days_between(a,
  add_working_days(a, n)) == n`` for every ``n >= 0``.

Public holidays are not working days, and neither are weekends, except the adjusted working weekend days
(调休) the calendar says are working days: whatever the predicate answers is the truth here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

__all__ = ["MAX_DAYS_WITHOUT_WORK", "IsWorkingDay", "add_working_days", "working_days_between"]

IsWorkingDay = Callable[[date], bool]

# No real calendar has a year without a working day: a predicate that does is a broken calendar, and an
# error is better than a loop without end.
MAX_DAYS_WITHOUT_WORK = 366
_DAY = timedelta(days=1)


def add_working_days(start: date, n: int, is_working_day: IsWorkingDay) -> date:
    """The ``n``-th working day after ``start`` (``start`` not counted); ``start`` for ``n == 0``."""
    if n < 0:
        raise ValueError("n must not be negative")
    day = start
    idle = 0
    while n > 0:
        day += _DAY
        if is_working_day(day):
            n -= 1
            idle = 0
        else:
            idle += 1
            if idle > MAX_DAYS_WITHOUT_WORK:
                raise ValueError(f"the calendar has no working day for {MAX_DAYS_WITHOUT_WORK} days")
    return day


def working_days_between(a: date, b: date, is_working_day: IsWorkingDay) -> int:
    """How many working days ``d`` have ``a < d <= b``; minus that count for ``(b, a]`` when ``b < a``."""
    if b < a:
        return -working_days_between(b, a, is_working_day)
    count = 0
    day = a + _DAY
    while day <= b:
        if is_working_day(day):
            count += 1
        day += _DAY
    return count
