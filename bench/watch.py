"""Watch latency: detection -> duty-room stream, with 1,000 watchers open beside 1.

The safety service runs as `make run` runs it (its own process, `python -m services.safety`, default
settings: 16 worker threads). Sites are schools with a camera each. Twenty reporting clients each send a
detection batch (a perimeter breach and a weapon: an alert, raised or updated) at a steady rate to random
sites, noting the moment before each call. Watchers run in a separate process on grpc.aio and note the
moment each detection first reaches them on a WatchAlerts stream (CLOCK_MONOTONIC is shared by the two
processes). Latency is the difference: what a duty room sees after a camera reports.

Two runs with the same reporters, differing in one thing, the number of watchers:

1. **1 watcher** - one district-wide watcher (a command centre), which sees every detection.
2. **1,000 watchers** - the same district-wide watcher plus 999 duty rooms (each scoped to its school;
   ten per school, as classrooms, gate and principal each watch).

Each run reports p50/p99/max over every delivery a watcher should have had, the deliveries missed, the
reporters' own request latency, and the health check's latency in the middle of the run. The aim: p99 at
most 200 ms with 1,000 watchers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.machine import describe, probe_ms
from bench.telemetry import RESULTS, ServiceProcess, _free_port, _git_revision, _stack, _tidy
from bench.telemetry_workload import percentile

AIM_P99_MS = 200.0
WATCH = "/cityhub.safety.v1.SafetyService/WatchAlerts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run (default 30)")
    parser.add_argument("--sites", type=int, default=100, help="schools, one camera each (default 100)")
    parser.add_argument(
        "--watchers", type=int, default=1000, help="watchers in the second run (default 1000)"
    )
    parser.add_argument("--reporters", type=int, default=20, help="reporting clients (default 20)")
    parser.add_argument(
        "--rate", type=float, default=2.0, help="batches per second per reporter (default 2: 40/s in all)"
    )
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON report")


@dataclass
class RunResult:
    name: str
    watchers: int
    seconds: float
    batches_sent: int
    batches_failed: int
    deliveries_expected: int
    deliveries: int
    missed: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    district_p50_ms: float
    district_p99_ms: float
    report_p50_ms: float
    report_p99_ms: float
    health_ms: float
    server_cpu_s: float
    extra: dict[str, Any] = field(default_factory=dict)


# --- the watchers' process ---------------------------------------------------------------------------


def _watch_process(
    address: str,
    specs: list[tuple[str, str]],  # (token, site_id or "" for district-wide)
    out_path: str,
    ready: Any,
    stop: Any,
) -> None:
    asyncio.run(_watch_all(address, specs, Path(out_path), ready, stop))


async def _watch_all(
    address: str, specs: list[tuple[str, str]], out_path: Path, ready: Any, stop: Any
) -> None:
    # Duty rooms are separate clients: one connection per hundred watchers.
    channels = [grpc.aio.insecure_channel(address) for _ in range(max(1, len(specs) // 100))]
    seen: list[dict[str, float]] = [{} for _ in specs]
    live = 0
    all_live = asyncio.Event()
    errors: list[str] = []

    async def watch(index: int, token: str, site_id: str) -> None:
        nonlocal live
        stub = safety_pb2_grpc.SafetyServiceStub(channels[index % len(channels)])
        call = stub.WatchAlerts(
            safety_pb2.WatchAlertsRequest(site_id=site_id),
            metadata=(("authorization", f"Bearer {token}"),),
        )
        await call.initial_metadata()
        live += 1
        if live == len(specs):
            all_live.set()
        mine = seen[index]
        try:
            async for response in call:
                now = time.monotonic()
                for detection in response.alert.detections:
                    ref = detection.snapshot_ref
                    if ref.startswith("bench/") and ref not in mine:
                        mine[ref] = now
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                errors.append(f"{error.code().name}: {error.details()}")

    tasks = [asyncio.ensure_future(watch(i, token, site)) for i, (token, site) in enumerate(specs)]
    await asyncio.wait_for(all_live.wait(), 300)
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    out_path.write_text(json.dumps({"seen": seen, "errors": errors[:20]}))


# --- the reporters -----------------------------------------------------------------------------------


@dataclass
class Sent:
    ref: str
    site_id: str
    at: float


def _report(  # noqa: PLR0917 - a private step of one linear script
    address: str,
    metadata: tuple[tuple[str, str], ...],
    cameras: dict[str, str],
    reporters: int,
    rate: float,
    seconds: float,
    run: str,
) -> tuple[list[Sent], list[float], int]:
    sent: list[Sent] = []
    request_ms: list[float] = []
    failed = 0
    lock = threading.Lock()
    sites = list(cameras)
    deadline = time.monotonic() + seconds

    def reporter(number: int) -> None:
        nonlocal failed
        chooser = random.Random(number)  # the load's shape, not a secret
        with grpc.insecure_channel(address) as channel:
            stub = safety_pb2_grpc.SafetyServiceStub(channel)
            sequence = 0
            next_at = time.monotonic() + chooser.random() / rate
            while next_at < deadline:
                time.sleep(max(0.0, next_at - time.monotonic()))
                site_id = chooser.choice(sites)
                ref = f"bench/{run}/{number}/{sequence}"
                request = safety_pb2.ReportDetectionsRequest(
                    request_id=f"{run}-{number}-{sequence}",
                    detections=[
                        safety_pb2.DetectionInput(
                            sensor_id=cameras[site_id],
                            kind=safety_pb2.DETECTION_KIND_PERIMETER_BREACH,
                            confidence=0.9,
                            snapshot_ref=f"{ref}/breach",
                        ),
                        safety_pb2.DetectionInput(
                            sensor_id=cameras[site_id],
                            kind=safety_pb2.DETECTION_KIND_WEAPON,
                            confidence=0.9,
                            label="baseball bat",
                            snapshot_ref=ref,
                        ),
                    ],
                )
                for detection in request.detections:
                    detection.detected_at.GetCurrentTime()
                began = time.monotonic()
                try:
                    stub.ReportDetections(request, metadata=metadata, timeout=10)
                except grpc.RpcError as error:
                    with lock:
                        failed += 1
                        if failed <= 3:
                            print(
                                f"ReportDetections failed: {error.code().name}: {error.details()}", flush=True
                            )
                else:
                    with lock:
                        sent.append(Sent(ref, site_id, began))
                        request_ms.append((time.monotonic() - began) * 1000)
                sequence += 1
                next_at += 1.0 / rate

    threads = [threading.Thread(target=reporter, args=(n,)) for n in range(reporters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent, request_ms, failed


def _health_ms(address: str) -> float:
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        began = time.monotonic()
        stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return (time.monotonic() - began) * 1000


# --- one run -------------------------------------------------------------------------------------------


def _one_run(  # noqa: PLR0917 - a private step of one linear script
    name: str,
    service: ServiceProcess,
    specs: list[tuple[str, str]],
    cameras: dict[str, str],
    metadata: tuple[tuple[str, str], ...],
    args: argparse.Namespace,
    workdir: Path,
) -> RunResult:
    run = f"w{len(specs)}-{secrets.token_hex(2)}"
    out_path = workdir / f"{run}.json"
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    watchers = context.Process(
        target=_watch_process, args=(service.address, specs, str(out_path), ready, stop), daemon=True
    )
    watchers.start()
    if not ready.wait(300):
        watchers.kill()
        raise TimeoutError(f"{len(specs)} watchers did not all go live")
    print(f"{name}: {len(specs)} watchers live; reporting for {args.seconds:.0f}s", flush=True)
    health: list[float] = []
    probe = threading.Timer(args.seconds / 2, lambda: health.append(_health_ms(service.address)))
    probe.start()
    cpu_before = service.cpu_seconds()
    sent, request_ms, failed = _report(
        service.address, metadata, cameras, args.reporters, args.rate, args.seconds, run
    )
    cpu_used = service.cpu_seconds() - cpu_before
    probe.join()
    time.sleep(3.0)  # stragglers: anything later than this counts as missed
    stop.set()
    watchers.join(60)
    outcome = json.loads(out_path.read_text())
    seen: list[dict[str, float]] = outcome["seen"]
    latencies: list[float] = []
    district: list[float] = []
    expected = 0
    for index, (_token, site_id) in enumerate(specs):
        mine = seen[index]
        for item in sent:
            if site_id and site_id != item.site_id:
                continue
            expected += 1
            arrived = mine.get(item.ref)
            if arrived is None:
                continue
            latency = (arrived - item.at) * 1000
            latencies.append(latency)
            if not site_id:
                district.append(latency)
    return RunResult(
        name=name,
        watchers=len(specs),
        seconds=args.seconds,
        batches_sent=len(sent),
        batches_failed=failed,
        deliveries_expected=expected,
        deliveries=len(latencies),
        missed=expected - len(latencies),
        p50_ms=round(percentile(latencies, 0.50), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies, default=0.0), 1),
        district_p50_ms=round(percentile(district, 0.50), 1),
        district_p99_ms=round(percentile(district, 0.99), 1),
        report_p50_ms=round(percentile(request_ms, 0.50), 1),
        report_p99_ms=round(percentile(request_ms, 0.99), 1),
        health_ms=round(health[0], 1) if health else 0.0,
        server_cpu_s=round(cpu_used, 2),
        extra={"watcher_errors": outcome["errors"]},
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The machine's speed before anything of the benchmark runs (bench/machine.py).
    probe_before = probe_ms()
    from services.platform.security import TokenIssuer, load_security_settings

    suffix = secrets.token_hex(3)
    schema = f"safety_bench_{suffix}"
    topic = f"cityhub.safety.events.v1.bench-{suffix}"
    workdir = Path(tempfile.mkdtemp(prefix="cityhub-bench-watch-"))
    results: list[RunResult] = []
    with _stack() as (bootstrap, database):
        security = load_security_settings(dev_keys=True, dev_secrets_dir=workdir / "keys")
        issuer = TokenIssuer.from_settings(security)
        service_token = issuer.issue(sub="bench-cameras", roles=["service"], ttl_s=7200)
        metadata = (("authorization", f"Bearer {service_token}"),)
        env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_JWT")}
        env.update(
            SERVICE_NAME=schema,
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            DATABASE_URL=database,
            GRPC_PORT=str(_free_port()),
            METRICS_PORT="0",
            LOG_FORMAT="json",
            LOG_LEVEL="warning",
            SAFETY_EVENTS_TOPIC=topic,
            CITYHUB_DEV_KEYS="true",
            CITYHUB_DEV_SECRETS_DIR=str(workdir / "keys"),
            SAFETY_DEV_SECRETS_DIR=str(workdir / "keys"),
        )
        service = ServiceProcess(env, workdir / "safety.log", module="services.safety")
        try:
            service.wait_serving()
            print(f"safety up at {service.address} (log: {workdir / 'safety.log'})", flush=True)
            cameras = _register_sites(service.address, metadata, args.sites)
            district_token = issuer.issue(sub="bench-command-centre", roles=["district_operator"], ttl_s=7200)
            site_ids = list(cameras)
            rooms = [
                (
                    issuer.issue(
                        sub=f"bench-duty-{n}",
                        roles=["duty_room"],
                        scopes=[f"site:{site_ids[n % len(site_ids)]}"],
                        ttl_s=7200,
                    ),
                    site_ids[n % len(site_ids)],
                )
                for n in range(max(0, args.watchers - 1))
            ]
            results.append(
                _one_run("1 watcher", service, [(district_token, "")], cameras, metadata, args, workdir)
            )
            results.append(
                _one_run(
                    f"{args.watchers:,} watchers",
                    service,
                    [(district_token, ""), *rooms],
                    cameras,
                    metadata,
                    args,
                    workdir,
                )
            )
        finally:
            service.stop()
            _tidy(bootstrap, database, [topic, f"{topic}.dlq"], schema)
    return {
        "benchmark": "watch",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(probe_before),
        "git": _git_revision(),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "aim_p99_ms": AIM_P99_MS,
        "results": [asdict(r) for r in results],
    }


def _register_sites(address: str, metadata: tuple[tuple[str, str], ...], count: int) -> dict[str, str]:
    """``count`` schools with one camera each: {site_id: camera sensor_id}."""
    cameras: dict[str, str] = {}
    with grpc.insecure_channel(address) as channel:
        stub = safety_pb2_grpc.SafetyServiceStub(channel)
        for index in range(count):
            site = stub.RegisterSite(
                safety_pb2.RegisterSiteRequest(
                    request_id=f"bench-site-{index}",
                    name=f"Bench School {index}",
                    kind=safety_pb2.SITE_KIND_SCHOOL,
                    address=f"{index} Bench Road, Luqiao District, Taizhou",
                    division_code="331004",
                    town="Luqiao Street",
                    location=common_pb2.GeoPoint(latitude=28.58 + index / 10_000, longitude=121.38),
                    duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
                ),
                metadata=metadata,
                timeout=30,
            ).site
            camera = stub.RegisterSensor(
                safety_pb2.RegisterSensorRequest(
                    request_id=f"bench-camera-{index}",
                    site_id=site.site_id,
                    kind=safety_pb2.SENSOR_KIND_VIDEO_CHANNEL,
                    zone="north wall",
                ),
                metadata=metadata,
                timeout=30,
            ).sensor
            cameras[site.site_id] = camera.sensor_id
    return cameras


def table(report: dict[str, Any]) -> str:
    dirty = " (dirty)" if report["git"]["dirty"] else ""
    title = (
        f"watch latency (detection -> stream): {report['machine']['cores']} cores,"
        f" git {report['git']['revision'][:12]}{dirty}, {report['finished_at']}"
    )
    lines = [title]
    head = (
        f"{'run':<16} {'batches':>8} {'failed':>7} {'deliveries':>11} {'missed':>7}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'district p99':>12}"
        f" {'report p99':>10} {'health ms':>9} {'srv CPU':>8}"
    )
    lines += [head, "-" * len(head)]
    for row in report["results"]:
        cpu = row["server_cpu_s"] / row["seconds"] if row["seconds"] else 0.0
        lines.append(
            f"{row['name']:<16} {row['batches_sent']:>8,} {row['batches_failed']:>7,}"
            f" {row['deliveries']:>11,} {row['missed']:>7,} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}"
            f" {row['max_ms']:>8.1f} {row['district_p99_ms']:>12.1f}"
            f" {row['report_p99_ms']:>10.1f} {row['health_ms']:>9.1f} {cpu:>8.2f}"
        )
    many = report["results"][-1] if report["results"] else None
    if many:
        met = many["deliveries"] and not many["missed"] and not many["batches_failed"]
        verdict = "meets" if met and many["p99_ms"] <= report["aim_p99_ms"] else "misses"
        lines.append(
            f"{many['name']}: {verdict} the aim of p99 <= {report['aim_p99_ms']:.0f} ms with nothing missed"
        )
    lines.append(
        "district p99 = the one district-wide watcher (present in both runs); report = the reporters' own"
        " ReportDetections latency; srv CPU = cores busy in the service process"
    )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    report = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS / f"watch-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"written to {output}")
    return 0
