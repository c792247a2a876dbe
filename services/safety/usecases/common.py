"""What the safety use cases share: the store they work on (:class:`SafetyStore`, implemented by
:class:`~services.safety.repository.SafetyRepository` and by the unit tests' in-memory fake), their
configuration, and small steps several families take (loading an alert in scope, announcing a change to
watchers, opening a sealed purchase).

Status codes (docs/status-codes.md): the entity an RPC is *about* missing, or outside the caller's
scope, is NOT_FOUND; an entity a command *refers to* missing or of the wrong kind is FAILED_PRECONDITION
naming the field (:class:`Preconditions`); a malformed field is INVALID_ARGUMENT from the command's
``check()``, before any transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from google.protobuf.message import Message

from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from services.platform.uow import Transaction, UnitOfWork
from services.safety.domain.access import Viewer
from services.safety.domain.model import (
    Alert,
    AlertChangeKind,
    AlertStatus,
    Detection,
    DispatchedUnit,
    HazardousItem,
    Inspection,
    PurchaseRecord,
    Sensor,
    SensorKind,
    Site,
    SiteKind,
    TimelineEntry,
    UnitStatus,
)
from services.safety.domain.records import PersonRow, PurchaseRow, StatisticsRow, VehicleRow
from services.safety.vault import PersonVault

__all__ = [
    "UNIT_LABEL",
    "Clock",
    "Preconditions",
    "SafetyConfig",
    "SafetyStore",
    "SafetyTransaction",
    "SafetyUnitOfWork",
    "full_alert",
    "locked_alert",
    "new_id",
    "open_purchase",
    "publish_alert_change",
    "require_id",
    "site_of",
    "utc_now",
]

Cursor = tuple[datetime, str]
Clock = Callable[[], datetime]

UNIT_LABEL = {
    "police_station": "police station",
    "patrol_swat": "patrol/SWAT brigade",
    "police_drone": "police drone unit",
    "public_order": "public-order brigade",
    "site_guards": "site guards",
}


class SafetyStore(Protocol):
    """The safety service's state, as the use cases see it inside one transaction."""

    def insert_site(self, site: Site) -> None: ...
    def get_site(self, site_id: str) -> Site | None: ...
    def list_sites(
        self,
        *,
        site_ids: Collection[str] | None,
        kind: SiteKind | None,
        division_code: str,
        town: str,
        after: Cursor | None,
        limit: int,
    ) -> list[Site]: ...
    def insert_sensor(self, sensor: Sensor) -> None: ...
    def get_sensors(self, sensor_ids: Iterable[str]) -> dict[str, Sensor]: ...
    def list_sensors(
        self, site_id: str, kind: SensorKind | None, after: Cursor | None, limit: int
    ) -> list[Sensor]: ...

    def upsert_person(self, token: str, sealed: bytes, now: datetime) -> bool: ...
    def get_person(self, token: str) -> PersonRow | None: ...
    def get_persons(self, tokens: Iterable[str]) -> dict[str, PersonRow]: ...
    def existing_persons(self, tokens: Iterable[str]) -> set[str]: ...
    def insert_purchase(self, purchase: PurchaseRow, now: datetime) -> None: ...
    def purchases_of(
        self, tokens: Iterable[str], since: datetime | None = None, until: datetime | None = None
    ) -> list[PurchaseRow]: ...

    def upsert_vehicle(self, vehicle_token: str, person_token: str, sealed: bytes, now: datetime) -> bool: ...
    def get_vehicle(self, vehicle_token: str) -> VehicleRow | None: ...
    def list_vehicles(self, person_token: str, after: Cursor | None, limit: int) -> list[VehicleRow]: ...
    def delete_vehicle(self, vehicle_token: str) -> VehicleRow | None: ...
    def vehicle_owners(self, vehicle_tokens: Iterable[str]) -> dict[str, str]: ...

    def insert_detections(self, detections: Sequence[Detection], received_at: datetime) -> None: ...
    def window_detections(self, site_id: str, start: datetime, end: datetime) -> list[Detection]: ...

    def lock_site_alerts(self, site_id: str) -> None: ...
    def open_alerts(self, site_ids: Collection[str] | None, *, for_update: bool = False) -> list[Alert]: ...
    def insert_alert(self, alert: Alert) -> None: ...
    def update_alert_assessment(self, alert: Alert) -> None: ...
    def link_detections(self, alert_id: str, detection_ids: Iterable[str]) -> None: ...
    def get_alert(self, alert_id: str, *, for_update: bool = False, full: bool = False) -> Alert | None: ...
    def list_alerts(
        self,
        *,
        site_ids: Collection[str] | None,
        statuses: Collection[AlertStatus],
        raised_from: datetime | None,
        raised_until: datetime | None,
        before: Cursor | None,
        limit: int,
    ) -> list[Alert]: ...
    def set_alert_status(self, alert_id: str, status: AlertStatus, at: datetime, **stamps: Any) -> None: ...
    def insert_units(self, alert_id: str, units: Sequence[DispatchedUnit]) -> None: ...
    def set_unit_status(self, unit_id: str, status: UnitStatus, at: datetime) -> None: ...
    def add_timeline(self, alert_id: str, entries: Iterable[TimelineEntry]) -> None: ...

    def insert_inspection(self, inspection: Inspection) -> None: ...
    def get_inspection(self, inspection_id: str) -> Inspection | None: ...
    def list_inspections(self, site_id: str, before: Cursor | None, limit: int) -> list[Inspection]: ...

    def statistics(
        self,
        *,
        site_ids: Collection[str] | None,
        start: datetime,
        end: datetime,
        bucket: str | None,
        timezone: str,
    ) -> list[StatisticsRow]: ...


SafetyUnitOfWork = UnitOfWork[SafetyStore]
SafetyTransaction = Transaction[SafetyStore]


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    risk_window: timedelta
    dedup_window: timedelta
    # The district's IANA zone (ServiceSettings.district_time_zone): statistics days start at its midnight.
    time_zone: str
    # The pg_notify channel of this schema's alert changes (services/safety/alert_feed.py).
    alert_channel: str


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def require_id(field: str, value: str) -> None:
    if not value:
        raise InvalidArgumentError.of(field, "is required")


class Preconditions:
    """Collects what is wrong with the entities a command refers to; :meth:`check` refuses them all at
    once with FAILED_PRECONDITION, each named by its field."""

    def __init__(self) -> None:
        self._problems: list[str] = []

    def add(self, field: str, problem: str) -> None:
        self._problems.append(f"{field}: {problem}")

    def check(self) -> None:
        if self._problems:
            raise FailedPreconditionError("; ".join(self._problems))


def site_of(repo: SafetyStore, site_id: str) -> Site:
    """The site an RPC is about: NOT_FOUND when it does not exist."""
    site = repo.get_site(site_id)
    if site is None:
        raise NotFoundError(f"site {site_id} not found")
    return site


def full_alert(repo: SafetyStore, alert_id: str, viewer: Viewer) -> Alert:
    """The alert with its units, detections and timeline; NOT_FOUND when missing or out of scope."""
    return _in_scope(repo.get_alert(alert_id, full=True), alert_id, viewer)


def locked_alert(repo: SafetyStore, alert_id: str, viewer: Viewer) -> Alert:
    """The alert locked until the transaction ends, so its lifecycle moves one step at a time."""
    return _in_scope(repo.get_alert(alert_id, for_update=True), alert_id, viewer)


def _in_scope(alert: Alert | None, alert_id: str, viewer: Viewer) -> Alert:
    if alert is None:
        raise NotFoundError(f"alert {alert_id} not found")
    viewer.require(alert.site_id, f"alert {alert_id}")
    return alert


def publish_alert_change(
    tx: SafetyTransaction, channel: str, alert: Alert, change: AlertChangeKind, event: Message
) -> None:
    """Publish ``event`` keyed by the alert and tell watchers, both once the transaction commits."""
    tx.publish(key=alert.alert_id, subject=alert.alert_id, message=event)
    payload = {"alert_id": alert.alert_id, "site_id": alert.site_id, "change": change.value}
    tx.notify(channel, json.dumps(payload, separators=(",", ":")))


def open_purchase(vault: PersonVault, row: PurchaseRow) -> PurchaseRecord:
    detail = vault.open("purchase", f"{row.person_token}/{row.purchase_id}", row.sealed)
    return PurchaseRecord(
        purchase_id=row.purchase_id,
        person_token=row.person_token,
        item=HazardousItem(detail["item"]),
        description=str(detail["description"]),
        quantity=float(detail["quantity"]),
        unit=str(detail["unit"]),
        purchased_at=row.purchased_at,
        place=str(detail["place"]),
    )
