"""Hub: entity 360 latency with events flowing, beside the naive design, and rebuild speed by replay.

Everything runs as `make run` runs it: the five domain services and the hub each in their own process
(`python -m services.<name>`, default settings, peers wired as in deploy/local/processes.toml), each on a
schema and topics of its own for this run, on the local Kafka and PostgreSQL.

1. **Population.** A district is registered through the domains' own gRPC APIs (so the domains know it,
   as the live detail needs): by default 500 enterprises in a park with two collection boxes each, 100
   schools, 60 school kitchens run by contractors among those enterprises, 5 chambers with 200 members and
   100 cross-region applications by members. The domains publish their events; the bench waits until the
   hub has consumed every one.
2. **Entity 360 latency, with events flowing.** A background publisher puts domain events (device state
   changes, risk assessments, meals served) on the hub's input topics at a steady rate throughout. A load
   process of its own (one asyncio event loop, four channels: no client thread contends for a GIL) calls
   GetEntity360 on random entities (enterprises, schools, kitchens) on an open-loop schedule at the
   target rate; latency is measured from each request's *scheduled* moment, so a server that falls behind
   is charged for the queue it causes. The client shares the machine's two cores with Kafka, PostgreSQL,
   the hub and the five domains, as it would under `make run`. Three runs:
   * **360 (projections)** — `detail=false`: the hub answers from its own tables (the design);
   * **360 detail (naive)** — `detail=true` at the same rate: every request also asks every domain that
     knows the entity over gRPC, in parallel with deadlines — the naive design that asks every domain on
     each request;
   * the detail path again at a tenth of the rate, to show its latency when it is not saturated.
   Each run counts errors and the parts that came back UNAVAILABLE (a domain past its deadline).
3. **Rebuild.** At least a million domain events (the population's registrations, then a district's mix
   of state changes, utilisation, risk assessments, meals, attendance and alerts, spread over 30 days) are
   written straight onto a fresh set of topics by producer processes, and the hub's rebuild replays them
   into a fresh schema; events per second = events replayed / wall time of the rebuild.

Aims (issue 13): 360 p99 ≤ 10 ms at 500 requests/s; rebuild ≥ 50,000 events/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from bench.machine import describe, probe_ms
from bench.telemetry import RESULTS, ServiceProcess, _credit_code, _free_port, _git_revision, _stack
from bench.telemetry_workload import percentile

AIM_P99_MS = 10.0
AIM_REBUILD_PER_S = 50_000.0
DOMAINS = ("safety", "industry", "kitchen", "commerce", "govservice")
SEED_FILE = Path(__file__).resolve().parents[1] / "deploy" / "local" / "govservice-seed.toml"
GET_360 = "/cityhub.hub.v1.HubService/GetEntity360"
# One Kafka record as a relay writes it: (topic, key, value, headers).
Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small district, 3 s runs)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each latency run (default 10)")
    parser.add_argument("--rate", type=float, default=500.0, help="360 requests per second (default 500)")
    parser.add_argument("--enterprises", type=int, default=500)
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--kitchens", type=int, default=60)
    parser.add_argument("--members", type=int, default=200, help="chamber members (enterprises)")
    parser.add_argument("--applications", type=int, default=100, help="enterprise applications")
    parser.add_argument(
        "--background-rate", type=float, default=200.0, help="domain events/s flowing during the runs"
    )
    parser.add_argument(
        "--rebuild-events", type=int, default=1_000_000, help="events replayed by the rebuild (default 1M)"
    )
    parser.add_argument(
        "--baseline-events",
        type=int,
        default=50_000,
        help="events replayed by both engines side by side: in memory and the live consumer's SQL (50k)",
    )
    parser.add_argument("--skip-latency", action="store_true", help="leave out the 360 latency runs")
    parser.add_argument("--skip-rebuild", action="store_true", help="leave out the rebuild run")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/...)")


def _apply_quick(args: argparse.Namespace) -> None:
    if not args.quick:
        return
    args.seconds = min(args.seconds, 3.0)
    args.rate = min(args.rate, 100.0)
    args.enterprises = min(args.enterprises, 40)
    args.schools = min(args.schools, 10)
    args.kitchens = min(args.kitchens, 6)
    args.members = min(args.members, 20)
    args.applications = min(args.applications, 10)
    args.background_rate = min(args.background_rate, 50.0)
    args.rebuild_events = min(args.rebuild_events, 50_000)
    args.baseline_events = min(args.baseline_events, 5_000)


# --- pure helpers (unit-tested in tests/unit/test_bench_hub.py) -------------------------------------------


@dataclass
class LatencyRun:
    name: str
    detail: bool
    target_rate: float
    seconds: float
    requests: int
    errors: int
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    service_p99_ms: float
    unavailable_parts: int = 0
    hub_cpu: float = 0.0
    domains_cpu: float = 0.0
    # The load generator's own cores: on a two-core machine they are taken from the services measured.
    client_cpu: float = 0.0
    # The machine's 1-minute load average at the end of the run: other work on the two cores shows here.
    load_1m: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)


def verdicts(report: dict[str, Any]) -> list[str]:
    """Whether each aim was met, in words."""
    lines = []
    plain = next((r for r in report.get("latency", []) if not r["detail"]), None)
    if plain is not None:
        met = plain["p99_ms"] <= AIM_P99_MS and not plain["errors"]
        lines.append(
            f"360 (projections) {'meets' if met else 'misses'} the aim of p99 <= {AIM_P99_MS:.0f} ms"
            f" at {plain['target_rate']:.0f} requests/s (p99 {plain['p99_ms']:.1f} ms,"
            f" {plain['errors']} errors)"
        )
    rebuild = report.get("rebuild")
    if rebuild:
        met = rebuild["events_per_s"] >= AIM_REBUILD_PER_S and rebuild["events"] >= 1_000_000
        lines.append(
            f"rebuild {'meets' if met else 'misses'} the aim of >= {AIM_REBUILD_PER_S:,.0f} events/s over"
            f" >= 1,000,000 events ({rebuild['events_per_s']:,.0f} events/s over {rebuild['events']:,})"
        )
    return lines


def _probe(report: dict[str, Any]) -> str:
    # Results written before bench/machine.py existed carry no probe.
    before = report["machine"].get("probe_ms_before")
    return "" if before is None else f" (speed probe {before} ms; lower is faster)"


def table(report: dict[str, Any]) -> str:
    dirty = " (dirty)" if report["git"]["dirty"] else ""
    lines = [
        (
            f"hub: {report['machine']['cores']} cores{_probe(report)}, git"
            f" {report['git']['revision'][:12]}{dirty}, {report['finished_at']}"
        )
    ]
    population = report.get("population")
    if population:
        lines.append(
            "district: "
            + ", ".join(f"{v:,} {k}" for k, v in population.items() if isinstance(v, int))
            + f"; background {report['options']['background_rate']:.0f} events/s"
        )
    if report.get("latency"):
        head = (
            f"{'run':<34} {'target/s':>8} {'done/s':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}"
            f" {'max ms':>8} {'svc p99':>8} {'unavail':>8} {'hub CPU':>8} {'dom CPU':>8} {'load CPU':>8}"
            f" {'load':>6}"
        )
        lines += [head, "-" * len(head)]
        for row in report["latency"]:
            lines.append(
                f"{row['name']:<34} {row['target_rate']:>8.0f} {row['achieved_rate']:>8.0f}"
                f" {row['errors']:>7,} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['max_ms']:>8.1f}"
                f" {row['service_p99_ms']:>8.1f} {row['unavailable_parts']:>8,} {row['hub_cpu']:>8.2f}"
                f" {row['domains_cpu']:>8.2f} {row.get('client_cpu', 0.0):>8.2f}"
                f" {row.get('load_1m', 0.0):>6.2f}"
            )
        lines.append(
            "latency from each request's scheduled moment (open loop); svc p99 = from the moment it was"
            " sent; unavail = parts a domain did not answer in time; CPU = cores busy (load CPU: the load"
            " generator's own); load = the machine's"
            " 1-minute load average after the run (2 cores)"
        )
    rebuild = report.get("rebuild")
    if rebuild:
        lines.append(
            f"rebuild: {rebuild['events']:,} events in {rebuild['seconds']:.1f} s ="
            f" {rebuild['events_per_s']:,.0f} events/s (written at {rebuild['produce_per_s']:,.0f} events/s"
            f" by {rebuild['producers']} producers)"
        )
        if rebuild.get("note"):
            lines.append(f"    {rebuild['note']}")
        down = rebuild.get("downtime")
        if down:
            stopped = down["replay_seconds"] + down["compare_seconds"]
            lines.append(
                f"    hub down with --wait-for-stop: {down['down_seconds']:.1f} s (catch-up of"
                f" {down['tail_events']:,} events {down['catch_up_seconds']:.1f} s + comparison"
                f" {down['compare_seconds']:.1f} s) against {stopped:.1f} s"
                " stopped for the replay and the comparison without it"
            )
        for run in rebuild.get("side_by_side", []):
            how = "in memory, one COPY per table" if run["engine"] == "memory" else "SQL per event (live way)"
            lines.append(
                f"    side by side, {run['events']:,} events, {how}: {run['seconds']:.1f} s ="
                f" {run['events_per_s']:,.0f} events/s"
            )
    lines += verdicts(report)
    return "\n".join(lines)


# --- the processes ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    bootstrap: str
    database: str
    keys: Path
    workdir: Path
    suffix: str
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def schema(self, name: str) -> str:
        return f"{name}_bench_{self.suffix}"

    def topic(self, name: str, kind: str = "events") -> str:
        return f"cityhub.{name}.{kind}.v1.bench-{self.suffix}"

    def address(self, name: str) -> str:
        return self.processes[name].address

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_JWT")}
        env.update(
            SERVICE_NAME=self.schema(name),
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            DATABASE_URL=self.database,
            GRPC_PORT=str(_free_port()),
            METRICS_PORT="0",
            LOG_FORMAT="json",
            LOG_LEVEL="warning",
            CITYHUB_DEV_KEYS="true",
            CITYHUB_DEV_SECRETS_DIR=str(self.keys),
            **{f"{d.upper()}_DEV_SECRETS_DIR": str(self.keys) for d in DOMAINS},
            **extra,
        )
        return env

    def start(self, name: str, **extra: str) -> ServiceProcess:
        process = ServiceProcess(
            self.env(name, **extra), self.workdir / f"{name}.log", module=f"services.{name}"
        )
        self.processes[name] = process
        process.wait_serving()
        return process

    def topics(self) -> list[str]:
        names = [self.topic(d) for d in (*DOMAINS, "hub")]
        names += [self.topic("industry", "telemetry"), self.topic("kitchen", "readings")]
        return names

    def stop_all(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.processes.clear()


def start_services(stack: Stack) -> None:
    """The five domains, then the hub, as `make run` starts them (peers wired the same way)."""
    stack.start("safety", SAFETY_EVENTS_TOPIC=stack.topic("safety"))
    stack.start(
        "industry",
        INDUSTRY_EVENTS_TOPIC=stack.topic("industry"),
        INDUSTRY_TELEMETRY_TOPIC=stack.topic("industry", "telemetry"),
    )
    stack.start(
        "kitchen",
        KITCHEN_EVENTS_TOPIC=stack.topic("kitchen"),
        KITCHEN_READINGS_TOPIC=stack.topic("kitchen", "readings"),
        SAFETY_GRPC_ADDRESS=stack.address("safety"),
    )
    stack.start(
        "commerce",
        COMMERCE_EVENTS_TOPIC=stack.topic("commerce"),
        INDUSTRY_GRPC_ADDRESS=stack.address("industry"),
    )
    stack.start(
        "govservice",
        GOVSERVICE_EVENTS_TOPIC=stack.topic("govservice"),
        COMMERCE_GRPC_ADDRESS=stack.address("commerce"),
        GOVSERVICE_SEED_FILE=str(SEED_FILE),
    )
    stack.start("hub", **hub_env(stack))


def hub_env(stack: Stack, *, topics_of: Callable[[str], str] | None = None) -> dict[str, str]:
    topic = topics_of or stack.topic
    env = {f"HUB_{d.upper()}_EVENTS_TOPIC": topic(d) for d in DOMAINS}
    env["HUB_EVENTS_TOPIC"] = topic("hub")
    env.update({f"{d.upper()}_GRPC_ADDRESS": stack.address(d) for d in DOMAINS if d in stack.processes})
    return env


# --- the population, through the domains' APIs -----------------------------------------------------------


@dataclass
class District:
    codes: list[str]
    park_id: str
    devices: list[tuple[str, str]]  # (device_id, credit_code)
    sites: list[str]
    kitchens: list[str]
    chambers: list[str]
    applications: list[str]

    def refs(self) -> list[tuple[int, str]]:
        """(EntityKind value, id) of every entity a 360 request may ask about."""
        from cityhub.common.v1 import common_pb2

        return (
            [(int(common_pb2.ENTITY_KIND_ENTERPRISE), c) for c in self.codes]
            + [(int(common_pb2.ENTITY_KIND_SITE), s) for s in self.sites]
            + [(int(common_pb2.ENTITY_KIND_KITCHEN), k) for k in self.kitchens]
        )


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def populate(stack: Stack, token: str, args: argparse.Namespace) -> District:
    from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc
    from cityhub.common.v1 import common_pb2
    from cityhub.govservice.v1 import govservice_pb2, govservice_pb2_grpc
    from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
    from cityhub.kitchen.v1 import kitchen_pb2, kitchen_pb2_grpc
    from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc

    metadata = _metadata(token)
    channels = {name: grpc.insecure_channel(stack.address(name)) for name in DOMAINS}
    try:
        industry: Any = industry_pb2_grpc.IndustryServiceStub(channels["industry"])
        safety: Any = safety_pb2_grpc.SafetyServiceStub(channels["safety"])
        kitchen: Any = kitchen_pb2_grpc.KitchenServiceStub(channels["kitchen"])
        commerce: Any = commerce_pb2_grpc.CommerceServiceStub(channels["commerce"])
        govservice: Any = govservice_pb2_grpc.CrossRegionServiceStub(channels["govservice"])
        park = industry.RegisterPark(
            industry_pb2.RegisterParkRequest(
                request_id="bench-park", name="Bench park", division_code="331004"
            ),
            metadata=metadata,
            timeout=30,
        ).park
        codes = [_credit_code(5000 + i) for i in range(args.enterprises)]

        def onboard(index: int) -> None:
            industry.OnboardEnterprise(
                industry_pb2.OnboardEnterpriseRequest(
                    request_id=f"bench-enterprise-{index}",
                    credit_code=codes[index],
                    name=f"Bench enterprise {index}",
                    sector=industry_pb2.SECTOR_MACHINERY,
                    park_id=park.park_id,
                    address=f"{index} Industrial Road",
                ),
                metadata=metadata,
                timeout=60,
            )

        def device(index: int) -> tuple[str, str]:
            code = codes[index // 2]
            made = industry.RegisterDevice(
                industry_pb2.RegisterDeviceRequest(
                    request_id=f"bench-device-{index}",
                    serial_number=f"HUB-BENCH-{index:06d}",
                    credit_code=code,
                    workshop=f"W{index % 3 + 1}",
                    machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
                    rated_power_kw=15.0,
                    ideal_cycle_seconds=30.0,
                    sample_interval_ms=1000,
                ),
                metadata=metadata,
                timeout=60,
            ).device
            return str(made.device_id), code

        def site(index: int) -> str:
            return str(
                safety.RegisterSite(
                    safety_pb2.RegisterSiteRequest(
                        request_id=f"bench-school-{index}",
                        name=f"Bench School {index}",
                        kind=safety_pb2.SITE_KIND_SCHOOL,
                        address=f"{index} School Road, Luqiao",
                        division_code="331004",
                        town=("Luqiao Street", "Lunan Street", "Tongyu Street", "Xinqiao Town")[index % 4],
                        location=common_pb2.GeoPoint(
                            latitude=28.55 + (index % 10) * 0.006, longitude=121.35 + (index // 10) * 0.006
                        ),
                        duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
                    ),
                    metadata=metadata,
                    timeout=60,
                ).site.site_id
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(onboard, range(len(codes))))
            devices = list(pool.map(device, range(2 * len(codes))))
            sites = list(pool.map(site, range(args.schools)))

            def register_kitchen(index: int) -> str:
                return str(
                    kitchen.RegisterKitchen(
                        kitchen_pb2.RegisterKitchenRequest(
                            request_id=f"bench-kitchen-{index}",
                            site_id=sites[index],
                            name=f"Bench canteen {index}",
                            operator=kitchen_pb2.KitchenOperator(
                                kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR,
                                name=f"Bench enterprise {index}",
                                credit_code=codes[index % len(codes)],
                            ),
                            meals_per_day=600,
                            shifts=[kitchen_pb2.Shift(name="lunch", start_time="09:00", end_time="13:30")],
                            commitment="Safe food for every pupil.",
                        ),
                        metadata=metadata,
                        timeout=60,
                    ).kitchen.kitchen_id
                )

            kitchens = list(pool.map(register_kitchen, range(min(args.kitchens, len(sites)))))
            parent = ""
            federation_id = ""
            for level, division in (
                (commerce_pb2.FEDERATION_LEVEL_PROVINCE, "330000"),
                (commerce_pb2.FEDERATION_LEVEL_CITY, "331000"),
                (commerce_pb2.FEDERATION_LEVEL_COUNTY, "331004"),
            ):
                federation_id = commerce.CreateFederation(
                    commerce_pb2.CreateFederationRequest(
                        request_id=f"bench-federation-{division}",
                        name=f"Federation {division}",
                        level=level,
                        division_code=division,
                        parent_id=parent,
                    ),
                    metadata=metadata,
                    timeout=60,
                ).federation.federation_id
                parent = federation_id
            chambers = [
                str(
                    commerce.CreateChamber(
                        commerce_pb2.CreateChamberRequest(
                            request_id=f"bench-chamber-{n}",
                            federation_id=federation_id,
                            name=f"Bench chamber {n}",
                            kind=commerce_pb2.CHAMBER_KIND_TRADE,
                            sector="MACHINERY",
                            division_code="331004",
                            join_rule=commerce_pb2.JOIN_RULE_AUTO_APPROVE_KNOWN,
                        ),
                        metadata=metadata,
                        timeout=60,
                    ).chamber.chamber_id
                )
                for n in range(5)
            ]
            members = codes[: args.members]

            def join(index: int) -> None:
                commerce.ApplyForMembership(
                    commerce_pb2.ApplyForMembershipRequest(
                        request_id=f"bench-join-{index}",
                        chamber_id=chambers[index % len(chambers)],
                        credit_code=members[index],
                        town="Luqiao Street",
                    ),
                    metadata=metadata,
                    timeout=60,
                )

            list(pool.map(join, range(len(members))))

            def file(index: int) -> str:
                return str(
                    govservice.FileApplication(
                        govservice_pb2.FileApplicationRequest(
                            request_id=f"bench-application-{index}",
                            item_code="business_licence_change",
                            filing_region="331004",
                            handling_region="330782",
                            enterprise=govservice_pb2.EnterpriseApplicant(credit_code=members[index]),
                            materials=[
                                "change_application_form",
                                "business_licence_original",
                                "shareholder_resolution",
                                "legal_representative_id",
                            ],
                        ),
                        metadata=metadata,
                        timeout=60,
                    ).application.application_no
                )

            applications = list(pool.map(file, range(min(args.applications, len(members)))))
    finally:
        for channel in channels.values():
            channel.close()
    return District(codes, park.park_id, devices, sites, kitchens, chambers, applications)


# --- waiting for the hub, and the background events ---------------------------------------------------------


def _end_offsets(bootstrap: str, topics: list[str]) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    probe: Any = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(probe.partitions_for_topic(t) or ())
        ]
        return {tp: int(offset) for tp, offset in probe.end_offsets(partitions).items()}
    finally:
        probe.close(autocommit=False)


def wait_consumed(stack: Stack, *, timeout_s: float = 600.0) -> float:
    """Wait until every domain's outbox is relayed and the hub's projection consumer has committed past
    every record on its input topics; the seconds it took."""
    import psycopg
    from kafka import KafkaAdminClient

    began = time.monotonic()
    deadline = began + timeout_s
    with psycopg.connect(stack.database, autocommit=True) as conn:
        for name in (*DOMAINS, "hub"):
            while True:
                row = conn.execute(
                    f'SELECT count(*) FROM "{stack.schema(name)}".outbox WHERE sent_at IS NULL'
                ).fetchone()
                if row is not None and row[0] == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}'s outbox did not drain")
                time.sleep(0.2)
    inputs = [stack.topic(d) for d in (*DOMAINS, "hub")]
    ends = _end_offsets(stack.bootstrap, inputs)
    group = f"{stack.schema('hub')}.projections"
    admin: Any = KafkaAdminClient(bootstrap_servers=stack.bootstrap.split(","))
    try:
        while True:
            committed = admin.list_group_offsets({group: None}).get(group, {})
            offsets = {tp: int(meta.offset) for tp, meta in committed.items()}
            if all(end == 0 or offsets.get(tp, 0) >= end for tp, end in ends.items()):
                return time.monotonic() - began
            if time.monotonic() > deadline:
                raise TimeoutError("the hub did not consume the population in time")
            time.sleep(0.2)
    finally:
        admin.close()


def _record(message: Any, *, topic: str, key: str, subject: str, at: datetime) -> Record:
    """(topic, key, value, headers) of one CloudEvents record, exactly as a domain's relay writes it."""
    from services.platform.kafka import EventEnvelope

    envelope = EventEnvelope(
        id=str(uuid.uuid4()),
        source=f"/cityhub/{message.DESCRIPTOR.full_name.split('.')[1]}",
        type=message.DESCRIPTOR.full_name,
        subject=subject,
        time=at,
        traceparent=None,
        key=key,
        payload=message.SerializeToString(),
        topic=topic,
    )
    return topic, key.encode(), envelope.payload, envelope.headers()


def flowing_event(district: District, index: int, topic_of: Callable[[str], str], at: datetime) -> Record:
    """One of the district's everyday events (the background flow while 360 views are read)."""
    from cityhub.common.v1 import common_pb2
    from cityhub.industry.v1 import events_pb2 as industry_events
    from cityhub.industry.v1 import telemetry_pb2
    from cityhub.kitchen.v1 import events_pb2 as kitchen_events
    from cityhub.kitchen.v1 import kitchen_pb2
    from cityhub.safety.v1 import events_pb2 as safety_events
    from cityhub.safety.v1 import safety_pb2

    from services.platform.protoconv import to_timestamp

    stamp = to_timestamp(at)
    turn = index % 3
    if turn == 0 or not district.sites:
        device_id, code = district.devices[index % len(district.devices)]
        running = (index // 3) % 2 == 0
        message: Any = industry_events.DeviceStateChanged(
            device_id=device_id,
            credit_code=code,
            park_id=district.park_id,
            previous_state=telemetry_pb2.DEVICE_STATE_IDLE if running else telemetry_pb2.DEVICE_STATE_RUNNING,
            state=telemetry_pb2.DEVICE_STATE_RUNNING if running else telemetry_pb2.DEVICE_STATE_IDLE,
            changed_at=stamp,
        )
        return _record(message, topic=topic_of("industry"), key=device_id, subject=device_id, at=at)
    if turn == 1 or not district.kitchens:
        site_id = district.sites[index % len(district.sites)]
        message = safety_events.RiskAssessed(
            assessment_id=f"as_{uuid.uuid4().hex}",
            site_id=site_id,
            level=safety_pb2.RISK_LEVEL_LOW,
            severity=common_pb2.SEVERITY_LOW,
            reasons=["loitering at the gate"],
            detection_kinds=[safety_pb2.DETECTION_KIND_LOITERING],
            detection_count=1,
            assessed_at=stamp,
        )
        return _record(message, topic=topic_of("safety"), key=site_id, subject=site_id, at=at)
    kitchen_id = district.kitchens[index % len(district.kitchens)]
    meal_id = f"meal_{uuid.uuid4().hex}"
    message = kitchen_events.MealServed(
        kitchen_id=kitchen_id,
        meal_id=meal_id,
        meal_date=at.date().isoformat(),
        sitting=kitchen_pb2.SITTING_LUNCH,
        servings=480,
        dishes=4,
        fully_traced=True,
        served_at=stamp,
    )
    return _record(message, topic=topic_of("kitchen"), key=kitchen_id, subject=meal_id, at=at)


class Background:
    """Domain events onto the hub's input topics at a steady rate, on a thread of its own."""

    def __init__(self, stack: Stack, district: District, rate: float) -> None:
        from services.platform.kafka import make_producer

        self._producer = make_producer(stack.bootstrap)
        self._district = district
        self._stack = stack
        self._rate = rate
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="bench-background", daemon=True)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self._producer.flush(timeout=30)
        self._producer.close(timeout=5)

    def _run(self) -> None:
        if self._rate <= 0:
            return
        began = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - began) * self._rate)
            while self.sent < due:
                topic, key, value, headers = flowing_event(
                    self._district, self.sent, self._stack.topic, datetime.now(UTC)
                )
                self._producer.send(topic, value=value, key=key, headers=headers)
                self.sent += 1
            self._stop.wait(0.01)


# --- the 360 runs ------------------------------------------------------------------------------------------


def _load_process(  # noqa: PLR0917 - a worker process's entry point
    address: str,
    token: str,
    refs: list[tuple[int, str]],
    detail: bool,
    rate: float,
    seconds: float,
    out_path: str,
    ready: Any,
    go: Any,
) -> None:
    asyncio.run(_load(address, token, refs, detail, rate, seconds, Path(out_path), ready, go))


async def _load(  # noqa: PLR0917 - the load process's one coroutine
    address: str,
    token: str,
    refs: list[tuple[int, str]],
    detail: bool,
    rate: float,
    seconds: float,
    out_path: Path,
    ready: Any,
    go: Any,
) -> None:
    """Open loop on one event loop (no thread contends for the GIL): request k is sent at its scheduled
    moment whatever the earlier ones are doing; latency counts from that moment."""
    from cityhub.common.v1 import common_pb2
    from cityhub.hub.v1 import hub_pb2

    metadata = _metadata(token)
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), 30)
    calls = [
        channel.unary_unary(
            GET_360,
            request_serializer=hub_pb2.GetEntity360Request.SerializeToString,
            response_deserializer=hub_pb2.GetEntity360Response.FromString,
        )
        for channel in channels
    ]
    requests = [
        hub_pb2.GetEntity360Request(ref=common_pb2.EntityRef(kind=kind, id=ref_id), detail=detail)  # type: ignore[arg-type]
        for kind, ref_id in refs
    ]
    chooser = random.Random(len(refs))  # the load's shape, not a secret
    latencies: list[float] = []
    service: list[float] = []
    errors: dict[str, int] = {}
    unavailable = 0

    async def one(k: int, due: float) -> None:
        nonlocal unavailable
        sent = time.perf_counter()
        try:
            reply = await calls[k % len(calls)](chooser.choice(requests), metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            errors[error.code().name] = errors.get(error.code().name, 0) + 1
            return
        done = time.perf_counter()
        latencies.append((done - due) * 1000)
        service.append((done - sent) * 1000)
        unavailable += sum(1 for p in reply.parts if p.status == hub_pb2.PART_STATUS_UNAVAILABLE)

    ready.set()
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    began = time.perf_counter() + 0.01
    tasks = []
    for k in range(int(rate * seconds)):
        due = began + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for channel in channels:
        await channel.close()
    out_path.write_text(
        json.dumps(
            {
                "latencies": latencies,
                "service": service,
                "errors": errors,
                "unavailable": unavailable,
                "elapsed": elapsed,
                "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu_before,
            }
        )
    )


def latency_run(  # noqa: PLR0917 - a private step of one linear script
    name: str,
    stack: Stack,
    token: str,
    refs: list[tuple[int, str]],
    detail: bool,
    rate: float,
    seconds: float,
) -> LatencyRun:
    """One run: the load from a process of its own, the service processes' CPU measured around it."""
    out_path = stack.workdir / f"load-{secrets.token_hex(3)}.json"
    context = multiprocessing.get_context("spawn")
    ready, go = context.Event(), context.Event()
    load = context.Process(
        target=_load_process,
        args=(stack.address("hub"), token, refs, detail, rate, seconds, str(out_path), ready, go),
        daemon=True,
    )
    load.start()
    if not ready.wait(120):
        load.kill()
        raise TimeoutError("the load process did not start")
    domains = [d for d in DOMAINS if d in stack.processes]
    hub_cpu0 = stack.processes["hub"].cpu_seconds()
    domains_cpu0 = sum(stack.processes[d].cpu_seconds() for d in domains)
    go.set()
    load.join(seconds + 120)
    if load.exitcode != 0:
        raise RuntimeError(f"the load process exited with {load.exitcode}")
    outcome = json.loads(out_path.read_text())
    elapsed = max(float(outcome["elapsed"]), 1e-9)
    hub_cpu = stack.processes["hub"].cpu_seconds() - hub_cpu0
    domains_cpu = sum(stack.processes[d].cpu_seconds() for d in domains) - domains_cpu0
    latencies: list[float] = outcome["latencies"]
    errors: dict[str, int] = outcome["errors"]
    return LatencyRun(
        name=name,
        detail=detail,
        target_rate=rate,
        seconds=round(elapsed, 2),
        requests=len(latencies),
        errors=sum(errors.values()),
        achieved_rate=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 0.50), 2),
        p99_ms=round(percentile(latencies, 0.99), 2),
        max_ms=round(max(latencies, default=0.0), 2),
        service_p99_ms=round(percentile(outcome["service"], 0.99), 2),
        unavailable_parts=int(outcome["unavailable"]),
        hub_cpu=round(hub_cpu / elapsed, 2),
        domains_cpu=round(domains_cpu / elapsed, 2),
        client_cpu=round(float(outcome.get("cpu_seconds", 0.0)) / elapsed, 2),
        load_1m=round(os.getloadavg()[0], 2),
        error_kinds=errors,
    )


# --- the rebuild ------------------------------------------------------------------------------------------


def synthetic_district(enterprises: int, schools: int, kitchens: int) -> District:
    """A district made up for the rebuild's events (no domain service involved)."""
    codes = [_credit_code(900_000 + i) for i in range(enterprises)]
    return District(
        codes=codes,
        park_id="park_rebuild",
        devices=[(f"dev_r{i:05d}", codes[i % len(codes)]) for i in range(enterprises * 14)],
        sites=[f"site_r{i:04d}" for i in range(schools)],
        kitchens=[f"kit_r{i:03d}" for i in range(kitchens)],
        chambers=[f"chm_r{i}" for i in range(5)],
        applications=[],
    )


def registrations(district: District, topic_of: Callable[[str], str], at: datetime) -> Iterator[Record]:
    """The district's registration events, first on the topics (the hub learns its entities from them)."""
    from cityhub.commerce.v1 import commerce_pb2
    from cityhub.commerce.v1 import events_pb2 as commerce_events
    from cityhub.common.v1 import common_pb2
    from cityhub.industry.v1 import events_pb2 as industry_events
    from cityhub.industry.v1 import industry_pb2
    from cityhub.kitchen.v1 import events_pb2 as kitchen_events
    from cityhub.kitchen.v1 import kitchen_pb2
    from cityhub.safety.v1 import events_pb2 as safety_events
    from cityhub.safety.v1 import safety_pb2

    from services.platform.protoconv import to_timestamp

    stamp = to_timestamp(at)
    yield _record(
        industry_events.ParkRegistered(park_id=district.park_id, division_code="331004", registered_at=stamp),
        topic=topic_of("industry"),
        key=district.park_id,
        subject=district.park_id,
        at=at,
    )
    for code in district.codes:
        yield _record(
            industry_events.EnterpriseOnboarded(
                credit_code=code,
                sector=industry_pb2.SECTOR_MACHINERY,
                park_id=district.park_id,
                division_code=code[2:8],
                onboarded_at=stamp,
            ),
            topic=topic_of("industry"),
            key=code,
            subject=code,
            at=at,
        )
    for device_id, code in district.devices:
        yield _record(
            industry_events.DeviceRegistered(
                device_id=device_id,
                credit_code=code,
                park_id=district.park_id,
                workshop="W1",
                machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
                rated_power_kw=15.0,
                ideal_cycle_seconds=30.0,
                sample_interval_ms=1000,
                registered_at=stamp,
            ),
            topic=topic_of("industry"),
            key=device_id,
            subject=device_id,
            at=at,
        )
    for index, site_id in enumerate(district.sites):
        yield _record(
            safety_events.SiteRegistered(
                site_id=site_id,
                name=f"Rebuild School {index}",
                kind=safety_pb2.SITE_KIND_SCHOOL,
                address=f"{index} School Road",
                division_code="331004",
                town="Luqiao Street",
                location=common_pb2.GeoPoint(latitude=28.55 + index * 0.001, longitude=121.35),
                registered_at=stamp,
            ),
            topic=topic_of("safety"),
            key=site_id,
            subject=site_id,
            at=at,
        )
    for index, kitchen_id in enumerate(district.kitchens):
        yield _record(
            kitchen_events.KitchenRegistered(
                kitchen_id=kitchen_id,
                site_id=district.sites[index % len(district.sites)],
                name=f"Rebuild canteen {index}",
                operator_kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR,
                operator_name=f"Contractor {index}",
                operator_credit_code=district.codes[index % len(district.codes)],
                meals_per_day=600,
                location=common_pb2.GeoPoint(latitude=28.55 + index * 0.001, longitude=121.35),
                town="Luqiao Street",
                division_code="331004",
                registered_at=stamp,
            ),
            topic=topic_of("kitchen"),
            key=kitchen_id,
            subject=kitchen_id,
            at=at,
        )
    for index, chamber_id in enumerate(district.chambers):
        yield _record(
            commerce_events.ChamberCreated(
                chamber_id=chamber_id,
                federation_id="fed_rebuild",
                name=f"Rebuild chamber {index}",
                kind=commerce_pb2.CHAMBER_KIND_TRADE,
                sector="MACHINERY",
                division_code="331004",
                created_at=stamp,
            ),
            topic=topic_of("commerce"),
            key=chamber_id,
            subject=chamber_id,
            at=at,
        )


def everyday(district: District, index: int, topic_of: Callable[[str], str], at: datetime) -> Record:
    """Event ``index`` of the rebuild's stream: mostly state changes, utilisation, risk assessments and
    meals, with alerts and their clearing now and then (so the inbox has work too)."""
    from cityhub.common.v1 import common_pb2
    from cityhub.industry.v1 import events_pb2 as industry_events
    from cityhub.industry.v1 import industry_pb2
    from cityhub.kitchen.v1 import events_pb2 as kitchen_events
    from cityhub.kitchen.v1 import kitchen_pb2

    from services.platform.protoconv import to_timestamp

    turn = index % 50
    if turn == 7:
        device_id, code = district.devices[(index // 50) % len(district.devices)]
        alert_id = f"dal_{index}"
        message: Any = industry_events.DeviceAlertRaised(
            alert_id=alert_id,
            device_id=device_id,
            credit_code=code,
            park_id=district.park_id,
            kind=industry_pb2.DEVICE_ALERT_KIND_FAULT,
            severity=common_pb2.SEVERITY_MEDIUM,
            raised_at=to_timestamp(at),
            condition_since_at=to_timestamp(at - timedelta(minutes=10)),
        )
        return _record(message, topic=topic_of("industry"), key=device_id, subject=device_id, at=at)
    if turn == 31:
        kitchen_id = district.kitchens[(index // 50) % len(district.kitchens)]
        alert_id = f"kal_{index}"
        message = kitchen_events.ColdChainAlertRaised(
            kitchen_id=kitchen_id,
            equipment_id=f"eq_{kitchen_id}",
            kind=kitchen_pb2.EQUIPMENT_KIND_FRIDGE,
            alert_id=alert_id,
            out_of_range_since=to_timestamp(at - timedelta(minutes=15)),
            limit_c=8.0,
            temperature_c=10.0,
            raised_at=to_timestamp(at),
        )
        return _record(message, topic=topic_of("kitchen"), key=kitchen_id, subject=f"eq_{kitchen_id}", at=at)
    if turn % 5 == 4:
        device_id, code = district.devices[index % len(district.devices)]
        hour = at.replace(minute=0, second=0, microsecond=0)
        message = industry_events.UtilisationRolledUp(
            device_id=device_id,
            credit_code=code,
            park_id=district.park_id,
            workshop="W1",
            hour_started_at=to_timestamp(hour),
        )
        message.figures.running_seconds = 2400
        return _record(message, topic=topic_of("industry"), key=device_id, subject=device_id, at=at)
    return flowing_event(district, index, topic_of, at)


def _produce_slice(  # noqa: PLR0917 - a worker process's entry point
    bootstrap: str,
    topics: dict[str, str],
    sizes: tuple[int, int, int],
    start: int,
    stop: int,
    first: str,
    span_s: float,
    total: int,
) -> None:
    """A producer process: events ``start``..``stop`` of the stream (times spread evenly over ``span_s``
    from ``first``)."""
    from services.platform.kafka import make_producer

    district = synthetic_district(*sizes)
    producer = make_producer(bootstrap, acks=1, enable_idempotence=False, linger_ms=50, batch_size=1 << 20)
    origin = datetime.fromisoformat(first)
    for index in range(start, stop):
        at = origin + timedelta(seconds=span_s * index / max(total, 1))
        topic, key, value, headers = everyday(district, index, topics.__getitem__, at)
        producer.send(topic, value=value, key=key, headers=headers)
    producer.flush(timeout=300)
    producer.close(timeout=30)


def write_rebuild_topics(
    bootstrap: str, topics: dict[str, str], events: int, producers: int
) -> tuple[int, float]:
    """The registrations, then ``events`` everyday events, onto ``topics``; (records, seconds)."""
    from services.platform.kafka import ensure_topics, make_producer

    ensure_topics(bootstrap, list(topics.values()), partitions=3, replication=1)
    sizes = (500, 100, 60)
    district = synthetic_district(*sizes)
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    began = time.monotonic()
    producer = make_producer(bootstrap)
    head = 0
    for topic, key, value, headers in registrations(district, topics.__getitem__, first):
        producer.send(topic, value=value, key=key, headers=headers)
        head += 1
    producer.flush(timeout=120)
    producer.close(timeout=10)
    context = multiprocessing.get_context("spawn")
    step = -(-events // producers)
    workers = [
        context.Process(
            target=_produce_slice,
            args=(
                bootstrap,
                topics,
                sizes,
                n * step,
                min(events, (n + 1) * step),
                (first + timedelta(minutes=1)).isoformat(),
                29 * 86400.0,
                events,
            ),
        )
        for n in range(producers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a producer process exited with {worker.exitcode}")
    return head + events, time.monotonic() - began


def run_rebuild(
    stack: Stack, topics: dict[str, str], engine: str = "memory", tail_rate: float = 0.0
) -> dict[str, Any]:
    """The hub's replay (services/hub/rebuild.py, what `cityhub hub rebuild` runs before it compares and
    swaps) over ``topics`` into a fresh schema, in this process; the fresh schema is dropped afterwards.

    ``tail_rate`` > 0: also what the hub's downtime is with ``--wait-for-stop`` — the events a running hub
    takes in while the replay runs (this rate for the replay's duration) written after it, the catch-up
    over them, and one comparison of the rebuilt views (the rebuilt schema against itself: the same
    statements over the same rows as against identical live views)."""
    from services.hub import rebuild
    from services.hub.settings import HubSettings
    from services.platform.settings import load_settings

    settings = load_settings(
        HubSettings,
        service_name=f"hub_bench_{stack.suffix}",
        kafka_bootstrap_servers=stack.bootstrap,
        database_url=stack.database,
        log_level="warning",
        hub_events_topic=topics["hub"],
        **{f"hub_{d}_events_topic": topics[d] for d in DOMAINS},
    )
    began = time.monotonic()
    result = rebuild.replay(
        settings,
        progress=False,
        echo=lambda line: print(f"  {line}", flush=True),
        engine="sql" if engine == "sql" else "memory",
    )
    wall = time.monotonic() - began
    try:
        outcome: dict[str, Any] = {
            "records": result.records,
            "applied": result.applied,
            "duplicates": result.duplicates,
            "skipped": result.skipped,
            "seconds": result.seconds,
            "wall_seconds": wall,
        }
        if tail_rate > 0:
            outcome["downtime"] = _downtime(stack, topics, settings, result, tail_rate)
        return outcome
    finally:
        rebuild.drop_rebuild(settings, result.rebuild_id)


def _downtime(
    stack: Stack, topics: dict[str, str], settings: Any, result: Any, tail_rate: float
) -> dict[str, Any]:
    """The hub's downtime in a rebuild with --wait-for-stop, but for the swap's few statements."""
    from services.hub import rebuild

    tail = round(tail_rate * result.seconds)
    first = (datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)).isoformat()
    # Events after the stream's end (indexes past it): new ids, as a running hub would have received.
    _produce_slice(
        stack.bootstrap, topics, (500, 100, 60), result.records, result.records + tail, first, 3600.0, tail
    )
    began = time.monotonic()
    caught = rebuild.catch_up(
        settings, result, progress=False, echo=lambda line: print(f"  {line}", flush=True)
    )
    catch_up_s = time.monotonic() - began
    began = time.monotonic()
    diffs = rebuild.compare(settings.dsn, result.fresh_schema, result.fresh_schema)
    compare_s = time.monotonic() - began
    if diffs:
        raise RuntimeError(f"the rebuilt schema differs from itself: {[d.table for d in diffs]}")
    return {
        "replay_seconds": round(result.seconds, 2),
        "tail_rate": tail_rate,
        "tail_events": caught,
        "catch_up_seconds": round(catch_up_s, 2),
        "compare_seconds": round(compare_s, 2),
        "down_seconds": round(catch_up_s + compare_s, 2),
        "note": (
            "without --wait-for-stop the hub is down for the replay, the comparison and the swap;"
            " with it for the catch-up, the comparison and the swap (the swap's statements not timed here)"
        ),
    }


def _rebuild_runs(
    stack: Stack, topics: dict[str, str], baseline_topics: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """The rebuild over ``--rebuild-events``, and both engines side by side over ``--baseline-events``
    (the SQL one, the live consumer's way, is too slow for a million): the one idea measured is the fold
    in memory with one COPY per table against a few SQL round trips per event."""
    producers = 2
    print(f"writing {args.rebuild_events:,} events for the rebuild ({producers} producers)", flush=True)
    records, produce_s = write_rebuild_topics(stack.bootstrap, topics, args.rebuild_events, producers)
    print(f"  {records:,} records in {produce_s:.1f} s; rebuilding", flush=True)
    outcome = run_rebuild(stack, topics, tail_rate=args.background_rate)
    report: dict[str, Any] = {
        "events": outcome["records"],
        "written": records,
        "applied": outcome["applied"],
        "skipped": outcome["skipped"],
        "seconds": round(outcome["seconds"], 2),
        "events_per_s": round(outcome["records"] / max(outcome["seconds"], 1e-9), 1),
        "wall_seconds": round(outcome["wall_seconds"], 2),
        "produce_per_s": round(records / produce_s, 1),
        "producers": producers,
        "downtime": outcome.get("downtime"),
        "note": (
            f"{outcome['applied']:,} applied, {outcome['skipped']:,} skipped; the replay timed"
            f" (with provisioning the fresh schema: {outcome['wall_seconds']:.1f} s)"
        ),
        "side_by_side": [],
    }
    print(f"writing {args.baseline_events:,} events for the side-by-side run", flush=True)
    write_rebuild_topics(stack.bootstrap, baseline_topics, args.baseline_events, producers)
    for engine in ("memory", "sql"):
        run = run_rebuild(stack, baseline_topics, engine)
        report["side_by_side"].append(
            {
                "engine": engine,
                "events": run["records"],
                "applied": run["applied"],
                "seconds": round(run["seconds"], 2),
                "events_per_s": round(run["records"] / max(run["seconds"], 1e-9), 1),
            }
        )
    return report


# --- orchestration ----------------------------------------------------------------------------------------


def _tidy(stack: Stack, topics: list[str], schemas: list[str]) -> None:
    from kafka import KafkaAdminClient

    admin: Any = KafkaAdminClient(bootstrap_servers=stack.bootstrap.split(","))
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in (*topics, *(f"{t}.dlq" for t in topics)) if t in existing]
        if doomed:
            admin.delete_topics(doomed)
        groups = [g for g, *_ in admin.list_groups() if any(s in g for s in schemas)]
        if groups:
            admin.delete_groups(groups)
    finally:
        admin.close()
    import psycopg

    with psycopg.connect(stack.database, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'DROP ROLE IF EXISTS "cityhub_{schema}"')
            conn.execute(f'DROP ROLE IF EXISTS "cityhub_{schema}_owner"')


@contextmanager
def _running(stack: Stack) -> Iterator[Stack]:
    try:
        yield stack
    finally:
        stack.stop_all()


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The machine's speed before anything of the benchmark runs (bench/machine.py).
    probe_before = probe_ms()
    from services.platform.logs import configure_logging
    from services.platform.security import TokenIssuer, load_security_settings

    _apply_quick(args)
    # The rebuild runs in this process: its progress lines, not every projection's info line.
    configure_logging("bench", level="warning", fmt="console", to_stderr=True)
    workdir = Path(tempfile.mkdtemp(prefix="cityhub-bench-hub-"))
    report: dict[str, Any] = {"latency": [], "rebuild": None, "population": None}
    suffix = secrets.token_hex(3)
    with _stack() as (bootstrap, database):
        stack = Stack(bootstrap, database, workdir / "keys", workdir, suffix)
        security = load_security_settings(dev_keys=True, dev_secrets_dir=stack.keys)
        issuer = TokenIssuer.from_settings(security)
        token = issuer.issue(sub="bench-command-centre", roles=["district_operator"], ttl_s=7200)
        service_token = issuer.issue(sub="bench-loader", roles=["service"], ttl_s=7200)
        rebuild_topics = {d: f"cityhub.{d}.events.v1.rebuild-{suffix}" for d in (*DOMAINS, "hub")}
        baseline_topics = {d: f"cityhub.{d}.events.v1.baseline-{suffix}" for d in (*DOMAINS, "hub")}
        schemas = [stack.schema(n) for n in (*DOMAINS, "hub")] + [f"hub_rebuild_{suffix}"]
        try:
            if not args.skip_latency:
                with _running(stack):
                    print(f"starting the five domains and the hub (logs in {workdir})", flush=True)
                    start_services(stack)
                    began = time.monotonic()
                    district = populate(stack, service_token, args)
                    took = time.monotonic() - began
                    print(f"district registered through the domains in {took:.1f} s", flush=True)
                    consumed = wait_consumed(stack)
                    report["population"] = {
                        "enterprises": len(district.codes),
                        "devices": len(district.devices),
                        "schools": len(district.sites),
                        "kitchens": len(district.kitchens),
                        "chambers": len(district.chambers),
                        "members": min(args.members, len(district.codes)),
                        "applications": len(district.applications),
                        "registered_s": round(took, 1),
                        "hub_caught_up_s": round(consumed, 1),
                    }
                    refs = district.refs()
                    with Background(stack, district, args.background_rate) as background:
                        for name, detail, rate in (
                            ("360 (projections)", False, args.rate),
                            ("360 detail (naive: asks domains)", True, args.rate),
                            ("360 detail at a tenth of the rate", True, args.rate / 10),
                        ):
                            print(f"{name}: {rate:.0f} requests/s for {args.seconds:.0f} s", flush=True)
                            result = latency_run(name, stack, token, refs, detail, rate, args.seconds)
                            print(
                                f"  p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms,"
                                f" {result.errors} errors",
                                flush=True,
                            )
                            report["latency"].append(asdict(result))
                        report["background_events"] = background.sent
            if not args.skip_rebuild:
                report["rebuild"] = _rebuild_runs(stack, rebuild_topics, baseline_topics, args)
        finally:
            try:
                _tidy(stack, [*stack.topics(), *rebuild_topics.values(), *baseline_topics.values()], schemas)
            except Exception as error:  # noqa: BLE001 - tidying up must not hide the results
                print(f"warning: could not tidy up: {error}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    report.update(
        benchmark="hub",
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=describe(probe_before),
        git=_git_revision(),
        command=" ".join(["python -m bench", *sys.argv[1:]]),
        options={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        aims={"p99_ms": AIM_P99_MS, "rebuild_events_per_s": AIM_REBUILD_PER_S},
    )
    return report


def main(args: argparse.Namespace) -> int:
    report = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS / f"hub-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print(f"\nwritten to {output}")
    return 0
