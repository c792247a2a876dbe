"""The alert list, the five promises (五个可) of a kitchen's public profile with its compliance score, and
the statistics over kitchens and a period: the queries (checked before any transaction), the figures the
repository counts, and the pure arithmetic on them (docs/services/kitchen.md states every formula)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.kitchen.domain.model import AlertKind
from services.platform.errors import InvalidArgumentError, Violations
from services.platform.validation import check_query_period

__all__ = [
    "DEFAULT_PROFILE_DAYS",
    "AlertsQuery",
    "Checkable",
    "Displayable",
    "KitchenStatistics",
    "Observable",
    "ProfileQuery",
    "PublicProfile",
    "Ratable",
    "ScoreParts",
    "StatisticsQuery",
    "Traceable",
    "compliance_parts",
    "compliance_score",
    "median_seconds",
    "period_days",
    "profile_period",
    "round_half_up",
]

# GetPublicProfile without a period: the last 30 days up to now.
DEFAULT_PROFILE_DAYS = 30

# The compliance score's weights (sum 100); docs/services/kitchen.md explains each.
OBSERVABLE_POINTS = 20.0
TRACEABLE_POINTS = 20.0
CHECK_COMPLETION_POINTS = 10.0
CHECK_PASS_POINTS = 8.0
OPEN_VIOLATION_POINTS = 4.0  # minus one per open violation, never below zero
INSPECTION_POINTS = {"PASS": 3.0, "PASS_WITH_REMARKS": 2.0, "": 1.0, "FAIL": 0.0}
CERTIFICATE_POINTS = 10.0
COMMITMENT_POINTS = 5.0
RATABLE_POINTS = 20.0
TOTAL_POINTS = 100.0


def _kitchen_id(violations: Violations, kitchen_id: str, *, required: bool) -> None:
    if required and not kitchen_id:
        violations.add("kitchen_id", "is required")


# --- queries --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertsQuery:
    """ListKitchenAlerts: one kitchen ("" = every kitchen the caller may see), the kinds (empty = all;
    None stands for an unspecified kind in the request), open only, a period of raising (open bounds)."""

    kitchen_id: str
    kinds: tuple[AlertKind | None, ...]
    open_only: bool
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        violations = Violations()
        for index, kind in enumerate(self.kinds):
            if kind is None:
                violations.add(f"kinds[{index}]", "must be a specified alert kind")
        check_query_period(violations, "period", self.start, self.end, required=False)
        violations.check()

    @property
    def kind_set(self) -> frozenset[AlertKind]:
        return frozenset(k for k in self.kinds if k is not None)


@dataclass(frozen=True, slots=True)
class ProfileQuery:
    """GetPublicProfile: a kitchen and a period (both bounds unset: the last 30 days)."""

    kitchen_id: str
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        violations = Violations()
        _kitchen_id(violations, self.kitchen_id, required=True)
        check_query_period(violations, "period", self.start, self.end, required=False)
        violations.check()


@dataclass(frozen=True, slots=True)
class StatisticsQuery:
    """GetKitchenStatistics: one kitchen ("" = every kitchen the caller may see) and a required period."""

    kitchen_id: str
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        violations = Violations()
        check_query_period(violations, "period", self.start, self.end, required=True)
        violations.check()


def profile_period(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The profile's period: as given; an unset end is now, an unset start is 30 days before the end."""
    last = end if end is not None else now
    first = start if start is not None else last - timedelta(days=DEFAULT_PROFILE_DAYS)
    if last <= first:
        # Only a start after now gets here (a given end is checked against the start already).
        raise InvalidArgumentError.of("period.start_time", "must be before now when the period has no end")
    return first, last


def period_days(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The first and last local calendar days the half-open period [start, end) touches (per-day figures
    such as equipment days count whole days)."""
    last_moment = max(start, end - timedelta(microseconds=1))
    return start.astimezone(zone).date(), last_moment.astimezone(zone).date()


# --- the five promises ----------------------------------------------------------------------------


def _share(part: int, whole: int) -> float:
    return part / whole if whole > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Observable:
    """可视: cameras, and per day of the period the best camera's online service seconds against the
    day's service seconds (summed over the days with camera figures)."""

    cameras: int
    online_service_seconds: int
    service_seconds: int

    @property
    def camera_coverage(self) -> float:
        if self.cameras == 0:
            return 0.0
        return min(1.0, _share(self.online_service_seconds, self.service_seconds))


@dataclass(frozen=True, slots=True)
class Traceable:
    """可溯: meals served in the period, and those whose every dish names its lots."""

    meals: int
    fully_traced_meals: int

    @property
    def traced_share(self) -> float:
        return _share(self.fully_traced_meals, self.meals)


@dataclass(frozen=True, slots=True)
class Checkable:
    """可查: the period's morning-check rows (NO_CHECK bars included), the open violations now and the
    last inspection up to the period's end ("" when none)."""

    rostered: int
    checked_before_start: int
    checked: int
    passed: int
    open_violations: int
    last_inspection_result: str
    last_inspected_at: datetime | None

    @property
    def morning_check_completion(self) -> float:
        return _share(self.checked_before_start, self.rostered)

    @property
    def morning_check_pass_rate(self) -> float:
        return _share(self.passed, self.checked)


@dataclass(frozen=True, slots=True)
class Displayable:
    """可示: the commitment text, the staff, and those whose health certificate is valid today."""

    commitment: str
    staff: int
    staff_with_valid_certificate: int

    @property
    def certificate_share(self) -> float:
        return _share(self.staff_with_valid_certificate, self.staff)


@dataclass(frozen=True, slots=True)
class Ratable:
    """可评: the period's ratings (mean 0 without any)."""

    ratings: int
    score_sum: int

    @property
    def mean_rating(self) -> float:
        return _share(self.score_sum, self.ratings)


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """The points of each promise; ``ratable`` is None when the period has no rating."""

    observable: float
    traceable: float
    checkable: float
    displayable: float
    ratable: float | None


def round_half_up(value: float, digits: int = 1) -> float:
    """``value`` rounded to ``digits`` decimals, halves away from zero (85.25 -> 85.3), immune to the
    binary representation of the input (85.25 may be stored as 85.2499999...)."""
    scale = 10.0**digits
    return math.floor(round(value * scale, 6) + 0.5) / scale


def compliance_parts(
    observable: Observable,
    traceable: Traceable,
    checkable: Checkable,
    displayable: Displayable,
    ratable: Ratable,
) -> ScoreParts:
    open_points = max(0.0, OPEN_VIOLATION_POINTS - checkable.open_violations)
    inspection_points = INSPECTION_POINTS.get(checkable.last_inspection_result, 0.0)
    return ScoreParts(
        observable=OBSERVABLE_POINTS * observable.camera_coverage,
        traceable=TRACEABLE_POINTS * traceable.traced_share,
        checkable=CHECK_COMPLETION_POINTS * checkable.morning_check_completion
        + CHECK_PASS_POINTS * checkable.morning_check_pass_rate
        + open_points
        + inspection_points,
        displayable=CERTIFICATE_POINTS * displayable.certificate_share
        + (COMMITMENT_POINTS if displayable.commitment.strip() else 0.0),
        ratable=RATABLE_POINTS * ratable.mean_rating / 5 if ratable.ratings > 0 else None,
    )


def compliance_score(
    observable: Observable,
    traceable: Traceable,
    checkable: Checkable,
    displayable: Displayable,
    ratable: Ratable,
) -> float:
    """0-100, one decimal. Without ratings the other four parts are scaled up to 100 (the weight of the
    ratings is redistributed in proportion), so a kitchen nobody rated yet is neither rewarded nor
    punished for it."""
    parts = compliance_parts(observable, traceable, checkable, displayable, ratable)
    others = parts.observable + parts.traceable + parts.checkable + parts.displayable
    if parts.ratable is None:
        total = others * TOTAL_POINTS / (TOTAL_POINTS - RATABLE_POINTS)
    else:
        total = others + parts.ratable
    return round_half_up(min(TOTAL_POINTS, max(0.0, total)), 1)


@dataclass(frozen=True, slots=True)
class PublicProfile:
    kitchen_id: str
    kitchen_name: str
    site_id: str
    start: datetime
    end: datetime
    observable: Observable
    traceable: Traceable
    checkable: Checkable
    displayable: Displayable
    ratable: Ratable

    @property
    def compliance_score(self) -> float:
        return compliance_score(
            self.observable, self.traceable, self.checkable, self.displayable, self.ratable
        )


# --- statistics -----------------------------------------------------------------------------------


def median_seconds(durations: list[float]) -> int:
    """The median of the durations in whole seconds (halves rounded up; 0 without any)."""
    if not durations:
        return 0
    return math.floor(float(statistics.median(durations)) + 0.5)


@dataclass(frozen=True, slots=True)
class KitchenStatistics:
    kitchens: int
    morning_checks: int
    passed_checks: int
    cold_chain_alerts: int
    seconds_out_of_range: int
    # (violation kind as stored, count), by kind.
    violations_by_kind: tuple[tuple[str, int], ...]
    rectify_seconds: tuple[float, ...]
    ratings: int
    score_sum: int

    @property
    def morning_check_pass_rate(self) -> float:
        return _share(self.passed_checks, self.morning_checks)

    @property
    def minutes_out_of_range(self) -> int:
        return self.seconds_out_of_range // 60

    @property
    def median_seconds_to_rectify(self) -> int:
        return median_seconds(list(self.rectify_seconds))

    @property
    def mean_rating(self) -> float:
        return _share(self.score_sum, self.ratings)
