"""Soak: safety and industry under a district's steady load for 30 minutes; memory, consumer lag and
outbox backlog must stay flat (issue #16).

Both services run as `make run` runs them: each its own process (`python -m services.<name>`, default
settings, so industry's telemetry rollup consumer and health monitor and each service's outbox relay are
on), with METRICS_PORT set so their Prometheus /metrics can be read. Nothing but the public gRPC APIs is
used, with service and operator tokens signed by dev keys in a temporary directory.

The load (``--scale 1`` is the district: 500 enterprises, 7,000 devices, 100 schools, 300 watchers; the
counts and rates below scale with it, but for the four gateways, the 40 open orders and the reads):

- **telemetry**: 4 collection gateways share the devices; every second each sends one sample per device
  of its share, packed into IngestTelemetry batches (7,000 samples/s). Device states change every few
  minutes (running, idle, stopped, fault); one device in 250 faults for 12 minutes in every 20 (a fault
  alert, then cleared), one in 250 falls silent for 7 minutes in every 15 (an offline alert, cleared);
- **orders**: one operation a second, either a new order or an open order moved on one stage, about 40
  open at a time, each closed after its seven stages;
- **detections**: 4 batches a second of low-risk detections (loitering, crowding) at random schools, and
  an incident (perimeter breach with a weapon: an alert) every 10 seconds;
- **alarms**: a panic button pressed every 60 seconds;
- **command centre**: every 2 seconds a district operator moves every open alert on one step
  (acknowledge, dispatch two units, en route, arrived, resolved; one in five is a false alarm), so alerts
  are closed within seconds and never pile up;
- **dashboards**: a read every 2 seconds on each service (utilisation, device alerts, alerts);
- **watchers**: 300 WatchAlerts streams on grpc.aio in a separate process (one district-wide, the rest
  duty rooms scoped to their school), reopened if one ends.

Every ``--sample-every`` seconds (default 10) the soak records, per service: RSS (/proc/<pid>/status
VmRSS), threads, open files, CPU, and from /metrics the sums of ``cityhub_consumer_lag`` and
``cityhub_outbox_backlog`` (and open streams, RPC errors). Since the lag gauge may under-report (issue
#17), the rollup consumer's lag is also computed from Kafka: the group's committed offsets against the end
offsets. The outbox backlog is also counted in PostgreSQL. With them: each load's requests and errors in
the interval, open watchers, messages they received, open alerts.

Verdict: the samples are cut in thirds; the first is warm-up. Memory is flat when the median of the last
third exceeds the median of the middle third by at most 10 % or 30 MB (whichever is more). Lag and
backlog are flat when, after the warm-up, they are never above a small bound two samples running nor at
the end (lag: 30 seconds of the topic's input; backlog: 500 rows, one relay batch; a burst such as the
hour's rollups going out must be gone by the next sample) and the median of the last third is at most a
quarter of that bound above the middle third's. The load itself must have held (99 % of planned
telemetry accepted, at most 1 % of requests failed, every watcher open), or the figures say nothing. Exit
status 1 when a judged series is not flat or the load did not hold. After the load, the time until lag
and backlog reach zero is recorded too.

Results: bench/results/soak-<UTC stamp>.json with every sample, the verdicts and the services' log
warnings; a table on stdout. Topics, schemas and the consumer group are removed afterwards; the services'
logs are kept (and named) when the verdict is not flat. A quick look: ``python -m bench soak --minutes 2
--scale 0.1 --incident-every 10 --alarm-every 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc, telemetry_pb2
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from bench.machine import describe, probe_ms
from bench.telemetry import (
    RESULTS,
    ServiceProcess,
    _credit_code,
    _free_port,
    _git_revision,
    _stack,
    _tidy,
    register_district,
)

# The district at --scale 1.
DISTRICT = {"enterprises": 500, "devices": 7_000, "sites": 100, "watchers": 300}
RATES = {"detections_per_s": 4.0, "incident_every_s": 10.0, "alarm_every_s": 60.0, "orders_per_s": 1.0}
GATEWAYS = 4
OPEN_ORDERS = 40
DASHBOARD_EVERY_S = 2.0
OPERATOR_EVERY_S = 2.0
MAX_SAMPLES_PER_REQUEST = 5_000
RPC_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3
# Fewer samples than this (two a third) are no trend at all.
MIN_SAMPLES = 6


def _default_minutes() -> float:
    text = os.environ.get("SOAK_MINUTES", "").strip()
    try:
        return float(text) if text else 30.0
    except ValueError:
        return 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes",
        type=float,
        default=_default_minutes(),
        help="length of the load (default: $SOAK_MINUTES or 30)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="the district's size and rates times this (default 1: 500 enterprises, 7,000 devices,"
        " 100 schools, 300 watchers)",
    )
    parser.add_argument("--enterprises", type=int, default=None, help="override: enterprises")
    parser.add_argument("--devices", type=int, default=None, help="override: devices (1 sample/s each)")
    parser.add_argument("--sites", type=int, default=None, help="override: schools")
    parser.add_argument("--watchers", type=int, default=None, help="override: WatchAlerts streams")
    parser.add_argument(
        "--detections-per-s", type=float, default=None, help="override: low-risk detection batches a second"
    )
    parser.add_argument(
        "--incident-every", type=float, default=None, help="override: seconds between incidents"
    )
    parser.add_argument(
        "--alarm-every", type=float, default=None, help="override: seconds between panic presses"
    )
    parser.add_argument(
        "--orders-per-s", type=float, default=None, help="override: order operations a second"
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=None,
        help="seconds between samples (default 10, less for runs under 2 minutes: at least 12 samples)",
    )
    parser.add_argument(
        "--memory-tolerance-pct", type=float, default=10.0, help="allowed RSS growth, %% (default 10)"
    )
    parser.add_argument(
        "--memory-tolerance-mb", type=float, default=30.0, help="allowed RSS growth, MB (default 30)"
    )
    parser.add_argument(
        "--lag-bound-s",
        type=float,
        default=30.0,
        help="lag bound: this many seconds of the topic's input (default 30)",
    )
    parser.add_argument(
        "--backlog-bound", type=int, default=500, help="outbox backlog bound, rows (default 500)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the services' logs (always kept when not flat)"
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/...)")


# --- the plan -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    minutes: float
    sample_every_s: float
    enterprises: int
    devices: int
    sites: int
    watchers: int
    detections_per_s: float
    incident_every_s: float
    alarm_every_s: float
    orders_per_s: float

    @classmethod
    def of(cls, args: argparse.Namespace) -> Plan:
        scale = float(args.scale)
        if scale <= 0 or args.minutes <= 0:
            raise SystemExit("--scale and --minutes must be positive")

        def count(name: str, least: int) -> int:
            given = getattr(args, name)
            return int(given) if given is not None else max(least, round(DISTRICT[name] * scale))

        def rate(name: str, option: str, per: bool) -> float:
            given = getattr(args, option)
            if given is not None:
                if given <= 0:
                    raise SystemExit(f"--{option.replace('_', '-')} must be positive")
                return float(given)
            return RATES[name] * scale if per else RATES[name] / scale

        seconds = args.minutes * 60
        return cls(
            minutes=args.minutes,
            sample_every_s=args.sample_every or min(10.0, seconds / 12),
            enterprises=count("enterprises", 1),
            devices=count("devices", GATEWAYS),
            sites=count("sites", 2),
            watchers=count("watchers", 2),
            detections_per_s=rate("detections_per_s", "detections_per_s", per=True),
            incident_every_s=rate("incident_every_s", "incident_every", per=False),
            alarm_every_s=rate("alarm_every_s", "alarm_every", per=False),
            orders_per_s=rate("orders_per_s", "orders_per_s", per=True),
        )


# --- what the load did -----------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    errors: int = 0
    items: int = 0  # samples accepted, detections stored, alert steps taken
    planned: int = 0  # telemetry: samples sent
    codes: Counter[str] = field(default_factory=Counter)


class LoadStats:
    """Counts per kind of load, shared by the load threads; the sampler reads copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[str, Tally] = {}
        self.gauges: dict[str, float] = {}
        self.first_errors: list[str] = []

    def ok(self, kind: str, *, items: int = 1, planned: int = 0) -> None:
        with self._lock:
            tally = self._tallies.setdefault(kind, Tally())
            tally.requests += 1
            tally.items += items
            tally.planned += planned

    def failed(self, kind: str, error: grpc.RpcError, *, planned: int = 0) -> None:
        code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        with self._lock:
            tally = self._tallies.setdefault(kind, Tally())
            tally.requests += 1
            tally.errors += 1
            tally.planned += planned
            tally.codes[code] += 1
            if len(self.first_errors) < 20:
                self.first_errors.append(f"{kind}: {code}: {details}")

    def snapshot(self) -> dict[str, Tally]:
        with self._lock:
            return {
                kind: Tally(t.requests, t.errors, t.items, t.planned, Counter(t.codes))
                for kind, t in self._tallies.items()
            }


def _paced(stop: threading.Event, period_s: float, first_delay_s: float = 0.0) -> Iterator[int]:
    """Tick numbers at a fixed rate until ``stop``; a late tick is yielded at once (the rate holds)."""
    next_at = time.monotonic() + first_delay_s
    tick = 0
    while not stop.is_set():
        delay = next_at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        yield tick
        tick += 1
        next_at += period_s


def _stamp(moment: datetime | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment or datetime.now(UTC))
    return stamp


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


# --- industry load -------------------------------------------------------------------------------------


def device_sample(index: int, device_id: str, second: int) -> telemetry_pb2.TelemetrySample | None:
    """Device ``index``'s sample for ``second`` (None: it sends nothing then). Deterministic."""
    minute = second // 60
    if index % 250 == 5 and (minute + index) % 15 < 7:
        return None  # an intermittent link: silent 7 minutes in 15 (an offline alert, then cleared)
    if index % 250 == 3:
        # A machine that breaks down for 12 minutes in every 20 (a fault alert, then cleared).
        state = telemetry_pb2.DEVICE_STATE_FAULT if (minute + index) % 20 < 12 else None
    else:
        state = None
    if state is None:
        # A new state every 3 minutes, each device on its own phase (state changes spread over time).
        slot = (second + index * 7) // 180
        roll = (index * 7919 + slot * 104_729) % 100
        state = (
            telemetry_pb2.DEVICE_STATE_RUNNING
            if roll < 80
            else telemetry_pb2.DEVICE_STATE_IDLE
            if roll < 92
            else telemetry_pb2.DEVICE_STATE_STOPPED
            if roll < 98
            else telemetry_pb2.DEVICE_STATE_FAULT
        )
    running = state == telemetry_pb2.DEVICE_STATE_RUNNING
    power = {
        telemetry_pb2.DEVICE_STATE_RUNNING: 11.5,
        telemetry_pb2.DEVICE_STATE_IDLE: 1.2,
        telemetry_pb2.DEVICE_STATE_STOPPED: 0.0,
    }.get(state, 0.4)
    return telemetry_pb2.TelemetrySample(
        device_id=device_id,
        time_unix_ms=second * 1000,
        state=state,
        good_count=1 if running and (second + index) % 30 == 0 else 0,
        reject_count=1 if running and (second + index) % 900 == 0 else 0,
        power_kw=power + (index % 7) * 0.1,
        spindle_load_pct=62.5 if running else 0.0,
        temperature_c=41.5 if running else 28.0,
    )


def _gateway(  # noqa: PLR0917 - a private step of one linear script
    number: int,
    address: str,
    metadata: tuple[tuple[str, str], ...],
    devices: list[tuple[int, str]],
    base_s: int,
    stats: LoadStats,
    stop: threading.Event,
) -> None:
    options = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(address, options=options) as channel:
        stub = industry_pb2_grpc.IndustryServiceStub(channel)
        for tick in _paced(stop, 1.0, first_delay_s=number / GATEWAYS):
            second = base_s + tick
            samples = []
            for index, device_id in devices:
                sample = device_sample(index, device_id, second)
                if sample is not None:
                    samples.append(sample)
            for part in range(0, len(samples), MAX_SAMPLES_PER_REQUEST):
                chunk = samples[part : part + MAX_SAMPLES_PER_REQUEST]
                request = industry_pb2.IngestTelemetryRequest(
                    request_id=f"soak-gw{number}-{second}-{part}", samples=chunk
                )
                try:
                    response = stub.IngestTelemetry(request, metadata=metadata, timeout=RPC_TIMEOUT_S)
                except grpc.RpcError as error:
                    stats.failed("telemetry", error, planned=len(chunk))
                else:
                    stats.ok("telemetry", items=response.accepted_count, planned=len(chunk))


def _orders(  # noqa: PLR0917 - a private step of one linear script
    address: str,
    metadata: tuple[tuple[str, str], ...],
    codes: list[str],
    per_s: float,
    stats: LoadStats,
    stop: threading.Event,
) -> None:
    chooser = random.Random(16)  # the load's shape, not a secret
    open_orders: dict[str, industry_pb2.OrderStage.ValueType] = {}
    zone = ZoneInfo("Asia/Shanghai")
    with grpc.insecure_channel(address) as channel:
        stub = industry_pb2_grpc.IndustryServiceStub(channel)
        for tick in _paced(stop, 1.0 / per_s):
            try:
                if len(open_orders) < OPEN_ORDERS:
                    promised = datetime.now(zone).date() + timedelta(days=10 + tick % 20)
                    order = stub.CreateOrder(
                        industry_pb2.CreateOrderRequest(
                            request_id=f"soak-order-{tick}",
                            credit_code=chooser.choice(codes),
                            customer=f"Customer {tick % 97}",
                            product="Gearbox housing",
                            customisation="flange drilled to customer drawing",
                            promised_date=promised.isoformat(),
                        ),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    ).order
                    open_orders[order.order_id] = order.stage
                    stats.ok("orders")
                else:
                    order_id = chooser.choice(list(open_orders))
                    stage = industry_pb2.OrderStage.ValueType(open_orders[order_id] + 1)
                    stub.AdvanceOrder(
                        industry_pb2.AdvanceOrderRequest(order_id=order_id, stage=stage),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                    if stage >= industry_pb2.ORDER_STAGE_CLOSED:
                        del open_orders[order_id]
                    else:
                        open_orders[order_id] = stage
                    stats.ok("orders")
            except grpc.RpcError as error:
                stats.failed("orders", error)


def _industry_dashboard(
    address: str,
    metadata: tuple[tuple[str, str], ...],
    codes: list[str],
    stats: LoadStats,
    stop: threading.Event,
) -> None:
    chooser = random.Random(17)
    with grpc.insecure_channel(address) as channel:
        stub = industry_pb2_grpc.IndustryServiceStub(channel)
        for tick in _paced(stop, DASHBOARD_EVERY_S, first_delay_s=0.5):
            try:
                if tick % 3 == 0:
                    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                    stub.GetUtilisation(
                        industry_pb2.GetUtilisationRequest(
                            subject=industry_pb2.UtilisationSubject(credit_code=chooser.choice(codes)),
                            period=common_pb2.TimeRange(
                                start_time=_stamp(hour - timedelta(hours=1)),
                                end_time=_stamp(hour + timedelta(hours=1)),
                            ),
                            granularity=industry_pb2.GRANULARITY_HOUR,
                        ),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                elif tick % 3 == 1:
                    stub.ListDeviceAlerts(
                        industry_pb2.ListDeviceAlertsRequest(
                            open_only=True, page=common_pb2.PageRequest(page_size=50)
                        ),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                else:
                    stub.ListOrders(
                        industry_pb2.ListOrdersRequest(
                            credit_code=chooser.choice(codes), page=common_pb2.PageRequest(page_size=20)
                        ),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                stats.ok("industry reads")
            except grpc.RpcError as error:
                stats.failed("industry reads", error)


# --- safety load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class School:
    site_id: str
    camera_id: str
    panic_id: str


def register_schools(
    address: str, metadata: tuple[tuple[str, str], ...], count: int, run: str
) -> list[School]:
    def one(index: int) -> School:
        with grpc.insecure_channel(address) as channel:
            stub = safety_pb2_grpc.SafetyServiceStub(channel)
            site = stub.RegisterSite(
                safety_pb2.RegisterSiteRequest(
                    request_id=f"{run}-site-{index}",
                    name=f"Soak School {index}",
                    kind=safety_pb2.SITE_KIND_SCHOOL,
                    address=f"{index} Soak Road, Luqiao District, Taizhou",
                    division_code="331004",
                    town="Luqiao Street",
                    location=common_pb2.GeoPoint(latitude=28.58 + index / 10_000, longitude=121.38),
                    duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
                ),
                metadata=metadata,
                timeout=30,
            ).site

            def sensor(kind: safety_pb2.SensorKind.ValueType, zone: str) -> str:
                return str(
                    stub.RegisterSensor(
                        safety_pb2.RegisterSensorRequest(
                            request_id=f"{run}-sensor-{index}-{kind}",
                            site_id=site.site_id,
                            kind=kind,
                            zone=zone,
                        ),
                        metadata=metadata,
                        timeout=30,
                    ).sensor.sensor_id
                )

            return School(
                site.site_id,
                sensor(safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "north wall"),
                sensor(safety_pb2.SENSOR_KIND_PANIC_BUTTON, "gate duty room"),
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


_LOW_RISK = (safety_pb2.DETECTION_KIND_LOITERING, safety_pb2.DETECTION_KIND_CROWDING)


def _detections(  # noqa: PLR0917 - a private step of one linear script
    number: int,
    address: str,
    metadata: tuple[tuple[str, str], ...],
    schools: list[School],
    period_s: float,
    incidents: bool,
    stats: LoadStats,
    stop: threading.Event,
) -> None:
    """Low-risk detections (``incidents`` False) or incidents: a perimeter breach with a weapon."""
    chooser = random.Random(100 + number)
    kind = "incidents" if incidents else "detections"
    with grpc.insecure_channel(address) as channel:
        stub = safety_pb2_grpc.SafetyServiceStub(channel)
        for tick in _paced(stop, period_s, first_delay_s=chooser.random() * period_s):
            school = chooser.choice(schools)
            ref = f"soak/{kind}/{number}/{tick}"
            if incidents:
                inputs = [
                    safety_pb2.DetectionInput(
                        sensor_id=school.camera_id,
                        kind=safety_pb2.DETECTION_KIND_PERIMETER_BREACH,
                        confidence=0.9,
                        snapshot_ref=f"{ref}/breach",
                    ),
                    safety_pb2.DetectionInput(
                        sensor_id=school.camera_id,
                        kind=safety_pb2.DETECTION_KIND_WEAPON,
                        confidence=0.85,
                        label="baseball bat",
                        snapshot_ref=ref,
                    ),
                ]
            else:
                inputs = [
                    safety_pb2.DetectionInput(
                        sensor_id=school.camera_id,
                        kind=chooser.choice(_LOW_RISK),
                        confidence=round(0.6 + chooser.random() * 0.35, 2),
                        snapshot_ref=f"{ref}/{n}",
                    )
                    for n in range(1 + tick % 3)
                ]
            for detection in inputs:
                detection.detected_at.GetCurrentTime()
            try:
                response = stub.ReportDetections(
                    safety_pb2.ReportDetectionsRequest(
                        request_id=f"soak-{kind}-{number}-{tick}", detections=inputs
                    ),
                    metadata=metadata,
                    timeout=RPC_TIMEOUT_S,
                )
            except grpc.RpcError as error:
                stats.failed(kind, error)
            else:
                stats.ok(kind, items=len(response.detection_ids))


def _alarms(  # noqa: PLR0917 - a private step of one linear script
    address: str,
    metadata: tuple[tuple[str, str], ...],
    schools: list[School],
    period_s: float,
    stats: LoadStats,
    stop: threading.Event,
) -> None:
    chooser = random.Random(200)
    with grpc.insecure_channel(address) as channel:
        stub = safety_pb2_grpc.SafetyServiceStub(channel)
        for tick in _paced(stop, period_s, first_delay_s=period_s / 2):
            school = chooser.choice(schools)
            try:
                stub.RaiseAlarm(
                    safety_pb2.RaiseAlarmRequest(
                        request_id=f"soak-alarm-{tick}",
                        site_id=school.site_id,
                        sensor_id=school.panic_id,
                        note="a stranger at the gate",
                    ),
                    metadata=metadata,
                    timeout=RPC_TIMEOUT_S,
                )
            except grpc.RpcError as error:
                stats.failed("alarms", error)
            else:
                stats.ok("alarms")


_OPEN = (
    safety_pb2.ALERT_STATUS_RAISED,
    safety_pb2.ALERT_STATUS_ACKNOWLEDGED,
    safety_pb2.ALERT_STATUS_DISPATCHED,
    safety_pb2.ALERT_STATUS_ON_SCENE,
)


def _operator_step(
    stub: safety_pb2_grpc.SafetyServiceStub, alert: safety_pb2.Alert, metadata: tuple[tuple[str, str], ...]
) -> bool:
    """Move one open alert on by one step, as a command centre does; False if there was nothing to do."""
    alert_id = alert.alert_id
    status = alert.status
    if status == safety_pb2.ALERT_STATUS_RAISED:
        stub.AcknowledgeAlert(
            safety_pb2.AcknowledgeAlertRequest(
                request_id=f"ack-{alert_id}", alert_id=alert_id, note="on screen"
            ),
            metadata=metadata,
            timeout=RPC_TIMEOUT_S,
        )
    elif status == safety_pb2.ALERT_STATUS_ACKNOWLEDGED and zlib.crc32(alert_id.encode()) % 5 == 0:
        stub.ResolveAlert(
            safety_pb2.ResolveAlertRequest(
                request_id=f"close-{alert_id}",
                alert_id=alert_id,
                outcome=safety_pb2.ALERT_OUTCOME_FALSE_ALARM,
                note="pupils playing by the wall",
            ),
            metadata=metadata,
            timeout=RPC_TIMEOUT_S,
        )
    elif status == safety_pb2.ALERT_STATUS_ACKNOWLEDGED:
        stub.DispatchUnits(
            safety_pb2.DispatchUnitsRequest(
                request_id=f"dispatch-{alert_id}",
                alert_id=alert_id,
                units=[
                    safety_pb2.UnitAssignment(kind=safety_pb2.UNIT_KIND_POLICE_STATION, name="Luqiao car 3"),
                    safety_pb2.UnitAssignment(kind=safety_pb2.UNIT_KIND_POLICE_DRONE, name="Drone 1"),
                ],
            ),
            metadata=metadata,
            timeout=RPC_TIMEOUT_S,
        )
    else:
        moving = [
            unit
            for unit in alert.units
            if unit.status in (safety_pb2.UNIT_STATUS_NOTIFIED, safety_pb2.UNIT_STATUS_EN_ROUTE)
        ]
        if moving:
            unit = moving[0]
            step = (
                safety_pb2.UNIT_STATUS_EN_ROUTE
                if unit.status == safety_pb2.UNIT_STATUS_NOTIFIED
                else safety_pb2.UNIT_STATUS_ARRIVED
            )
            stub.UpdateUnitStatus(
                safety_pb2.UpdateUnitStatusRequest(
                    request_id=f"unit-{alert_id}-{unit.unit_id}-{step}",
                    alert_id=alert_id,
                    unit_id=unit.unit_id,
                    status=step,
                ),
                metadata=metadata,
                timeout=RPC_TIMEOUT_S,
            )
        elif status == safety_pb2.ALERT_STATUS_ON_SCENE:
            stub.ResolveAlert(
                safety_pb2.ResolveAlertRequest(
                    request_id=f"close-{alert_id}",
                    alert_id=alert_id,
                    outcome=safety_pb2.ALERT_OUTCOME_RESOLVED,
                    note="intruder detained; school safe",
                ),
                metadata=metadata,
                timeout=RPC_TIMEOUT_S,
            )
        else:
            return False
    return True


def _command_centre(
    address: str, metadata: tuple[tuple[str, str], ...], stats: LoadStats, stop: threading.Event
) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = safety_pb2_grpc.SafetyServiceStub(channel)
        for _tick in _paced(stop, OPERATOR_EVERY_S, first_delay_s=1.0):
            alerts: list[safety_pb2.Alert] = []
            token = ""
            try:
                while True:
                    page = stub.ListAlerts(
                        safety_pb2.ListAlertsRequest(
                            statuses=_OPEN, page=common_pb2.PageRequest(page_size=500, page_token=token)
                        ),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                    stats.ok("command centre")
                    alerts.extend(page.alerts)
                    token = page.page.next_page_token
                    if not token:
                        break
            except grpc.RpcError as error:
                stats.failed("command centre", error)
                continue
            stats.gauges["open_alerts"] = len(alerts)
            for alert in alerts:
                if stop.is_set():
                    return
                try:
                    if _operator_step(stub, alert, metadata):
                        stats.ok("command centre")
                except grpc.RpcError as error:
                    stats.failed("command centre", error)


def _safety_dashboard(
    address: str,
    metadata: tuple[tuple[str, str], ...],
    schools: list[School],
    stats: LoadStats,
    stop: threading.Event,
) -> None:
    chooser = random.Random(18)
    with grpc.insecure_channel(address) as channel:
        stub = safety_pb2_grpc.SafetyServiceStub(channel)
        for tick in _paced(stop, DASHBOARD_EVERY_S, first_delay_s=1.5):
            try:
                if tick % 2 == 0:
                    stub.ListAlerts(
                        safety_pb2.ListAlertsRequest(page=common_pb2.PageRequest(page_size=50)),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                else:
                    stub.ListAlerts(
                        safety_pb2.ListAlertsRequest(
                            site_id=chooser.choice(schools).site_id, page=common_pb2.PageRequest(page_size=20)
                        ),
                        metadata=metadata,
                        timeout=RPC_TIMEOUT_S,
                    )
                stats.ok("safety reads")
            except grpc.RpcError as error:
                stats.failed("safety reads", error)


# --- the watchers' process -----------------------------------------------------------------------------


def _watch_process(address: str, specs: list[tuple[str, str]], shared: dict[str, Any], stop: Any) -> None:
    asyncio.run(_watch_all(address, specs, shared, stop))


async def _watch_all(address: str, specs: list[tuple[str, str]], shared: dict[str, Any], stop: Any) -> None:
    """Keep every watcher open until ``stop``; publish live streams, messages and errors every second."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(max(1, len(specs) // 100))]
    counts = {"live": 0, "messages": 0, "errors": 0, "reopened": 0}

    async def watch(index: int, token: str, site_id: str) -> None:
        stub = safety_pb2_grpc.SafetyServiceStub(channels[index % len(channels)])
        opened = False
        while not stop.is_set():
            if opened:
                counts["reopened"] += 1
            opened = True
            call = stub.WatchAlerts(safety_pb2.WatchAlertsRequest(site_id=site_id), metadata=_bearer(token))
            live = False
            try:
                await call.initial_metadata()
                counts["live"] += 1
                live = True
                async for _response in call:
                    counts["messages"] += 1
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    counts["errors"] += 1
            finally:
                if live:
                    counts["live"] -= 1
            await asyncio.sleep(1.0)

    tasks = [asyncio.ensure_future(watch(i, token, site)) for i, (token, site) in enumerate(specs)]
    while not stop.is_set():
        for name, value in counts.items():
            shared[name].value = value
        await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()


# --- what is sampled -----------------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "VmRSS":
            found["rss_mb"] = int(value.split()[0]) / 1024
        elif name == "Threads":
            found["threads"] = int(value)
    found["fds"] = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    return found


def scrape(port: int) -> dict[str, float]:
    """The sums over labels of the gauges and counters the soak follows, from one /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    sums: dict[str, float] = {
        "consumer_lag_gauge": 0.0,
        "outbox_backlog_gauge": 0.0,
        "streams_open": 0.0,
        "rpc_errors": 0.0,
        "consumer_records": 0.0,
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cityhub_consumer_lag":
                sums["consumer_lag_gauge"] += sample.value
            elif sample.name == "cityhub_outbox_backlog":
                sums["outbox_backlog_gauge"] += sample.value
            elif sample.name == "cityhub_grpc_streams_open":
                sums["streams_open"] += sample.value
            elif sample.name == "cityhub_rpc_total" and sample.labels.get("code") != "OK":
                sums["rpc_errors"] += sample.value
            elif sample.name == "cityhub_consumer_records_total":
                sums["consumer_records"] += sample.value
    return sums


class KafkaLag:
    """A consumer group's lag from Kafka itself: end offsets minus the group's committed offsets."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self.group = group
        self.topic = topic
        self._admin: Any = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
        self._consumer: Any = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False
        )
        self._partitions: list[Any] = []

    def measure(self) -> tuple[int, int]:
        """(records behind, records on the topic)."""
        from kafka import TopicPartition

        if not self._partitions:
            found = self._consumer.partitions_for_topic(self.topic) or ()
            self._partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        ends = self._consumer.end_offsets(self._partitions)
        committed = self._admin.list_group_offsets({self.group: None}).get(self.group, {})
        missing = [tp for tp in self._partitions if tp not in committed or committed[tp].offset < 0]
        starts = self._consumer.beginning_offsets(missing) if missing else {}
        lag = 0
        for tp in self._partitions:
            done = starts[tp] if tp in starts else committed[tp].offset
            lag += max(0, int(ends[tp]) - int(done))
        return lag, int(sum(ends.values()))

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        self._admin.close()


def _outbox_unsent(conn: Any, schema: str) -> int:
    from psycopg import sql

    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE sent_at IS NULL").format(sql.Identifier(schema, "outbox"))
    ).fetchone()
    return int(row[0]) if row else 0


# --- judging --------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    series: str
    rule: str
    warmup_median: float
    middle_median: float
    last_median: float
    max_after_warmup: float
    allowed: float
    per_hour: float
    flat: bool
    note: str = ""


def _slope_per_hour(times: list[float], values: list[float]) -> float:
    if len(times) < 2:
        return 0.0
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread * 3600


def _thirds(values: list[float]) -> tuple[list[float], list[float], list[float]]:
    n = len(values)
    return values[: n // 3], values[n // 3 : 2 * n // 3], values[2 * n // 3 :]


def judge_memory(
    series: str, times: list[float], values: list[float], *, tolerance_pct: float, tolerance_mb: float
) -> Verdict:
    """Flat: the last third's median at most max(pct of the middle third's, MB) above the middle's."""
    warm, middle, last = _thirds(values)
    if len(values) < MIN_SAMPLES:
        return Verdict(series, "memory", 0, 0, 0, 0, 0, 0, flat=False, note="too few samples")
    mid, end = statistics.median(middle), statistics.median(last)
    allowed = max(mid * tolerance_pct / 100, tolerance_mb)
    growth = end - mid
    return Verdict(
        series,
        f"last - middle <= max({tolerance_pct:g} %, {tolerance_mb:g} MB)",
        statistics.median(warm) if warm else mid,
        mid,
        end,
        max(middle + last),
        allowed,
        _slope_per_hour(times[len(warm) :], middle + last),
        flat=growth <= allowed,
        note=f"grew {growth:+.1f} MB" if growth > allowed else "",
    )


def judge_bounded(
    series: str, times: list[float], values: list[float], *, bound: float, unit: str
) -> Verdict:
    """Flat: after the warm-up never above ``bound`` two samples running (a burst, such as the hour's
    rollups going out, must be gone by the next sample) nor at the end, and the last third's median at
    most a quarter of the bound above the middle third's (no upward trend)."""
    warm, middle, last = _thirds(values)
    if len(values) < MIN_SAMPLES:
        return Verdict(series, "bounded", 0, 0, 0, 0, 0, 0, flat=False, note="too few samples")
    mid, end = statistics.median(middle), statistics.median(last)
    after = middle + last
    after_times = times[len(warm) :]
    peak = max(after)
    over = [i for i, value in enumerate(after) if value > bound]
    notes = []
    sustained = [i for i in over if i + 1 in over]
    if sustained:
        at = after_times[sustained[0]]
        notes.append(f"above {bound:,.0f} {unit} two samples running from t={at:,.0f}s (peak {peak:,.0f})")
    elif over and over[-1] == len(after) - 1:
        notes.append(f"above {bound:,.0f} {unit} at the end ({after[-1]:,.0f})")
    if end - mid > bound / 4:
        notes.append(f"trends up {end - mid:+,.0f} {unit}")
    flat = not notes
    if flat and over:
        bursts = ", ".join(f"{after[i]:,.0f} at t={after_times[i]:,.0f}s" for i in over[:3])
        notes.append(f"burst{'s' if len(over) > 1 else ''} {bursts}, gone by the next sample")
    return Verdict(
        series,
        f"<= {bound:,.0f} {unit} but for one-sample bursts, last - middle <= {bound / 4:,.0f}",
        statistics.median(warm) if warm else mid,
        mid,
        end,
        peak,
        bound,
        _slope_per_hour(after_times, after),
        flat=flat,
        note="; ".join(notes),
    )


def judge(samples: list[dict[str, Any]], args: argparse.Namespace) -> tuple[list[Verdict], dict[str, Any]]:

    def series(key: str) -> tuple[list[float], list[float]]:
        # A sample whose reading failed has no value for it: left out, not counted as zero.
        found = [(float(s["t_s"]), float(s[key])) for s in samples if s.get(key) is not None]
        return [t for t, _ in found], [v for _, v in found]

    verdicts = [
        judge_memory(
            f"{name}.rss_mb",
            *series(f"{name}.rss_mb"),
            tolerance_pct=args.memory_tolerance_pct,
            tolerance_mb=args.memory_tolerance_mb,
        )
        for name in ("industry", "safety")
    ]
    # The lag bound: seconds of the topic's input at the rate measured over the run.
    times, records = series("industry.telemetry_records")
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    records_per_s = (records[-1] - records[0]) / span if span > 0 else 0.0
    lag_bound = max(50.0, args.lag_bound_s * records_per_s)
    verdicts.extend(
        judge_bounded(key, *series(key), bound=lag_bound, unit="records")
        for key in ("industry.consumer_lag_kafka", "industry.consumer_lag_gauge")
    )
    for name in ("industry", "safety"):
        for source in ("gauge", "db"):
            key = f"{name}.outbox_backlog_{source}"
            verdicts.append(judge_bounded(key, *series(key), bound=args.backlog_bound, unit="rows"))
    return verdicts, {"telemetry_records_per_s": records_per_s, "lag_bound_records": lag_bound}


def load_held(totals: dict[str, Tally], samples: list[dict[str, Any]], plan: Plan) -> tuple[bool, list[str]]:
    """Whether the load was what the plan says: telemetry accepted, few errors, every watcher open."""
    problems = []
    telemetry = totals.get("telemetry", Tally())
    if telemetry.planned == 0 or telemetry.items < 0.99 * telemetry.planned:
        problems.append(f"telemetry: {telemetry.items:,} of {telemetry.planned:,} samples accepted")
    requests = sum(t.requests for t in totals.values())
    errors = sum(t.errors for t in totals.values())
    if requests == 0 or errors > 0.01 * requests:
        problems.append(f"{errors:,} of {requests:,} requests failed")
    _warm, middle, last = _thirds([float(s.get("watchers.live", 0)) for s in samples])
    if not middle or min(middle + last) < plan.watchers:
        problems.append(
            f"watchers open after warm-up: at least {min(middle + last, default=0):.0f} of {plan.watchers}"
        )
    return not problems, problems


# --- logs ------------------------------------------------------------------------------------------------


def log_summary(path: Path) -> dict[str, Any]:
    """Warnings and errors in a service's JSON log: counts by level and the most frequent events."""
    levels: Counter[str] = Counter()
    events: Counter[str] = Counter()
    unparsed: list[str] = []
    if not path.exists():
        return {"levels": {}, "top": [], "unparsed": []}
    with path.open(errors="replace") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                # Not the service's structured log: a library or the interpreter writing to stderr.
                levels["unparsed"] += 1
                if len(unparsed) < 5:
                    unparsed.append(line.rstrip()[:300])
                continue
            level = str(entry.get("level", "")).lower()
            if level in {"warning", "error", "critical"}:
                levels[level] += 1
                events[f"{level}: {entry.get('event', '?')}"] += 1
    return {"levels": dict(levels), "top": events.most_common(8), "unparsed": unparsed}


# --- the run ---------------------------------------------------------------------------------------------


def _service_env(  # noqa: PLR0917 - a private step of one linear script
    schema: str, bootstrap: str, database: str, keys: Path, grpc_port: int, metrics_port: int, **extra: str
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_JWT")}
    env.update(
        SERVICE_NAME=schema,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DATABASE_URL=database,
        GRPC_HOST="127.0.0.1",
        GRPC_PORT=str(grpc_port),
        METRICS_PORT=str(metrics_port),
        LOG_FORMAT="json",
        CITYHUB_DEV_KEYS="true",
        CITYHUB_DEV_SECRETS_DIR=str(keys),
        **extra,
    )
    return env


@dataclass
class Service:
    name: str
    process: ServiceProcess
    metrics_port: int
    log: Path
    last_cpu: float = 0.0


class Sampler:
    """Takes one sample of everything the soak follows; a source that fails once leaves its keys out of
    that sample (and says so under ``problems``) rather than end a long run."""

    def __init__(  # noqa: PLR0917 - the soak's one sampler
        self,
        services: list[Service],
        lag: KafkaLag,
        conn: Any,
        schemas: dict[str, str],
        stats: LoadStats,
        shared: dict[str, Any],
    ) -> None:
        self.services = services
        self.lag = lag
        self.conn = conn
        self.schemas = schemas
        self.stats = stats
        self.shared = shared
        self.started = time.monotonic()
        self._last_at = self.started
        self._before: dict[str, Tally] = {}
        for service in services:
            service.last_cpu = service.process.cpu_seconds()

    def take(self) -> dict[str, Any]:
        now = time.monotonic()
        interval = max(now - self._last_at, 1e-3)
        self._last_at = now
        sample: dict[str, Any] = {
            "t_s": round(now - self.started, 1),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        problems: list[str] = []

        def attempt(what: str, step: Callable[[], None]) -> None:
            try:
                step()
            except Exception as error:  # noqa: BLE001 - one missed reading must not end a long run
                problems.append(f"{what}: {type(error).__name__}: {error}")

        for service in self.services:
            name = service.name

            def proc(service: Service = service, name: str = name) -> None:
                for key, value in _proc_status(service.process.process.pid).items():
                    sample[f"{name}.{key}"] = round(value, 1)
                cpu = service.process.cpu_seconds()
                sample[f"{name}.cpu_cores"] = round((cpu - service.last_cpu) / interval, 2)
                service.last_cpu = cpu

            def metrics(service: Service = service, name: str = name) -> None:
                for key, value in scrape(service.metrics_port).items():
                    sample[f"{name}.{key}"] = value

            def outbox(name: str = name) -> None:
                sample[f"{name}.outbox_backlog_db"] = _outbox_unsent(self.conn, self.schemas[name])

            attempt(f"{name} /proc", proc)
            attempt(f"{name} /metrics", metrics)
            attempt(f"{name} outbox", outbox)

        def kafka() -> None:
            behind, on_topic = self.lag.measure()
            sample["industry.consumer_lag_kafka"] = behind
            sample["industry.telemetry_records"] = on_topic

        attempt("kafka lag", kafka)
        tallies = self.stats.snapshot()
        for kind, tally in tallies.items():
            was = self._before.get(kind, Tally())
            sample[f"load.{kind}.per_s"] = round((tally.requests - was.requests) / interval, 2)
            sample[f"load.{kind}.errors"] = tally.errors - was.errors
            if kind == "telemetry":
                sample["load.telemetry.samples_per_s"] = round((tally.items - was.items) / interval, 1)
        self._before = tallies
        sample["safety.open_alerts"] = self.stats.gauges.get("open_alerts", 0)
        for name in ("live", "messages", "errors", "reopened"):
            sample[f"watchers.{name}"] = int(self.shared[name].value)
        if problems:
            sample["problems"] = problems
        return sample


def _progress(sample: dict[str, Any]) -> str:
    return (
        f"t={sample['t_s']:>6.0f}s"
        f"  industry {sample.get('industry.rss_mb', 0):6.1f} MB"
        f" lag {sample.get('industry.consumer_lag_kafka', 0):>4}"
        f"/{sample.get('industry.consumer_lag_gauge', 0):<4.0f}"
        f" outbox {sample.get('industry.outbox_backlog_db', 0):>3}"
        f"  safety {sample.get('safety.rss_mb', 0):6.1f} MB"
        f" outbox {sample.get('safety.outbox_backlog_db', 0):>3}"
        f" open alerts {sample.get('safety.open_alerts', 0):>3}"
        f"  samples/s {sample.get('load.telemetry.samples_per_s', 0):>7,.0f}"
        f"  watchers {sample.get('watchers.live', 0)}"
        f"  errors {sum(v for k, v in sample.items() if k.startswith('load.') and k.endswith('.errors'))}"
    )


def _start_services(  # noqa: PLR0917 - a private step of one linear script
    schemas: dict[str, str],
    topics: dict[str, str],
    bootstrap: str,
    database: str,
    keys: Path,
    workdir: Path,
    services: list[Service],
) -> None:
    """Industry (rollup consumer and health monitor on, as by default) and safety, each in its own process
    with its metrics on a port of its own, appended to ``services`` as each starts (so the caller stops
    whatever did start) and SERVING before the next."""
    extra = {
        "industry": {
            "INDUSTRY_EVENTS_TOPIC": topics["industry_events"],
            "INDUSTRY_TELEMETRY_TOPIC": topics["telemetry"],
            "INDUSTRY_ROLLUP_CONSUMER_ENABLED": "true",
            "INDUSTRY_HEALTH_MONITOR_ENABLED": "true",
        },
        "safety": {"SAFETY_EVENTS_TOPIC": topics["safety_events"], "SAFETY_DEV_SECRETS_DIR": str(keys)},
    }
    for name in ("industry", "safety"):
        log = workdir / f"{name}.log"
        for attempt in range(1, PORT_ATTEMPTS + 1):
            # A port found free may be taken by another process before the service binds it (other
            # test runs on the machine): then the service exits at once, and starts again on new ports.
            env = _service_env(
                schemas[name], bootstrap, database, keys, _free_port(), _free_port(), **extra[name]
            )
            service = Service(
                name, ServiceProcess(env, log, module=f"services.{name}"), int(env["METRICS_PORT"]), log
            )
            services.append(service)
            try:
                service.process.wait_serving()
                break
            except RuntimeError:
                service.process.stop()
                services.remove(service)
                text = log.read_text(errors="replace")
                if attempt == PORT_ATTEMPTS or "Address already in use" not in text:
                    raise
                log.rename(workdir / f"{name}-attempt{attempt}.log")


def _load_threads(  # noqa: PLR0917 - a private step of one linear script
    plan: Plan,
    addresses: tuple[str, str],
    tokens: dict[str, tuple[tuple[str, str], ...]],
    district: tuple[list[str], list[str], list[School]],
    stats: LoadStats,
    stop: threading.Event,
) -> list[threading.Thread]:
    """The load's threads, not yet started: gateways, orders, reads, detections, alarms, command centre."""
    industry, safety = addresses
    gateway, bureau, centre = tokens["gateway"], tokens["bureau"], tokens["centre"]
    device_ids, codes, schools = district
    base_s = int(time.time())
    shares = [list(enumerate(device_ids))[g::GATEWAYS] for g in range(GATEWAYS)]
    targets: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = [
        *[
            (f"gateway-{g}", _gateway, (g, industry, gateway, shares[g], base_s, stats, stop))
            for g in range(GATEWAYS)
        ],
        ("orders", _orders, (industry, gateway, codes, plan.orders_per_s, stats, stop)),
        ("industry-reads", _industry_dashboard, (industry, bureau, codes, stats, stop)),
        *[
            (
                f"detections-{n}",
                _detections,
                (n, safety, gateway, schools, 2 / plan.detections_per_s, False, stats, stop),
            )
            for n in range(2)
        ],
        ("incidents", _detections, (9, safety, gateway, schools, plan.incident_every_s, True, stats, stop)),
        ("alarms", _alarms, (safety, gateway, schools, plan.alarm_every_s, stats, stop)),
        ("command-centre", _command_centre, (safety, centre, stats, stop)),
        ("safety-reads", _safety_dashboard, (safety, centre, schools, stats, stop)),
    ]
    return [
        threading.Thread(target=target, args=targs, name=f"soak-{name}", daemon=True)
        for name, target, targs in targets
    ]


def _drain(lag: KafkaLag, conn: Any, schemas: dict[str, str], timeout_s: float = 60.0) -> float | None:
    """Seconds until the consumer lag and every outbox backlog are zero after the load (None: not within
    ``timeout_s``)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        behind, _ = lag.measure()
        unsent = sum(_outbox_unsent(conn, schema) for schema in schemas.values())
        if behind == 0 and unsent == 0:
            return round(time.monotonic() - began, 1)
        time.sleep(1.0)
    return None


def _stop_all(
    watchers: Any, threads: list[threading.Thread], lag: KafkaLag | None, conn: Any, services: list[Service]
) -> dict[str, int | None]:
    """Join the watchers' process and the load threads, close the probes, stop the services (SIGTERM);
    the services' exit codes. The services are stopped whatever fails before."""
    try:
        if watchers is not None and watchers.pid is not None:  # None: it never started
            watchers.join(30)
            if watchers.is_alive():
                watchers.kill()
        for thread in threads:
            thread.join(timeout=30)
        if lag is not None:
            lag.close()
        if conn is not None:
            conn.close()
    finally:
        exits: dict[str, int | None] = {}
        for service in services:
            service.process.stop()
            exits[service.name] = service.process.process.returncode
    return exits


def run(args: argparse.Namespace) -> dict[str, Any]:  # noqa: PLR0915 - one linear script, commented by step
    # The machine's speed before anything of the benchmark runs (bench/machine.py).
    probe_before = probe_ms()
    from services.industry.bootstrap import ROLLUP_CONSUMER
    from services.platform.security import TokenIssuer, load_security_settings

    plan = Plan.of(args)
    suffix = secrets.token_hex(3)
    schemas = {"industry": f"industry_soak_{suffix}", "safety": f"safety_soak_{suffix}"}
    topics = {
        "industry_events": f"cityhub.industry.events.v1.soak-{suffix}",
        "telemetry": f"cityhub.industry.telemetry.v1.soak-{suffix}",
        "safety_events": f"cityhub.safety.events.v1.soak-{suffix}",
    }
    group = f"{schemas['industry']}.{ROLLUP_CONSUMER}"
    workdir = Path(tempfile.mkdtemp(prefix="cityhub-soak-"))
    keys = workdir / "keys"
    samples: list[dict[str, Any]] = []
    report: dict[str, Any] = {"plan": asdict(plan)}
    stop = threading.Event()
    failure = ""
    totals: dict[str, Tally] = {}
    with _stack() as (bootstrap, database):
        security = load_security_settings(dev_keys=True, dev_secrets_dir=keys)
        issuer = TokenIssuer.from_settings(security)
        ttl = int(plan.minutes * 60) + 7200
        gateway = _bearer(issuer.issue(sub="soak-gateway", roles=["service"], ttl_s=ttl))
        bureau = _bearer(issuer.issue(sub="soak-bureau", roles=["industry_operator"], ttl_s=ttl))
        centre_token = issuer.issue(sub="soak-command-centre", roles=["district_operator"], ttl_s=ttl)
        centre = _bearer(centre_token)
        services: list[Service] = []
        context = multiprocessing.get_context("spawn")
        shared = {name: context.Value("q", 0) for name in ("live", "messages", "errors", "reopened")}
        watch_stop = context.Event()
        watchers: Any = None
        threads: list[threading.Thread] = []
        lag: KafkaLag | None = None
        conn: Any = None
        try:
            _start_services(schemas, topics, bootstrap, database, keys, workdir, services)
            industry, safety = services[0].process, services[1].process
            print(
                f"industry at {industry.address}, safety at {safety.address} (logs in {workdir})", flush=True
            )

            # The district: enterprises with their devices, schools with a camera and a panic button.
            began = time.monotonic()
            with grpc.insecure_channel(industry.address) as channel:
                device_ids = register_district(
                    industry_pb2_grpc.IndustryServiceStub(channel), gateway, plan.enterprises, plan.devices
                )
            codes = [_credit_code(1000 + i) for i in range(plan.enterprises)]
            schools = register_schools(safety.address, gateway, plan.sites, f"soak-{suffix}")
            print(
                f"registered {plan.enterprises} enterprises, {len(device_ids)} devices and"
                f" {len(schools)} schools in {time.monotonic() - began:.0f}s",
                flush=True,
            )

            # Watchers: one district-wide command centre, the rest duty rooms of their schools.
            specs = [(centre_token, "")] + [
                (
                    issuer.issue(
                        sub=f"soak-duty-{n}",
                        roles=["duty_room"],
                        scopes=[f"site:{schools[n % len(schools)].site_id}"],
                        ttl_s=ttl,
                    ),
                    schools[n % len(schools)].site_id,
                )
                for n in range(plan.watchers - 1)
            ]
            watchers = context.Process(
                target=_watch_process, args=(safety.address, specs, shared, watch_stop), daemon=True
            )
            watchers.start()
            deadline = time.monotonic() + 120
            while shared["live"].value < plan.watchers and time.monotonic() < deadline:
                time.sleep(0.5)
            print(f"{shared['live'].value} of {plan.watchers} watchers live", flush=True)

            # The load.
            stats = LoadStats()
            threads = _load_threads(
                plan,
                (industry.address, safety.address),
                {"gateway": gateway, "bureau": bureau, "centre": centre},
                (device_ids, codes, schools),
                stats,
                stop,
            )

            import psycopg

            conn = psycopg.connect(database, autocommit=True)
            lag = KafkaLag(bootstrap, group, topics["telemetry"])
            print(
                f"soak: {plan.minutes:g} min, {len(device_ids):,} samples/s, sampling every"
                f" {plan.sample_every_s:g}s",
                flush=True,
            )
            sampler = Sampler(services, lag, conn, schemas, stats, shared)
            for thread in threads:
                thread.start()
            # The first sample a second in (the load has begun), then every sample_every_s.
            for _tick in _paced(threading.Event(), plan.sample_every_s, first_delay_s=1.0):
                dead = [s.name for s in services if s.process.process.poll() is not None]
                if dead:
                    failure = f"{', '.join(dead)} exited during the soak"
                    print(failure, flush=True)
                    break
                sample = sampler.take()
                samples.append(sample)
                print(_progress(sample), flush=True)
                if sample["t_s"] >= plan.minutes * 60:
                    break
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

            # After the load: how long lag and backlog take to reach zero.
            report["drained_after_s"] = _drain(lag, conn, schemas)
            totals = stats.snapshot()
            report["load_totals"] = {kind: asdict(t) for kind, t in totals.items()}
            report["first_errors"] = stats.first_errors
        finally:
            stop.set()
            watch_stop.set()
            # A clean stop answers SIGTERM with 0; anything else is worth a look in the logs.
            report["exit_codes"] = _stop_all(watchers, threads, lag, conn, services)
            report["logs"] = {service.name: log_summary(service.log) for service in services}
            try:
                _tidy(
                    bootstrap,
                    database,
                    [*topics.values(), *(f"{t}.dlq" for t in topics.values())],
                    schemas["industry"],
                )
                _tidy(bootstrap, database, [], schemas["safety"])
                _delete_group(bootstrap, group)
            except Exception as error:  # noqa: BLE001 - tidying up must not hide the results
                print(f"warning: could not tidy up: {error}", file=sys.stderr)

    return _conclude(report, samples, totals, failure, plan, args, workdir, probe_before=probe_before)


def _conclude(  # noqa: PLR0917 - the last step of run()
    report: dict[str, Any],
    samples: list[dict[str, Any]],
    totals: dict[str, Tally],
    failure: str,
    plan: Plan,
    args: argparse.Namespace,
    workdir: Path,
    *,
    probe_before: float,
) -> dict[str, Any]:
    verdicts, derived = judge(samples, args) if samples else ([], {})
    held, problems = load_held(totals, samples, plan) if samples else (False, ["no samples"])
    if failure:
        problems.insert(0, failure)
        held = False
    flat = bool(verdicts) and all(v.flat for v in verdicts)
    if args.keep_logs or not (flat and held):
        report["logs_kept_in"] = str(workdir)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    report.update(
        benchmark="soak",
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=describe(probe_before),
        git=_git_revision(),
        command=" ".join(["python -m bench", *sys.argv[1:]]),
        options={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        derived=derived,
        verdicts=[asdict(v) for v in verdicts],
        load_held=held,
        load_problems=problems,
        flat=flat,
        samples=samples,
    )
    return report


def _delete_group(bootstrap: str, group: str) -> None:
    from kafka import KafkaAdminClient

    admin: Any = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_groups([group])
    finally:
        admin.close()


# --- the table --------------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    plan = report["plan"]
    dirty = " (dirty)" if report["git"]["dirty"] else ""
    samples = report["samples"]
    lines = [
        (
            f"soak: {plan['minutes']:g} min, {plan['enterprises']:,} enterprises,"
            f" {plan['devices']:,} devices, {plan['sites']:,} schools, {plan['watchers']:,} watchers;"
            f" {report['machine']['cores']} cores,"
            f" git {report['git']['revision'][:12]}{dirty}, {report['finished_at']}"
        ),
        f"{len(samples)} samples every {plan['sample_every_s']:g}s; thirds: warm-up | middle | last",
    ]
    head = (
        f"{'series':<34} {'warm-up':>9} {'middle':>9} {'last':>9} {'max':>9} {'allowed':>9}"
        f" {'trend/h':>9}  verdict"
    )
    lines += [head, "-" * len(head)]
    for v in report["verdicts"]:
        verdict = ("flat" if v["flat"] else "NOT FLAT") + (f": {v['note']}" if v["note"] else "")
        lines.append(
            f"{v['series']:<34} {v['warmup_median']:>9,.1f} {v['middle_median']:>9,.1f}"
            f" {v['last_median']:>9,.1f} {v['max_after_warmup']:>9,.1f} {v['allowed']:>9,.1f}"
            f" {v['per_hour']:>+9,.1f}  {verdict}"
        )
    derived = report.get("derived", {})
    if derived:
        lines.append(
            f"lag bound: {derived['lag_bound_records']:,.0f} records"
            f" ({report['options']['lag_bound_s']:g} s of the telemetry topic's"
            f" {derived['telemetry_records_per_s']:,.1f} records/s)"
        )
    if samples:

        def spread(key: str) -> str:
            values = [float(s.get(key, 0)) for s in samples]
            digits = 2 if key.endswith("cpu_cores") else 0
            return f"{min(values):,.{digits}f}..{max(values):,.{digits}f}"

        lines.append(
            "info (min..max): "
            + ", ".join(
                f"{label} {spread(key)}"
                for label, key in (
                    ("industry threads", "industry.threads"),
                    ("fds", "industry.fds"),
                    ("safety threads", "safety.threads"),
                    ("fds", "safety.fds"),
                    ("open alerts", "safety.open_alerts"),
                    ("safety streams", "safety.streams_open"),
                    ("industry CPU", "industry.cpu_cores"),
                    ("safety CPU", "safety.cpu_cores"),
                )
            )
        )
    seconds = samples[-1]["t_s"] if samples else 0.0
    load = []
    for kind, tally in report.get("load_totals", {}).items():
        rate = tally["requests"] / seconds if seconds else 0.0
        extra = f", {tally['items'] / seconds:,.0f} samples/s" if kind == "telemetry" and seconds else ""
        codes = f" {dict(tally['codes'])}" if tally["codes"] else ""
        load.append(f"{kind} {rate:,.2f}/s{extra} ({tally['errors']} errors{codes})")
    lines.append("load: " + "; ".join(load))
    if samples:
        last = samples[-1]
        lines.append(
            f"watchers: {last.get('watchers.live', 0)} live at the end, {last.get('watchers.messages', 0):,}"
            f" messages, {last.get('watchers.errors', 0)} errors, {last.get('watchers.reopened', 0)} reopened"
        )
    drained = report.get("drained_after_s")
    lines.append(
        "after the load: lag and backlog at 0 "
        + (f"within {drained:g} s" if drained is not None else "NOT within 60 s")
    )
    for name, summary in report.get("logs", {}).items():
        if summary["levels"]:
            top = "; ".join(f"{event} x{count}" for event, count in summary["top"][:4])
            lines.append(f"{name} log: {summary['levels']}" + (f" - {top}" if top else ""))
            lines.extend(f"    {line}" for line in summary.get("unparsed", [])[:2])
    held = "held" if report["load_held"] else "DID NOT HOLD: " + "; ".join(report["load_problems"])
    lines.append(f"load {held}")
    verdict = "FLAT" if report["flat"] and report["load_held"] else "NOT FLAT"
    lines.append(f"verdict: {verdict} (memory, consumer lag and outbox backlog)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    report = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS / f"soak-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print(f"\nwritten: {output}")
    if report.get("logs_kept_in"):
        print(f"service logs kept in {report['logs_kept_in']}")
    return 0 if report["flat"] and report["load_held"] else 1
