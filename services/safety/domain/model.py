"""The safety domain's vocabulary: enums and the records the rules work on. No I/O.

Enum values are the lower-case names of the contract's enum values without their prefix
(``SITE_KIND_SCHOOL`` -> ``SiteKind.SCHOOL = "school"``), which is also how they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Alert",
    "AlertChangeKind",
    "AlertOutcome",
    "AlertStatus",
    "AlertTrigger",
    "Detection",
    "DetectionKind",
    "DispatchedUnit",
    "HazardousItem",
    "Inspection",
    "InspectionFinding",
    "InspectionMethod",
    "PersonRecord",
    "PurchaseRecord",
    "RiskFlag",
    "RiskLevel",
    "Sensor",
    "SensorKind",
    "Site",
    "SiteKind",
    "TimelineEntry",
    "TimelineKind",
    "UnitKind",
    "UnitStatus",
    "VehicleRecord",
]


class SiteKind(StrEnum):
    SCHOOL = "school"
    KINDERGARTEN = "kindergarten"
    HOSPITAL = "hospital"
    RELIGIOUS_VENUE = "religious_venue"


class SensorKind(StrEnum):
    VIDEO_CHANNEL = "video_channel"
    FACE_CAPTURE = "face_capture"
    VEHICLE_RECOGNITION = "vehicle_recognition"
    PANIC_BUTTON = "panic_button"
    DRONE = "drone"
    PATROL_APP = "patrol_app"


class RiskFlag(StrEnum):
    PSYCHIATRIC_HISTORY = "psychiatric_history"
    PRIOR_VIOLENCE = "prior_violence"
    THREATS_MADE = "threats_made"
    SUBSTANCE_ABUSE = "substance_abuse"


class HazardousItem(StrEnum):
    LOOSE_PETROL = "loose_petrol"
    CONTROLLED_KNIFE = "controlled_knife"
    TOXIC_CHEMICAL = "toxic_chemical"
    FIREWORKS = "fireworks"
    GAS_CYLINDER = "gas_cylinder"


class DetectionKind(StrEnum):
    PERIMETER_BREACH = "perimeter_breach"
    WEAPON = "weapon"
    LOITERING = "loitering"
    FACE_MATCH = "face_match"
    VEHICLE_MATCH = "vehicle_match"
    CROWDING = "crowding"


class RiskLevel(StrEnum):
    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    def at_least(self, other: RiskLevel) -> bool:
        return self.rank >= other.rank


_LEVEL_RANK = {RiskLevel.LOW: 0, RiskLevel.ELEVATED: 1, RiskLevel.HIGH: 2, RiskLevel.CRITICAL: 3}


class AlertStatus(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"

    @property
    def is_open(self) -> bool:
        return self not in (AlertStatus.RESOLVED, AlertStatus.FALSE_ALARM)


class AlertTrigger(StrEnum):
    RISK_ASSESSMENT = "risk_assessment"
    PANIC_BUTTON = "panic_button"


class AlertOutcome(StrEnum):
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"


class UnitKind(StrEnum):
    POLICE_STATION = "police_station"
    PATROL_SWAT = "patrol_swat"
    POLICE_DRONE = "police_drone"
    PUBLIC_ORDER = "public_order"
    SITE_GUARDS = "site_guards"


class UnitStatus(StrEnum):
    NOTIFIED = "notified"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    DONE = "done"


class TimelineKind(StrEnum):
    RAISED = "raised"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    UNIT_DISPATCHED = "unit_dispatched"
    UNIT_STATUS_CHANGED = "unit_status_changed"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"


class AlertChangeKind(StrEnum):
    """What a watcher is told happened to an alert."""

    OPEN = "open"
    RAISED = "raised"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    UNIT_STATUS_CHANGED = "unit_status_changed"
    RESOLVED = "resolved"


class InspectionMethod(StrEnum):
    VIDEO = "video"
    DRONE = "drone"
    MOBILE_APP = "mobile_app"


@dataclass(frozen=True, slots=True)
class Site:
    site_id: str
    name: str
    kind: SiteKind
    address: str
    division_code: str
    town: str
    latitude: float | None
    longitude: float | None
    duty_room_name: str
    duty_room_phone: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class Sensor:
    sensor_id: str
    site_id: str
    kind: SensorKind
    zone: str
    name: str
    device_code: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class Detection:
    detection_id: str
    site_id: str
    sensor_id: str
    zone: str
    kind: DetectionKind
    detected_at: datetime
    confidence: float
    snapshot_ref: str = ""
    label: str = ""
    person_token: str = ""
    # For a vehicle match: the token of the plate read (the plate itself is never kept).
    vehicle_token: str = ""


@dataclass(frozen=True, slots=True)
class DispatchedUnit:
    unit_id: str
    kind: UnitKind
    name: str
    status: UnitStatus
    notified_at: datetime
    en_route_at: datetime | None = None
    arrived_at: datetime | None = None
    done_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: TimelineKind
    actor: str
    detail: str


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    site_id: str
    site_name: str
    status: AlertStatus
    level: RiskLevel
    trigger: AlertTrigger
    reasons: tuple[str, ...]
    detection_kinds: tuple[DetectionKind, ...]
    person_tokens: tuple[str, ...]
    occurrences: int
    first_detected_at: datetime
    last_detected_at: datetime
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    on_scene_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: AlertOutcome | None = None
    joint_response: bool = False
    resolution_note: str = ""
    units: tuple[DispatchedUnit, ...] = ()
    detections: tuple[Detection, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class InspectionFinding:
    category: str
    description: str
    # The shared severity scale's name in lower case: info, low, medium, high, critical.
    severity: str


@dataclass(frozen=True, slots=True)
class Inspection:
    inspection_id: str
    site_id: str
    method: InspectionMethod
    inspector: str
    inspected_at: datetime
    sensor_id: str
    summary: str
    findings: tuple[InspectionFinding, ...] = field(default_factory=tuple)
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    purchase_id: str
    person_token: str
    item: HazardousItem
    description: str
    quantity: float
    unit: str
    purchased_at: datetime
    place: str


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """A person of concern, decrypted: only ever built for a cleared caller's GetPerson."""

    person_token: str
    identity_number: str
    name: str
    risk_flags: tuple[RiskFlag, ...]
    purchases: tuple[PurchaseRecord, ...]
    recorded_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"PersonRecord(person_token={self.person_token!r})"


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    """A vehicle of concern, decrypted: only ever built for a cleared caller's read."""

    vehicle_token: str
    plate: str
    person_token: str
    recorded_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:
        return f"VehicleRecord(vehicle_token={self.vehicle_token!r}, person_token={self.person_token!r})"
