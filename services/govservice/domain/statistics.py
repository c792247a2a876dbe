"""Figures per region, item and period, and the people each partner place had served: counts only, never
anyone's identity.

Regions nest like their GB/T 2260 codes (domain/access.py): a province code covers every division of the
province, a city code its counties. In SQL a code's nesting is a prefix of the six digits
(:func:`division_pattern`), the same rule as :func:`services.govservice.domain.access.covers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from services.govservice.domain.access import Visibility
from services.platform.errors import PermissionDeniedError, Violations
from services.platform.identifiers import invalid_division_code
from services.platform.validation import check_query_period

__all__ = [
    "PeopleServedQuery",
    "PlaceServed",
    "Statistics",
    "StatisticsCounts",
    "StatisticsQuery",
    "division_pattern",
    "statistics_scope",
]

_DIGITS = re.compile(r"[0-9]{6}")


def division_pattern(code: str) -> str | None:
    """The SQL LIKE pattern of the divisions ``code`` covers (``33%`` for a province, ``3310%`` for a city,
    the code itself for a county), or None for anything that is not six ASCII digits: a scope taken from a
    token is never trusted to be free of ``%`` or ``_``."""
    if not _DIGITS.fullmatch(code):
        return None
    if code.endswith("0000"):
        return code[:2] + "%"
    if code.endswith("00"):
        return code[:4] + "%"
    return code


def statistics_scope(visibility: Visibility, division_code: str) -> tuple[str, ...] | None:
    """The patterns an application's filing or handling region must match to count (None: every region).

    A named division must be one the caller covers (a clerk asking for another region's figures:
    PERMISSION_DENIED, as a list filtered to a scope the caller lacks); no division is everything for the
    programme office and services, and the clerk's own regions for a clerk."""
    if division_code:
        if not visibility.covers(division_code):
            raise PermissionDeniedError(f"division_code {division_code} is not a region of the caller")
        pattern = division_pattern(division_code)
        return (pattern,) if pattern else ()
    if visibility.everything:
        return None
    return tuple(sorted({p for p in map(division_pattern, visibility.regions) if p is not None}))


@dataclass(frozen=True, slots=True)
class StatisticsQuery:
    """GetStatistics: a division (empty: the caller's whole view), an item (empty: all), a period."""

    division_code: str
    item_code: str
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        violations = Violations()
        if self.division_code:
            violations.add_if(invalid_division_code(self.division_code), "division_code")
        check_query_period(violations, "period", self.start, self.end, required=True)
        violations.check()


@dataclass(frozen=True, slots=True)
class PeopleServedQuery:
    """GetPeopleServed: the period (required)."""

    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        violations = Violations()
        check_query_period(violations, "period", self.start, self.end, required=True)
        violations.check()


@dataclass(frozen=True, slots=True)
class StatisticsCounts:
    """What the repository counts over the half-open period ``[start, end)``."""

    # Filed in the period.
    filed: int
    # Completed in the period (finished_at in it, status COMPLETED).
    completed: int
    # Of those, completed on a local date no later than their due date.
    completed_on_time: int
    # Sum of the working days used by those completed in the period.
    working_days: int
    # Flagged overdue and not finished (completed or rejected), now: not bounded by the period.
    overdue_now: int


@dataclass(frozen=True, slots=True)
class Statistics:
    filed: int
    completed: int
    # Share 0-1 of the completed ones finished by their deadline (0 when none was completed).
    on_time_rate: float
    # Mean working days from acceptance to completion, supplement pauses excluded (0 when none).
    mean_working_days: float
    overdue_now: int

    @classmethod
    def of(cls, counts: StatisticsCounts) -> Statistics:
        completed = counts.completed
        return cls(
            filed=counts.filed,
            completed=completed,
            on_time_rate=counts.completed_on_time / completed if completed else 0.0,
            mean_working_days=counts.working_days / completed if completed else 0.0,
            overdue_now=counts.overdue_now,
        )


@dataclass(frozen=True, slots=True)
class PlaceServed:
    """A partner place: the distinct person applicants registered there (their identity number's division
    under its code) who filed in the period, and how many applications they filed."""

    division_code: str
    name: str
    people: int
    applications: int
