"""Parks, enterprises and devices: what a valid registration looks like."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from services.platform.errors import Violations
from services.platform.identifiers import invalid_credit_code, invalid_division_code

__all__ = [
    "DEFAULT_SAMPLE_INTERVAL_MS",
    "Device",
    "DeviceSpec",
    "Enterprise",
    "EnterpriseSpec",
    "MachineType",
    "Park",
    "ParkSpec",
    "Sector",
    "check_device",
    "check_enterprise",
    "check_park",
    "check_request_id",
]

DEFAULT_SAMPLE_INTERVAL_MS = 1000
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
_MAX_NAME = 200
_MAX_ADDRESS = 500
_MAX_REQUEST_ID = 128
# A collection box reports at most ten times a second and at least once an hour.
_MIN_INTERVAL_MS, _MAX_INTERVAL_MS = 100, 3_600_000
# The largest machines in a district's parks draw a few MW; anything beyond is a unit mistake.
_MAX_RATED_POWER_KW = 20_000.0
_MAX_IDEAL_CYCLE_S = 86_400.0


class Sector(IntEnum):
    MACHINERY = 1
    AUTO_AND_MOTORCYCLE_PARTS = 2
    ELECTRICAL_EQUIPMENT = 3
    PLASTICS_AND_MOULDS = 4
    METAL_PRODUCTS = 5
    ELECTRONICS = 6
    TEXTILES_AND_APPAREL = 7
    CHEMICALS = 8
    RENEWABLE_RESOURCES = 9
    OTHER = 10


class MachineType(IntEnum):
    CNC_MACHINE_TOOL = 1
    INJECTION_MOULDING = 2
    STAMPING_PRESS = 3
    WELDING_ROBOT = 4
    LATHE = 5
    GRINDER = 6
    DIE_CASTING = 7
    ASSEMBLY_LINE = 8
    OTHER = 9


@dataclass(frozen=True, slots=True)
class ParkSpec:
    name: str
    division_code: str
    address: str


@dataclass(frozen=True, slots=True)
class Park:
    park_id: str
    name: str
    division_code: str
    address: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class EnterpriseSpec:
    credit_code: str
    name: str
    sector: int
    park_id: str | None
    address: str


@dataclass(frozen=True, slots=True)
class Enterprise:
    credit_code: str
    name: str
    sector: int
    park_id: str | None
    address: str
    onboarded_at: datetime

    @property
    def division_code(self) -> str:
        """Characters 3-8 of the credit code: where it was registered."""
        return self.credit_code[2:8]


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    serial_number: str
    enterprise_id: str
    workshop: str
    machine_type: int
    rated_power_kw: float
    ideal_cycle_seconds: float
    sample_interval_ms: int


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    serial_number: str
    enterprise_id: str
    park_id: str | None
    workshop: str
    machine_type: int
    rated_power_kw: float
    ideal_cycle_seconds: float
    sample_interval_ms: int
    registered_at: datetime


def check_request_id(violations: Violations, request_id: str) -> None:
    if len(request_id) > _MAX_REQUEST_ID:
        violations.add("request_id", f"must be at most {_MAX_REQUEST_ID} characters")


def _text(violations: Violations, field: str, value: str, limit: int, *, required: bool) -> None:
    if required and not value.strip():
        violations.add(field, "is required")
    elif len(value) > limit:
        violations.add(field, f"must be at most {limit} characters")


def check_park(spec: ParkSpec, request_id: str) -> None:
    violations = Violations()
    check_request_id(violations, request_id)
    _text(violations, "name", spec.name, _MAX_NAME, required=True)
    violations.add_if(invalid_division_code(spec.division_code), "division_code")
    _text(violations, "address", spec.address, _MAX_ADDRESS, required=False)
    violations.check()


def check_enterprise(spec: EnterpriseSpec, request_id: str) -> None:
    violations = Violations()
    check_request_id(violations, request_id)
    violations.add_if(invalid_credit_code(spec.credit_code), "credit_code")
    _text(violations, "name", spec.name, _MAX_NAME, required=True)
    if spec.sector not in Sector.__members__.values():
        violations.add("sector", "must be one of the Sector values")
    _text(violations, "address", spec.address, _MAX_ADDRESS, required=False)
    violations.check()


def check_device(spec: DeviceSpec, request_id: str) -> None:
    violations = Violations()
    check_request_id(violations, request_id)
    if not _SERIAL.match(spec.serial_number):
        violations.add("serial_number", "must be 1-64 letters, digits or . _ : / -")
    violations.add_if(invalid_credit_code(spec.enterprise_id), "enterprise_id")
    _text(violations, "workshop", spec.workshop, 64, required=True)
    if spec.machine_type not in MachineType.__members__.values():
        violations.add("machine_type", "must be one of the MachineType values")
    if not 0 < spec.rated_power_kw <= _MAX_RATED_POWER_KW:
        violations.add("rated_power_kw", f"must be above 0 and at most {_MAX_RATED_POWER_KW:g} kW")
    if not 0 < spec.ideal_cycle_seconds <= _MAX_IDEAL_CYCLE_S:
        violations.add("ideal_cycle_seconds", f"must be above 0 and at most {_MAX_IDEAL_CYCLE_S:g} s")
    if not _MIN_INTERVAL_MS <= spec.sample_interval_ms <= _MAX_INTERVAL_MS:
        violations.add(
            "sample_interval_ms", f"must be between {_MIN_INTERVAL_MS} and {_MAX_INTERVAL_MS} ms (0 = 1000)"
        )
    violations.check()
