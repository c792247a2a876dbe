"""The district dashboard's rules: periods (day, ISO week from Monday, month, year) and the previous one of
the same length, which figures are cumulative and which are flows, and the change between two periods.

What the dashboard counts and from which event (projections/dashboard.py records one *fact* per counted
thing, keyed by its business key, so a repeat counts once):

- enterprises (EnterpriseOnboarded), devices_connected (DeviceRegistered), kitchens_equipped
  (KitchenRegistered), chamber_members (MembershipApproved minus MembershipEnded): cumulative, the total
  at the period's end against the total at the previous period's end;
- devices_reporting: the distinct devices with an hourly utilisation summary (UtilisationRolledUp) in the
  period; utilisation and oee: the mean of those hourly figures (availability and OEE) in the period;
- warnings_raised (AlertRaised), joint_responses (AlertResolved with joint_response),
  morning_checks_failed (MorningCheckFailed), cold_chain_alerts (ColdChainAlertRaised), new_joins
  (MembershipApproved), applications_filed / _completed / _on_time (ApplicationFiled, ApplicationCompleted
  and its on_time) and applications_on_time_rate (on time / completed): flows within the period.

Not shown, because no event carries them: the morning-check *pass* rate (the kitchen publishes only the
failed checks, never the checks done, so there is no denominator) and digital workshops (industry
publishes no event saying a workshop became digital; its share threshold is industry's setting).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.platform.errors import Violations
from services.platform.validation import parse_date

__all__ = [
    "CUMULATIVE",
    "FIGURES",
    "FLOWS",
    "DashboardQuery",
    "DeviceFigures",
    "Fact",
    "Figure",
    "Granularity",
    "Metric",
    "MetricCounts",
    "Period",
    "change_of",
    "figure",
    "local_day",
    "period_of",
    "previous_of",
]

# The command's field "date" hides the type inside its class.
_Date = date
_MAX_TOWN_CHARS = 100
# Far wider than any data; keeps the previous period's arithmetic inside what ``date`` can represent.
_EARLIEST = date(1900, 1, 1)
_LATEST = date(8999, 12, 31)


class Granularity(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


class Metric(StrEnum):
    """The facts the projection records (dashboard_facts.metric)."""

    ENTERPRISES = "enterprises"
    DEVICES_CONNECTED = "devices_connected"
    KITCHENS_EQUIPPED = "kitchens_equipped"
    MEMBERS_JOINED = "members_joined"
    MEMBERS_LEFT = "members_left"
    WARNINGS_RAISED = "warnings_raised"
    JOINT_RESPONSES = "joint_responses"
    MORNING_CHECKS_FAILED = "morning_checks_failed"
    COLD_CHAIN_ALERTS = "cold_chain_alerts"
    APPLICATIONS_FILED = "applications_filed"
    APPLICATIONS_COMPLETED = "applications_completed"
    APPLICATIONS_ON_TIME = "applications_on_time"


# Totals at the period's end (members: joined minus left, computed by the use case).
CUMULATIVE = (Metric.ENTERPRISES, Metric.DEVICES_CONNECTED, Metric.KITCHENS_EQUIPPED)
# Sums within the period.
FLOWS = (
    Metric.WARNINGS_RAISED,
    Metric.JOINT_RESPONSES,
    Metric.MORNING_CHECKS_FAILED,
    Metric.COLD_CHAIN_ALERTS,
    Metric.APPLICATIONS_FILED,
    Metric.APPLICATIONS_COMPLETED,
    Metric.APPLICATIONS_ON_TIME,
)
# The figures in the order the response lists them.
FIGURES = (
    "enterprises",
    "devices_connected",
    "devices_reporting",
    "utilisation",
    "oee",
    "warnings_raised",
    "joint_responses",
    "kitchens_equipped",
    "morning_checks_failed",
    "cold_chain_alerts",
    "chamber_members",
    "new_joins",
    "applications_filed",
    "applications_completed",
    "applications_on_time",
    "applications_on_time_rate",
)


@dataclass(frozen=True, slots=True)
class Period:
    """Local dates, ``first`` inclusive and ``end`` exclusive."""

    first: date
    end: date

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Local midnight to local midnight, as instants."""
        return (
            datetime.combine(self.first, datetime.min.time(), zone),
            datetime.combine(self.end, datetime.min.time(), zone),
        )


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def period_of(granularity: Granularity, day: date) -> Period:
    """The period of ``granularity`` containing ``day`` (weeks are ISO weeks, starting on Monday)."""
    if granularity == Granularity.DAY:
        return Period(day, day + timedelta(days=1))
    if granularity == Granularity.WEEK:
        monday = day - timedelta(days=day.weekday())
        return Period(monday, monday + timedelta(days=7))
    if granularity == Granularity.MONTH:
        first = day.replace(day=1)
        return Period(first, _add_months(first, 1))
    first = date(day.year, 1, 1)
    return Period(first, date(day.year + 1, 1, 1))


def previous_of(granularity: Granularity, period: Period) -> Period:
    """The period of the same granularity just before ``period``."""
    return period_of(granularity, period.first - timedelta(days=1))


def change_of(value: float, previous: float) -> tuple[float, float]:
    """value - previous, and that relative to previous (0 when previous is 0)."""
    change = value - previous
    return change, (change / previous if previous else 0.0)


@dataclass(frozen=True, slots=True)
class Fact:
    """One counted thing (a row of dashboard_facts)."""

    metric: Metric
    key: str
    day: date
    town: str
    ref_kind: str
    ref_id: str
    at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class MetricCounts:
    """A metric's facts up to the period's end, up to the previous period's end, in each period."""

    to_end: int = 0
    to_previous_end: int = 0
    in_period: int = 0
    in_previous: int = 0


@dataclass(frozen=True, slots=True)
class DeviceFigures:
    """Devices reporting (distinct) and mean hourly availability / OEE (0..1) in one period."""

    reporting: int = 0
    utilisation: float = 0.0
    oee: float = 0.0


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    previous: float
    change: float
    change_ratio: float


def figure(name: str, value: float, previous: float) -> Figure:
    change, ratio = change_of(value, previous)
    return Figure(name, float(value), float(previous), change, ratio)


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The district's calendar date of an instant."""
    return moment.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """GetDashboard: one town ('' = the district), the granularity and a local date inside the period
    ('' = today)."""

    town: str
    granularity: Granularity | None
    date: str

    def check(self) -> None:
        violations = Violations()
        if len(self.town) > _MAX_TOWN_CHARS:
            violations.add("town", f"must be at most {_MAX_TOWN_CHARS} characters")
        if self.granularity is None:
            violations.add("granularity", "must be DAY, WEEK, MONTH or YEAR")
        if self.date:
            day = parse_date(self.date)
            if day is None:
                violations.add("date", "must be a calendar date YYYY-MM-DD")
            elif not _EARLIEST <= day <= _LATEST:
                violations.add("date", f"must be between {_EARLIEST} and {_LATEST}")
        violations.check()

    def day(self, today: _Date) -> _Date:
        """The date asked for (checked), or ``today``."""
        day = parse_date(self.date) if self.date else None
        return day if day is not None else today
