"""The industry domain's entities and enumerations (no proto, SQL or Kafka here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "DEFAULT_SAMPLE_INTERVAL_MS",
    "Alert",
    "AlertKind",
    "CycleStats",
    "Device",
    "DeviceState",
    "DeviceStatus",
    "Enterprise",
    "Granularity",
    "MachineType",
    "Order",
    "OrderStage",
    "Park",
    "Sector",
    "Severity",
    "Subject",
]

DEFAULT_SAMPLE_INTERVAL_MS = 1000


class Sector(StrEnum):
    MACHINERY = "machinery"
    AUTO_AND_MOTORCYCLE_PARTS = "auto_and_motorcycle_parts"
    ELECTRICAL_EQUIPMENT = "electrical_equipment"
    PLASTICS_AND_MOULDS = "plastics_and_moulds"
    METAL_PRODUCTS = "metal_products"
    ELECTRONICS = "electronics"
    TEXTILES_AND_APPAREL = "textiles_and_apparel"
    CHEMICALS = "chemicals"
    RENEWABLE_RESOURCES = "renewable_resources"
    OTHER = "other"


class MachineType(StrEnum):
    CNC_MACHINE_TOOL = "cnc_machine_tool"
    INJECTION_MOULDING = "injection_moulding"
    STAMPING_PRESS = "stamping_press"
    WELDING_ROBOT = "welding_robot"
    LATHE = "lathe"
    GRINDER = "grinder"
    DIE_CASTING = "die_casting"
    ASSEMBLY_LINE = "assembly_line"
    OTHER = "other"


class OrderStage(StrEnum):
    """In the order an order passes them (declaration order is the flow)."""

    SALES = "sales"
    CUSTOMISATION = "customisation"
    DESIGN = "design"
    PRODUCTION = "production"
    DELIVERY = "delivery"
    AFTER_SALES = "after_sales"
    CLOSED = "closed"

    @property
    def position(self) -> int:
        return _STAGES.index(self)

    @property
    def label(self) -> str:
        return self.value.replace("_", "-")


_STAGES = list(OrderStage)


class DeviceState(StrEnum):
    RUNNING = "running"
    IDLE = "idle"
    STOPPED = "stopped"
    FAULT = "fault"


class AlertKind(StrEnum):
    FAULT = "fault"
    OFFLINE = "offline"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class Park:
    park_id: str
    name: str
    division_code: str
    address: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class Enterprise:
    credit_code: str
    name: str
    sector: Sector
    park_id: str | None
    address: str
    onboarded_at: datetime

    @property
    def division_code(self) -> str:
        """Characters 3-8 of the credit code: where it was registered."""
        return self.credit_code[2:8]


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    serial_number: str
    credit_code: str
    park_id: str | None
    workshop: str
    machine_type: MachineType
    rated_power_kw: float
    ideal_cycle_seconds: float
    sample_interval_ms: int
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device with its live status, as ListDevices shows it."""

    device: Device
    state: DeviceState | None
    last_sample_at: datetime | None
    last_seen_at: datetime
    reporting: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    device_id: str
    credit_code: str
    park_id: str | None
    kind: AlertKind
    severity: Severity
    raised_at: datetime
    cleared_at: datetime | None


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    credit_code: str
    park_id: str | None
    customer: str
    product: str
    customisation: str
    promised_date: date
    stage: OrderStage
    ordered_at: datetime
    delivered_at: datetime | None
    stage_times: tuple[tuple[OrderStage, datetime], ...] = ()

    @property
    def stage_entered_at(self) -> datetime:
        return max((at for _stage, at in self.stage_times), default=self.ordered_at)


@dataclass(frozen=True, slots=True)
class CycleStats:
    delivered_count: int
    mean_days: float
    p50_days: float
    p90_days: float
    p95_days: float
    min_days: float
    max_days: float
    late_count: int


@dataclass(frozen=True, slots=True)
class Subject:
    """What utilisation is asked for: exactly one of these set (workshop needs credit_code too)."""

    device_id: str = ""
    credit_code: str = ""
    workshop: str = ""
    park_id: str = ""
