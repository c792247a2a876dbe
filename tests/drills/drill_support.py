"""The fault drills' machinery: real service processes, a load of real callers, a plain reader of the
events topics, and the check every drill ends with.

A :class:`Drill` starts every process of deploy/local/processes.toml as ``make run`` does (``python -m
<module>``, the same environment, dev keys), each on a schema and topics of its own, then drives a steady
load of creates over gRPC: safety clients register a site, a panic button at it and press it; industry
clients onboard an enterprise, register its device and take an order for it. Every request has one
request id for all its attempts; a caller waits at most ``CALL_TIMEOUT_S`` per attempt and retries
UNAVAILABLE with the same id up to ``MAX_ATTEMPTS`` attempts, as the platform's own peer clients do.
Each change carries a marker its event repeats (the site's name, the site id, the enterprise's credit
code), so every record on the topics can be traced back to the request that made it, acknowledged or not.

The drill itself (a test) breaks something while the load runs and repairs it; :meth:`Drill.finish` then
stops the load, waits for the outboxes to drain and checks :func:`check` (the rules are in its docstring).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from zoneinfo import ZoneInfo

import grpc
import psycopg
from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc
from cityhub.commerce.v1 import events_pb2 as commerce_events
from cityhub.govservice.v1 import events_pb2 as govservice_events
from cityhub.govservice.v1 import govservice_pb2, govservice_pb2_grpc
from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.kitchen.v1 import kitchen_pb2, kitchen_pb2_grpc
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from services.cli.run import ProcessSpec, load_processes
from services.platform.identifiers import credit_code_check_char
from services.platform.kafka import RECONNECT_BACKOFF_MAX_MS
from services.platform.security.settings import SecuritySettings, ensure_dev_keys
from services.platform.security.tokens import TokenIssuer
from tests.kafka_support import delete_topics
from tests.support import free_port, wait_until

__all__ = [
    "ALLOWED_CODES",
    "Change",
    "Drill",
    "DrillStack",
    "EventLog",
    "HeldTransaction",
    "OwnStack",
    "Verdict",
    "check",
    "free_port",
]

REPO = Path(__file__).resolve().parents[2]

# What a caller may hear during and after an outage: the answer, "retry" or "your deadline passed".
ALLOWED_CODES = frozenset({"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"})
CALL_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 6
RETRY_BACKOFF_S = (0.2, 0.4, 0.8, 1.6, 2.0)
# After a fault ends: every process SERVING (all health names) within this, and every event within that.
SERVING_BOUND_S = 45.0
EVENTS_BOUND_S = 60.0
HEALTH_NAMES = ("", "dependency.postgres", "dependency.kafka")
# SIGTERM: drained and gone within the services' default GRPC_SHUTDOWN_GRACE_S.
STOP_BOUND_S = 10.0
# Callers reconnect as the platform's peer clients do (grpc_client.retry_channel_options); retries are
# the caller's own, so every attempt is counted.
CALLER_CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5000),
]
# The health poller asks often, so the moment a process is back is not hidden behind reconnect backoff.
_HEALTH_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
]
# The settings naming each service's topics, so a drill's processes publish to topics of their own.
_TOPIC_SETTINGS = {
    "safety": {"SAFETY_EVENTS_TOPIC": "events"},
    "industry": {"INDUSTRY_EVENTS_TOPIC": "events", "INDUSTRY_TELEMETRY_TOPIC": "telemetry"},
    "kitchen": {"KITCHEN_EVENTS_TOPIC": "events", "KITCHEN_READINGS_TOPIC": "readings"},
    "commerce": {"COMMERCE_EVENTS_TOPIC": "events"},
    "govservice": {"GOVSERVICE_EVENTS_TOPIC": "events"},
    "hub": {"HUB_EVENTS_TOPIC": "events"},
}
# Processes the load does not write to: they derive from the others' events (the hub consumes every
# domain's topic). They are killed and restarted with the rest and must come back by themselves, but what
# they publish is not a change a caller asked for, so their topics and outboxes are not checked.
DERIVED = frozenset({"hub"})

# Each event type the load makes, and the field that names the request that made it (its marker).
MARKERS: dict[str, tuple[type[Message], str]] = {
    "cityhub.safety.v1.SiteRegistered": (safety_events.SiteRegistered, "name"),
    "cityhub.safety.v1.SensorRegistered": (safety_events.SensorRegistered, "site_id"),
    "cityhub.safety.v1.AlertRaised": (safety_events.AlertRaised, "site_id"),
    "cityhub.industry.v1.ParkRegistered": (industry_events.ParkRegistered, "park_id"),
    "cityhub.industry.v1.EnterpriseOnboarded": (industry_events.EnterpriseOnboarded, "credit_code"),
    "cityhub.industry.v1.DeviceRegistered": (industry_events.DeviceRegistered, "credit_code"),
    "cityhub.industry.v1.OrderStageChanged": (industry_events.OrderStageChanged, "credit_code"),
    "cityhub.kitchen.v1.KitchenRegistered": (kitchen_events.KitchenRegistered, "name"),
    "cityhub.kitchen.v1.DeliveryReceived": (kitchen_events.DeliveryReceived, "kitchen_id"),
    "cityhub.kitchen.v1.MealServed": (kitchen_events.MealServed, "kitchen_id"),
    "cityhub.commerce.v1.FederationCreated": (commerce_events.FederationCreated, "name"),
    "cityhub.commerce.v1.ChamberCreated": (commerce_events.ChamberCreated, "name"),
    "cityhub.commerce.v1.MembershipApplied": (commerce_events.MembershipApplied, "credit_code"),
    "cityhub.commerce.v1.ActivityHeld": (commerce_events.ActivityHeld, "title"),
    "cityhub.govservice.v1.ApplicationFiled": (govservice_events.ApplicationFiled, "credit_code"),
}


@dataclass(frozen=True)
class DrillStack:
    """Where the drill's processes find Kafka and PostgreSQL; ``shared`` stacks are tidied after a drill
    (its schemas and topics dropped), the drills' own stack is thrown away whole."""

    kafka_bootstrap: str
    database_url: str
    shared: bool


class OwnStack:
    """A Kafka and a PostgreSQL of the drills' own: ``cityhub infra``'s launcher on free ports and a scratch
    directory. Every launcher call runs in a fresh interpreter, as ``cityhub infra`` does: the launcher
    forks to run PostgreSQL's tools as another user, and forking this test process while its gRPC
    threads are busy can kill the child (``pg_ctl`` died of SIGBUS that way)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.kafka_port = free_port()
        self.pg_port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}}
        self.env = {
            **env,
            "CITYHUB_KAFKA_PORT": str(self.kafka_port),
            "CITYHUB_KAFKA_CONTROLLER_PORT": str(free_port()),
            "CITYHUB_PG_PORT": str(self.pg_port),
            "CITYHUB_LOCAL_DIR": str(root),
        }
        self.stack = DrillStack(
            f"127.0.0.1:{self.kafka_port}",
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/cityhub",
            shared=False,
        )

    def up(self) -> None:
        self._launcher("infra.ensure_up()")

    def freeze_kafka(self) -> None:
        """SIGSTOP the broker (pid from the launcher's pid file): what was sent to it stays in flight,
        unanswered, as with a broker that hangs before it dies."""
        os.kill(int((self.root / "run" / "kafka.pid").read_text()), signal.SIGSTOP)

    def down(self, *, kafka: bool = True, postgres: bool = True, crash: bool = False) -> None:
        self._launcher(f"infra.down(kafka={kafka}, postgres={postgres}, crash={crash})")

    def _launcher(self, call: str) -> None:
        result = subprocess.run(
            [sys.executable, "-c", f"from services.cli import infra; {call}"],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        sys.stdout.write(result.stdout + result.stderr)
        assert result.returncode == 0, f"{call} failed (exit {result.returncode}):\n{result.stderr[-3000:]}"


# --- processes -------------------------------------------------------------------------------------


class ServiceProcess:
    """One process of processes.toml, started (and restarted) with the same environment and port."""

    def __init__(self, spec: ProcessSpec, env: dict[str, str], log_path: Path) -> None:
        self.spec = spec
        self.name = spec.name
        self.env = env
        self.port = int(env["GRPC_PORT"])
        self.log_path = log_path
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._health_channel = grpc.insecure_channel(self.address, options=_HEALTH_CHANNEL_OPTIONS)
        self._health: Any = health_pb2_grpc.HealthStub(self._health_channel)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def schema(self) -> str:
        return self.env["SERVICE_NAME"]

    def start(self) -> None:
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"=== start {self.starts + 1} of {self.spec.module}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.spec.module],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, no closing, no flushing; the process is gone at once."""
        assert self.process is not None, f"{self.name} was never started"
        assert self.alive(), f"{self.name} is not running"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code, or None if it is still running after ``timeout_s``."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        self.terminate()
        if self.process is not None and self.wait_exit(30) is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._health_channel.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def health(self) -> dict[str, str]:
        """Each health name's status (or the gRPC code when the check itself failed)."""
        found = {}
        for name in HEALTH_NAMES:
            try:
                reply = self._health.Check(health_pb2.HealthCheckRequest(service=name), timeout=1)
                found[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as error:
                found[name] = f"rpc:{error.code().name}"
        return found

    def serving(self) -> bool:
        return all(status == "SERVING" for status in self.health().values())

    def log_tail(self, chars: int = 3000) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return f"(no log at {self.log_path})"


# --- the load --------------------------------------------------------------------------------------


@dataclass
class Change:
    """One state change a caller asked for: every attempt's status code, in order."""

    request_id: str
    service: str
    rpc: str
    ce_type: str
    marker: str
    started: float
    codes: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    ended: float = 0.0
    entity: str = ""  # the id the acknowledgement named (the event's subject)

    @property
    def acknowledged(self) -> bool:
        return bool(self.codes) and self.codes[-1] == "OK"

    @property
    def final(self) -> str:
        return self.codes[-1] if self.codes else "NOT_SENT"


def _credit_code() -> str:
    body = "91331004" + "".join(secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + credit_code_check_char(body)


class LoadDriver:
    """Client threads sending a steady stream of creates, each on a channel of its own."""

    def __init__(
        self,
        addresses: dict[str, str],
        token: str,
        tag: str,
        *,
        threads_per_service: int = 2,
        rate_per_thread: float = 8.0,
        max_changes_per_thread: int = 3000,
    ) -> None:
        self._addresses = addresses
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._tag = tag
        self._threads_per_service = threads_per_service
        self._interval = 1.0 / rate_per_thread
        self._max_changes = max_changes_per_thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures: list[BaseException] = []
        self.changes: list[Change] = []
        self.park_id = ""
        self.school_id = ""
        self.chamber_id = ""

    # One attempt loop for every RPC: the caller's deadline, its retries, and the record of each answer.
    def call(
        self,
        *,
        service: str,
        rpc: str,
        ce_type: str,
        marker: str,
        request_id: str,
        send: Callable[[float], Any],
    ) -> tuple[Any | None, Change]:
        change = Change(request_id, service, rpc, ce_type, marker, time.monotonic())
        with self._lock:
            self.changes.append(change)
        for attempt in range(MAX_ATTEMPTS):
            try:
                response = send(CALL_TIMEOUT_S)
            except grpc.RpcError as error:
                code = error.code()
                change.codes.append(code.name)
                if len(change.details) < 3:
                    change.details.append(f"{code.name}: {error.details()}")
                if code is not grpc.StatusCode.UNAVAILABLE or attempt + 1 == MAX_ATTEMPTS:
                    break
                time.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
            else:
                change.codes.append("OK")
                change.ended = time.monotonic()
                return response, change
        change.ended = time.monotonic()
        return None, change

    def _set_up_one(
        self,
        service: str,
        stub_factory: Callable[[Any], Any],
        *,
        rpc: str,
        ce_type: str,
        marker: str,
        request: Any,
    ) -> tuple[Any, Change]:
        """One create everything after it depends on, made before the load starts: it must succeed."""
        with grpc.insecure_channel(self._addresses[service], options=CALLER_CHANNEL_OPTIONS) as channel:
            method = getattr(stub_factory(channel), rpc)
            reply, change = self.call(
                service=service,
                rpc=rpc,
                ce_type=ce_type,
                marker=marker,
                request_id=request.request_id,
                send=lambda t: method(request, metadata=self._metadata, timeout=t),
            )
        assert reply is not None, f"the drill's {rpc} failed: {change}"
        return reply, change

    def set_up(self) -> None:
        """What the clients share, registered before the load starts: industry's park, commerce's chamber,
        and the school whose kitchens the kitchen clients register (kitchen checks it with safety)."""
        reply, change = self._set_up_one(
            "industry",
            industry_pb2_grpc.IndustryServiceStub,
            ce_type="cityhub.industry.v1.ParkRegistered",
            rpc="RegisterPark",
            # The park's id (its event's marker) is known only from the answer.
            marker="",
            request=industry_pb2.RegisterParkRequest(
                request_id=f"drill-{self._tag}-park", name="Drill park", division_code="331004"
            ),
        )
        self.park_id = change.marker = change.entity = reply.park.park_id
        if "commerce" in self._addresses:
            name = f"Drill federation {self._tag}"
            reply, change = self._set_up_one(
                "commerce",
                commerce_pb2_grpc.CommerceServiceStub,
                ce_type="cityhub.commerce.v1.FederationCreated",
                rpc="CreateFederation",
                marker=name,
                request=commerce_pb2.CreateFederationRequest(
                    request_id=f"drill-{self._tag}-federation",
                    name=name,
                    level=commerce_pb2.FEDERATION_LEVEL_PROVINCE,
                    division_code="330000",
                ),
            )
            federation = reply.federation
            change.entity = federation.federation_id
            name = f"Drill chamber {self._tag}"
            reply, change = self._set_up_one(
                "commerce",
                commerce_pb2_grpc.CommerceServiceStub,
                ce_type="cityhub.commerce.v1.ChamberCreated",
                rpc="CreateChamber",
                marker=name,
                request=commerce_pb2.CreateChamberRequest(
                    request_id=f"drill-{self._tag}-chamber",
                    federation_id=federation.federation_id,
                    name=name,
                    kind=commerce_pb2.CHAMBER_KIND_TRADE,
                    sector="MACHINERY",
                    join_rule=commerce_pb2.JOIN_RULE_AUTO_APPROVE_KNOWN,
                ),
            )
            self.chamber_id = change.entity = reply.chamber.chamber_id
        if "kitchen" in self._addresses:
            name = f"Drill school {self._tag}"
            reply, change = self._set_up_one(
                "safety",
                safety_pb2_grpc.SafetyServiceStub,
                ce_type="cityhub.safety.v1.SiteRegistered",
                rpc="RegisterSite",
                marker=name,
                request=safety_pb2.RegisterSiteRequest(
                    request_id=f"drill-{self._tag}-school",
                    name=name,
                    kind=safety_pb2.SITE_KIND_SCHOOL,
                    address="18 Tongyu Road, Luqiao District, Taizhou",
                    division_code="331004",
                    town="Luqiao Street",
                    duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
                ),
            )
            self.school_id = change.entity = reply.site.site_id

    @contextlib.contextmanager
    def _client(
        self, service: str, stub_factory: Callable[[Any], Any], letter: str, index: int
    ) -> Iterator[tuple[Any, list[float], Iterator[str]]]:
        """A load client's stub on a channel of its own, its pacing, and the request-id stem of each of
        its chains."""
        with grpc.insecure_channel(self._addresses[service], options=CALLER_CHANNEL_OPTIONS) as channel:
            rids = (f"drill-{self._tag}-{letter}{index}-{number}" for number in self._chains())
            yield stub_factory(channel), [time.monotonic()], rids

    def start(self) -> None:
        clients = {"safety": self._safety_client, "industry": self._industry_client}
        if "kitchen" in self._addresses:
            clients["kitchen"] = self._kitchen_client
        if "commerce" in self._addresses:
            clients["commerce"] = self._commerce_client
        if "govservice" in self._addresses:
            clients["govservice"] = self._govservice_client
        for service, client in clients.items():
            for index in range(self._threads_per_service):
                thread = threading.Thread(
                    target=self._guarded, args=(client, index), name=f"drill-{service}-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        """No new requests; the ones under way finish their attempts (bounded by the retry budget)."""
        self._stop.set()
        budget = MAX_ATTEMPTS * (CALL_TIMEOUT_S + max(RETRY_BACKOFF_S)) + 10
        for thread in self._threads:
            thread.join(timeout=budget)
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        assert not stuck, f"load threads did not stop within {budget}s: {stuck}"
        if self._failures:
            raise self._failures[0]

    def _guarded(self, client: Callable[[int], None], index: int) -> None:
        try:
            client(index)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread in stop()
            self._failures.append(error)

    def _step(
        self,
        due: list[float],
        *,
        service: str,
        rpc: str,
        ce_type: str,
        marker: str,
        request: Any,
        method: Callable[..., Any],
        entity_of: Callable[[Any], str],
    ) -> Any | None:
        """One paced request: wait for its turn (None when the load is stopping), send it, note the id
        the acknowledgement names."""
        delay = due[0] - time.monotonic()
        if (delay > 0 and self._stop.wait(delay)) or self._stop.is_set():
            return None
        due[0] = max(due[0] + self._interval, time.monotonic())
        md = self._metadata
        reply, change = self.call(
            service=service,
            rpc=rpc,
            ce_type=ce_type,
            marker=marker,
            request_id=request.request_id,
            send=lambda t: method(request, metadata=md, timeout=t),
        )
        if reply is not None:
            change.entity = entity_of(reply)
        return reply

    def _chains(self) -> range:
        return range(self._max_changes // 3)

    def _safety_client(self, index: int) -> None:
        with self._client("safety", safety_pb2_grpc.SafetyServiceStub, "s", index) as (stub, due, rids):
            for rid in rids:
                name = f"Drill site {rid}"
                site = self._step(
                    due,
                    service="safety",
                    rpc="RegisterSite",
                    ce_type="cityhub.safety.v1.SiteRegistered",
                    marker=name,
                    request=safety_pb2.RegisterSiteRequest(
                        request_id=f"{rid}-site",
                        name=name,
                        kind=safety_pb2.SITE_KIND_SCHOOL,
                        address="18 Tongyu Road, Luqiao District, Taizhou",
                        division_code="331004",
                        town="Luqiao Street",
                        duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
                    ),
                    method=stub.RegisterSite,
                    entity_of=lambda reply: str(reply.site.site_id),
                )
                if site is None:
                    continue
                site_id = str(site.site.site_id)
                sensor = self._step(
                    due,
                    service="safety",
                    rpc="RegisterSensor",
                    ce_type="cityhub.safety.v1.SensorRegistered",
                    marker=site_id,
                    request=safety_pb2.RegisterSensorRequest(
                        request_id=f"{rid}-sensor",
                        site_id=site_id,
                        kind=safety_pb2.SENSOR_KIND_PANIC_BUTTON,
                        zone="Gate",
                        name="Gate panic button",
                    ),
                    method=stub.RegisterSensor,
                    entity_of=lambda reply: str(reply.sensor.sensor_id),
                )
                if sensor is None:
                    continue
                self._step(
                    due,
                    service="safety",
                    rpc="RaiseAlarm",
                    ce_type="cityhub.safety.v1.AlertRaised",
                    marker=site_id,
                    request=safety_pb2.RaiseAlarmRequest(
                        request_id=f"{rid}-alarm", site_id=site_id, sensor_id=sensor.sensor.sensor_id
                    ),
                    method=stub.RaiseAlarm,
                    entity_of=lambda reply: str(reply.alert.alert_id),
                )

    def _industry_client(self, index: int) -> None:
        with self._client("industry", industry_pb2_grpc.IndustryServiceStub, "i", index) as (stub, due, rids):
            for rid in rids:
                code = _credit_code()
                enterprise = self._step(
                    due,
                    service="industry",
                    rpc="OnboardEnterprise",
                    ce_type="cityhub.industry.v1.EnterpriseOnboarded",
                    marker=code,
                    request=industry_pb2.OnboardEnterpriseRequest(
                        request_id=f"{rid}-enterprise",
                        credit_code=code,
                        name=f"Drill enterprise {rid}",
                        sector=industry_pb2.SECTOR_MACHINERY,
                        park_id=self.park_id,
                        address="Luqiao",
                    ),
                    method=stub.OnboardEnterprise,
                    entity_of=lambda reply: str(reply.enterprise.credit_code),
                )
                if enterprise is None:
                    continue
                device = self._step(
                    due,
                    service="industry",
                    rpc="RegisterDevice",
                    ce_type="cityhub.industry.v1.DeviceRegistered",
                    marker=code,
                    request=industry_pb2.RegisterDeviceRequest(
                        request_id=f"{rid}-device",
                        serial_number=f"DRILL-{rid}",
                        credit_code=code,
                        workshop="W1",
                        machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
                        rated_power_kw=15.0,
                        ideal_cycle_seconds=30.0,
                        sample_interval_ms=1000,
                    ),
                    method=stub.RegisterDevice,
                    entity_of=lambda reply: str(reply.device.device_id),
                )
                if device is None:
                    continue
                self._step(
                    due,
                    service="industry",
                    rpc="CreateOrder",
                    ce_type="cityhub.industry.v1.OrderStageChanged",
                    marker=code,
                    request=industry_pb2.CreateOrderRequest(
                        request_id=f"{rid}-order",
                        credit_code=code,
                        customer=f"Drill customer {rid}",
                        product="Gearbox housing",
                        promised_date="2031-06-30",
                    ),
                    method=stub.CreateOrder,
                    entity_of=lambda reply: str(reply.order.order_id),
                )

    def _kitchen_client(self, index: int) -> None:
        """A kitchen for the drill's school (checked with safety), a lot received, a meal served of it."""
        with self._client("kitchen", kitchen_pb2_grpc.KitchenServiceStub, "k", index) as (stub, due, rids):
            for rid in rids:
                name = f"Drill kitchen {rid}"
                kitchen = self._step(
                    due,
                    service="kitchen",
                    rpc="RegisterKitchen",
                    ce_type="cityhub.kitchen.v1.KitchenRegistered",
                    marker=name,
                    request=kitchen_pb2.RegisterKitchenRequest(
                        request_id=f"{rid}-kitchen",
                        site_id=self.school_id,
                        name=name,
                        operator=kitchen_pb2.KitchenOperator(
                            kind=kitchen_pb2.OPERATOR_KIND_SCHOOL_RUN, name="The school"
                        ),
                        meals_per_day=600,
                        shifts=[kitchen_pb2.Shift(name="lunch", start_time="09:00", end_time="13:00")],
                    ),
                    method=stub.RegisterKitchen,
                    entity_of=lambda reply: str(reply.kitchen.kitchen_id),
                )
                if kitchen is None:
                    continue
                kitchen_id = str(kitchen.kitchen.kitchen_id)
                delivery = self._step(
                    due,
                    service="kitchen",
                    rpc="ReceiveDelivery",
                    ce_type="cityhub.kitchen.v1.DeliveryReceived",
                    marker=kitchen_id,
                    request=kitchen_pb2.ReceiveDeliveryRequest(
                        request_id=f"{rid}-delivery",
                        kitchen_id=kitchen_id,
                        supplier_credit_code=_credit_code(),
                        product="Rice",
                        lot_number=f"LOT-{rid}",
                        quantity=50.0,
                        unit="kg",
                        production_date="2026-01-01",
                        shelf_life_days=3650,
                        certificate_ref=f"CERT-{rid}",
                    ),
                    method=stub.ReceiveDelivery,
                    entity_of=lambda reply: str(reply.delivery.delivery_id),
                )
                if delivery is None:
                    continue
                self._step(
                    due,
                    service="kitchen",
                    rpc="RecordMeal",
                    ce_type="cityhub.kitchen.v1.MealServed",
                    marker=kitchen_id,
                    request=kitchen_pb2.RecordMealRequest(
                        request_id=f"{rid}-meal",
                        kitchen_id=kitchen_id,
                        meal_date=datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat(),
                        sitting=kitchen_pb2.SITTING_LUNCH,
                        dishes=[
                            kitchen_pb2.Dish(
                                name="Rice",
                                ingredients=[
                                    kitchen_pb2.IngredientUse(
                                        delivery_id=delivery.delivery.delivery_id, quantity=5.0, unit="kg"
                                    )
                                ],
                                retained_sample_grams=150.0,
                            )
                        ],
                        servings=100,
                    ),
                    method=stub.RecordMeal,
                    entity_of=lambda reply: str(reply.meal.meal_id),
                )

    def _commerce_client(self, index: int) -> None:
        """An enterprise industry does not know applies to the chamber (kept pending, after commerce asked
        industry over gRPC), and the chamber holds an activity."""
        with self._client("commerce", commerce_pb2_grpc.CommerceServiceStub, "c", index) as (stub, due, rids):
            for rid in rids:
                code = _credit_code()
                applied = self._step(
                    due,
                    service="commerce",
                    rpc="ApplyForMembership",
                    ce_type="cityhub.commerce.v1.MembershipApplied",
                    marker=code,
                    request=commerce_pb2.ApplyForMembershipRequest(
                        request_id=f"{rid}-join",
                        chamber_id=self.chamber_id,
                        credit_code=code,
                        enterprise_name=f"Drill member {rid}",
                    ),
                    method=stub.ApplyForMembership,
                    entity_of=lambda reply: str(reply.membership.membership_id),
                )
                if applied is None:
                    continue
                starts = datetime.now(ZoneInfo("UTC")) + timedelta(days=30)
                title = f"Drill forum {rid}"
                self._step(
                    due,
                    service="commerce",
                    rpc="CreateActivity",
                    ce_type="cityhub.commerce.v1.ActivityHeld",
                    marker=title,
                    request=commerce_pb2.CreateActivityRequest(
                        request_id=f"{rid}-activity",
                        chamber_id=self.chamber_id,
                        title=title,
                        place="Luqiao",
                        starts_at=Timestamp(seconds=int(starts.timestamp())),
                        capacity=50,
                        sign_up_deadline=Timestamp(seconds=int((starts - timedelta(days=1)).timestamp())),
                    ),
                    method=stub.CreateActivity,
                    entity_of=lambda reply: str(reply.activity.activity_id),
                )

    def _govservice_client(self, index: int) -> None:
        """An enterprise's business-licence change filed in the district for Yiwu (partners from the seed
        file; govservice asks commerce about the enterprise over gRPC)."""
        with self._client("govservice", govservice_pb2_grpc.CrossRegionServiceStub, "g", index) as (
            stub,
            due,
            rids,
        ):
            for rid in rids:
                code = _credit_code()
                self._step(
                    due,
                    service="govservice",
                    rpc="FileApplication",
                    ce_type="cityhub.govservice.v1.ApplicationFiled",
                    marker=code,
                    request=govservice_pb2.FileApplicationRequest(
                        request_id=f"{rid}-file",
                        item_code="business_licence_change",
                        filing_region="331004",
                        handling_region="330782",
                        enterprise=govservice_pb2.EnterpriseApplicant(
                            credit_code=code, name=f"Drill enterprise {rid}"
                        ),
                        materials=[
                            "change_application_form",
                            "business_licence_original",
                            "shareholder_resolution",
                            "legal_representative_id",
                        ],
                    ),
                    method=stub.FileApplication,
                    entity_of=lambda reply: str(reply.application.application_no),
                )


# --- reading the topics back ----------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record on a drill's events topic, with the moment this reader first held it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    ce_id: str
    ce_type: str
    ce_subject: str
    at: float

    def marker(self) -> str | None:
        """The field that names the request behind the event (None for a type the load never makes)."""
        known = MARKERS.get(self.ce_type)
        if known is None:
            return None
        message_type, field_name = known
        return str(getattr(message_type.FromString(self.value), field_name))


class EventLog:
    """A plain consumer (no group, no commits) reading every partition of the drill's events topics from
    the beginning in a thread of its own, noting when it first held each record. It rides out a broker
    restart by polling again."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._consumer: Any = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            # Back within a second of the broker, as the services' clients are: the time a change
            # becomes readable is measured by this reader, not by its reconnect backoff.
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
        )
        self._partitions: list[Any] = []
        for topic in topics:
            ids = wait_until(
                lambda t=topic: self._consumer.partitions_for_topic(t),  # type: ignore[misc]
                timeout_s=30,
                what=f"partitions of {topic}",
            )
            self._partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self.poll_errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-event-log", daemon=True)
        self._thread.start()

    def _take(self, batch: dict[Any, list[Any]]) -> None:
        now = time.monotonic()
        new = []
        for part in batch.values():
            for record in part:
                headers = {k: v.decode(errors="replace") for k, v in record.headers or []}
                new.append(
                    Record(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=bytes(record.key or b""),
                        value=bytes(record.value or b""),
                        ce_id=headers.get("ce_id", ""),
                        ce_type=headers.get("ce_type", ""),
                        ce_subject=headers.get("ce_subject", ""),
                        at=now,
                    )
                )
        with self._lock:
            self._records.extend(new)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._take(self._consumer.poll(timeout_ms=100))
            except Exception:  # noqa: BLE001 - a broker that is away is waited out, not a failure
                self.poll_errors += 1
                self._stop.wait(0.2)

    def ids(self) -> set[str]:
        with self._lock:
            return {record.ce_id for record in self._records}

    def wait_for(self, ce_ids: set[str], *, timeout_s: float, what: str) -> None:
        wait_until(lambda: ce_ids <= self.ids(), timeout_s=timeout_s, what=what, interval_s=0.1)

    def read_to_end(self, timeout_s: float = 60.0) -> list[Record]:
        """Stop the thread, then read on until every partition's end as it is now; every record."""
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the event reader did not stop"
        ends = self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < ends[tp] for tp in self._partitions):
            assert time.monotonic() < deadline, (
                f"could not read the events topics to their end in {timeout_s}s"
            )
            self._take(self._consumer.poll(timeout_ms=200))
        with self._lock:
            return list(self._records)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self._consumer.close(autocommit=False)


# --- the drill's own transactions on the services' databases ---------------------------------------


class HeldTransaction:
    """A transaction of the drill's own on a service's schema, open until :meth:`release` (a rollback)."""

    def __init__(self, database_url: str, schema: str) -> None:
        self._conn = psycopg.connect(database_url, autocommit=False)
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        self.event_ids: set[str] = set()

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        return self._conn.execute(statement.encode()).fetchall()

    def release(self) -> None:
        if not self._conn.closed:
            self._conn.rollback()
            self._conn.close()


def hold_relay(database_url: str, schema: str) -> HeldTransaction:
    """Take the outbox relay's lock of ``schema`` (the one each relay batch runs under, see
    services/platform/outbox.py), so its relay finds it taken and publishes nothing until released:
    commits go on, their rows wait unsent."""
    held = HeldTransaction(database_url, schema)
    held.execute(
        "SELECT pg_advisory_xact_lock(hashtext('cityhub_outbox_relay'), 'outbox'::regclass::oid::int)"
    )
    return held


def lock_unsent_rows(database_url: str, schema: str) -> HeldTransaction:
    """Lock every unsent outbox row of ``schema``: the relay can still read and publish them, but its
    marking them sent waits for this transaction."""
    held = HeldTransaction(database_url, schema)
    rows = held.execute("SELECT event_id FROM outbox WHERE sent_at IS NULL ORDER BY id FOR UPDATE")
    held.event_ids = {str(row[0]) for row in rows}
    return held


def unsent_event_ids(database_url: str, schema: str) -> set[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        query = sql.SQL("SELECT event_id FROM {}.outbox WHERE sent_at IS NULL").format(sql.Identifier(schema))
        return {str(row[0]) for row in conn.execute(query).fetchall()}


# --- the check -------------------------------------------------------------------------------------


@dataclass
class Verdict:
    problems: list[str]
    figures: dict[str, Any]
    copies: dict[str, int]  # records per ce_id


def check(changes: Sequence[Change], records: Sequence[Record]) -> Verdict:
    """The rules every drill ends with, over every change a caller asked for and every record on the
    drill's events topics, read from the beginning once the outboxes are drained. An event is its
    ``ce_id``; more records with one ce_id are one event delivered again (the relay's at-least-once
    window between Kafka's acknowledgement and marking the row sent), which the platform's consumers drop
    by ce_id.

    1. Acknowledged (the last attempt answered OK): its event appears exactly once, one ce_id, and its
       subject is the id the acknowledgement named.
    2. Not acknowledged (the last attempt answered UNAVAILABLE, or DEADLINE_EXCEEDED, after the bounded
       retries): the caller cannot know whether an attempt committed (the process may have died after
       the commit, the answer may have been lost, the deadline may have passed during the commit), so
       its event appears at most once, never twice, however many of its attempts reached the service.
    3. Nothing else: every event on the topics belongs to a change a caller asked for. (No change is
       still within its deadline at the check: the load has stopped and every request has its answer.)
    4. Copies of one ce_id are the same record: same key, type, subject and bytes.
    5. Every attempt was answered OK, UNAVAILABLE or DEADLINE_EXCEEDED: never INTERNAL, UNKNOWN,
       RESOURCE_EXHAUSTED, nor ALREADY_EXISTS / FAILED_PRECONDITION for a retry of a change that did
       commit (its request id must make the retry a replay).
    """
    by_id: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_id[record.ce_id].append(record)
    problems = _copies_differing(by_id)
    events: dict[tuple[str, str], list[Record]] = defaultdict(list)
    unexpected: list[Record] = []
    for copies in by_id.values():
        marker = copies[0].marker()
        if marker is None:
            unexpected.append(copies[0])
        else:
            events[(copies[0].ce_type, marker)].append(copies[0])
    wanted = {(change.ce_type, change.marker) for change in changes}
    unexpected.extend(record for key, found in events.items() if key not in wanted for record in found)
    problems.extend(
        f"rule 3: event {record.ce_type} {record.ce_id} ({record.ce_subject}) has no request"
        for record in unexpected[:10]
    )
    tally: Counter[str] = Counter()
    for change in changes:
        problems.extend(_change_problems(change, events.get((change.ce_type, change.marker), []), tally))
    figures = {
        "changes": {
            "sent": len(changes),
            "acknowledged": sum(1 for change in changes if change.acknowledged),
            "final_codes": dict(sorted(Counter(change.final for change in changes).items())),
            "attempt_codes": dict(sorted(Counter(code for c in changes for code in c.codes).items())),
            "retried": sum(1 for change in changes if len(change.codes) > 1),
            "unacknowledged_but_committed": tally["committed_unacknowledged"],
            "by_rpc": dict(sorted(Counter(change.rpc for change in changes).items())),
        },
        "events": {
            "records": len(records),
            "distinct": len(by_id),
            "redelivered_records": len(records) - len(by_id),
            "duplicates": tally["duplicates"],
            "missing_acknowledged": tally["missing"],
            "without_request": len(unexpected),
        },
    }
    copies_per_id = {ce_id: len(copies) for ce_id, copies in by_id.items()}
    return Verdict(problems, figures, copies_per_id)


def _copies_differing(by_id: dict[str, list[Record]]) -> list[str]:
    """Rule 4: every copy of a ce_id is the same record."""

    def same(record: Record) -> tuple[bytes, bytes, str, str]:
        return (record.key, record.value, record.ce_type, record.ce_subject)

    return [
        f"rule 4: records with ce_id {ce_id} differ: {copies[0]} vs {other}"
        for ce_id, copies in by_id.items()
        for other in copies[1:]
        if same(other) != same(copies[0])
    ]


def _change_problems(change: Change, found: list[Record], tally: Counter[str]) -> list[str]:
    """Rules 1, 2 and 5 for one change, given the distinct events carrying its marker."""
    problems = []
    if len(found) > 1:
        tally["duplicates"] += len(found) - 1
        problems.append(
            f"rule 1/2: {change.rpc} {change.request_id} ({change.final}) made {len(found)} events: "
            f"{sorted(r.ce_id for r in found)}"
        )
    if change.acknowledged and not found:
        tally["missing"] += 1
        problems.append(f"rule 1: acknowledged {change.rpc} {change.request_id} has no event")
    elif change.acknowledged and change.entity and found[0].ce_subject != change.entity:
        problems.append(
            f"rule 1: {change.rpc} {change.request_id} acknowledged {change.entity} but its event is "
            f"about {found[0].ce_subject}"
        )
    elif not change.acknowledged and found:
        tally["committed_unacknowledged"] += 1
    bad = [code for code in change.codes if code not in ALLOWED_CODES]
    if bad:
        problems.append(f"rule 5: {change.rpc} {change.request_id} answered {bad}: {change.details}")
    return problems


def first_seen(changes: Sequence[Change], records: Sequence[Record]) -> dict[int, float]:
    """When this reader first held each change's event (by the change's index in ``changes``)."""
    earliest: dict[tuple[str, str], float] = {}
    for record in records:
        marker = record.marker()
        if marker is not None:
            key = (record.ce_type, marker)
            earliest[key] = min(earliest.get(key, record.at), record.at)
    return {
        index: earliest[(change.ce_type, change.marker)]
        for index, change in enumerate(changes)
        if (change.ce_type, change.marker) in earliest
    }


def longest_gap(moments: Sequence[float]) -> float:
    ordered = sorted(moments)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)


class HealthWatch:
    """Samples every process's health names a few times a second, for the figures: how long each was
    not SERVING on some name, and which names those were."""

    def __init__(self, processes: dict[str, ServiceProcess], interval_s: float = 0.25) -> None:
        self._processes = processes
        self._interval = interval_s
        self.samples: dict[str, list[tuple[float, dict[str, str]]]] = {name: [] for name in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-health-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, process in self._processes.items():
                self.samples[name].append((time.monotonic(), process.health()))
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def summary(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for name, samples in self.samples.items():
            down = 0.0
            names: set[str] = set()
            for (at, statuses), (after, _) in itertools.pairwise(samples):
                off = {health for health, status in statuses.items() if status != "SERVING"}
                if off:
                    down += after - at
                    names |= off
            found[name] = {"not_serving_s": round(down, 2), "not_serving_names": sorted(names)}
        return found


# --- the drill -------------------------------------------------------------------------------------


class Drill:
    """Every process of processes.toml under load on ``stack``; the test breaks and repairs something
    between :meth:`__enter__` and :meth:`finish`, marking the fault with :meth:`fault_begins` and
    :meth:`fault_ends`."""

    def __init__(
        self,
        name: str,
        stack: DrillStack,
        workdir: Path,
        results: list[dict[str, Any]],
        *,
        fault: str,
        threads_per_service: int = 2,
        rate_per_thread: float = 8.0,
    ) -> None:
        self.name = name
        self.stack = stack
        self.workdir = workdir
        self.results = results
        self.fault = fault
        self.tag = secrets.token_hex(3)
        self.processes: dict[str, ServiceProcess] = {}
        self.topics: dict[str, dict[str, str]] = {}
        self._threads_per_service = threads_per_service
        self._rate_per_thread = rate_per_thread
        self.driver: LoadDriver | None = None
        self.events: EventLog | None = None
        self.health: HealthWatch | None = None
        self.began = 0.0
        self.fault_began: float | None = None
        self.fault_ended: float | None = None
        self.serving_after_s: float | None = None
        self.extra: dict[str, Any] = {}
        self.figures: dict[str, Any] = {}

    # Setting up: processes as `make run` starts them, each on a schema and topics of this drill's own.
    def __enter__(self) -> Drill:
        try:
            self._start()
        except BaseException:
            self._tear_down()
            raise
        return self

    def _start(self) -> None:
        ensure_dev_keys()
        specs = load_processes()
        assert {spec.name for spec in specs} >= {"safety", "industry"}, "processes.toml lost a service"
        ports = {spec.name: free_port() for spec in specs}
        # Services that call each other find their peers where the drill put them, not at make run's ports.
        peers = {f"{name.upper()}_GRPC_ADDRESS": f"127.0.0.1:{port}" for name, port in ports.items()}
        for spec in specs:
            schema = f"drill_{spec.name}_{self.tag}"
            topics = {
                setting: f"drill.{self.tag}.{spec.name}.{kind}"
                for setting, kind in _TOPIC_SETTINGS.get(spec.name, {}).items()
            }
            # The hub reads the drill's own domain topics.
            inputs = {
                f"HUB_{name.upper()}_EVENTS_TOPIC": f"drill.{self.tag}.{name}.events"
                for name in _TOPIC_SETTINGS
                if name not in DERIVED
            }
            env = {
                **os.environ,
                # What services/cli/run.py gives every process ...
                "SERVICE_NAME": schema,
                "KAFKA_BOOTSTRAP_SERVERS": self.stack.kafka_bootstrap,
                "DATABASE_URL": self.stack.database_url,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(ports[spec.name]),
                "METRICS_PORT": "0",
                "LOG_FORMAT": "json",
                # As `cityhub run` gives it: a restarted process is the same static group member.
                "KAFKA_GROUP_INSTANCE_ID": f"drill-{schema}",
                "CITYHUB_DEV_KEYS": "true",
                # ... its own topics, so the drill reads back only what it made ...
                **topics,
                **(inputs if spec.name in DERIVED else {}),
                # ... and what processes.toml adds for it, its peers at the drill's addresses.
                **spec.env,
                **{key: value for key, value in peers.items() if key in spec.env},
            }
            self.topics[spec.name] = topics
            self.processes[spec.name] = ServiceProcess(spec, env, self.workdir / f"{spec.name}.log")
        for process in self.processes.values():
            process.start()
        for process in self.processes.values():
            self._wait_serving(process, timeout_s=120, what="to start")
        token = TokenIssuer.from_settings(SecuritySettings(dev_keys=True)).issue(
            sub=f"drill-gateway-{self.tag}", roles=["service"], ttl_s=3600
        )
        self.driver = LoadDriver(
            {name: process.address for name, process in self.processes.items()},
            token,
            self.tag,
            threads_per_service=self._threads_per_service,
            rate_per_thread=self._rate_per_thread,
        )
        self.driver.set_up()
        event_topics = [
            topics[s]
            for name, topics in self.topics.items()
            if name not in DERIVED
            for s in topics
            if s.endswith("EVENTS_TOPIC")
        ]
        self.events = EventLog(self.stack.kafka_bootstrap, event_topics)
        self.health = HealthWatch(self.processes)
        self.began = time.monotonic()
        self.driver.start()

    @property
    def loaded(self) -> dict[str, ServiceProcess]:
        """The processes the load writes to (every one but the derived ones, see DERIVED)."""
        return {name: process for name, process in self.processes.items() if name not in DERIVED}

    def _wait_serving(self, process: ServiceProcess, *, timeout_s: float, what: str) -> None:
        def ready() -> bool:
            assert process.alive(), f"{process.name} exited:\n{process.log_tail()}"
            return process.serving()

        try:
            wait_until(ready, timeout_s=timeout_s, what=f"{process.name} {what}", interval_s=0.1)
        except AssertionError as error:
            raise AssertionError(f"{error}\nhealth: {process.health()}\n{process.log_tail()}") from None

    # The drill's timeline.
    def under_load(self, seconds: float) -> None:
        time.sleep(seconds)

    def fault_begins(self) -> None:
        self.fault_began = time.monotonic()

    def fault_ends(self) -> None:
        self.fault_ended = time.monotonic()

    def wait_serving(self) -> None:
        """Every process reports SERVING on every health name again, by itself, within the bound."""
        assert self.fault_ended is not None, "fault_ends() first"
        for process in self.processes.values():
            self._wait_serving(process, timeout_s=SERVING_BOUND_S, what="to report SERVING after the fault")
        self.serving_after_s = time.monotonic() - self.fault_ended

    # The end: stop the load, let the outboxes drain, read everything back and check it.
    def finish(self, *, restarted: Sequence[str] = ()) -> Verdict:
        assert self.driver is not None, "not entered"
        assert self.events is not None, "not entered"
        assert self.health is not None, "not entered"
        assert self.fault_began is not None, "no fault was marked"
        assert self.fault_ended is not None, "the fault never ended"
        if self.serving_after_s is None:
            self.wait_serving()
        self.driver.stop()
        stopped = time.monotonic()
        self.health.stop()
        problems: list[str] = []
        for name, process in self.processes.items():
            expected = 2 if name in restarted else 1
            if not process.alive():
                problems.append(f"{name} is not running:\n{process.log_tail()}")
            if process.starts != expected:
                problems.append(f"{name} was started {process.starts} times, not {expected}")
        drained = True
        for process in self.processes.values():
            try:
                wait_until(
                    lambda p=process: not unsent_event_ids(self.stack.database_url, p.schema),  # type: ignore[misc]
                    timeout_s=EVENTS_BOUND_S,
                    what=f"{process.name}'s outbox to drain",
                    interval_s=0.2,
                )
            except AssertionError as error:
                drained = False
                problems.append(f"{error}\n{process.log_tail()}")
        records = self.events.read_to_end()
        # Last: each process still stops as SIGTERM promises, drained and with exit code 0 in its grace.
        for process in self.processes.values():
            process.terminate()
        exits: dict[str, dict[str, Any]] = {}
        signalled = time.monotonic()
        for name, process in self.processes.items():
            code = process.wait_exit(STOP_BOUND_S + 20)
            exits[name] = {"exit_code": code, "stop_s": round(time.monotonic() - signalled, 2)}
            if code != 0 or time.monotonic() - signalled > STOP_BOUND_S:
                problems.append(
                    f"{name} did not stop cleanly on SIGTERM: {exits[name]}\n{process.log_tail()}"
                )
        changes = list(self.driver.changes)
        verdict = check(changes, records)
        verdict.problems[:0] = problems
        seen = first_seen(changes, records)
        # Changes acknowledged by the end of the fault: how long after it the last of them was readable
        # (None when one never was: rule 1 then names it).
        acked_by_end = [i for i, c in enumerate(changes) if c.acknowledged and c.ended <= self.fault_ended]
        last_readable = (
            round(
                max(0.0, max((seen[i] for i in acked_by_end), default=self.fault_ended) - self.fault_ended), 2
            )
            if all(i in seen for i in acked_by_end)
            else None
        )
        oks = defaultdict(list)
        for change in changes:
            if change.acknowledged:
                oks[change.service].append(change.ended)
        figures: dict[str, Any] = {
            "drill": self.name,
            "fault": self.fault,
            "stack": "shared" if self.stack.shared else "own",
            "passed": not verdict.problems,
            "seconds": {
                "load": round(stopped - self.began, 2),
                "fault": round(self.fault_ended - self.fault_began, 2),
                "serving_after_fault": round(self.serving_after_s or 0.0, 2),
                "last_acked_event_readable_after_fault": last_readable,
                "longest_wait_between_oks": {
                    service: round(longest_gap(moments), 2) for service, moments in sorted(oks.items())
                },
            },
            **verdict.figures,
            "outboxes_drained": drained,
            "processes": {
                name: {"starts": process.starts, **exits[name], **self.health.summary()[name]}
                for name, process in self.processes.items()
            },
            "event_reader_poll_errors": self.events.poll_errors,
            **self.extra,
            # First lines only: the log tails stay in the assertion message, out of the results file.
            "problems": [problem.splitlines()[0][:300] for problem in verdict.problems[:20]],
        }
        figures["changes"]["acknowledged_during_fault"] = sum(
            1 for c in changes if c.acknowledged and self.fault_began <= c.ended <= self.fault_ended
        )
        self.results.append(figures)
        self.figures = figures
        return verdict

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._tear_down()

    def _tear_down(self) -> None:
        if self.driver is not None:
            with contextlib.suppress(BaseException):
                self.driver.stop()
        if self.events is not None:
            self.events.close()
        if self.health is not None:
            self.health.stop()
        for process in self.processes.values():
            process.stop()
        if not self.stack.shared:
            return  # the drills' own stack is thrown away whole
        topics = [t for topics in self.topics.values() for t in topics.values()]
        delete_topics(self.stack.kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.stack.database_url, autocommit=True) as admin,
        ):
            for process in self.processes.values():
                admin.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(process.schema))
                )
                admin.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(f"cityhub_{process.schema}"))
                )
