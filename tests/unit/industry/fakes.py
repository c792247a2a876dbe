"""An in-memory IndustryStore for use-case tests (with services.platform.uow.FakeUnitOfWork).

It keeps what the use cases write and answers what they read, with the same visibility and paging rules
as the SQL. The aggregate queries that are PostgreSQL's work (utilisation sums, delivery-cycle
percentiles) are not imitated here: they raise NotImplementedError and are tested against PostgreSQL."""

# The fake keeps the store protocol's signatures; some arguments only matter to the SQL.
# ruff: noqa: ARG002

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

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

__all__ = ["FakeIndustryRepository"]


@dataclass
class _Status:
    last_seen_at: datetime
    last_sample_at: datetime | None = None
    offline_alert_id: str | None = None


@dataclass
class FakeIndustryRepository:
    parks: dict[str, Park] = field(default_factory=dict)
    enterprises: dict[str, Enterprise] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    statuses: dict[str, _Status] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    hourly_due: list[DueRollup] = field(default_factory=list)

    def _visible(self, visibility: Visibility, credit_code: str) -> bool:
        enterprise = self.enterprises.get(credit_code)
        return enterprise is not None and visibility.sees_enterprise(credit_code, enterprise.park_id)

    # --- parks and enterprises ----------------------------------------------------------------------

    def get_park(self, park_id: str) -> Park | None:
        return self.parks.get(park_id)

    def add_park(self, park: Park) -> None:
        self.parks[park.park_id] = park

    def list_parks(self, visibility: Visibility, after: str, limit: int) -> list[Park]:
        own_parks = {e.park_id for e in self.enterprises.values() if e.credit_code in visibility.enterprises}
        shown = [
            p
            for p in sorted(self.parks.values(), key=lambda p: p.park_id)
            if p.park_id > after and (visibility.sees_park(p.park_id) or p.park_id in own_parks)
        ]
        return shown[:limit]

    def get_enterprise(self, credit_code: str) -> Enterprise | None:
        return self.enterprises.get(credit_code)

    def add_enterprise(self, enterprise: Enterprise) -> bool:
        if enterprise.credit_code in self.enterprises:
            return False
        self.enterprises[enterprise.credit_code] = enterprise
        return True

    def list_enterprises(
        self, visibility: Visibility, park_id: str, after: str, limit: int
    ) -> list[Enterprise]:
        shown = [
            e
            for code, e in sorted(self.enterprises.items())
            if code > after and (not park_id or e.park_id == park_id) and self._visible(visibility, code)
        ]
        return shown[:limit]

    # --- devices ------------------------------------------------------------------------------------

    def get_device(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def add_device(self, device: Device) -> bool:
        if any(d.serial_number == device.serial_number for d in self.devices.values()):
            return False
        self.devices[device.device_id] = device
        self.statuses[device.device_id] = _Status(last_seen_at=device.registered_at)
        return True

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
    ) -> list[DeviceStatus]:
        found: list[DeviceStatus] = []
        for device_id, d in sorted(self.devices.items()):
            if device_id <= after or not self._visible(visibility, d.credit_code):
                continue
            if (credit_code and d.credit_code != credit_code) or (workshop and d.workshop != workshop):
                continue
            if park_id and d.park_id != park_id:
                continue
            status = self.statuses[device_id]
            reporting = status.last_sample_at is not None and status.last_seen_at >= heard_since
            found.append(DeviceStatus(d, None, status.last_sample_at, status.last_seen_at, reporting))
        return found[:limit]

    def workshop_coverage(self, park_id: str, heard_since: datetime) -> list[WorkshopCoverage]:
        counts: dict[tuple[str, str], tuple[int, int]] = {}
        for d in self.devices.values():
            if d.park_id != park_id:
                continue
            status = self.statuses[d.device_id]
            reporting = int(status.last_sample_at is not None and status.last_seen_at >= heard_since)
            total, heard = counts.get((d.credit_code, d.workshop), (0, 0))
            counts[(d.credit_code, d.workshop)] = (total + 1, heard + reporting)
        return [
            WorkshopCoverage(code, workshop, park_id, total, heard)
            for (code, workshop), (total, heard) in sorted(counts.items())
        ]

    # --- alerts and utilisation ---------------------------------------------------------------------

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
    ) -> list[Alert]:
        shown = [
            a
            for a in sorted(self.alerts.values(), key=lambda a: (a.raised_at, a.alert_id), reverse=True)
            if (not credit_code or a.credit_code == credit_code)
            and (not park_id or a.park_id == park_id)
            and (not device_id or a.device_id == device_id)
            and (not open_only or a.cleared_at is None)
            and (before is None or (a.raised_at, a.alert_id) < before)
            and self._visible(visibility, a.credit_code)
        ]
        return shown[:limit]

    def utilisation(
        self,
        subject: Subject,
        start: datetime,
        end: datetime,
        *,
        granularity: Granularity | None,
        time_zone: str,
    ) -> list[Bucket]:
        raise NotImplementedError("utilisation sums are PostgreSQL's work; see the integration tests")

    # --- orders -------------------------------------------------------------------------------------

    def get_order(self, order_id: str, *, for_update: bool = False) -> Order | None:
        return self.orders.get(order_id)

    def add_order(self, order: Order) -> None:
        self.orders[order.order_id] = order

    def move_order(self, order_id: str, stage: OrderStage, at: datetime, *, delivered: bool) -> None:
        order = self.orders[order_id]
        self.orders[order_id] = replace(
            order,
            stage=stage,
            delivered_at=at if delivered else order.delivered_at,
            stage_times=(*order.stage_times, (stage, at)),
        )

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
    ) -> list[Order]:
        if late_only:
            raise NotImplementedError("lateness in SQL is tested against PostgreSQL")
        shown = [
            o
            for o in sorted(self.orders.values(), key=lambda o: (o.ordered_at, o.order_id), reverse=True)
            if (not credit_code or o.credit_code == credit_code)
            and (before is None or (o.ordered_at, o.order_id) < before)
            and self._visible(visibility, o.credit_code)
        ]
        return shown[:limit]

    def delivery_cycle_stats(
        self, visibility: Visibility, credit_code: str, start: datetime, end: datetime, *, time_zone: str
    ) -> CycleStats:
        raise NotImplementedError("percentiles are PostgreSQL's work; see the integration tests")

    # --- health -------------------------------------------------------------------------------------

    def try_health_lock(self) -> bool:
        return True

    def lock_silent_devices(self, silent_before: datetime, limit: int) -> list[SilentDevice]:
        silent = [
            SilentDevice(device_id, status.last_seen_at)
            for device_id, status in self.statuses.items()
            if status.offline_alert_id is None and status.last_seen_at < silent_before
        ]
        return sorted(silent, key=lambda s: s.last_seen_at)[:limit]

    def set_offline_alert(self, device_id: str, alert_id: str) -> None:
        self.statuses[device_id].offline_alert_id = alert_id

    def add_alert(self, alert: NewAlert) -> None:
        device = alert.device
        self.alerts[alert.alert_id] = Alert(
            alert.alert_id,
            device.device_id,
            device.credit_code,
            device.park_id,
            alert.kind,
            alert.severity,
            alert.raised_at,
            None,
        )

    def lock_due_rollups(self, hour_before: datetime, limit: int) -> list[DueRollup]:
        return [r for r in self.hourly_due if r.hour_start < hour_before][:limit]

    def mark_rollups_published(self, keys: Sequence[tuple[str, datetime]]) -> None:
        done = set(keys)
        self.hourly_due = [r for r in self.hourly_due if (r.device_id, r.hour_start) not in done]
