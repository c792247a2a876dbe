"""What callers ask the safety service to do, and the checks every request passes before anything is
stored. The gRPC layer translates leniently (an unknown enum value becomes ``None``); these functions name
every bad field by its request path, all at once (INVALID_ARGUMENT). Checks that need stored state (does
this sensor exist?) live in the use cases, which refuse a missing or wrong referenced entity with
FAILED_PRECONDITION naming its field.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_division_code, invalid_identity_number
from services.platform.validation import event_time_problem, query_time_problem, text_problem
from services.safety.domain.model import (
    AlertOutcome,
    DetectionKind,
    HazardousItem,
    InspectionMethod,
    RiskFlag,
    SensorKind,
    SiteKind,
    UnitKind,
    UnitStatus,
)

__all__ = [
    "MAX_BATCH",
    "MAX_CLOCK_AHEAD",
    "MAX_UNITS_PER_DISPATCH",
    "SEVERITIES",
    "Acknowledge",
    "Dispatch",
    "FindingInput",
    "RaiseAlarm",
    "RecordInspection",
    "RecordPerson",
    "RecordPurchase",
    "RecordVehicle",
    "RegisterSensor",
    "RegisterSite",
    "RemoveVehicle",
    "ReportDetections",
    "ReportedDetection",
    "Resolve",
    "StatisticsQuery",
    "UnitInput",
    "UpdateUnit",
    "normalise_plate",
]

# A sensor's clock may run a little ahead of ours; further ahead it is wrong, and a wrong time would put
# the detection in the wrong risk window.
MAX_CLOCK_AHEAD = timedelta(minutes=5)
MAX_BATCH = 1000
MAX_UNITS_PER_DISPATCH = 20
MAX_FINDINGS = 100
MAX_STATISTICS_BUCKETS = 400
SEVERITIES = ("info", "low", "medium", "high", "critical")
# Whole values (``\Z``: ``$`` would let a trailing line break through).
_PHONE = re.compile(r"\+?[0-9][0-9 -]{2,30}\Z")
_PLATE = re.compile(r"[\w·-]{2,16}\Z")


def _text(violations: Violations, field: str, value: str, *, required: bool, max_len: int) -> None:
    if not value.strip():
        if required:
            violations.add(field, "is required")
        return
    # The platform's text rule (no control characters, no stray whitespace); the guard in front of every
    # RPC applies it too, this keeps commands built elsewhere (tests, consumers) to the same rule.
    violations.add_if(text_problem(value, max_chars=max_len, free_text=True), field)


def _time(
    violations: Violations, field: str, value: datetime | None, now: datetime, *, required: bool = True
) -> None:
    if value is None:
        if required:
            violations.add(field, "is required")
        return
    violations.add_if(event_time_problem(value, now, max_ahead=MAX_CLOCK_AHEAD), field)


def _enum(violations: Violations, field: str, value: Enum | None) -> None:
    if value is None:
        violations.add(field, "is required (a known value other than UNSPECIFIED)")


# --- sites and sensors ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterSite:
    request_id: str
    name: str
    kind: SiteKind | None
    address: str
    division_code: str
    town: str
    latitude: float | None
    longitude: float | None
    duty_room_name: str
    duty_room_phone: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "name", self.name, required=True, max_len=200)
        _enum(v, "kind", self.kind)
        _text(v, "address", self.address, required=True, max_len=500)
        v.add_if(invalid_division_code(self.division_code), "division_code")
        _text(v, "town", self.town, required=True, max_len=100)
        if self.latitude is not None and not (math.isfinite(self.latitude) and -90 <= self.latitude <= 90):
            v.add("location.latitude", "must be between -90 and 90")
        if self.longitude is not None and not (
            math.isfinite(self.longitude) and -180 <= self.longitude <= 180
        ):
            v.add("location.longitude", "must be between -180 and 180")
        _text(v, "duty_room.name", self.duty_room_name, required=True, max_len=100)
        if not _PHONE.match(self.duty_room_phone):
            v.add("duty_room.phone", "must be a phone number (digits, spaces, dashes, optional leading +)")
        v.check()


@dataclass(frozen=True, slots=True)
class RegisterSensor:
    request_id: str
    site_id: str
    kind: SensorKind | None
    zone: str
    name: str
    device_code: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "site_id", self.site_id, required=True, max_len=64)
        _enum(v, "kind", self.kind)
        _text(v, "zone", self.zone, required=True, max_len=100)
        _text(v, "name", self.name, required=False, max_len=200)
        _text(v, "device_code", self.device_code, required=False, max_len=100)
        v.check()


# --- persons --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordPerson:
    request_id: str
    identity_number: str
    name: str
    risk_flags: tuple[RiskFlag | None, ...]

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        v.add_if(invalid_identity_number(self.identity_number), "identity_number")
        _text(v, "name", self.name, required=True, max_len=100)
        for index, flag in enumerate(self.risk_flags):
            if flag is None:
                v.add(f"risk_flags[{index}]", "is not a known risk flag")
        v.check()

    def __repr__(self) -> str:
        # Never let an identity number or name reach a log line or an error report through repr().
        return f"RecordPerson(request_id={self.request_id!r}, risk_flags={self.risk_flags!r})"


@dataclass(frozen=True, slots=True)
class RecordPurchase:
    request_id: str
    person_token: str
    item: HazardousItem | None
    description: str
    quantity: float
    unit: str
    purchased_at: datetime | None
    place: str

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "person_token", self.person_token, required=True, max_len=64)
        _enum(v, "item", self.item)
        _text(v, "description", self.description, required=False, max_len=500)
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            v.add("quantity", "must be a positive number")
        _text(v, "unit", self.unit, required=True, max_len=20)
        _time(v, "purchased_at", self.purchased_at, now)
        _text(v, "place", self.place, required=True, max_len=200)
        v.check()

    def __repr__(self) -> str:
        return f"RecordPurchase(request_id={self.request_id!r}, person_token={self.person_token!r})"


# --- vehicles of concern --------------------------------------------------------------------------

# What a plate reader may print between the parts of a plate ("浙J·12345", "浙J-12345", "浙J 12345").
_PLATE_SEPARATORS = str.maketrans("", "", "·•・.- \t")


def normalise_plate(plate: str) -> str:
    """The one spelling of a plate its token is computed from: NFKC (full-width letters and digits become
    ASCII), upper case, no separators. "浙j·12345", "浙J 12345" and their full-width spellings are one
    vehicle."""
    return unicodedata.normalize("NFKC", plate).upper().translate(_PLATE_SEPARATORS)


_NORMALISED_PLATE = re.compile(r"^[^\W_]{2,16}$")


def _plate(violations: Violations, field: str, plate: str) -> None:
    if len(plate) > 32 or not _NORMALISED_PLATE.match(normalise_plate(plate)):
        violations.add(field, "must be a plate: 2-16 letters or digits (separators and spaces are ignored)")


@dataclass(frozen=True, slots=True)
class RecordVehicle:
    request_id: str
    plate: str
    person_token: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _plate(v, "plate", self.plate)
        _text(v, "person_token", self.person_token, required=True, max_len=64)
        v.check()

    def __repr__(self) -> str:
        # A plate identifies its owner: never in a log line or an error report.
        return f"RecordVehicle(request_id={self.request_id!r}, person_token={self.person_token!r})"


@dataclass(frozen=True, slots=True)
class RemoveVehicle:
    request_id: str
    vehicle_token: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id, required=False)
        _text(v, "vehicle_token", self.vehicle_token, required=True, max_len=64)
        v.check()


# --- detections and alarms ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportedDetection:
    sensor_id: str
    kind: DetectionKind | None
    detected_at: datetime | None
    confidence: float
    snapshot_ref: str = ""
    label: str = ""
    person_token: str = ""
    plate: str = ""


@dataclass(frozen=True, slots=True)
class ReportDetections:
    request_id: str
    detections: tuple[ReportedDetection, ...]

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.detections:
            v.add("detections", "must hold at least one detection")
        elif len(self.detections) > MAX_BATCH:
            v.add("detections", f"must hold at most {MAX_BATCH} detections (split the batch)")
        for index, d in enumerate(self.detections[:MAX_BATCH]):
            at = f"detections[{index}]"
            _text(v, f"{at}.sensor_id", d.sensor_id, required=True, max_len=64)
            _enum(v, f"{at}.kind", d.kind)
            _time(v, f"{at}.detected_at", d.detected_at, now)
            if not (math.isfinite(d.confidence) and 0.0 <= d.confidence <= 1.0):
                v.add(f"{at}.confidence", "must be between 0 and 1")
            _text(v, f"{at}.snapshot_ref", d.snapshot_ref, required=False, max_len=500)
            _text(v, f"{at}.label", d.label, required=d.kind is DetectionKind.WEAPON, max_len=100)
            _text(
                v,
                f"{at}.person_token",
                d.person_token,
                required=d.kind is DetectionKind.FACE_MATCH,
                max_len=64,
            )
            if d.kind is DetectionKind.VEHICLE_MATCH and not _PLATE.match(d.plate):
                v.add(f"{at}.plate", "is required for a vehicle match (2-16 letters, digits, · or -)")
            elif d.kind is not DetectionKind.VEHICLE_MATCH and d.plate:
                v.add(f"{at}.plate", "only a vehicle match carries a plate")
        v.check()


@dataclass(frozen=True, slots=True)
class RaiseAlarm:
    request_id: str
    site_id: str
    sensor_id: str
    pressed_at: datetime | None
    note: str

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "site_id", self.site_id, required=True, max_len=64)
        _text(v, "sensor_id", self.sensor_id, required=True, max_len=64)
        _time(v, "pressed_at", self.pressed_at, now, required=False)
        _text(v, "note", self.note, required=False, max_len=500)
        v.check()


# --- alert lifecycle ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledge:
    request_id: str
    alert_id: str
    note: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id, required=False)
        _text(v, "alert_id", self.alert_id, required=True, max_len=64)
        _text(v, "note", self.note, required=False, max_len=1000)
        v.check()


@dataclass(frozen=True, slots=True)
class UnitInput:
    kind: UnitKind | None
    name: str


@dataclass(frozen=True, slots=True)
class Dispatch:
    request_id: str
    alert_id: str
    units: tuple[UnitInput, ...]

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "alert_id", self.alert_id, required=True, max_len=64)
        if not self.units:
            v.add("units", "must name at least one unit")
        elif len(self.units) > MAX_UNITS_PER_DISPATCH:
            v.add("units", f"must name at most {MAX_UNITS_PER_DISPATCH} units")
        for index, unit in enumerate(self.units[:MAX_UNITS_PER_DISPATCH]):
            _enum(v, f"units[{index}].kind", unit.kind)
            _text(v, f"units[{index}].name", unit.name, required=False, max_len=100)
        v.check()


@dataclass(frozen=True, slots=True)
class UpdateUnit:
    request_id: str
    alert_id: str
    unit_id: str
    status: UnitStatus | None

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id, required=False)
        _text(v, "alert_id", self.alert_id, required=True, max_len=64)
        _text(v, "unit_id", self.unit_id, required=True, max_len=64)
        _enum(v, "status", self.status)
        if self.status is UnitStatus.NOTIFIED:
            v.add("status", "notified is where a unit starts; give en route, arrived or done")
        v.check()


@dataclass(frozen=True, slots=True)
class Resolve:
    request_id: str
    alert_id: str
    outcome: AlertOutcome | None
    note: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id, required=False)
        _text(v, "alert_id", self.alert_id, required=True, max_len=64)
        _enum(v, "outcome", self.outcome)
        _text(v, "note", self.note, required=False, max_len=1000)
        v.check()


# --- inspections ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingInput:
    category: str
    description: str
    severity: str | None


@dataclass(frozen=True, slots=True)
class RecordInspection:
    request_id: str
    site_id: str
    method: InspectionMethod | None
    inspector: str
    inspected_at: datetime | None
    sensor_id: str
    summary: str
    findings: tuple[FindingInput, ...]

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "site_id", self.site_id, required=True, max_len=64)
        _enum(v, "method", self.method)
        _text(v, "inspector", self.inspector, required=True, max_len=100)
        _time(v, "inspected_at", self.inspected_at, now)
        _text(v, "sensor_id", self.sensor_id, required=False, max_len=64)
        _text(v, "summary", self.summary, required=False, max_len=2000)
        if len(self.findings) > MAX_FINDINGS:
            v.add("findings", f"must hold at most {MAX_FINDINGS} findings")
        for index, finding in enumerate(self.findings[:MAX_FINDINGS]):
            _text(v, f"findings[{index}].category", finding.category, required=True, max_len=100)
            _text(v, f"findings[{index}].description", finding.description, required=False, max_len=1000)
            if finding.severity not in SEVERITIES:
                v.add(f"findings[{index}].severity", "is required (a known value other than UNSPECIFIED)")
        v.check()


# --- queries --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatisticsQuery:
    site_id: str
    start: datetime | None
    end: datetime | None
    # None: one row per site for the whole period; otherwise "day" or "month".
    bucket: str | None

    def check(self) -> None:
        v = Violations()
        if self.start is None:
            v.add("period.start_time", "is required")
        if self.end is None:
            v.add("period.end_time", "is required")
        for name, value in (("start_time", self.start), ("end_time", self.end)):
            if value is not None:
                v.add_if(query_time_problem(value), f"period.{name}")
        if self.start is not None and self.end is not None:
            if self.end <= self.start:
                v.add("period.end_time", "must be after period.start_time")
            elif self.bucket == "day" and self.end - self.start > timedelta(days=MAX_STATISTICS_BUCKETS):
                v.add("bucket", f"daily rows cover at most {MAX_STATISTICS_BUCKETS} days; use months")
        v.check()
