"""What callers ask the industry service to do, and the checks every request passes before anything is
stored. The gRPC layer translates leniently (an unknown enum value becomes ``None``); each ``check()``
names every bad field by its request path, all at once. Checks that need stored state (is the park
registered?) live in the use cases.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.industry.domain.model import Granularity, MachineType, OrderStage, Sector, Subject
from services.industry.domain.orders import parse_promised_date
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code, invalid_division_code
from services.platform.validation import MAX_CLOCK_AHEAD, check_event_time, check_query_period, text_problem

__all__ = [
    "MAX_CLOCK_AHEAD",
    "AdvanceOrder",
    "CompareCycles",
    "CompareUtilisation",
    "CreateOrder",
    "CycleStatsQuery",
    "DigitalWorkshopsQuery",
    "ListDevices",
    "OnboardEnterprise",
    "Period",
    "RegisterDevice",
    "RegisterPark",
    "UtilisationQuery",
    "bounds",
    "check_ingest",
]

# Promised delivery dates outside these are typing mistakes, not plans.
_EARLIEST_PROMISE, _LATEST_PROMISE = date(2000, 1, 1), date(2999, 12, 31)
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_MAX_NAME = 200
_MAX_ADDRESS = 500
# A collection box reports at most ten times a second and at least once an hour.
_MIN_INTERVAL_MS, _MAX_INTERVAL_MS = 100, 3_600_000
# The largest machines in a district's parks draw a few MW; anything beyond is a unit mistake.
_MAX_RATED_POWER_KW = 20_000.0
_MAX_IDEAL_CYCLE_S = 86_400.0

Period = tuple[datetime | None, datetime | None]


def _text(violations: Violations, field: str, value: str, limit: int, *, required: bool) -> None:
    if required and not value.strip():
        violations.add(field, "is required")
    else:
        # The platform's text rule (no control characters, no stray whitespace, the limit); the guard in
        # front of every RPC applies it too, this keeps commands built elsewhere to the same rule.
        violations.add_if(text_problem(value, max_chars=limit, free_text=True), field)


def _not_ahead(violations: Violations, field: str, moment: datetime | None, now: datetime) -> None:
    """An optional event time (unset means now): not before 2000, not ahead of the clock's skew."""
    check_event_time(violations, field, moment, now, required=False, max_ahead=MAX_CLOCK_AHEAD)


def _period(violations: Violations, field: str, period: Period) -> None:
    """A query period: both ends, within the platform's query range, the end after the start."""
    check_query_period(violations, field, *period, required=True)


def _subject(violations: Violations, subject: Subject) -> None:
    chosen = [
        value
        for value in (
            subject.device_id,
            subject.workshop,
            subject.credit_code and not subject.workshop,
            subject.park_id,
        )
        if value
    ]
    if len(chosen) != 1:
        violations.add("subject", "name exactly one device, workshop, enterprise or park")
    if subject.workshop and not subject.credit_code:
        violations.add("subject.workshop.credit_code", "is required")


def check_ingest(request_id: str, sample_count: int, max_samples: int) -> None:
    """An ingest request: its (optional) request id and its size; samples are screened one by one."""
    v = Violations()
    check_request_id(v, request_id, required=False)
    if sample_count > max_samples:
        v.add("samples", f"at most {max_samples} samples per request")
    v.check()


# --- registry -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterPark:
    request_id: str
    name: str
    division_code: str
    address: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "name", self.name, _MAX_NAME, required=True)
        v.add_if(invalid_division_code(self.division_code), "division_code")
        _text(v, "address", self.address, _MAX_ADDRESS, required=False)
        v.check()


@dataclass(frozen=True, slots=True)
class OnboardEnterprise:
    request_id: str
    credit_code: str
    name: str
    sector: Sector | None
    park_id: str
    address: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        v.add_if(invalid_credit_code(self.credit_code), "credit_code")
        _text(v, "name", self.name, _MAX_NAME, required=True)
        if self.sector is None:
            v.add("sector", "must be one of the Sector values")
        _text(v, "address", self.address, _MAX_ADDRESS, required=False)
        v.check()


@dataclass(frozen=True, slots=True)
class RegisterDevice:
    request_id: str
    serial_number: str
    credit_code: str
    workshop: str
    machine_type: MachineType | None
    rated_power_kw: float
    ideal_cycle_seconds: float
    sample_interval_ms: int

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not _SERIAL.fullmatch(self.serial_number):
            v.add("serial_number", "must be 1-64 letters, digits or . _ : / -")
        v.add_if(invalid_credit_code(self.credit_code), "credit_code")
        _text(v, "workshop", self.workshop, 64, required=True)
        if self.machine_type is None:
            v.add("machine_type", "must be one of the MachineType values")
        if not 0 < self.rated_power_kw <= _MAX_RATED_POWER_KW:
            v.add("rated_power_kw", f"must be above 0 and at most {_MAX_RATED_POWER_KW:g} kW")
        if not 0 < self.ideal_cycle_seconds <= _MAX_IDEAL_CYCLE_S:
            v.add("ideal_cycle_seconds", f"must be above 0 and at most {_MAX_IDEAL_CYCLE_S:g} s")
        if not _MIN_INTERVAL_MS <= self.sample_interval_ms <= _MAX_INTERVAL_MS:
            v.add(
                "sample_interval_ms",
                f"must be between {_MIN_INTERVAL_MS} and {_MAX_INTERVAL_MS} ms (0 = 1000)",
            )
        v.check()


@dataclass(frozen=True, slots=True)
class ListDevices:
    credit_code: str
    workshop: str
    park_id: str

    def check(self) -> None:
        v = Violations()
        if self.workshop and not self.credit_code:
            v.add("credit_code", "is required when filtering by workshop")
        v.check()


@dataclass(frozen=True, slots=True)
class DigitalWorkshopsQuery:
    park_id: str
    digital_only: bool

    def check(self) -> None:
        v = Violations()
        if not self.park_id:
            v.add("park_id", "is required")
        v.check()


# --- utilisation ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UtilisationQuery:
    subject: Subject
    period: Period
    # None: one total for the period.
    granularity: Granularity | None
    # "" means the district's zone.
    time_zone: str

    def check(self) -> None:
        v = Violations()
        _subject(v, self.subject)
        _period(v, "period", self.period)
        if self.time_zone:
            try:
                zoneinfo.ZoneInfo(self.time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                v.add("time_zone", "is not an IANA time zone")
        v.check()


@dataclass(frozen=True, slots=True)
class CompareUtilisation:
    subject: Subject
    base_period: Period
    compare_period: Period

    def check(self) -> None:
        v = Violations()
        _subject(v, self.subject)
        _period(v, "base_period", self.base_period)
        _period(v, "compare_period", self.compare_period)
        v.check()


# --- orders ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateOrder:
    request_id: str
    credit_code: str
    customer: str
    product: str
    customisation: str
    promised_date: str
    ordered_at: datetime | None

    @property
    def promised(self) -> date:
        """The promised date (call after :meth:`check`)."""
        parsed = parse_promised_date(self.promised_date)
        assert parsed is not None, "CreateOrder.promised before check()"
        return parsed

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.credit_code:
            v.add("credit_code", "is required")
        _text(v, "customer", self.customer, 200, required=True)
        _text(v, "product", self.product, 200, required=True)
        _text(v, "customisation", self.customisation, 2000, required=False)
        promised = parse_promised_date(self.promised_date)
        if promised is None:
            v.add("promised_date", "must be a date as YYYY-MM-DD")
        elif not _EARLIEST_PROMISE <= promised <= _LATEST_PROMISE:
            v.add("promised_date", "must be between 2000-01-01 and 2999-12-31")
        _not_ahead(v, "ordered_at", self.ordered_at, now)
        v.check()


@dataclass(frozen=True, slots=True)
class AdvanceOrder:
    order_id: str
    stage: OrderStage | None
    occurred_at: datetime | None
    # Optional (the RPC predates it): with one, a retried move answers as the first did.
    request_id: str = ""

    def check(self, now: datetime) -> None:
        v = Violations()
        check_request_id(v, self.request_id, required=False)
        if not self.order_id:
            v.add("order_id", "is required")
        if self.stage is None:
            v.add("stage", "must be one of the OrderStage values")
        _not_ahead(v, "occurred_at", self.occurred_at, now)
        v.check()


@dataclass(frozen=True, slots=True)
class CycleStatsQuery:
    credit_code: str
    period: Period

    def check(self) -> None:
        v = Violations()
        _period(v, "period", self.period)
        v.check()


@dataclass(frozen=True, slots=True)
class CompareCycles:
    credit_code: str
    base_period: Period
    compare_period: Period

    def check(self) -> None:
        v = Violations()
        _period(v, "base_period", self.base_period)
        _period(v, "compare_period", self.compare_period)
        v.check()


def bounds(period: Period) -> tuple[datetime, datetime]:
    """A checked period's (start, end)."""
    start, end = period
    floor = datetime.min.replace(tzinfo=UTC)
    return start or floor, end or floor
