"""What every industry use case shares: the store protocol, the configuration, the clock, visibility."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from services.industry.domain.access import Visibility
from services.industry.domain.model import (
    Alert,
    CycleStats,
    Device,
    DeviceStatus,
    Enterprise,
    Granularity,
    Order,
    OrderStage,
    Park,
    Subject,
)
from services.industry.domain.records import Bucket, DueRollup, NewAlert, SilentDevice
from services.industry.domain.workshops import WorkshopCoverage
from services.platform.errors import NotFoundError, PermissionDeniedError

__all__ = [
    "Clock",
    "IndustryConfig",
    "IndustryStore",
    "hide_unless_visible",
    "require_visible",
    "utc_now",
]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class IndustryConfig:
    """The domain knobs the use cases read (bootstrap fills them from IndustrySettings)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    silence_after: timedelta = timedelta(minutes=5)
    fault_after: timedelta = timedelta(minutes=10)
    rollup_publish_delay: timedelta = timedelta(minutes=5)
    digital_workshop_share: float = 0.8


class IndustryStore(Protocol):
    """What the use cases ask of storage (IndustryRepository; an in-memory fake in unit tests)."""

    def get_park(self, park_id: str) -> Park | None: ...
    def add_park(self, park: Park) -> None: ...
    def list_parks(self, visibility: Visibility, after: str, limit: int) -> list[Park]: ...
    def get_enterprise(self, credit_code: str) -> Enterprise | None: ...
    def add_enterprise(self, enterprise: Enterprise) -> bool: ...
    def list_enterprises(
        self, visibility: Visibility, park_id: str, after: str, limit: int
    ) -> list[Enterprise]: ...
    def get_device(self, device_id: str) -> Device | None: ...
    def add_device(self, device: Device) -> bool: ...
    def list_devices(
        self,
        visibility: Visibility,
        *,
        credit_code: str,
        workshop: str,
        park_id: str,
        heard_since: datetime,
        after: str,
        limit: int,
    ) -> list[DeviceStatus]: ...
    def workshop_coverage(self, park_id: str, heard_since: datetime) -> list[WorkshopCoverage]: ...
    def list_alerts(
        self,
        visibility: Visibility,
        *,
        credit_code: str,
        park_id: str,
        device_id: str,
        open_only: bool,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Alert]: ...
    def utilisation(
        self,
        subject: Subject,
        start: datetime,
        end: datetime,
        *,
        granularity: Granularity | None,
        time_zone: str,
    ) -> list[Bucket]: ...
    def get_order(self, order_id: str, *, for_update: bool = False) -> Order | None: ...
    def add_order(self, order: Order) -> None: ...
    def move_order(self, order_id: str, stage: OrderStage, at: datetime, *, delivered: bool) -> None: ...
    def list_orders(
        self,
        visibility: Visibility,
        *,
        credit_code: str,
        late_only: bool,
        today: date,
        time_zone: str,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Order]: ...
    def delivery_cycle_stats(
        self, visibility: Visibility, credit_code: str, start: datetime, end: datetime, *, time_zone: str
    ) -> CycleStats: ...
    def try_health_lock(self) -> bool: ...
    def lock_silent_devices(self, silent_before: datetime, limit: int) -> list[SilentDevice]: ...
    def set_offline_alert(self, device_id: str, alert_id: str) -> None: ...
    def add_alert(self, alert: NewAlert) -> None: ...
    def lock_due_rollups(self, hour_before: datetime, limit: int) -> list[DueRollup]: ...
    def mark_rollups_published(self, keys: Sequence[tuple[str, datetime]]) -> None: ...


def require_visible(visibility: Visibility, credit_code: str, park_id: str | None) -> None:
    """A request naming (or writing for) an enterprise outside the caller's scope: PERMISSION_DENIED."""
    if not visibility.sees_enterprise(credit_code, park_id):
        raise PermissionDeniedError(f"the caller may not act for enterprise {credit_code}")


def hide_unless_visible(visibility: Visibility, credit_code: str, park_id: str | None, what: str) -> None:
    """A single read of an entity outside the caller's scope answers as if it did not exist (NOT_FOUND)."""
    if not visibility.sees_enterprise(credit_code, park_id):
        raise NotFoundError(f"no {what}")
