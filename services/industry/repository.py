"""SQL for the industry service (psycopg 3): :class:`IndustryRepository`, bound to one connection (and so
to the transaction the unit of work or the consumer opened). It returns domain types, never rows.

Enumerations are stored as the small integers industry_0001 chose: each domain enum's declaration order,
from 1 (the numbers the contract uses too). Reordering a domain enum would change stored meanings.
"""

# Queries are composed only from this module's constant fragments (column lists, the visibility
# predicate); every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import dict_row

from services.industry.domain.access import Visibility
from services.industry.domain.model import (
    Alert,
    AlertKind,
    CycleStats,
    Device,
    DeviceStatus,
    Enterprise,
    Granularity,
    MachineType,
    Order,
    OrderStage,
    Park,
    Sector,
    Severity,
    Subject,
)
from services.industry.domain.records import Bucket, DueRollup, NewAlert, SilentDevice
from services.industry.domain.telemetry import (
    STATE_OF_CODE,
    DeviceProfile,
    HourCoverage,
    HourTotals,
    StatusSnapshot,
)
from services.industry.domain.utilisation import Totals
from services.industry.domain.workshops import WorkshopCoverage

__all__ = [
    "Bucket",
    "DueRollup",
    "IndustryRepository",
    "LockedStatus",
    "SilentDevice",
]

Conn = psycopg.Connection[Any]
Row = dict[str, Any]
E = TypeVar("E", bound=StrEnum)


class _Codes(Generic[E]):
    """A domain enum <-> the small integer stored for it (declaration order from 1)."""

    def __init__(self, kind: type[E]) -> None:
        self._of_member = {member: number for number, member in enumerate(kind, start=1)}
        self._of_code = {number: member for member, number in self._of_member.items()}

    def code(self, member: E) -> int:
        return self._of_member[member]

    def member(self, code: int) -> E:
        return self._of_code[code]


SECTOR = _Codes(Sector)
MACHINE_TYPE = _Codes(MachineType)
ORDER_STAGE = _Codes(OrderStage)
ALERT_KIND = _Codes(AlertKind)
SEVERITY = _Codes(Severity)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _bits(bitset: int) -> bytes:
    """A bitset as little-endian bytes, as short as its highest bit allows (b"" for none): a row's
    bitmaps grow with the hour instead of starting at full size."""
    return bitset.to_bytes((bitset.bit_length() + 7) // 8, "little")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _vis(visibility: Visibility) -> dict[str, Any]:
    return {
        "all": visibility.everything,
        "parks": sorted(visibility.parks),
        "ents": sorted(visibility.enterprises),
    }


# An enterprise (alias e) is visible: district-wide, one of the caller's enterprises, or in its parks.
_ENTERPRISE_VISIBLE = "(%(all)s OR e.credit_code = ANY(%(ents)s) OR e.park_id = ANY(%(parks)s))"
_PARK_COLUMNS = "park_id, name, division_code, address, registered_at"
_ENTERPRISE_COLUMNS = "credit_code, name, sector, park_id, address, onboarded_at"
_DEVICE_COLUMNS = (
    "d.device_id, d.serial_number, d.enterprise_id, d.park_id, d.workshop, d.machine_type, "
    "d.rated_power_kw, d.ideal_cycle_seconds, d.sample_interval_ms, d.registered_at"
)
_ORDER_COLUMNS = (
    "o.order_id, o.enterprise_id, e.park_id, o.customer, o.product, o.customisation, o.promised_date, "
    "o.stage, o.ordered_at, o.delivered_at"
)


def _park(row: Row) -> Park:
    return Park(**row)


def _enterprise(row: Row) -> Enterprise:
    return Enterprise(**{**row, "sector": SECTOR.member(row["sector"])})


def _device(row: Row) -> Device:
    return Device(
        device_id=row["device_id"],
        serial_number=row["serial_number"],
        credit_code=row["enterprise_id"],
        park_id=row["park_id"],
        workshop=row["workshop"],
        machine_type=MACHINE_TYPE.member(row["machine_type"]),
        rated_power_kw=row["rated_power_kw"],
        ideal_cycle_seconds=row["ideal_cycle_seconds"],
        sample_interval_ms=row["sample_interval_ms"],
        registered_at=row["registered_at"],
    )


def _alert(row: Row) -> Alert:
    return Alert(
        alert_id=str(row["alert_id"]),
        device_id=row["device_id"],
        credit_code=row["enterprise_id"],
        park_id=row["park_id"],
        kind=ALERT_KIND.member(row["kind"]),
        severity=SEVERITY.member(row["severity"]),
        raised_at=row["raised_at"],
        cleared_at=row["cleared_at"],
    )


def _order(row: Row, stage_times: Iterable[tuple[OrderStage, datetime]] = ()) -> Order:
    return Order(
        order_id=row["order_id"],
        credit_code=row["enterprise_id"],
        park_id=row["park_id"],
        customer=row["customer"],
        product=row["product"],
        customisation=row["customisation"],
        promised_date=row["promised_date"],
        stage=ORDER_STAGE.member(row["stage"]),
        ordered_at=row["ordered_at"],
        delivered_at=row["delivered_at"],
        stage_times=tuple(stage_times),
    )


def _totals(row: Row) -> Totals:
    return Totals(
        running_ms=int(row["running_ms"] or 0),
        idle_ms=int(row["idle_ms"] or 0),
        stopped_ms=int(row["stopped_ms"] or 0),
        fault_ms=int(row["fault_ms"] or 0),
        good_count=int(row["good_count"] or 0),
        reject_count=int(row["reject_count"] or 0),
        ideal_ms=float(row["ideal_ms"] or 0.0),
    )


@dataclass(slots=True)
class LockedStatus:
    snapshot: StatusSnapshot
    offline_alert_id: str | None
    offline_raised_at: datetime | None


class IndustryRepository:
    """Every statement of the industry service, on one connection."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def _one(self, query: str, params: Sequence[Any] | Mapping[str, Any]) -> Row | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchone()

    def _all(self, query: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Row]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    # --- parks ------------------------------------------------------------------------------------------

    def get_park(self, park_id: str) -> Park | None:
        row = self._one(f"SELECT {_PARK_COLUMNS} FROM parks WHERE park_id = %s", (park_id,))
        return None if row is None else _park(row)

    def add_park(self, park: Park) -> None:
        self.conn.execute(
            f"INSERT INTO parks ({_PARK_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
            (park.park_id, park.name, park.division_code, park.address, park.registered_at),
        )

    def list_parks(self, visibility: Visibility, after: str, limit: int) -> list[Park]:
        rows = self._all(
            f"""SELECT {_PARK_COLUMNS} FROM parks p
                WHERE p.park_id > %(after)s
                  AND (%(all)s OR p.park_id = ANY(%(parks)s)
                       OR p.park_id IN (SELECT park_id FROM enterprises WHERE credit_code = ANY(%(ents)s)))
                ORDER BY p.park_id LIMIT %(limit)s""",
            {"after": after, "limit": limit, **_vis(visibility)},
        )
        return [_park(row) for row in rows]

    # --- enterprises ------------------------------------------------------------------------------------

    def get_enterprise(self, credit_code: str) -> Enterprise | None:
        row = self._one(
            f"SELECT {_ENTERPRISE_COLUMNS} FROM enterprises WHERE credit_code = %s", (credit_code,)
        )
        return None if row is None else _enterprise(row)

    def add_enterprise(self, enterprise: Enterprise) -> bool:
        """False when the credit code is already on the platform (nothing written)."""
        row = self.conn.execute(
            f"""INSERT INTO enterprises ({_ENTERPRISE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)
                ON CONFLICT (credit_code) DO NOTHING RETURNING 1""",
            (
                enterprise.credit_code,
                enterprise.name,
                SECTOR.code(enterprise.sector),
                enterprise.park_id,
                enterprise.address,
                enterprise.onboarded_at,
            ),
        ).fetchone()
        return row is not None

    def list_enterprises(
        self, visibility: Visibility, park_id: str, after: str, limit: int
    ) -> list[Enterprise]:
        rows = self._all(
            f"""SELECT {_ENTERPRISE_COLUMNS} FROM enterprises e
                WHERE e.credit_code > %(after)s AND (%(park)s = '' OR e.park_id = %(park)s)
                  AND {_ENTERPRISE_VISIBLE}
                ORDER BY e.credit_code LIMIT %(limit)s""",
            {"after": after, "park": park_id, "limit": limit, **_vis(visibility)},
        )
        return [_enterprise(row) for row in rows]

    # --- devices ----------------------------------------------------------------------------------------

    def get_device(self, device_id: str) -> Device | None:
        row = self._one(f"SELECT {_DEVICE_COLUMNS} FROM devices d WHERE device_id = %s", (device_id,))
        return None if row is None else _device(row)

    def add_device(self, device: Device) -> bool:
        """False when the serial number is already registered (nothing written)."""
        row = self.conn.execute(
            """INSERT INTO devices (device_id, serial_number, enterprise_id, park_id, workshop, machine_type,
                                    rated_power_kw, ideal_cycle_seconds, sample_interval_ms, registered_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (serial_number) DO NOTHING RETURNING 1""",
            (
                device.device_id,
                device.serial_number,
                device.credit_code,
                device.park_id,
                device.workshop,
                MACHINE_TYPE.code(device.machine_type),
                device.rated_power_kw,
                device.ideal_cycle_seconds,
                device.sample_interval_ms,
                device.registered_at,
            ),
        ).fetchone()
        if row is None:
            return False
        self.conn.execute(
            "INSERT INTO device_status (device_id, last_seen_at) VALUES (%s, %s)",
            (device.device_id, device.registered_at),
        )
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
        """Devices with their status; reporting = heard from since ``heard_since`` with a sample."""
        rows = self._all(
            f"""SELECT {_DEVICE_COLUMNS}, s.state, s.last_sample_at, s.last_seen_at,
                       (s.last_sample_at IS NOT NULL AND s.last_seen_at >= %(since)s) AS reporting
                FROM devices d JOIN device_status s USING (device_id)
                JOIN enterprises e ON e.credit_code = d.enterprise_id
                WHERE d.device_id > %(after)s
                  AND (%(ent)s = '' OR d.enterprise_id = %(ent)s)
                  AND (%(ws)s = '' OR d.workshop = %(ws)s)
                  AND (%(park)s = '' OR d.park_id = %(park)s)
                  AND {_ENTERPRISE_VISIBLE}
                ORDER BY d.device_id LIMIT %(limit)s""",
            {
                "after": after,
                "ent": credit_code,
                "ws": workshop,
                "park": park_id,
                "since": heard_since,
                "limit": limit,
                **_vis(visibility),
            },
        )
        return [
            DeviceStatus(
                _device(row),
                STATE_OF_CODE.get(row["state"]),
                row["last_sample_at"],
                row["last_seen_at"],
                row["reporting"],
            )
            for row in rows
        ]

    def device_profiles(self, after_seq: int) -> tuple[int, list[DeviceProfile]]:
        """Devices registered after ``after_seq``, and the highest seq among them (``after_seq`` if none)."""
        rows = self._all(
            f"SELECT seq, {_PROFILE_COLUMNS} FROM devices WHERE seq > %s ORDER BY seq", (after_seq,)
        )
        return (rows[-1]["seq"] if rows else after_seq), [_profile(row) for row in rows]

    def device_profiles_by_id(self, device_ids: Sequence[str]) -> list[DeviceProfile]:
        """Those of ``device_ids`` that are registered, whatever their seq."""
        rows = self._all(
            f"SELECT {_PROFILE_COLUMNS} FROM devices WHERE device_id = ANY(%s)", (list(device_ids),)
        )
        return [_profile(row) for row in rows]

    def workshop_coverage(self, park_id: str, heard_since: datetime) -> list[WorkshopCoverage]:
        rows = self._all(
            """SELECT d.enterprise_id, d.workshop, count(*) AS devices,
                      count(*) FILTER (WHERE s.last_sample_at IS NOT NULL AND s.last_seen_at >= %s)
                          AS reporting
               FROM devices d JOIN device_status s USING (device_id)
               WHERE d.park_id = %s
               GROUP BY d.enterprise_id, d.workshop ORDER BY d.enterprise_id, d.workshop""",
            (heard_since, park_id),
        )
        return [
            WorkshopCoverage(
                r["enterprise_id"], r["workshop"], park_id, int(r["devices"]), int(r["reporting"])
            )
            for r in rows
        ]

    # --- telemetry rollup and device status -------------------------------------------------------------

    def lock_hour_coverage(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], HourCoverage]:
        """What the hourly rows of ``keys`` (device id, hour start in Unix ms) already count, locked for the
        rest of the transaction (in key order, so two transactions locking overlapping sets cannot
        deadlock). A key without a row is absent. Read in binary: a row's bitmaps are up to 900 bytes."""
        ordered = sorted(keys)
        if not ordered:
            return {}
        cursor = self.conn.execute(
            """SELECT u.device_id, k.hour_ms, u.covered, u.starts
               FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS k(device_id, hour_ms, n)
               JOIN utilisation_hourly u
                 ON u.device_id = k.device_id AND u.hour_start = to_timestamp(k.hour_ms / 1000.0)
               ORDER BY k.n FOR UPDATE OF u""",
            ([k[0] for k in ordered], [k[1] for k in ordered]),
            binary=True,
        )
        frm = int.from_bytes
        return {
            (device_id, hour_ms): HourCoverage(frm(covered, "little"), frm(starts, "little"))
            for device_id, hour_ms, covered, starts in cursor.fetchall()
        }

    def add_hourly(
        self,
        totals: Mapping[tuple[str, int], HourTotals],
        coverage: Mapping[tuple[str, int], HourCoverage],
    ) -> None:
        """Add what samples newly counted to the hourly rows and store what the rows now cover, in one
        statement (unnest of arrays), marking them dirty. The bitmaps are replaced, not merged: they were
        read under :meth:`lock_hour_coverage`'s lock (a row created since is another consumer's work on the
        same device, which the partition assignment rules out)."""
        if not totals:
            return
        columns: list[list[Any]] = [[] for _ in range(11)]
        for key, row in totals.items():
            device_id, hour_ms = key
            cov = coverage[key]
            columns[0].append(device_id)
            columns[1].append(hour_ms)
            columns[2].append(row.running_ms)
            columns[3].append(row.idle_ms)
            columns[4].append(row.stopped_ms)
            columns[5].append(row.fault_ms)
            columns[6].append(row.good_count)
            columns[7].append(row.reject_count)
            columns[8].append(row.ideal_ms)
            columns[9].append(_bits(cov.covered))
            columns[10].append(_bits(cov.starts))
        self.conn.execute(
            """INSERT INTO utilisation_hourly AS u (device_id, hour_start, running_ms, idle_ms, stopped_ms,
                                                     fault_ms, good_count, reject_count, ideal_ms, covered,
                                                     starts, dirty)
               SELECT v.device_id, to_timestamp(v.hour_ms / 1000.0), v.running_ms, v.idle_ms, v.stopped_ms,
                      v.fault_ms, v.good_count, v.reject_count, v.ideal_ms, v.covered, v.starts, TRUE
               FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                           %s::bigint[], %s::bigint[], %s::float8[], %s::bytea[], %s::bytea[])
                    AS v(device_id, hour_ms, running_ms, idle_ms, stopped_ms, fault_ms, good_count,
                         reject_count, ideal_ms, covered, starts)
               ON CONFLICT (device_id, hour_start) DO UPDATE SET
                   running_ms = u.running_ms + EXCLUDED.running_ms,
                   idle_ms = u.idle_ms + EXCLUDED.idle_ms,
                   stopped_ms = u.stopped_ms + EXCLUDED.stopped_ms,
                   fault_ms = u.fault_ms + EXCLUDED.fault_ms,
                   good_count = u.good_count + EXCLUDED.good_count,
                   reject_count = u.reject_count + EXCLUDED.reject_count,
                   ideal_ms = u.ideal_ms + EXCLUDED.ideal_ms,
                   covered = EXCLUDED.covered,
                   starts = EXCLUDED.starts,
                   dirty = TRUE""",
            columns,
        )

    def lock_statuses(self, device_ids: Sequence[str]) -> dict[str, LockedStatus]:
        """The status rows of ``device_ids``, locked for the rest of the transaction (in id order, so two
        transactions locking overlapping sets cannot deadlock)."""
        rows = self._all(
            """SELECT s.device_id, s.state, s.state_since, s.last_sample_at, s.fault_alert_id,
                      s.offline_alert_id, a.raised_at AS offline_raised_at
               FROM device_status s LEFT JOIN device_alerts a ON a.alert_id = s.offline_alert_id
               WHERE s.device_id = ANY(%s) ORDER BY s.device_id FOR UPDATE OF s""",
            (sorted(device_ids),),
        )
        found: dict[str, LockedStatus] = {}
        for row in rows:
            since, last = row["state_since"], row["last_sample_at"]
            fault, offline = row["fault_alert_id"], row["offline_alert_id"]
            found[row["device_id"]] = LockedStatus(
                StatusSnapshot(
                    row["device_id"],
                    row["state"],
                    None if since is None else _ms(since),
                    None if last is None else _ms(last),
                    None if fault is None else str(fault),
                ),
                None if offline is None else str(offline),
                row["offline_raised_at"],
            )
        return found

    def save_statuses(self, statuses: Iterable[LockedStatus], heard: Mapping[str, datetime]) -> None:
        ids: list[str] = []
        states: list[int] = []
        sinces: list[datetime | None] = []
        lasts: list[datetime | None] = []
        faults: list[str | None] = []
        offlines: list[str | None] = []
        seen: list[datetime] = []
        for status in statuses:
            snap = status.snapshot
            ids.append(snap.device_id)
            states.append(snap.state)
            sinces.append(None if snap.state_since_ms is None else _utc(snap.state_since_ms))
            lasts.append(None if snap.last_sample_ms is None else _utc(snap.last_sample_ms))
            faults.append(snap.fault_alert_id)
            offlines.append(status.offline_alert_id)
            seen.append(heard[snap.device_id])
        if not ids:
            return
        self.conn.execute(
            """UPDATE device_status s SET state = v.state, state_since = v.since, last_sample_at = v.last,
                      fault_alert_id = v.fault, offline_alert_id = v.offline,
                      last_seen_at = GREATEST(s.last_seen_at, v.seen)
               FROM unnest(%s::text[], %s::smallint[], %s::timestamptz[], %s::timestamptz[], %s::uuid[],
                           %s::uuid[], %s::timestamptz[])
                    AS v(device_id, state, since, last, fault, offline, seen)
               WHERE s.device_id = v.device_id""",
            (ids, states, sinces, lasts, faults, offlines, seen),
        )

    def add_alert(self, alert: NewAlert) -> None:
        device = alert.device
        self.conn.execute(
            """INSERT INTO device_alerts (alert_id, device_id, enterprise_id, park_id, kind, severity,
                                          condition_since, raised_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                alert.alert_id,
                device.device_id,
                device.credit_code,
                device.park_id,
                ALERT_KIND.code(alert.kind),
                SEVERITY.code(alert.severity),
                alert.condition_since,
                alert.raised_at,
            ),
        )

    def clear_alert(self, alert_id: str, cleared_at: datetime) -> datetime | None:
        """Close an open alert; returns when it was raised (None if it was not open)."""
        row = self._one(
            """UPDATE device_alerts SET cleared_at = GREATEST(%s, raised_at)
               WHERE alert_id = %s AND cleared_at IS NULL RETURNING raised_at""",
            (cleared_at, alert_id),
        )
        return None if row is None else row["raised_at"]

    def try_health_lock(self) -> bool:
        """One replica at a time runs the health round (a transaction-scoped advisory lock)."""
        row = self.conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('cityhub_industry_health'), 0)"
        ).fetchone()
        return bool(row and row[0])

    def lock_silent_devices(self, silent_before: datetime, limit: int) -> list[SilentDevice]:
        """Devices heard from last before ``silent_before`` with no open offline alert, locked (skipping
        rows the telemetry consumer holds: a device being heard from right now is not silent)."""
        rows = self._all(
            """SELECT device_id, last_seen_at FROM device_status
               WHERE offline_alert_id IS NULL AND last_seen_at < %s
               ORDER BY last_seen_at LIMIT %s FOR UPDATE SKIP LOCKED""",
            (silent_before, limit),
        )
        return [SilentDevice(**row) for row in rows]

    def set_offline_alert(self, device_id: str, alert_id: str) -> None:
        self.conn.execute(
            "UPDATE device_status SET offline_alert_id = %s WHERE device_id = %s", (alert_id, device_id)
        )

    def lock_due_rollups(self, hour_before: datetime, limit: int) -> list[DueRollup]:
        rows = self._all(
            """SELECT device_id, hour_start, running_ms, idle_ms, stopped_ms, fault_ms, good_count,
                      reject_count, ideal_ms
               FROM utilisation_hourly WHERE dirty AND hour_start < %s
               ORDER BY hour_start, device_id LIMIT %s FOR UPDATE SKIP LOCKED""",
            (hour_before, limit),
        )
        return [DueRollup(r["device_id"], r["hour_start"], _totals(r)) for r in rows]

    def mark_rollups_published(self, keys: Sequence[tuple[str, datetime]]) -> None:
        if not keys:
            return
        self.conn.execute(
            """UPDATE utilisation_hourly u SET dirty = FALSE
               FROM unnest(%s::text[], %s::timestamptz[]) AS k(device_id, hour_start)
               WHERE u.device_id = k.device_id AND u.hour_start = k.hour_start""",
            ([k[0] for k in keys], [k[1] for k in keys]),
        )

    # --- alerts and utilisation -------------------------------------------------------------------------

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
        rows = self._all(
            f"""SELECT a.alert_id, a.device_id, a.enterprise_id, a.park_id, a.kind, a.severity, a.raised_at,
                       a.cleared_at
                FROM device_alerts a JOIN enterprises e ON e.credit_code = a.enterprise_id
                WHERE (%(ent)s = '' OR a.enterprise_id = %(ent)s)
                  AND (%(park)s = '' OR a.park_id = %(park)s)
                  AND (%(dev)s = '' OR a.device_id = %(dev)s)
                  AND (NOT %(open)s OR a.cleared_at IS NULL)
                  AND (%(before_at)s::timestamptz IS NULL
                       OR (a.raised_at, a.alert_id::text) < (%(before_at)s, %(before_id)s))
                  AND {_ENTERPRISE_VISIBLE}
                ORDER BY a.raised_at DESC, a.alert_id::text DESC LIMIT %(limit)s""",
            {
                "ent": credit_code,
                "park": park_id,
                "dev": device_id,
                "open": open_only,
                "before_at": before[0] if before else None,
                "before_id": before[1] if before else "",
                "limit": limit,
                **_vis(visibility),
            },
        )
        return [_alert(row) for row in rows]

    def utilisation(
        self,
        subject: Subject,
        start: datetime,
        end: datetime,
        *,
        granularity: Granularity | None,
        time_zone: str,
    ) -> list[Bucket]:
        """Sums over hour rows starting in [start, end), per bucket (an hour; a day in ``time_zone``) or
        one total (granularity None, bucket start None)."""
        if granularity == Granularity.HOUR:
            bucket = "u.hour_start"
        elif granularity == Granularity.DAY:
            bucket = "(date_trunc('day', u.hour_start AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s)"
        else:
            bucket = "NULL::timestamptz"
        rows = self._all(
            f"""SELECT {bucket} AS bucket, sum(u.running_ms) AS running_ms, sum(u.idle_ms) AS idle_ms,
                       sum(u.stopped_ms) AS stopped_ms, sum(u.fault_ms) AS fault_ms,
                       sum(u.good_count) AS good_count, sum(u.reject_count) AS reject_count,
                       sum(u.ideal_ms) AS ideal_ms
                FROM utilisation_hourly u JOIN devices d USING (device_id)
                WHERE u.hour_start >= %(start)s AND u.hour_start < %(end)s
                  AND (%(dev)s = '' OR d.device_id = %(dev)s)
                  AND (%(ent)s = '' OR d.enterprise_id = %(ent)s)
                  AND (%(ws)s = '' OR d.workshop = %(ws)s)
                  AND (%(park)s = '' OR d.park_id = %(park)s)
                GROUP BY 1 ORDER BY 1""",
            {
                "tz": time_zone,
                "start": start,
                "end": end,
                "dev": subject.device_id,
                "ent": subject.credit_code,
                "ws": subject.workshop,
                "park": subject.park_id,
            },
        )
        return [Bucket(row["bucket"], _totals(row)) for row in rows]

    # --- orders -----------------------------------------------------------------------------------------

    def _with_stage_times(self, rows: list[Row]) -> list[Order]:
        if not rows:
            return []
        times: dict[str, list[tuple[OrderStage, datetime]]] = {}
        for row in self._all(
            """SELECT order_id, stage, entered_at FROM order_stage_times
               WHERE order_id = ANY(%s) ORDER BY stage""",
            ([r["order_id"] for r in rows],),
        ):
            times.setdefault(row["order_id"], []).append(
                (ORDER_STAGE.member(row["stage"]), row["entered_at"])
            )
        return [_order(row, times.get(row["order_id"], ())) for row in rows]

    def get_order(self, order_id: str, *, for_update: bool = False) -> Order | None:
        lock = " FOR UPDATE OF o" if for_update else ""
        row = self._one(
            f"""SELECT {_ORDER_COLUMNS} FROM orders o JOIN enterprises e ON e.credit_code = o.enterprise_id
                WHERE o.order_id = %s{lock}""",
            (order_id,),
        )
        return None if row is None else self._with_stage_times([row])[0]

    def add_order(self, order: Order) -> None:
        self.conn.execute(
            """INSERT INTO orders (order_id, enterprise_id, customer, product, customisation, promised_date,
                                   stage, ordered_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                order.order_id,
                order.credit_code,
                order.customer,
                order.product,
                order.customisation,
                order.promised_date,
                ORDER_STAGE.code(order.stage),
                order.ordered_at,
            ),
        )
        self.conn.execute(
            "INSERT INTO order_stage_times (order_id, stage, entered_at) VALUES (%s, %s, %s)",
            (order.order_id, ORDER_STAGE.code(order.stage), order.ordered_at),
        )

    def move_order(self, order_id: str, stage: OrderStage, at: datetime, *, delivered: bool) -> None:
        self.conn.execute(
            """UPDATE orders SET stage = %s, delivered_at = CASE WHEN %s THEN %s ELSE delivered_at END
               WHERE order_id = %s""",
            (ORDER_STAGE.code(stage), delivered, at, order_id),
        )
        self.conn.execute(
            "INSERT INTO order_stage_times (order_id, stage, entered_at) VALUES (%s, %s, %s)",
            (order_id, ORDER_STAGE.code(stage), at),
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
        rows = self._all(
            f"""SELECT {_ORDER_COLUMNS} FROM orders o JOIN enterprises e ON e.credit_code = o.enterprise_id
                WHERE (%(ent)s = '' OR o.enterprise_id = %(ent)s)
                  AND (NOT %(late)s OR
                       (o.delivered_at IS NOT NULL
                        AND (o.delivered_at AT TIME ZONE %(tz)s)::date > o.promised_date)
                       OR (o.delivered_at IS NULL AND %(today)s > o.promised_date))
                  AND (%(before_at)s::timestamptz IS NULL
                       OR (o.ordered_at, o.order_id) < (%(before_at)s, %(before_id)s))
                  AND {_ENTERPRISE_VISIBLE}
                ORDER BY o.ordered_at DESC, o.order_id DESC LIMIT %(limit)s""",
            {
                "ent": credit_code,
                "late": late_only,
                "tz": time_zone,
                "today": today,
                "before_at": before[0] if before else None,
                "before_id": before[1] if before else "",
                "limit": limit,
                **_vis(visibility),
            },
        )
        return self._with_stage_times(rows)

    def delivery_cycle_stats(
        self, visibility: Visibility, credit_code: str, start: datetime, end: datetime, *, time_zone: str
    ) -> CycleStats:
        row = self._one(
            f"""SELECT count(*) AS n, avg(days) AS mean,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS p50,
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY days) AS p90,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY days) AS p95,
                       min(days) AS low, max(days) AS high, count(*) FILTER (WHERE late) AS late
                FROM (SELECT extract(epoch FROM o.delivered_at - o.ordered_at)::float8 / 86400.0 AS days,
                             (o.delivered_at AT TIME ZONE %(tz)s)::date > o.promised_date AS late
                      FROM orders o JOIN enterprises e ON e.credit_code = o.enterprise_id
                      WHERE o.delivered_at >= %(start)s AND o.delivered_at < %(end)s
                        AND (%(ent)s = '' OR o.enterprise_id = %(ent)s)
                        AND {_ENTERPRISE_VISIBLE}) cycles""",
            {"tz": time_zone, "start": start, "end": end, "ent": credit_code, **_vis(visibility)},
        )
        assert row is not None
        return CycleStats(
            delivered_count=int(row["n"]),
            mean_days=float(row["mean"] or 0.0),
            p50_days=float(row["p50"] or 0.0),
            p90_days=float(row["p90"] or 0.0),
            p95_days=float(row["p95"] or 0.0),
            min_days=float(row["low"] or 0.0),
            max_days=float(row["high"] or 0.0),
            late_count=int(row["late"]),
        )


_PROFILE_COLUMNS = (
    "device_id, enterprise_id, park_id, workshop, rated_power_kw, ideal_cycle_seconds, sample_interval_ms"
)


def _profile(row: Row) -> DeviceProfile:
    return DeviceProfile(
        device_id=row["device_id"],
        credit_code=row["enterprise_id"],
        park_id=row["park_id"],
        workshop=row["workshop"],
        rated_power_kw=row["rated_power_kw"],
        ideal_cycle_seconds=row["ideal_cycle_seconds"],
        sample_interval_ms=row["sample_interval_ms"],
    )
