"""SQL for the industry service (psycopg 3), and the device directory the ingest path reads from.

Every function takes the connection (and so the transaction) it runs in; the use cases decide where
transactions begin and end.
"""

# Queries are composed only from this module's constant fragments (column lists, the visibility
# predicate); every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from services.industry.domain.access import Visibility
from services.industry.domain.registry import Device, Enterprise, Park
from services.industry.domain.telemetry import DeviceProfile, HourTotals, StatusSnapshot
from services.industry.domain.utilisation import Totals
from services.industry.domain.workshops import WorkshopCoverage

__all__ = [
    "AlertRow",
    "DeviceDirectory",
    "DeviceRow",
    "OrderRow",
    "Subject",
]

Conn = psycopg.Connection[Any]


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


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


# --- parks ----------------------------------------------------------------------------------------------

_PARK_COLUMNS = "park_id, name, division_code, address, registered_at"


def _park(row: Sequence[Any]) -> Park:
    return Park(row[0], row[1], row[2], row[3], row[4])


def park_by_request(conn: Conn, request_id: str) -> Park | None:
    row = conn.execute(f"SELECT {_PARK_COLUMNS} FROM parks WHERE request_id = %s", (request_id,)).fetchone()
    return None if row is None else _park(row)


def get_park(conn: Conn, park_id: str) -> Park | None:
    row = conn.execute(f"SELECT {_PARK_COLUMNS} FROM parks WHERE park_id = %s", (park_id,)).fetchone()
    return None if row is None else _park(row)


def insert_park(conn: Conn, park: Park, request_id: str) -> None:
    conn.execute(
        f"INSERT INTO parks ({_PARK_COLUMNS}, request_id) VALUES (%s, %s, %s, %s, %s, %s)",
        (park.park_id, park.name, park.division_code, park.address, park.registered_at, request_id),
    )


def list_parks(conn: Conn, visibility: Visibility, after: str, limit: int) -> list[Park]:
    rows = conn.execute(
        f"""SELECT {_PARK_COLUMNS} FROM parks p
            WHERE p.park_id > %(after)s
              AND (%(all)s OR p.park_id = ANY(%(parks)s)
                   OR p.park_id IN (SELECT park_id FROM enterprises WHERE credit_code = ANY(%(ents)s)))
            ORDER BY p.park_id LIMIT %(limit)s""",
        {"after": after, "limit": limit, **_vis(visibility)},
    ).fetchall()
    return [_park(row) for row in rows]


# --- enterprises ----------------------------------------------------------------------------------------

_ENTERPRISE_COLUMNS = "credit_code, name, sector, park_id, address, onboarded_at"


def _enterprise(row: Sequence[Any]) -> Enterprise:
    return Enterprise(row[0], row[1], row[2], row[3], row[4], row[5])


def enterprise_by_request(conn: Conn, request_id: str) -> Enterprise | None:
    row = conn.execute(
        f"SELECT {_ENTERPRISE_COLUMNS} FROM enterprises WHERE request_id = %s", (request_id,)
    ).fetchone()
    return None if row is None else _enterprise(row)


def get_enterprise(conn: Conn, credit_code: str) -> Enterprise | None:
    row = conn.execute(
        f"SELECT {_ENTERPRISE_COLUMNS} FROM enterprises WHERE credit_code = %s", (credit_code,)
    ).fetchone()
    return None if row is None else _enterprise(row)


def insert_enterprise(conn: Conn, enterprise: Enterprise, request_id: str) -> None:
    conn.execute(
        f"INSERT INTO enterprises ({_ENTERPRISE_COLUMNS}, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            enterprise.credit_code,
            enterprise.name,
            enterprise.sector,
            enterprise.park_id,
            enterprise.address,
            enterprise.onboarded_at,
            request_id,
        ),
    )


def list_enterprises(
    conn: Conn, visibility: Visibility, park_id: str, after: str, limit: int
) -> list[Enterprise]:
    rows = conn.execute(
        f"""SELECT {_ENTERPRISE_COLUMNS} FROM enterprises e
            WHERE e.credit_code > %(after)s AND (%(park)s = '' OR e.park_id = %(park)s)
              AND {_ENTERPRISE_VISIBLE}
            ORDER BY e.credit_code LIMIT %(limit)s""",
        {"after": after, "park": park_id, "limit": limit, **_vis(visibility)},
    ).fetchall()
    return [_enterprise(row) for row in rows]


# --- devices --------------------------------------------------------------------------------------------

_DEVICE_COLUMNS = (
    "d.device_id, d.serial_number, d.enterprise_id, d.park_id, d.workshop, d.machine_type, "
    "d.rated_power_kw, d.ideal_cycle_seconds, d.sample_interval_ms, d.registered_at"
)


def _device(row: Sequence[Any]) -> Device:
    return Device(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9])


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """A device with its live status, as ListDevices shows it."""

    device: Device
    state: int
    last_sample_at: datetime | None
    last_seen_at: datetime


def device_by_request(conn: Conn, request_id: str) -> Device | None:
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices d WHERE request_id = %s", (request_id,)
    ).fetchone()
    return None if row is None else _device(row)


def device_by_serial(conn: Conn, serial_number: str) -> Device | None:
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices d WHERE serial_number = %s", (serial_number,)
    ).fetchone()
    return None if row is None else _device(row)


def get_device(conn: Conn, device_id: str) -> Device | None:
    row = conn.execute(
        f"SELECT {_DEVICE_COLUMNS} FROM devices d WHERE device_id = %s", (device_id,)
    ).fetchone()
    return None if row is None else _device(row)


def insert_device(conn: Conn, device: Device, request_id: str) -> None:
    conn.execute(
        """INSERT INTO devices (device_id, serial_number, enterprise_id, park_id, workshop, machine_type,
                                rated_power_kw, ideal_cycle_seconds, sample_interval_ms, registered_at,
                                request_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            device.device_id,
            device.serial_number,
            device.enterprise_id,
            device.park_id,
            device.workshop,
            device.machine_type,
            device.rated_power_kw,
            device.ideal_cycle_seconds,
            device.sample_interval_ms,
            device.registered_at,
            request_id,
        ),
    )
    conn.execute(
        "INSERT INTO device_status (device_id, last_seen_at) VALUES (%s, %s)",
        (device.device_id, device.registered_at),
    )


def list_devices(
    conn: Conn,
    visibility: Visibility,
    *,
    enterprise_id: str,
    workshop: str,
    park_id: str,
    after: str,
    limit: int,
) -> list[DeviceRow]:
    rows = conn.execute(
        f"""SELECT {_DEVICE_COLUMNS}, s.state, s.last_sample_at, s.last_seen_at
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
            "ent": enterprise_id,
            "ws": workshop,
            "park": park_id,
            "limit": limit,
            **_vis(visibility),
        },
    ).fetchall()
    return [DeviceRow(_device(row), row[10], row[11], row[12]) for row in rows]


def device_profiles(conn: Conn, after_seq: int) -> list[tuple[int, DeviceProfile]]:
    rows = conn.execute(
        """SELECT seq, device_id, enterprise_id, park_id, workshop, rated_power_kw, ideal_cycle_seconds,
                  sample_interval_ms
           FROM devices WHERE seq > %s ORDER BY seq""",
        (after_seq,),
    ).fetchall()
    return [(row[0], DeviceProfile(row[1], row[2], row[3], row[4], row[5], row[6], row[7])) for row in rows]


class DeviceDirectory:
    """An in-memory map of every registered device, for the ingest hot path and the rollup consumer.

    Loaded whole at start; afterwards only rows with a higher ``seq`` are read. A device id not in the
    map triggers such a refresh at most once per ``recheck_interval_s`` (so a flood of bad ids costs no
    query per sample, and a device registered through another replica is known within that time).
    Devices are never deleted or moved between enterprises, so the map only grows."""

    def __init__(
        self,
        pool: ConnectionPool,
        *,
        bucket_of: Callable[[str], int] | None = None,
        recheck_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._bucket_of = bucket_of or (lambda _device_id: 0)
        self._recheck = recheck_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        self._last_refresh = float("-inf")
        # Replaced, never mutated: readers take the reference once and need no lock.
        self.profiles: Mapping[str, DeviceProfile] = {}

    def refresh(self, conn: Conn | None = None) -> int:
        """Load devices registered since the last refresh; returns how many were new."""
        with self._lock:
            if conn is None:
                with self._pool.connection() as own:
                    found = device_profiles(own, self._seq)
            else:
                found = device_profiles(conn, self._seq)
            self._last_refresh = self._clock()
            if not found:
                return 0
            merged = dict(self.profiles)
            for seq, profile in found:
                merged[profile.device_id] = self._with_bucket(profile)
                self._seq = max(self._seq, seq)
            self.profiles = merged
            return len(found)

    def _with_bucket(self, profile: DeviceProfile) -> DeviceProfile:
        return DeviceProfile(
            profile.device_id,
            profile.enterprise_id,
            profile.park_id,
            profile.workshop,
            profile.rated_power_kw,
            profile.ideal_cycle_seconds,
            profile.sample_interval_ms,
            self._bucket_of(profile.device_id),
        )

    def add(self, device: Device) -> None:
        """Make a device registered in this process known at once."""
        profile = DeviceProfile(
            device.device_id,
            device.enterprise_id,
            device.park_id,
            device.workshop,
            device.rated_power_kw,
            device.ideal_cycle_seconds,
            device.sample_interval_ms,
        )
        with self._lock:
            merged = dict(self.profiles)
            merged[device.device_id] = self._with_bucket(profile)
            self.profiles = merged

    def resolve(self, device_ids: Iterable[str], conn: Conn | None = None) -> Mapping[str, DeviceProfile]:
        """The current map, refreshed first if some of ``device_ids`` are unknown and the last refresh is
        older than the recheck interval."""
        profiles = self.profiles
        if any(device_id not in profiles for device_id in device_ids):
            if self._clock() - self._last_refresh >= self._recheck:
                self.refresh(conn)
            profiles = self.profiles
        return profiles


# --- telemetry rollup and device status -----------------------------------------------------------------


def add_hourly(conn: Conn, totals: Mapping[tuple[str, int], HourTotals]) -> None:
    """Add sums to the hourly rows in one statement (unnest of arrays), marking them dirty."""
    if not totals:
        return
    columns: list[list[Any]] = [[] for _ in range(9)]
    for (device_id, hour_ms), row in totals.items():
        columns[0].append(device_id)
        columns[1].append(_utc(hour_ms))
        columns[2].append(row.running_ms)
        columns[3].append(row.idle_ms)
        columns[4].append(row.stopped_ms)
        columns[5].append(row.fault_ms)
        columns[6].append(row.good_count)
        columns[7].append(row.reject_count)
        columns[8].append(row.ideal_ms)
    conn.execute(
        """INSERT INTO utilisation_hourly AS u (device_id, hour_start, running_ms, idle_ms, stopped_ms,
                                                 fault_ms, good_count, reject_count, ideal_ms, dirty)
           SELECT *, TRUE FROM unnest(%s::text[], %s::timestamptz[], %s::bigint[], %s::bigint[],
                                       %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                                       %s::float8[])
           ON CONFLICT (device_id, hour_start) DO UPDATE SET
               running_ms = u.running_ms + EXCLUDED.running_ms,
               idle_ms = u.idle_ms + EXCLUDED.idle_ms,
               stopped_ms = u.stopped_ms + EXCLUDED.stopped_ms,
               fault_ms = u.fault_ms + EXCLUDED.fault_ms,
               good_count = u.good_count + EXCLUDED.good_count,
               reject_count = u.reject_count + EXCLUDED.reject_count,
               ideal_ms = u.ideal_ms + EXCLUDED.ideal_ms,
               dirty = TRUE""",
        columns,
    )


@dataclass(slots=True)
class LockedStatus:
    snapshot: StatusSnapshot
    offline_alert_id: str | None
    offline_raised_at: datetime | None


def lock_statuses(conn: Conn, device_ids: Sequence[str]) -> dict[str, LockedStatus]:
    """The status rows of ``device_ids``, locked for the rest of the transaction (in id order, so two
    transactions locking overlapping sets cannot deadlock)."""
    rows = conn.execute(
        """SELECT s.device_id, s.state, s.state_since, s.last_sample_at, s.fault_alert_id,
                  s.offline_alert_id, a.raised_at
           FROM device_status s LEFT JOIN device_alerts a ON a.alert_id = s.offline_alert_id
           WHERE s.device_id = ANY(%s) ORDER BY s.device_id FOR UPDATE OF s""",
        (sorted(device_ids),),
    ).fetchall()
    found: dict[str, LockedStatus] = {}
    for device_id, state, since, last, fault_alert, offline_alert, offline_raised in rows:
        found[device_id] = LockedStatus(
            StatusSnapshot(
                device_id,
                state,
                None if since is None else _ms(since),
                None if last is None else _ms(last),
                None if fault_alert is None else str(fault_alert),
            ),
            None if offline_alert is None else str(offline_alert),
            offline_raised,
        )
    return found


def save_statuses(conn: Conn, statuses: Iterable[LockedStatus], heard: Mapping[str, datetime]) -> None:
    """Write back locked status rows; ``heard`` is when the platform last heard from each device."""
    ids, states, sinces, lasts, faults, offlines, seen = [], [], [], [], [], [], []
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
    conn.execute(
        """UPDATE device_status s SET state = v.state, state_since = v.since, last_sample_at = v.last,
                  fault_alert_id = v.fault, offline_alert_id = v.offline,
                  last_seen_at = GREATEST(s.last_seen_at, v.seen)
           FROM unnest(%s::text[], %s::smallint[], %s::timestamptz[], %s::timestamptz[], %s::uuid[],
                       %s::uuid[], %s::timestamptz[])
                AS v(device_id, state, since, last, fault, offline, seen)
           WHERE s.device_id = v.device_id""",
        (ids, states, sinces, lasts, faults, offlines, seen),
    )


def insert_alert(
    conn: Conn,
    *,
    alert_id: str,
    device: DeviceProfile,
    kind: int,
    severity: int,
    condition_since: datetime,
    raised_at: datetime,
) -> None:
    conn.execute(
        """INSERT INTO device_alerts (alert_id, device_id, enterprise_id, park_id, kind, severity,
                                      condition_since, raised_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            alert_id,
            device.device_id,
            device.enterprise_id,
            device.park_id,
            kind,
            severity,
            condition_since,
            raised_at,
        ),
    )


def clear_alert(conn: Conn, alert_id: str, cleared_at: datetime) -> datetime | None:
    """Close an open alert; returns when it was raised (None if it was not open)."""
    row = conn.execute(
        """UPDATE device_alerts SET cleared_at = GREATEST(%s, raised_at)
           WHERE alert_id = %s AND cleared_at IS NULL RETURNING raised_at, cleared_at""",
        (cleared_at, alert_id),
    ).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class SilentDevice:
    device_id: str
    last_seen_at: datetime


def lock_silent_devices(conn: Conn, silent_before: datetime, limit: int) -> list[SilentDevice]:
    """Devices heard from last before ``silent_before`` with no open offline alert, locked (skipping
    rows the telemetry consumer holds: a device being heard from right now is not silent)."""
    rows = conn.execute(
        """SELECT device_id, last_seen_at FROM device_status
           WHERE offline_alert_id IS NULL AND last_seen_at < %s
           ORDER BY last_seen_at LIMIT %s FOR UPDATE SKIP LOCKED""",
        (silent_before, limit),
    ).fetchall()
    return [SilentDevice(row[0], row[1]) for row in rows]


def set_offline_alert(conn: Conn, device_id: str, alert_id: str) -> None:
    conn.execute("UPDATE device_status SET offline_alert_id = %s WHERE device_id = %s", (alert_id, device_id))


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    device_id: str
    enterprise_id: str
    park_id: str | None
    kind: int
    severity: int
    raised_at: datetime
    cleared_at: datetime | None


def list_alerts(
    conn: Conn,
    visibility: Visibility,
    *,
    enterprise_id: str,
    park_id: str,
    device_id: str,
    open_only: bool,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[AlertRow]:
    rows = conn.execute(
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
            "ent": enterprise_id,
            "park": park_id,
            "dev": device_id,
            "open": open_only,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else "",
            "limit": limit,
            **_vis(visibility),
        },
    ).fetchall()
    return [AlertRow(str(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows]


@dataclass(frozen=True, slots=True)
class DueRollup:
    device_id: str
    hour_start: datetime
    totals: Totals


def lock_due_rollups(conn: Conn, hour_before: datetime, limit: int) -> list[DueRollup]:
    rows = conn.execute(
        """SELECT device_id, hour_start, running_ms, idle_ms, stopped_ms, fault_ms, good_count,
                  reject_count, ideal_ms
           FROM utilisation_hourly WHERE dirty AND hour_start < %s
           ORDER BY hour_start, device_id LIMIT %s FOR UPDATE SKIP LOCKED""",
        (hour_before, limit),
    ).fetchall()
    return [DueRollup(r[0], r[1], Totals(r[2], r[3], r[4], r[5], r[6], r[7], r[8])) for r in rows]


def mark_rollups_published(conn: Conn, keys: Sequence[tuple[str, datetime]]) -> None:
    if not keys:
        return
    conn.execute(
        """UPDATE utilisation_hourly u SET dirty = FALSE
           FROM unnest(%s::text[], %s::timestamptz[]) AS k(device_id, hour_start)
           WHERE u.device_id = k.device_id AND u.hour_start = k.hour_start""",
        ([k[0] for k in keys], [k[1] for k in keys]),
    )


# --- utilisation queries --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """What utilisation is asked for: exactly one of these set (workshop needs enterprise_id too)."""

    device_id: str = ""
    enterprise_id: str = ""
    workshop: str = ""
    park_id: str = ""


def utilisation(
    conn: Conn, subject: Subject, start: datetime, end: datetime, *, granularity: str, time_zone: str
) -> list[tuple[datetime | None, Totals]]:
    """Sums over hour rows starting in [start, end), per bucket ('hour', 'day' in ``time_zone``) or one
    total ('total', bucket None)."""
    if granularity == "hour":
        bucket = "u.hour_start"
    elif granularity == "day":
        bucket = "(date_trunc('day', u.hour_start AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s)"
    else:
        bucket = "NULL::timestamptz"
    rows = conn.execute(
        f"""SELECT {bucket} AS bucket, sum(u.running_ms), sum(u.idle_ms), sum(u.stopped_ms),
                   sum(u.fault_ms), sum(u.good_count), sum(u.reject_count), sum(u.ideal_ms)
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
            "ent": subject.enterprise_id,
            "ws": subject.workshop,
            "park": subject.park_id,
        },
    ).fetchall()
    return [
        (
            row[0],
            Totals(
                int(row[1] or 0),
                int(row[2] or 0),
                int(row[3] or 0),
                int(row[4] or 0),
                int(row[5] or 0),
                int(row[6] or 0),
                float(row[7] or 0.0),
            ),
        )
        for row in rows
    ]


def workshop_coverage(conn: Conn, park_id: str, heard_since: datetime) -> list[WorkshopCoverage]:
    rows = conn.execute(
        """SELECT d.enterprise_id, d.workshop, count(*),
                  count(*) FILTER (WHERE s.last_sample_at IS NOT NULL AND s.last_seen_at >= %s)
           FROM devices d JOIN device_status s USING (device_id)
           WHERE d.park_id = %s
           GROUP BY d.enterprise_id, d.workshop ORDER BY d.enterprise_id, d.workshop""",
        (heard_since, park_id),
    ).fetchall()
    return [WorkshopCoverage(r[0], r[1], park_id, int(r[2]), int(r[3])) for r in rows]


# --- orders ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRow:
    order_id: str
    enterprise_id: str
    park_id: str | None
    customer: str
    product: str
    customisation: str
    promised_date: date
    stage: int
    ordered_at: datetime
    delivered_at: datetime | None
    stage_times: tuple[tuple[int, datetime], ...] = ()


_ORDER_COLUMNS = (
    "o.order_id, o.enterprise_id, e.park_id, o.customer, o.product, o.customisation, o.promised_date, "
    "o.stage, o.ordered_at, o.delivered_at"
)


def _order(row: Sequence[Any]) -> OrderRow:
    return OrderRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9])


def _with_stage_times(conn: Conn, orders: list[OrderRow]) -> list[OrderRow]:
    if not orders:
        return orders
    rows = conn.execute(
        "SELECT order_id, stage, entered_at FROM order_stage_times WHERE order_id = ANY(%s) ORDER BY stage",
        ([o.order_id for o in orders],),
    ).fetchall()
    times: dict[str, list[tuple[int, datetime]]] = {}
    for order_id, stage, entered_at in rows:
        times.setdefault(order_id, []).append((stage, entered_at))
    return [
        OrderRow(
            o.order_id,
            o.enterprise_id,
            o.park_id,
            o.customer,
            o.product,
            o.customisation,
            o.promised_date,
            o.stage,
            o.ordered_at,
            o.delivered_at,
            tuple(times.get(o.order_id, ())),
        )
        for o in orders
    ]


def order_by_request(conn: Conn, request_id: str) -> OrderRow | None:
    row = conn.execute(
        f"""SELECT {_ORDER_COLUMNS} FROM orders o JOIN enterprises e ON e.credit_code = o.enterprise_id
            WHERE o.request_id = %s""",
        (request_id,),
    ).fetchone()
    return None if row is None else _with_stage_times(conn, [_order(row)])[0]


def get_order(conn: Conn, order_id: str, *, for_update: bool = False) -> OrderRow | None:
    lock = " FOR UPDATE OF o" if for_update else ""
    row = conn.execute(
        f"""SELECT {_ORDER_COLUMNS} FROM orders o JOIN enterprises e ON e.credit_code = o.enterprise_id
            WHERE o.order_id = %s{lock}""",
        (order_id,),
    ).fetchone()
    return None if row is None else _with_stage_times(conn, [_order(row)])[0]


def insert_order(conn: Conn, order: OrderRow, request_id: str) -> None:
    conn.execute(
        """INSERT INTO orders (order_id, enterprise_id, customer, product, customisation, promised_date,
                               stage, ordered_at, request_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            order.order_id,
            order.enterprise_id,
            order.customer,
            order.product,
            order.customisation,
            order.promised_date,
            order.stage,
            order.ordered_at,
            request_id,
        ),
    )
    conn.execute(
        "INSERT INTO order_stage_times (order_id, stage, entered_at) VALUES (%s, %s, %s)",
        (order.order_id, order.stage, order.ordered_at),
    )


def move_order(conn: Conn, order_id: str, stage: int, at: datetime, *, delivered: bool) -> None:
    conn.execute(
        """UPDATE orders SET stage = %s, delivered_at = CASE WHEN %s THEN %s ELSE delivered_at END
           WHERE order_id = %s""",
        (stage, delivered, at, order_id),
    )
    conn.execute(
        "INSERT INTO order_stage_times (order_id, stage, entered_at) VALUES (%s, %s, %s)",
        (order_id, stage, at),
    )


def list_orders(
    conn: Conn,
    visibility: Visibility,
    *,
    enterprise_id: str,
    late_only: bool,
    today: date,
    time_zone: str,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[OrderRow]:
    rows = conn.execute(
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
            "ent": enterprise_id,
            "late": late_only,
            "tz": time_zone,
            "today": today,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else "",
            "limit": limit,
            **_vis(visibility),
        },
    ).fetchall()
    return _with_stage_times(conn, [_order(row) for row in rows])


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


def delivery_cycle_stats(
    conn: Conn,
    visibility: Visibility,
    enterprise_id: str,
    start: datetime,
    end: datetime,
    *,
    time_zone: str,
) -> CycleStats:
    row = conn.execute(
        f"""SELECT count(*), avg(days), percentile_cont(0.5) WITHIN GROUP (ORDER BY days),
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY days),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY days), min(days), max(days),
                   count(*) FILTER (WHERE late)
            FROM (SELECT extract(epoch FROM o.delivered_at - o.ordered_at)::float8 / 86400.0 AS days,
                         (o.delivered_at AT TIME ZONE %(tz)s)::date > o.promised_date AS late
                  FROM orders o JOIN enterprises e ON e.credit_code = o.enterprise_id
                  WHERE o.delivered_at >= %(start)s AND o.delivered_at < %(end)s
                    AND (%(ent)s = '' OR o.enterprise_id = %(ent)s)
                    AND {_ENTERPRISE_VISIBLE}) cycles""",
        {"tz": time_zone, "start": start, "end": end, "ent": enterprise_id, **_vis(visibility)},
    ).fetchone()
    assert row is not None
    return CycleStats(
        int(row[0]),
        float(row[1] or 0.0),
        float(row[2] or 0.0),
        float(row[3] or 0.0),
        float(row[4] or 0.0),
        float(row[5] or 0.0),
        float(row[6] or 0.0),
        int(row[7]),
    )
