"""Staff and their morning checks (晨检): the commands, the barring rule and the certificate rule.

The barring rule (:func:`bar_reasons`): a staff member is barred from a shift when

* the forehead temperature is at or above the fever threshold (37.3 °C by default: 37.2 passes, 37.3
  bars), or any symptom is declared: one coarse reason, HEALTH_SCREEN, which says neither which;
* the health certificate is missing, or expired on the shift's date. A certificate is valid through its
  expiry date: a shift ON the expiry date passes, the day after bars (the date printed on a 健康证 is the
  last day it covers);
* the face match score is below the threshold (the person at the screen may not be the staff member);
* the check was not done before the shift's start (a check at the start itself is late: NO_CHECK).

A check's shift date must be yesterday, today or tomorrow (local): a terminal's clock or a manager's
typing mistake beyond that is refused rather than stored against a shift nobody will look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.kitchen.domain.kitchens import parse_date
from services.kitchen.domain.model import Shift
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_identity_number
from services.platform.validation import check_event_time, text_problem

__all__ = [
    "MAX_TEMPERATURE_C",
    "MIN_TEMPERATURE_C",
    "SHIFT_DATE_WINDOW_DAYS",
    "AddStaff",
    "BarReason",
    "CertificateStatus",
    "CheckOutcome",
    "CheckRecord",
    "ListMorningChecks",
    "MorningCheck",
    "RecordMorningCheck",
    "RecordReplacement",
    "StaffMember",
    "StaffRecord",
    "StaffRole",
    "Symptom",
    "bar_reasons",
    "certificate_status",
    "local_today",
    "shift_start",
]

# A person's forehead temperature outside this is a broken sensor or a typing mistake.
MIN_TEMPERATURE_C, MAX_TEMPERATURE_C = 30.0, 45.0
# How far (local days) a check's shift date may be from today.
SHIFT_DATE_WINDOW_DAYS = 1
_MAX_NAME = 100
_MAX_CERTIFICATE = 64
_MAX_REF = 200


class StaffRole(StrEnum):
    COOK = "COOK"
    HELPER = "HELPER"
    BUYER = "BUYER"
    MANAGER = "MANAGER"


class CertificateStatus(StrEnum):
    VALID = "VALID"
    EXPIRED = "EXPIRED"
    MISSING = "MISSING"


class Symptom(StrEnum):
    FEVER = "FEVER"
    COUGH = "COUGH"
    DIARRHOEA = "DIARRHOEA"
    VOMITING = "VOMITING"
    HAND_WOUND_OR_SKIN_INFECTION = "HAND_WOUND_OR_SKIN_INFECTION"
    JAUNDICE = "JAUNDICE"


class BarReason(StrEnum):
    HEALTH_SCREEN = "HEALTH_SCREEN"
    CERTIFICATE_MISSING = "CERTIFICATE_MISSING"
    CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
    FACE_MISMATCH = "FACE_MISMATCH"
    NO_CHECK = "NO_CHECK"


class CheckOutcome(StrEnum):
    PASSED = "PASSED"
    BARRED = "BARRED"


def certificate_status(expiry: date | None, on: date) -> CertificateStatus:
    """A certificate covers every day up to and including its expiry date."""
    if expiry is None:
        return CertificateStatus.MISSING
    return CertificateStatus.VALID if on <= expiry else CertificateStatus.EXPIRED


def shift_start(shift_date: date, shift: Shift, zone: ZoneInfo) -> datetime:
    """The UTC instant a shift of a local date starts."""
    local = datetime.combine(shift_date, time(shift.start_minute // 60, shift.start_minute % 60), zone)
    return local.astimezone(UTC)


def bar_reasons(
    *,
    temperature_c: float,
    symptoms: frozenset[Symptom],
    certificate_expiry: date | None,
    shift_date: date,
    face_match_score: float,
    checked_at: datetime,
    starts_at: datetime,
    fever_threshold_c: float,
    face_match_threshold: float,
) -> tuple[BarReason, ...]:
    """Why the check bars the staff member from the shift (empty: passed), in the contract's order."""
    reasons: list[BarReason] = []
    if temperature_c >= fever_threshold_c or symptoms:
        reasons.append(BarReason.HEALTH_SCREEN)
    status = certificate_status(certificate_expiry, shift_date)
    if status is CertificateStatus.MISSING:
        reasons.append(BarReason.CERTIFICATE_MISSING)
    elif status is CertificateStatus.EXPIRED:
        reasons.append(BarReason.CERTIFICATE_EXPIRED)
    if face_match_score < face_match_threshold:
        reasons.append(BarReason.FACE_MISMATCH)
    if checked_at >= starts_at:
        reasons.append(BarReason.NO_CHECK)
    return tuple(reasons)


# --- staff ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffRecord:
    """A staff row as stored: name, identity number and certificate number sealed under the token."""

    staff_id: str
    kitchen_id: str
    staff_token: str
    role: StaffRole
    sealed: bytes
    certificate_expiry: date | None
    face_template_ref: str
    shifts: tuple[str, ...]
    added_at: datetime

    def rostered_on(self, shift: str) -> bool:
        return not self.shifts or shift in self.shifts


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A staff member as shown (the platform masks the sensitive fields per caller)."""

    staff_id: str
    kitchen_id: str
    staff_token: str
    name: str
    identity_number: str
    role: StaffRole
    certificate_number: str
    certificate_expiry: date | None
    certificate_status: CertificateStatus
    face_template_ref: str
    shifts: tuple[str, ...]
    added_at: datetime


@dataclass(frozen=True, slots=True)
class AddStaff:
    request_id: str
    kitchen_id: str
    name: str
    identity_number: str
    role: StaffRole | None
    certificate_number: str
    certificate_expiry: str
    face_template_ref: str
    shifts: tuple[str, ...]

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.kitchen_id:
            v.add("kitchen_id", "is required")
        if not self.name:
            v.add("name", "is required")
        else:
            v.add_if(text_problem(self.name, max_chars=_MAX_NAME), "name")
        if not self.identity_number:
            v.add("identity_number", "is required")
        else:
            v.add_if(invalid_identity_number(self.identity_number), "identity_number")
        if self.role is None:
            v.add("role", "is required (cook, helper, buyer or manager)")
        v.add_if(
            text_problem(self.certificate_number, max_chars=_MAX_CERTIFICATE), "health_certificate_number"
        )
        if self.certificate_expiry and parse_date(self.certificate_expiry) is None:
            v.add("health_certificate_expiry", "must be a date YYYY-MM-DD")
        if self.certificate_number and not self.certificate_expiry:
            v.add("health_certificate_expiry", "is required with a health certificate number")
        if self.certificate_expiry and not self.certificate_number:
            v.add("health_certificate_number", "is required with a health certificate expiry")
        v.add_if(text_problem(self.face_template_ref, max_chars=_MAX_REF), "face_template_ref")
        seen: set[str] = set()
        for i, shift in enumerate(self.shifts):
            if not shift:
                v.add(f"shifts[{i}]", "must name a shift of the kitchen")
            elif shift in seen:
                v.add(f"shifts[{i}]", "names a shift twice")
            seen.add(shift)
        v.check()

    @property
    def expiry(self) -> date | None:
        return parse_date(self.certificate_expiry) if self.certificate_expiry else None


# --- morning checks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """A morning check as stored: the temperature and symptoms sealed (None for a NO_CHECK bar)."""

    check_id: str
    kitchen_id: str
    staff_id: str
    staff_token: str
    shift_date: date
    shift: str
    shift_start: datetime
    checked_at: datetime | None
    face_match_score: float
    sealed: bytes | None
    outcome: CheckOutcome
    bar_reasons: tuple[BarReason, ...]
    replaced_by_staff_id: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class MorningCheck:
    """A morning check as shown (the platform masks the temperature and symptoms per caller)."""

    record: CheckRecord
    temperature_c: float
    symptoms: tuple[Symptom, ...]


@dataclass(frozen=True, slots=True)
class RecordMorningCheck:
    request_id: str
    kitchen_id: str
    staff_id: str
    shift_date: str
    shift: str
    checked_at: datetime | None
    face_match_score: float
    temperature_c: float
    # None: a symptom number the contract does not define (or UNSPECIFIED).
    symptoms: tuple[Symptom | None, ...]

    def check(self, now: datetime, today: date) -> None:
        """``today``: the district's local date now (the shift date's window is around it)."""
        v = Violations()
        check_request_id(v, self.request_id)
        for field in ("kitchen_id", "staff_id", "shift"):
            if not getattr(self, field):
                v.add(field, "is required")
        day = parse_date(self.shift_date)
        if day is None:
            v.add("shift_date", "must be a date YYYY-MM-DD")
        elif abs((day - today).days) > SHIFT_DATE_WINDOW_DAYS:
            v.add("shift_date", "must be yesterday, today or tomorrow (the district's local date)")
        check_event_time(v, "checked_at", self.checked_at, now)
        if not 0.0 <= self.face_match_score <= 1.0:
            v.add("face_match_score", "must be 0-1")
        if not MIN_TEMPERATURE_C <= self.temperature_c <= MAX_TEMPERATURE_C:
            v.add("temperature_c", f"must be {MIN_TEMPERATURE_C:g}-{MAX_TEMPERATURE_C:g} °C for a person")
        for i, symptom in enumerate(self.symptoms):
            if symptom is None:
                v.add(f"symptoms[{i}]", "must be a symptom the contract names (not unspecified)")
        v.check()

    @property
    def day(self) -> date:
        found = parse_date(self.shift_date)
        assert found is not None, "checked"
        return found

    @property
    def declared(self) -> frozenset[Symptom]:
        return frozenset(s for s in self.symptoms if s is not None)


@dataclass(frozen=True, slots=True)
class RecordReplacement:
    request_id: str
    kitchen_id: str
    check_id: str
    replacement_staff_id: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        for field in ("kitchen_id", "check_id", "replacement_staff_id"):
            if not getattr(self, field):
                v.add(field, "is required")
        v.check()


@dataclass(frozen=True, slots=True)
class ListMorningChecks:
    kitchen_id: str
    shift_date: str
    shift: str

    def check(self) -> None:
        v = Violations()
        if not self.kitchen_id:
            v.add("kitchen_id", "is required")
        if parse_date(self.shift_date) is None:
            v.add("shift_date", "must be a date YYYY-MM-DD")
        v.check()

    @property
    def day(self) -> date:
        found = parse_date(self.shift_date)
        assert found is not None, "checked"
        return found


def local_today(now: datetime, zone: ZoneInfo) -> date:
    """The district's calendar date at ``now``."""
    return now.astimezone(zone).date()
