"""The kitchen domain's shared types: kitchens and their shifts, and the alerts every rule raises to a
kitchen's manager. Each family's own types live beside its rules (domain/<family>.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "AlertKind",
    "GeoPoint",
    "Kitchen",
    "KitchenAlert",
    "KitchenOperator",
    "OperatorKind",
    "Severity",
    "Shift",
]


class OperatorKind(StrEnum):
    SCHOOL_RUN = "SCHOOL_RUN"
    CONTRACTOR = "CONTRACTOR"


class AlertKind(StrEnum):
    MORNING_CHECK_BARRED = "MORNING_CHECK_BARRED"
    COLD_CHAIN = "COLD_CHAIN"
    EQUIPMENT_OFFLINE = "EQUIPMENT_OFFLINE"
    DISINFECTION_SHORT = "DISINFECTION_SHORT"
    UV_SHORT = "UV_SHORT"
    VIOLATION = "VIOLATION"


class Severity(StrEnum):
    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True)
class GeoPoint:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class KitchenOperator:
    kind: OperatorKind
    name: str
    credit_code: str  # "" for a school-run kitchen that gave none


@dataclass(frozen=True, slots=True)
class Shift:
    """A shift of the kitchen's day: local times "HH:MM", start before end, within one day."""

    name: str
    start_time: str
    end_time: str

    @property
    def start_minute(self) -> int:
        hours, minutes = self.start_time.split(":")
        return int(hours) * 60 + int(minutes)

    @property
    def end_minute(self) -> int:
        hours, minutes = self.end_time.split(":")
        return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class Kitchen:
    kitchen_id: str
    site_id: str
    name: str
    operator: KitchenOperator
    meals_per_day: int
    location: GeoPoint | None
    town: str
    division_code: str
    shifts: tuple[Shift, ...]
    commitment: str
    registered_at: datetime

    def shift(self, name: str) -> Shift | None:
        return next((s for s in self.shifts if s.name == name), None)

    def service_minutes(self) -> list[tuple[int, int]]:
        """The union of the shifts as sorted, disjoint [start, end) minute-of-day intervals."""
        merged: list[tuple[int, int]] = []
        for start, end in sorted((s.start_minute, s.end_minute) for s in self.shifts):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


@dataclass(frozen=True, slots=True)
class KitchenAlert:
    """An alert to a kitchen's manager. ``message`` never holds a person's temperature, symptom or name."""

    alert_id: str
    kitchen_id: str
    kind: AlertKind
    severity: Severity
    subject_id: str
    message: str
    raised_at: datetime
    cleared_at: datetime | None = None
