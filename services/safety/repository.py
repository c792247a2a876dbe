"""SQL of the safety service (psycopg 3): :class:`SafetyRepository` is bound to the one connection of a
unit of work's transaction, so a use case decides what one transaction holds; nothing here commits,
publishes or decides. Rows come back as domain records through row factories, never as tuples."""

# Queries are composed only from this module's constant fragments (column lists, lifecycle column names
# checked against a fixed set); every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import BaseRowFactory, class_row, dict_row, kwargs_row
from psycopg.types.json import Jsonb

from services.safety.domain.model import (
    Alert,
    AlertOutcome,
    AlertStatus,
    AlertTrigger,
    Detection,
    DetectionKind,
    DispatchedUnit,
    Inspection,
    InspectionFinding,
    InspectionMethod,
    RiskLevel,
    Sensor,
    SensorKind,
    Site,
    SiteKind,
    TimelineEntry,
    TimelineKind,
    UnitKind,
    UnitStatus,
)
from services.safety.domain.records import PersonRow, PurchaseRow, StatisticsRow, VehicleRow

__all__ = ["LIFECYCLE_COLUMNS", "SafetyRepository"]

Conn = psycopg.Connection[Any]
Cursor = tuple[datetime, str]
T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]

_SITE_COLUMNS = (
    "site_id, name, kind, address, division_code, town, latitude, longitude, duty_room_name, "
    "duty_room_phone, registered_at"
)
_SENSOR_COLUMNS = "sensor_id, site_id, kind, zone, name, device_code, registered_at"
_DETECTION_COLUMNS = (
    "d.detection_id, d.site_id, d.sensor_id, d.zone, d.kind, d.detected_at, d.confidence, d.snapshot_ref, "
    "d.label, d.person_token, d.vehicle_token"
)
_ALERT_COLUMNS = (
    "a.alert_id, a.site_id, s.name AS site_name, a.status, a.level, a.trigger, a.reasons, a.detection_kinds, "
    "a.person_tokens, a.occurrences, a.first_detected_at, a.last_detected_at, a.raised_at, a.updated_at, "
    "a.acknowledged_at, a.dispatched_at, a.on_scene_at, a.closed_at, a.outcome, a.joint_response, "
    "a.resolution_note"
)
# What set_alert_status may stamp besides the status.
LIFECYCLE_COLUMNS = frozenset(
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
_UNIT_COLUMNS = "unit_id, kind, name, status, notified_at, en_route_at, arrived_at, done_at"
_VEHICLE_COLUMNS = "vehicle_token, person_token, sealed, recorded_at, updated_at"


def _site(**row: Any) -> Site:
    return Site(**{**row, "kind": SiteKind(row["kind"])})


def _sensor(**row: Any) -> Sensor:
    return Sensor(**{**row, "kind": SensorKind(row["kind"])})


def _detection(**row: Any) -> Detection:
    return Detection(**{**row, "kind": DetectionKind(row["kind"])})


def _unit(**row: Any) -> DispatchedUnit:
    return DispatchedUnit(
        unit_id=row["unit_id"],
        kind=UnitKind(row["kind"]),
        name=row["name"],
        status=UnitStatus(row["status"]),
        notified_at=row["notified_at"],
        en_route_at=row["en_route_at"],
        arrived_at=row["arrived_at"],
        done_at=row["done_at"],
    )


def _timeline(**row: Any) -> TimelineEntry:
    return TimelineEntry(row["at"], TimelineKind(row["kind"]), row["actor"], row["detail"])


def _inspection(**row: Any) -> Inspection:
    return Inspection(
        **{
            **row,
            "method": InspectionMethod(row["method"]),
            "findings": tuple(InspectionFinding(**f) for f in row["findings"]),
        }
    )


def _alert(row: dict[str, Any], **parts: Any) -> Alert:
    return Alert(
        alert_id=row["alert_id"],
        site_id=row["site_id"],
        site_name=row["site_name"],
        status=AlertStatus(row["status"]),
        level=RiskLevel(row["level"]),
        trigger=AlertTrigger(row["trigger"]),
        reasons=tuple(row["reasons"]),
        detection_kinds=tuple(DetectionKind(k) for k in row["detection_kinds"]),
        person_tokens=tuple(row["person_tokens"]),
        occurrences=row["occurrences"],
        first_detected_at=row["first_detected_at"],
        last_detected_at=row["last_detected_at"],
        raised_at=row["raised_at"],
        updated_at=row["updated_at"],
        acknowledged_at=row["acknowledged_at"],
        dispatched_at=row["dispatched_at"],
        on_scene_at=row["on_scene_at"],
        closed_at=row["closed_at"],
        outcome=AlertOutcome(row["outcome"]) if row["outcome"] else None,
        joint_response=row["joint_response"],
        resolution_note=row["resolution_note"],
        **parts,
    )


_SITES = kwargs_row(_site)
_SENSORS = kwargs_row(_sensor)
_DETECTIONS = kwargs_row(_detection)
_UNITS = kwargs_row(_unit)
_TIMELINE = kwargs_row(_timeline)
_INSPECTIONS = kwargs_row(_inspection)


class SafetyRepository:
    """The safety schema's tables, read and written on one connection (inside the caller's transaction)."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    def _rows(self, query: str, params: Params, factory: BaseRowFactory[T]) -> list[T]:
        with self._conn.cursor(row_factory=factory) as cursor:
            cursor.execute(query, params)
            return cursor.fetchall()

    def _row(self, query: str, params: Params, factory: BaseRowFactory[T]) -> T | None:
        found = self._rows(query, params, factory)
        return found[0] if found else None

    # --- sites and sensors ------------------------------------------------------------------------

    def insert_site(self, site: Site) -> None:
        self._conn.execute(
            f"INSERT INTO sites ({_SITE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                site.site_id,
                site.name,
                site.kind.value,
                site.address,
                site.division_code,
                site.town,
                site.latitude,
                site.longitude,
                site.duty_room_name,
                site.duty_room_phone,
                site.registered_at,
            ),
        )

    def get_site(self, site_id: str) -> Site | None:
        return self._row(f"SELECT {_SITE_COLUMNS} FROM sites WHERE site_id = %s", (site_id,), _SITES)

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
        return self._rows(
            f"SELECT {_SITE_COLUMNS} FROM sites"
            " WHERE (%(ids)s::text[] IS NULL OR site_id = ANY(%(ids)s))"
            " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " AND (%(division)s = '' OR division_code = %(division)s)"
            " AND (%(town)s = '' OR town = %(town)s)"
            " AND (%(after_at)s::timestamptz IS NULL"
            "      OR (registered_at, site_id) > (%(after_at)s, %(after_id)s))"
            " ORDER BY registered_at, site_id LIMIT %(limit)s",
            {
                "ids": list(site_ids) if site_ids is not None else None,
                "kind": kind.value if kind else None,
                "division": division_code,
                "town": town,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else "",
                "limit": limit,
            },
            _SITES,
        )

    def insert_sensor(self, sensor: Sensor) -> None:
        self._conn.execute(
            f"INSERT INTO sensors ({_SENSOR_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                sensor.sensor_id,
                sensor.site_id,
                sensor.kind.value,
                sensor.zone,
                sensor.name,
                sensor.device_code,
                sensor.registered_at,
            ),
        )

    def get_sensors(self, sensor_ids: Iterable[str]) -> dict[str, Sensor]:
        found = self._rows(
            f"SELECT {_SENSOR_COLUMNS} FROM sensors WHERE sensor_id = ANY(%s)",
            (list(set(sensor_ids)),),
            _SENSORS,
        )
        return {sensor.sensor_id: sensor for sensor in found}

    def list_sensors(
        self, site_id: str, kind: SensorKind | None, after: Cursor | None, limit: int
    ) -> list[Sensor]:
        return self._rows(
            f"SELECT {_SENSOR_COLUMNS} FROM sensors WHERE site_id = %(site)s"
            " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " AND (%(after_at)s::timestamptz IS NULL"
            "      OR (registered_at, sensor_id) > (%(after_at)s, %(after_id)s))"
            " ORDER BY registered_at, sensor_id LIMIT %(limit)s",
            {
                "site": site_id,
                "kind": kind.value if kind else None,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else "",
                "limit": limit,
            },
            _SENSORS,
        )

    # --- persons ----------------------------------------------------------------------------------

    def upsert_person(self, token: str, sealed: bytes, now: datetime) -> bool:
        """Store or replace a person's sealed record; True when the token was new."""
        row = self._row(
            "INSERT INTO persons (person_token, sealed, recorded_at, updated_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (person_token)"
            " DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = EXCLUDED.updated_at"
            " RETURNING (xmax = 0) AS inserted",
            (token, sealed, now, now),
            dict_row,
        )
        return bool(row and row["inserted"])

    def get_person(self, token: str) -> PersonRow | None:
        return self._row(
            "SELECT person_token, sealed, recorded_at, updated_at FROM persons WHERE person_token = %s",
            (token,),
            class_row(PersonRow),
        )

    def get_persons(self, tokens: Iterable[str]) -> dict[str, PersonRow]:
        found = self._rows(
            "SELECT person_token, sealed, recorded_at, updated_at FROM persons WHERE person_token = ANY(%s)",
            (list(set(tokens)),),
            class_row(PersonRow),
        )
        return {person.person_token: person for person in found}

    def existing_persons(self, tokens: Iterable[str]) -> set[str]:
        found = self._rows(
            "SELECT person_token FROM persons WHERE person_token = ANY(%s)", (list(set(tokens)),), dict_row
        )
        return {row["person_token"] for row in found}

    def insert_purchase(self, purchase: PurchaseRow, now: datetime) -> None:
        self._conn.execute(
            "INSERT INTO hazardous_purchases (purchase_id, person_token, purchased_at, sealed, recorded_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (purchase.purchase_id, purchase.person_token, purchase.purchased_at, purchase.sealed, now),
        )

    def purchases_of(
        self, tokens: Iterable[str], since: datetime | None = None, until: datetime | None = None
    ) -> list[PurchaseRow]:
        """Newest first."""
        return self._rows(
            "SELECT purchase_id, person_token, purchased_at, sealed FROM hazardous_purchases"
            " WHERE person_token = ANY(%(tokens)s)"
            " AND (%(since)s::timestamptz IS NULL OR purchased_at >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR purchased_at <= %(until)s)"
            " ORDER BY purchased_at DESC, purchase_id",
            {"tokens": list(tokens), "since": since, "until": until},
            class_row(PurchaseRow),
        )

    # --- vehicles of concern -----------------------------------------------------------------------

    def upsert_vehicle(self, vehicle_token: str, person_token: str, sealed: bytes, now: datetime) -> bool:
        """Store a vehicle's sealed plate and its link, or relink it; True when the token was new."""
        row = self._row(
            "INSERT INTO vehicles_of_concern (vehicle_token, person_token, sealed, recorded_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (vehicle_token) DO UPDATE SET"
            " person_token = EXCLUDED.person_token, sealed = EXCLUDED.sealed,"
            " updated_at = EXCLUDED.updated_at"
            " RETURNING (xmax = 0) AS inserted",
            (vehicle_token, person_token, sealed, now, now),
            dict_row,
        )
        return bool(row and row["inserted"])

    def get_vehicle(self, vehicle_token: str) -> VehicleRow | None:
        return self._row(
            f"SELECT {_VEHICLE_COLUMNS} FROM vehicles_of_concern WHERE vehicle_token = %s",
            (vehicle_token,),
            class_row(VehicleRow),
        )

    def list_vehicles(self, person_token: str, after: Cursor | None, limit: int) -> list[VehicleRow]:
        """A person's vehicles, oldest record first."""
        return self._rows(
            f"SELECT {_VEHICLE_COLUMNS} FROM vehicles_of_concern WHERE person_token = %(person)s"
            " AND (%(after_at)s::timestamptz IS NULL"
            "      OR (recorded_at, vehicle_token) > (%(after_at)s, %(after_id)s))"
            " ORDER BY recorded_at, vehicle_token LIMIT %(limit)s",
            {
                "person": person_token,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else "",
                "limit": limit,
            },
            class_row(VehicleRow),
        )

    def delete_vehicle(self, vehicle_token: str) -> VehicleRow | None:
        """Remove a vehicle; the removed row, or None when there was none."""
        return self._row(
            f"DELETE FROM vehicles_of_concern WHERE vehicle_token = %s RETURNING {_VEHICLE_COLUMNS}",
            (vehicle_token,),
            class_row(VehicleRow),
        )

    def vehicle_owners(self, vehicle_tokens: Iterable[str]) -> dict[str, str]:
        """Vehicle token -> the token of the person it is linked to, for the tokens on record."""
        found = self._rows(
            "SELECT vehicle_token, person_token FROM vehicles_of_concern WHERE vehicle_token = ANY(%s)",
            (list(set(vehicle_tokens)),),
            dict_row,
        )
        return {row["vehicle_token"]: row["person_token"] for row in found}

    # --- detections -------------------------------------------------------------------------------

    def insert_detections(self, detections: Sequence[Detection], received_at: datetime) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO detections (detection_id, site_id, sensor_id, zone, kind, detected_at,"
                " confidence, snapshot_ref, label, person_token, vehicle_token, received_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        d.detection_id,
                        d.site_id,
                        d.sensor_id,
                        d.zone,
                        d.kind.value,
                        d.detected_at,
                        d.confidence,
                        d.snapshot_ref,
                        d.label,
                        d.person_token,
                        d.vehicle_token,
                        received_at,
                    )
                    for d in detections
                ],
            )

    def window_detections(self, site_id: str, start: datetime, end: datetime) -> list[Detection]:
        """One site's detections in [start, end], leaving out those an already closed alert dealt with."""
        return self._rows(
            f"SELECT {_DETECTION_COLUMNS} FROM detections d"
            " WHERE d.site_id = %s AND d.detected_at BETWEEN %s AND %s"
            " AND NOT EXISTS (SELECT 1 FROM alert_detections ad JOIN alerts a USING (alert_id)"
            "                 WHERE ad.detection_id = d.detection_id AND a.closed_at IS NOT NULL)"
            " ORDER BY d.detected_at, d.detection_id",
            (site_id, start, end),
            _DETECTIONS,
        )

    # --- alerts -----------------------------------------------------------------------------------

    def lock_site_alerts(self, site_id: str) -> None:
        """Serialise raising and updating alerts per site, so two batches cannot both open one."""
        self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('cityhub_safety_site_alerts'), hashtext(%s))", (site_id,)
        )

    def open_alerts(self, site_ids: Collection[str] | None, *, for_update: bool = False) -> list[Alert]:
        """Open alerts, oldest first; ``for_update`` locks them, so none closes while the caller decides."""
        lock = " FOR UPDATE OF a" if for_update else ""
        rows = self._rows(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN sites s USING (site_id)"
            " WHERE a.closed_at IS NULL AND (%(ids)s::text[] IS NULL OR a.site_id = ANY(%(ids)s))"
            f" ORDER BY a.raised_at, a.alert_id{lock}",
            {"ids": list(site_ids) if site_ids is not None else None},
            dict_row,
        )
        return [_alert(row) for row in rows]

    def insert_alert(self, alert: Alert) -> None:
        self._conn.execute(
            "INSERT INTO alerts (alert_id, site_id, status, level, trigger, reasons, detection_kinds,"
            " person_tokens, occurrences, first_detected_at, last_detected_at, raised_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                alert.alert_id,
                alert.site_id,
                alert.status.value,
                alert.level.value,
                alert.trigger.value,
                list(alert.reasons),
                [k.value for k in alert.detection_kinds],
                list(alert.person_tokens),
                alert.occurrences,
                alert.first_detected_at,
                alert.last_detected_at,
                alert.raised_at,
                alert.updated_at,
            ),
        )

    def update_alert_assessment(self, alert: Alert) -> None:
        """Store what a re-assessment changed: level, reasons, kinds, tokens, detection span, count."""
        self._conn.execute(
            "UPDATE alerts SET level = %s, reasons = %s, detection_kinds = %s, person_tokens = %s,"
            " first_detected_at = %s, last_detected_at = %s, occurrences = %s, updated_at = %s"
            " WHERE alert_id = %s",
            (
                alert.level.value,
                list(alert.reasons),
                [k.value for k in alert.detection_kinds],
                list(alert.person_tokens),
                alert.first_detected_at,
                alert.last_detected_at,
                alert.occurrences,
                alert.updated_at,
                alert.alert_id,
            ),
        )

    def link_detections(self, alert_id: str, detection_ids: Iterable[str]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO alert_detections (alert_id, detection_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                [(alert_id, d) for d in detection_ids],
            )

    def get_alert(self, alert_id: str, *, for_update: bool = False, full: bool = False) -> Alert | None:
        """The alert with its units; ``full`` adds its detections and timeline."""
        lock = " FOR UPDATE OF a" if for_update else ""
        row = self._row(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN sites s USING (site_id) WHERE a.alert_id = %s{lock}",
            (alert_id,),
            dict_row,
        )
        if row is None:
            return None
        units = self._rows(
            f"SELECT {_UNIT_COLUMNS} FROM alert_units WHERE alert_id = %s ORDER BY seq", (alert_id,), _UNITS
        )
        if not full:
            return _alert(row, units=tuple(units))
        detections = self._rows(
            f"SELECT {_DETECTION_COLUMNS} FROM detections d JOIN alert_detections ad USING (detection_id)"
            " WHERE ad.alert_id = %s ORDER BY d.detected_at, d.detection_id",
            (alert_id,),
            _DETECTIONS,
        )
        timeline = self._rows(
            "SELECT at, kind, actor, detail FROM alert_timeline WHERE alert_id = %s ORDER BY id",
            (alert_id,),
            _TIMELINE,
        )
        return _alert(row, units=tuple(units), detections=tuple(detections), timeline=tuple(timeline))

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
        """Newest first, with their units."""
        rows = self._rows(
            f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN sites s USING (site_id)"
            " WHERE (%(ids)s::text[] IS NULL OR a.site_id = ANY(%(ids)s))"
            " AND (%(statuses)s::text[] IS NULL OR a.status = ANY(%(statuses)s))"
            " AND (%(from)s::timestamptz IS NULL OR a.raised_at >= %(from)s)"
            " AND (%(until)s::timestamptz IS NULL OR a.raised_at < %(until)s)"
            " AND (%(before_at)s::timestamptz IS NULL"
            "      OR (a.raised_at, a.alert_id) < (%(before_at)s, %(before_id)s))"
            " ORDER BY a.raised_at DESC, a.alert_id DESC LIMIT %(limit)s",
            {
                "ids": list(site_ids) if site_ids is not None else None,
                "statuses": [s.value for s in statuses] or None,
                "from": raised_from,
                "until": raised_until,
                "before_at": before[0] if before else None,
                "before_id": before[1] if before else "",
                "limit": limit,
            },
            dict_row,
        )
        if not rows:
            return []
        units: dict[str, list[DispatchedUnit]] = {}
        for r in self._rows(
            f"SELECT alert_id, {_UNIT_COLUMNS} FROM alert_units WHERE alert_id = ANY(%s)"
            " ORDER BY alert_id, seq",
            ([row["alert_id"] for row in rows],),
            dict_row,
        ):
            alert_id = r.pop("alert_id")
            units.setdefault(alert_id, []).append(_unit(**r))
        return [_alert(row, units=tuple(units.get(row["alert_id"], ()))) for row in rows]

    def set_alert_status(self, alert_id: str, status: AlertStatus, at: datetime, **stamps: Any) -> None:
        """Change the status; ``stamps`` sets lifecycle columns (acknowledged_at=..., on_scene_at=...)."""
        unknown = set(stamps) - LIFECYCLE_COLUMNS
        if unknown:
            raise ValueError(f"not lifecycle columns: {sorted(unknown)}")
        assignments = "".join(f", {name} = %({name})s" for name in sorted(stamps))
        self._conn.execute(
            f"UPDATE alerts SET status = %(status)s, updated_at = %(at)s{assignments}"
            " WHERE alert_id = %(id)s",
            {"status": status.value, "at": at, "id": alert_id, **stamps},
        )

    def insert_units(self, alert_id: str, units: Sequence[DispatchedUnit]) -> None:
        row = self._row(
            "SELECT coalesce(max(seq), 0) AS seq FROM alert_units WHERE alert_id = %s", (alert_id,), dict_row
        )
        start = int(row["seq"]) if row else 0
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO alert_units (unit_id, alert_id, seq, kind, name, status, notified_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (u.unit_id, alert_id, start + i + 1, u.kind.value, u.name, u.status.value, u.notified_at)
                    for i, u in enumerate(units)
                ],
            )

    def set_unit_status(self, unit_id: str, status: UnitStatus, at: datetime) -> None:
        column = {
            UnitStatus.EN_ROUTE: "en_route_at",
            UnitStatus.ARRIVED: "arrived_at",
            UnitStatus.DONE: "done_at",
        }[status]
        self._conn.execute(
            f"UPDATE alert_units SET status = %s, {column} = %s WHERE unit_id = %s",
            (status.value, at, unit_id),
        )

    def add_timeline(self, alert_id: str, entries: Iterable[TimelineEntry]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO alert_timeline (alert_id, at, kind, actor, detail) VALUES (%s, %s, %s, %s, %s)",
                [(alert_id, e.at, e.kind.value, e.actor, e.detail) for e in entries],
            )

    # --- inspections ------------------------------------------------------------------------------

    def insert_inspection(self, inspection: Inspection) -> None:
        self._conn.execute(
            "INSERT INTO inspections (inspection_id, site_id, method, inspector, inspected_at, sensor_id,"
            " summary, findings, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                inspection.inspection_id,
                inspection.site_id,
                inspection.method.value,
                inspection.inspector,
                inspection.inspected_at,
                inspection.sensor_id,
                inspection.summary,
                Jsonb(
                    [
                        {"category": f.category, "description": f.description, "severity": f.severity}
                        for f in inspection.findings
                    ]
                ),
                inspection.recorded_at,
            ),
        )

    def get_inspection(self, inspection_id: str) -> Inspection | None:
        found = self._inspections("inspection_id = %(id)s", {"id": inspection_id}, 1)
        return found[0] if found else None

    def list_inspections(self, site_id: str, before: Cursor | None, limit: int) -> list[Inspection]:
        """Newest inspection first."""
        return self._inspections(
            "site_id = %(site)s AND (%(before_at)s::timestamptz IS NULL"
            " OR (inspected_at, inspection_id) < (%(before_at)s, %(before_id)s))",
            {
                "site": site_id,
                "before_at": before[0] if before else None,
                "before_id": before[1] if before else "",
            },
            limit,
        )

    def _inspections(self, where: str, params: dict[str, Any], limit: int) -> list[Inspection]:
        return self._rows(
            "SELECT inspection_id, site_id, method, inspector, inspected_at, sensor_id, summary, findings,"
            f" recorded_at FROM inspections WHERE {where}"
            " ORDER BY inspected_at DESC, inspection_id DESC LIMIT %(limit)s",
            {**params, "limit": limit},
            _INSPECTIONS,
        )

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
        """Per site (and bucket of the district's calendar) over alerts raised in [start, end): sums and
        counts, so means can be combined exactly across rows."""
        if bucket not in (None, "day", "month"):
            raise ValueError(f"unknown bucket {bucket!r}")
        # date_trunc on the local wall-clock time, so a day starts at the district's midnight; a NULL
        # unit (no bucket) makes the bucket NULL and gives one row per site.
        return self._rows(
            "SELECT site_id, b AT TIME ZONE %(tz)s AS bucket_start,"
            " (b + %(step)s::interval) AT TIME ZONE %(tz)s AS bucket_end,"
            " count(*) AS warnings,"
            " count(*) FILTER (WHERE level = 'critical') AS critical,"
            " count(*) FILTER (WHERE joint_response) AS joint,"
            " count(*) FILTER (WHERE outcome = 'false_alarm') AS false_alarms,"
            " coalesce(sum(extract(epoch FROM acknowledged_at - raised_at)), 0)::float8 AS ack_seconds,"
            " count(acknowledged_at) AS ack_count,"
            " coalesce(sum(extract(epoch FROM dispatched_at - raised_at)), 0)::float8 AS dispatch_seconds,"
            " count(dispatched_at) AS dispatch_count,"
            " coalesce(sum(extract(epoch FROM on_scene_at - raised_at)), 0)::float8 AS arrive_seconds,"
            " count(on_scene_at) AS arrive_count"
            " FROM (SELECT a.*, date_trunc(%(bucket)s::text, a.raised_at AT TIME ZONE %(tz)s) AS b"
            "       FROM alerts a"
            "       WHERE a.raised_at >= %(start)s AND a.raised_at < %(end)s"
            "       AND (%(ids)s::text[] IS NULL OR a.site_id = ANY(%(ids)s))) AS x"
            " GROUP BY site_id, b ORDER BY site_id, b",
            {
                "ids": list(site_ids) if site_ids is not None else None,
                "start": start,
                "end": end,
                "bucket": bucket,
                "step": {"day": "1 day", "month": "1 month"}.get(bucket or ""),
                "tz": timezone,
            },
            class_row(StatisticsRow),
        )
