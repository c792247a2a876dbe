"""An in-memory :class:`~services.safety.usecases.common.SafetyStore` for unit tests of the use cases:
the same methods as :class:`~services.safety.repository.SafetyRepository`, the same ordering and
filtering rules, plain dictionaries instead of tables. Used with
:class:`services.platform.uow.FakeUnitOfWork`, which snapshots the instance's attributes to roll a
failed transaction back, so all state lives in plain attributes here."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.safety.domain.model import (
    Alert,
    AlertOutcome,
    AlertStatus,
    Detection,
    DispatchedUnit,
    Inspection,
    RiskLevel,
    Sensor,
    SensorKind,
    Site,
    SiteKind,
    TimelineEntry,
    UnitStatus,
)
from services.safety.domain.records import PersonRow, PurchaseRow, StatisticsRow, VehicleRow

__all__ = ["FakeSafetyRepository"]

Cursor = tuple[datetime, str]
_LIFECYCLE = frozenset(
    {
        "acknowledged_at",
        "dispatched_at",
        "on_scene_at",
        "closed_at",
        "outcome",
        "joint_response",
        "resolution_note",
    }
)
_UNIT_STAMP = {
    UnitStatus.EN_ROUTE: "en_route_at",
    UnitStatus.ARRIVED: "arrived_at",
    UnitStatus.DONE: "done_at",
}


class FakeSafetyRepository:
    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.sensors: dict[str, Sensor] = {}
        self.persons: dict[str, PersonRow] = {}
        self.purchases: dict[str, PurchaseRow] = {}
        self.vehicles: dict[str, VehicleRow] = {}
        self.detections: dict[str, Detection] = {}
        # Stored without units, detections or timeline (those live in the tables below).
        self.alerts: dict[str, Alert] = {}
        self.units: dict[str, list[DispatchedUnit]] = {}
        self.alert_detections: dict[str, list[str]] = {}
        self.timeline: dict[str, list[TimelineEntry]] = {}
        self.inspections: dict[str, Inspection] = {}

    # --- sites and sensors ------------------------------------------------------------------------

    def insert_site(self, site: Site) -> None:
        if site.site_id in self.sites:
            raise KeyError(f"duplicate site {site.site_id}")
        self.sites[site.site_id] = site

    def get_site(self, site_id: str) -> Site | None:
        return self.sites.get(site_id)

    def list_sites(
        self,
        *,
        site_ids: Collection[str] | None,
        kind: SiteKind | None,
        division_code: str,
        town: str,
        after: Cursor | None,
        limit: int,
    ) -> list[Site]:
        found = [
            s
            for s in self.sites.values()
            if (site_ids is None or s.site_id in site_ids)
            and (kind is None or s.kind is kind)
            and (not division_code or s.division_code == division_code)
            and (not town or s.town == town)
            and (after is None or (s.registered_at, s.site_id) > after)
        ]
        return sorted(found, key=lambda s: (s.registered_at, s.site_id))[:limit]

    def insert_sensor(self, sensor: Sensor) -> None:
        if sensor.site_id not in self.sites:
            raise KeyError(f"foreign key: no site {sensor.site_id}")
        self.sensors[sensor.sensor_id] = sensor

    def get_sensors(self, sensor_ids: Iterable[str]) -> dict[str, Sensor]:
        return {i: self.sensors[i] for i in set(sensor_ids) if i in self.sensors}

    def list_sensors(
        self, site_id: str, kind: SensorKind | None, after: Cursor | None, limit: int
    ) -> list[Sensor]:
        found = [
            s
            for s in self.sensors.values()
            if s.site_id == site_id
            and (kind is None or s.kind is kind)
            and (after is None or (s.registered_at, s.sensor_id) > after)
        ]
        return sorted(found, key=lambda s: (s.registered_at, s.sensor_id))[:limit]

    # --- persons ----------------------------------------------------------------------------------

    def upsert_person(self, token: str, sealed: bytes, now: datetime) -> bool:
        existing = self.persons.get(token)
        if existing is None:
            self.persons[token] = PersonRow(token, sealed, now, now)
            return True
        self.persons[token] = replace(existing, sealed=sealed, updated_at=now)
        return False

    def get_person(self, token: str) -> PersonRow | None:
        return self.persons.get(token)

    def get_persons(self, tokens: Iterable[str]) -> dict[str, PersonRow]:
        return {t: self.persons[t] for t in set(tokens) if t in self.persons}

    def existing_persons(self, tokens: Iterable[str]) -> set[str]:
        return {t for t in tokens if t in self.persons}

    def insert_purchase(self, purchase: PurchaseRow, now: datetime) -> None:  # noqa: ARG002
        if purchase.person_token not in self.persons:
            raise KeyError(f"foreign key: no person {purchase.person_token}")
        self.purchases[purchase.purchase_id] = purchase

    def purchases_of(
        self, tokens: Iterable[str], since: datetime | None = None, until: datetime | None = None
    ) -> list[PurchaseRow]:
        wanted = set(tokens)
        found = [
            p
            for p in self.purchases.values()
            if p.person_token in wanted
            and (since is None or p.purchased_at >= since)
            and (until is None or p.purchased_at <= until)
        ]
        found.sort(key=lambda p: p.purchase_id)
        found.sort(key=lambda p: p.purchased_at, reverse=True)
        return found

    # --- vehicles of concern -----------------------------------------------------------------------

    def upsert_vehicle(self, vehicle_token: str, person_token: str, sealed: bytes, now: datetime) -> bool:
        if person_token not in self.persons:
            raise KeyError(f"foreign key: no person {person_token}")
        existing = self.vehicles.get(vehicle_token)
        if existing is None:
            self.vehicles[vehicle_token] = VehicleRow(vehicle_token, person_token, sealed, now, now)
            return True
        self.vehicles[vehicle_token] = replace(
            existing, person_token=person_token, sealed=sealed, updated_at=now
        )
        return False

    def get_vehicle(self, vehicle_token: str) -> VehicleRow | None:
        return self.vehicles.get(vehicle_token)

    def list_vehicles(self, person_token: str, after: Cursor | None, limit: int) -> list[VehicleRow]:
        found = [
            v
            for v in self.vehicles.values()
            if v.person_token == person_token and (after is None or (v.recorded_at, v.vehicle_token) > after)
        ]
        return sorted(found, key=lambda v: (v.recorded_at, v.vehicle_token))[:limit]

    def delete_vehicle(self, vehicle_token: str) -> VehicleRow | None:
        return self.vehicles.pop(vehicle_token, None)

    def vehicle_owners(self, vehicle_tokens: Iterable[str]) -> dict[str, str]:
        return {t: self.vehicles[t].person_token for t in set(vehicle_tokens) if t in self.vehicles}

    # --- detections -------------------------------------------------------------------------------

    def insert_detections(self, detections: Sequence[Detection], received_at: datetime) -> None:  # noqa: ARG002
        for d in detections:
            self.detections[d.detection_id] = d

    def window_detections(self, site_id: str, start: datetime, end: datetime) -> list[Detection]:
        dealt_with = {
            d
            for alert_id, ids in self.alert_detections.items()
            if self.alerts[alert_id].closed_at is not None
            for d in ids
        }
        found = [
            d
            for d in self.detections.values()
            if d.site_id == site_id and start <= d.detected_at <= end and d.detection_id not in dealt_with
        ]
        return sorted(found, key=lambda d: (d.detected_at, d.detection_id))

    # --- alerts -----------------------------------------------------------------------------------

    def lock_site_alerts(self, site_id: str) -> None:
        """One thread per fake: nothing to serialise."""

    def open_alerts(self, site_ids: Collection[str] | None, *, for_update: bool = False) -> list[Alert]:  # noqa: ARG002
        found = [
            a
            for a in self.alerts.values()
            if a.closed_at is None and (site_ids is None or a.site_id in site_ids)
        ]
        return sorted(found, key=lambda a: (a.raised_at, a.alert_id))

    def insert_alert(self, alert: Alert) -> None:
        site = self.sites[alert.site_id]
        self.alerts[alert.alert_id] = replace(
            alert, site_name=site.name, units=(), detections=(), timeline=()
        )
        self.units[alert.alert_id] = []
        self.alert_detections[alert.alert_id] = []
        self.timeline[alert.alert_id] = []

    def update_alert_assessment(self, alert: Alert) -> None:
        self.alerts[alert.alert_id] = replace(self.alerts[alert.alert_id], **_assessed(alert))

    def link_detections(self, alert_id: str, detection_ids: Iterable[str]) -> None:
        linked = self.alert_detections[alert_id]
        linked.extend(d for d in detection_ids if d not in linked)

    def get_alert(self, alert_id: str, *, for_update: bool = False, full: bool = False) -> Alert | None:  # noqa: ARG002
        alert = self.alerts.get(alert_id)
        if alert is None:
            return None
        alert = replace(alert, units=tuple(self.units[alert_id]))
        if not full:
            return alert
        detections = sorted(
            (self.detections[d] for d in self.alert_detections[alert_id]),
            key=lambda d: (d.detected_at, d.detection_id),
        )
        return replace(alert, detections=tuple(detections), timeline=tuple(self.timeline[alert_id]))

    def list_alerts(
        self,
        *,
        site_ids: Collection[str] | None,
        statuses: Collection[AlertStatus],
        raised_from: datetime | None,
        raised_until: datetime | None,
        before: Cursor | None,
        limit: int,
    ) -> list[Alert]:
        found = [
            replace(a, units=tuple(self.units[a.alert_id]))
            for a in self.alerts.values()
            if (site_ids is None or a.site_id in site_ids)
            and (not statuses or a.status in statuses)
            and (raised_from is None or a.raised_at >= raised_from)
            and (raised_until is None or a.raised_at < raised_until)
            and (before is None or (a.raised_at, a.alert_id) < before)
        ]
        return sorted(found, key=lambda a: (a.raised_at, a.alert_id), reverse=True)[:limit]

    def set_alert_status(self, alert_id: str, status: AlertStatus, at: datetime, **stamps: Any) -> None:
        unknown = set(stamps) - _LIFECYCLE
        if unknown:
            raise ValueError(f"not lifecycle columns: {sorted(unknown)}")
        if "outcome" in stamps:
            stamps["outcome"] = AlertOutcome(stamps["outcome"])
        self.alerts[alert_id] = replace(self.alerts[alert_id], status=status, updated_at=at, **stamps)

    def insert_units(self, alert_id: str, units: Sequence[DispatchedUnit]) -> None:
        self.units[alert_id].extend(units)

    def set_unit_status(self, unit_id: str, status: UnitStatus, at: datetime) -> None:
        for units in self.units.values():
            for index, unit in enumerate(units):
                if unit.unit_id != unit_id:
                    continue
                if status is UnitStatus.EN_ROUTE:
                    units[index] = replace(unit, status=status, en_route_at=at)
                elif status is UnitStatus.ARRIVED:
                    units[index] = replace(unit, status=status, arrived_at=at)
                elif status is UnitStatus.DONE:
                    units[index] = replace(unit, status=status, done_at=at)
                else:
                    raise ValueError(f"a unit does not move back to {status.value}")

    def add_timeline(self, alert_id: str, entries: Iterable[TimelineEntry]) -> None:
        self.timeline[alert_id].extend(entries)

    # --- inspections ------------------------------------------------------------------------------

    def insert_inspection(self, inspection: Inspection) -> None:
        self.inspections[inspection.inspection_id] = inspection

    def get_inspection(self, inspection_id: str) -> Inspection | None:
        return self.inspections.get(inspection_id)

    def list_inspections(self, site_id: str, before: Cursor | None, limit: int) -> list[Inspection]:
        found = [
            i
            for i in self.inspections.values()
            if i.site_id == site_id and (before is None or (i.inspected_at, i.inspection_id) < before)
        ]
        return sorted(found, key=lambda i: (i.inspected_at, i.inspection_id), reverse=True)[:limit]

    # --- statistics -------------------------------------------------------------------------------

    def statistics(
        self,
        *,
        site_ids: Collection[str] | None,
        start: datetime,
        end: datetime,
        bucket: str | None,
        timezone: str,
    ) -> list[StatisticsRow]:
        if bucket not in (None, "day", "month"):
            raise ValueError(f"unknown bucket {bucket!r}")
        zone = ZoneInfo(timezone)
        groups: dict[tuple[str, datetime | None], list[Alert]] = {}
        for alert in self.alerts.values():
            if start <= alert.raised_at < end and (site_ids is None or alert.site_id in site_ids):
                groups.setdefault((alert.site_id, _bucket_start(alert.raised_at, bucket, zone)), []).append(
                    alert
                )
        rows = []
        for (site_id, first), alerts in groups.items():

            def seconds(stamp: str, alerts: list[Alert] = alerts) -> tuple[float, int]:
                spans = [
                    (getattr(a, stamp) - a.raised_at).total_seconds()
                    for a in alerts
                    if getattr(a, stamp) is not None
                ]
                return float(sum(spans)), len(spans)

            ack, dispatch, arrive = (
                seconds("acknowledged_at"),
                seconds("dispatched_at"),
                seconds("on_scene_at"),
            )
            rows.append(
                StatisticsRow(
                    site_id=site_id,
                    bucket_start=first,
                    bucket_end=_bucket_end(first, bucket, zone),
                    warnings=len(alerts),
                    critical=sum(a.level is RiskLevel.CRITICAL for a in alerts),
                    joint=sum(a.joint_response for a in alerts),
                    false_alarms=sum(a.outcome is AlertOutcome.FALSE_ALARM for a in alerts),
                    ack_seconds=ack[0],
                    ack_count=ack[1],
                    dispatch_seconds=dispatch[0],
                    dispatch_count=dispatch[1],
                    arrive_seconds=arrive[0],
                    arrive_count=arrive[1],
                )
            )
        return sorted(rows, key=lambda r: (r.site_id, r.bucket_start or start))


def _bucket_start(at: datetime, bucket: str | None, zone: ZoneInfo) -> datetime | None:
    if bucket is None:
        return None
    local = at.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "month":
        local = local.replace(day=1)
    return local.replace(tzinfo=None).replace(tzinfo=zone)


def _bucket_end(first: datetime | None, bucket: str | None, zone: ZoneInfo) -> datetime | None:
    if first is None:
        return None
    wall = first.replace(tzinfo=None)
    if bucket == "day":
        wall += timedelta(days=1)
    else:
        wall = wall.replace(year=wall.year + wall.month // 12, month=wall.month % 12 + 1)
    return wall.replace(tzinfo=zone)


def _assessed(alert: Alert) -> dict[str, Any]:
    """The fields a re-assessment changes, as SafetyRepository.update_alert_assessment stores them."""
    names = ("level", "reasons", "detection_kinds", "person_tokens", "first_detected_at", "last_detected_at")
    return {name: getattr(alert, name) for name in (*names, "occurrences", "updated_at")}
