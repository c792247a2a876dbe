"""Kitchens and their inspections: the commands of the kitchens and inspections families and the checks
every request passes before anything is stored.

A kitchen's shifts are local times of day "HH:MM" (00:00-23:59), start strictly before end, within one
day (a night shift across midnight is not a school kitchen's). The site itself (does it exist, is it a
school or a kindergarten) is the safety service's to say; the use case asks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.kitchen.domain.model import GeoPoint, OperatorKind, Shift
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code
from services.platform.validation import check_event_time, parse_date, text_problem

__all__ = [
    "MAX_FINDINGS",
    "MAX_MEALS_PER_DAY",
    "MAX_SHIFTS",
    "SCHOOL_SITE_KINDS",
    "Inspection",
    "InspectionResult",
    "RecordInspection",
    "RegisterKitchen",
    "minute_of",
    "parse_date",
]

# The site kinds a kitchen may serve (the safety service's SiteKind names).
SCHOOL_SITE_KINDS = frozenset({"SCHOOL", "KINDERGARTEN"})
# The district's largest central kitchens cook tens of thousands of meals; beyond is a typing mistake.
MAX_MEALS_PER_DAY = 100_000
# Breakfast, lunch, dinner and a few more: a day with more shifts than this is a mistake.
MAX_SHIFTS = 12
MAX_FINDINGS = 200
_MAX_NAME = 200
_MAX_SHIFT_NAME = 40
_MAX_COMMITMENT = 500
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def minute_of(value: str) -> int | None:
    """Minutes after local midnight of an "HH:MM" time (00:00-23:59), or None when it is not one."""
    matched = _HHMM.fullmatch(value)
    if matched is None:
        return None
    return int(matched.group(1)) * 60 + int(matched.group(2))


def _text(v: Violations, field: str, value: str, limit: int, *, required: bool) -> None:
    if required and not value:
        v.add(field, "is required")
    else:
        v.add_if(text_problem(value, max_chars=limit), field)


def _shifts(v: Violations, shifts: tuple[Shift, ...]) -> None:
    if not shifts:
        v.add("shifts", "at least one shift is required")
        return
    if len(shifts) > MAX_SHIFTS:
        v.add("shifts", f"at most {MAX_SHIFTS} shifts")
        return
    seen: set[str] = set()
    for i, shift in enumerate(shifts):
        _text(v, f"shifts[{i}].name", shift.name, _MAX_SHIFT_NAME, required=True)
        if shift.name and shift.name in seen:
            v.add(f"shifts[{i}].name", "names a shift twice (shift names are unique in a kitchen)")
        seen.add(shift.name)
        start, end = minute_of(shift.start_time), minute_of(shift.end_time)
        if start is None:
            v.add(f"shifts[{i}].start_time", "must be a local time HH:MM (00:00-23:59)")
        if end is None:
            v.add(f"shifts[{i}].end_time", "must be a local time HH:MM (00:00-23:59)")
        if start is not None and end is not None and end <= start:
            v.add(f"shifts[{i}].end_time", f"must be after shifts[{i}].start_time (a shift within one day)")


@dataclass(frozen=True, slots=True)
class RegisterKitchen:
    request_id: str
    site_id: str
    name: str
    operator_kind: OperatorKind | None
    operator_name: str
    operator_credit_code: str
    meals_per_day: int
    location: GeoPoint | None
    shifts: tuple[Shift, ...]
    commitment: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "site_id", self.site_id, 128, required=True)
        _text(v, "name", self.name, _MAX_NAME, required=True)
        if self.operator_kind is None:
            v.add("operator.kind", "is required (school-run or contractor)")
        _text(v, "operator.name", self.operator_name, _MAX_NAME, required=True)
        if self.operator_credit_code:
            v.add_if(invalid_credit_code(self.operator_credit_code), "operator.credit_code")
        elif self.operator_kind is OperatorKind.CONTRACTOR:
            v.add("operator.credit_code", "is required for a contractor (unified social credit code)")
        if not 1 <= self.meals_per_day <= MAX_MEALS_PER_DAY:
            v.add("meals_per_day", f"must be 1-{MAX_MEALS_PER_DAY}")
        if self.location is not None:
            if not -90 <= self.location.latitude <= 90:
                v.add("location.latitude", "must be -90 to 90")
            if not -180 <= self.location.longitude <= 180:
                v.add("location.longitude", "must be -180 to 180")
        _shifts(v, self.shifts)
        _text(v, "commitment", self.commitment, _MAX_COMMITMENT, required=False)
        v.check()


# --- inspections ----------------------------------------------------------------------------------------


class InspectionResult(StrEnum):
    PASS = "PASS"  # noqa: S105 - an inspection result, not a password
    PASS_WITH_REMARKS = "PASS_WITH_REMARKS"  # noqa: S105
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Inspection:
    inspection_id: str
    kitchen_id: str
    inspected_at: datetime
    inspector: str
    findings: tuple[str, ...]
    result: InspectionResult
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class RecordInspection:
    request_id: str
    kitchen_id: str
    inspected_at: datetime | None
    inspector: str
    findings: tuple[str, ...]
    result: InspectionResult | None

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.kitchen_id:
            v.add("kitchen_id", "is required")
        check_event_time(v, "inspected_at", self.inspected_at, now)
        _text(v, "inspector", self.inspector, _MAX_NAME, required=True)
        if len(self.findings) > MAX_FINDINGS:
            v.add("findings", f"at most {MAX_FINDINGS} findings")
        else:
            for i, finding in enumerate(self.findings):
                _text(v, f"findings[{i}]", finding, 500, required=True)
        if self.result is None:
            v.add("result", "is required (pass, pass with remarks or fail)")
        v.check()
