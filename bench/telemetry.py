"""Telemetry end to end: samples acknowledged by IngestTelemetry -> consumed by the rollup -> visible in
GetUtilisation, with the rollup and the health monitor on as `make run` runs them; the highest rate at
which the rollup's lag stays flat; baselines that each isolate one idea; Kafka's own producer like for
like. Details: docs/services/industry.md, Benchmark.

1. **District.** The service (`python -m services.industry`, its own schema and topics, default
   settings) registers ``--enterprises`` enterprises and ``--devices`` devices through its RPCs. A load
   process (bench/telemetry_load.py) plays one collection box per enterprise (bench/telemetry_workload.py:
   state changes, strictly increasing sample times per device, late samples, re-sent windows, retries
   with the same request id), open loop at the offered rate.
2. **Step search** per layout (``--layouts``, e.g. ``1:0,2:1`` = ingest replicas : separate rollup
   processes; 0 runs the rollup inside the ingest process): each step warms up, then measures
   ``--seconds``: samples acknowledged per second, the rollup group's lag from the broker once a second
   (services/platform/lag.py), and ack -> visible delays on a few probe enterprises polled in
   GetUtilisation; then waits for the rollup to drain and reads every device's figures back through
   GetUtilisation against what the bench sent: any device off fails the run.
3. **Baselines**, same district and read-back: (a) the same batched RPCs with one Kafka record per sample
   (``INDUSTRY_TELEMETRY_RECORD_PER_SAMPLE``), (b) one RPC per sample.
4. **Kafka ProducerPerformance** (the broker's own jars, acks=all, the service's producer settings), on
   records of the real sizes measured on the topic, once the services are stopped.
5. JSON to bench/results/telemetry-<UTC>.json (git revision, dirty flag); ``--publish`` regenerates the
   README's and the industry doc's figures from the newest JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import telemetry_report
from bench.machine import describe, probe_ms
from bench.telemetry_workload import compare_counts, lag_flat, percentile, visibility_delays

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
DISTRICT_DEVICES = 7_000
AIM = telemetry_report.AIM_PER_S


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute (small district)")
    parser.add_argument("--devices", type=int, default=DISTRICT_DEVICES, help="devices (default 7,000)")
    parser.add_argument("--enterprises", type=int, default=500, help="enterprises = collection boxes (500)")
    parser.add_argument("--window-s", type=int, default=60, help="device seconds per box request (60)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured length of each step (60)")
    parser.add_argument("--warmup", type=float, default=8.0, help="unmeasured start of each step (8)")
    parser.add_argument("--start-rate", type=float, default=float(AIM), help="first offered samples/s")
    parser.add_argument("--max-steps", type=int, default=3, help="steps of the search per layout (3)")
    parser.add_argument(
        "--layouts",
        default="1:0,2:1",
        help="ingest replicas:rollup processes, comma-separated (default 1:0,2:1; 1:0 is `make run`)",
    )
    parser.add_argument("--baseline-seconds", type=float, default=20.0, help="length of each baseline (20)")
    parser.add_argument(
        "--single-rate",
        type=float,
        default=300.0,
        help="offered rate, one RPC per sample (one that path sustains here: its cost shows as CPU a sample)",
    )
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--skip-java", action="store_true", help="leave out Kafka's ProducerPerformance")
    parser.add_argument("--java-seconds", type=float, default=20.0, help="about how long each Java run lasts")
    parser.add_argument("--budget-s", type=float, default=900.0, help="no new step starts after this (900)")
    parser.add_argument(
        "--probe-enterprises", type=int, default=8, help="enterprises polled for ack->visible (8)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.25, help="probe poll interval, seconds (0.25)"
    )
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/...)")
    parser.add_argument(
        "--publish",
        nargs="?",
        const="latest",
        default=None,
        metavar="JSON",
        help="only regenerate the README's and the industry doc's figures from a result (default: newest)",
    )


def _apply_quick(args: argparse.Namespace) -> None:
    if not args.quick:
        return
    args.devices = min(args.devices, 700)
    args.enterprises = min(args.enterprises, 50)
    args.seconds = min(args.seconds, 10.0)
    args.warmup = min(args.warmup, 3.0)
    args.start_rate = min(args.start_rate, 7_000.0)
    args.max_steps = min(args.max_steps, 2)
    args.layouts = "1:0"
    args.baseline_seconds = min(args.baseline_seconds, 5.0)
    args.single_rate = min(args.single_rate, 500.0)
    args.java_seconds = min(args.java_seconds, 3.0)
    args.probe_enterprises = min(args.probe_enterprises, 2)


def parse_layouts(text: str) -> list[tuple[int, int]]:
    """``"1:0,2:1"`` -> [(1, 0), (2, 1)]: ingest replicas and separate rollup-consumer processes."""
    layouts = []
    for part in text.split(","):
        ingest, _, rollup = part.strip().partition(":")
        pair = (int(ingest), int(rollup or 0))
        if pair[0] < 1 or pair[1] < 0:
            raise ValueError(f"bad layout {part!r}: at least one ingest process, rollup processes >= 0")
        layouts.append(pair)
    return layouts


def layout_name(ingest: int, rollup: int) -> str:
    return (
        f"{ingest} ingest + {rollup} rollup"
        if rollup
        else f"{ingest} process{'es' if ingest > 1 else ''} (rollup inside)"
    )


# --- the processes ------------------------------------------------------------------------------------------


class Deployment:
    """The service's processes for one layout, on the bench's schema and topics."""

    def __init__(
        self, base_env: dict[str, str], workdir: Path, ingest: int, rollup: int, **extra: str
    ) -> None:
        self.ingest: list[ServiceProcess] = []
        self.rollup: list[ServiceProcess] = []
        self.layout = layout_name(ingest, rollup)
        try:
            for n in range(ingest):
                # The first process runs what `make run`'s does (rollup inside unless it has processes of its
                # own, health monitor); the replicas only serve.
                env = {
                    **base_env,
                    **extra,
                    "GRPC_PORT": str(_free_port()),
                    "INDUSTRY_ROLLUP_CONSUMER_ENABLED": "true" if n == 0 and rollup == 0 else "false",
                    "INDUSTRY_HEALTH_MONITOR_ENABLED": "true" if n == 0 else "false",
                }
                self.ingest.append(ServiceProcess(env, workdir / f"industry-{n}.log"))
            for n in range(rollup):
                env = {
                    **base_env,
                    **extra,
                    "GRPC_PORT": str(_free_port()),
                    "INDUSTRY_ROLLUP_CONSUMER_ENABLED": "true",
                    "INDUSTRY_HEALTH_MONITOR_ENABLED": "false",
                }
                self.rollup.append(ServiceProcess(env, workdir / f"industry-rollup-{n}.log"))
            for process in self.processes:
                process.wait_serving()
        except BaseException:
            self.stop()
            raise

    @property
    def processes(self) -> list[ServiceProcess]:
        return [*self.ingest, *self.rollup]

    @property
    def addresses(self) -> list[str]:
        return [p.address for p in self.ingest]

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class LoadProcess:
    """bench/telemetry_load.py in a process of its own, driven over a pipe."""

    def __init__(self, setup: dict[str, Any]) -> None:
        from bench import telemetry_load

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=telemetry_load.serve, args=(child, setup), daemon=True)
        self.process.start()

    def ask(self, command: dict[str, Any], timeout_s: float) -> Any:
        self._conn.send(command)
        if not self._conn.poll(timeout_s):
            raise TimeoutError(f"the load process did not answer {command['do']!r} within {timeout_s:.0f}s")
        return self._conn.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            with suppress(TimeoutError, OSError, EOFError):
                self.ask({"do": "stop"}, 30)
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=10)


class Sampler:
    """Once a second, the rollup group's lag (services/platform/lag.py: the broker's end offsets minus the
    group's committed offsets) and the topic's end offsets; and, on another thread, the probe enterprises'
    counted seconds from GetUtilisation every ``poll_interval``."""

    def __init__(  # noqa: PLR0917 - every part of what it samples, named at the one call site
        self,
        bootstrap: str,
        group: str,
        topic: str,
        address: str,
        metadata: tuple[tuple[str, str], ...],
        probes: dict[str, str],
        poll_interval: float,
        period: tuple[int, int],
    ) -> None:
        from services.platform.lag import ConsumerGroup, LagProbe

        self._probe = LagProbe(bootstrap.split(","), [ConsumerGroup("rollup", group, [topic])])
        self._bootstrap, self._topic = bootstrap, topic
        self._address, self._metadata = address, metadata
        self._probes, self._interval, self._period = probes, poll_interval, period
        self.lag: list[tuple[float, int, int]] = []
        self.polls: dict[str, list[tuple[float, int]]] = {box: [] for box in probes}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._sample_lag, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]

    def lag_now(self) -> int:
        return sum(self._probe.measure().values())

    def __enter__(self) -> Sampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _sample_lag(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                lag = self.lag_now()
                ends = end_offsets(self._bootstrap, self._topic)
                self.lag.append((at, lag, ends))
            except Exception as error:  # noqa: BLE001 - a missed sample is reported by its absence
                print(f"  lag sample failed: {error}", file=sys.stderr)
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - at)))

    def _poll(self) -> None:
        with grpc.insecure_channel(self._address) as channel:
            stub: Any = industry_pb2_grpc.IndustryServiceStub(channel)
            while not self._stop.is_set():
                began = time.monotonic()
                for box, code in self._probes.items():
                    try:
                        figures = utilisation(stub, self._metadata, self._period, credit_code=code)
                    except grpc.RpcError:
                        continue
                    self.polls[box].append((time.monotonic(), figures["counted_s"]))
                self._stop.wait(max(0.0, self._interval - (time.monotonic() - began)))


def utilisation(
    stub: Any, metadata: tuple[tuple[str, str], ...], period: tuple[int, int], **subject: str
) -> dict[str, int]:
    """A subject's figures over ``period`` (Unix seconds) as GetUtilisation shows them."""
    from cityhub.common.v1 import common_pb2
    from google.protobuf.timestamp_pb2 import Timestamp

    total = stub.GetUtilisation(
        industry_pb2.GetUtilisationRequest(
            subject=industry_pb2.UtilisationSubject(**subject),  # type: ignore[arg-type]
            period=common_pb2.TimeRange(
                start_time=Timestamp(seconds=period[0]), end_time=Timestamp(seconds=period[1])
            ),
        ),
        metadata=metadata,
        timeout=30,
    ).total
    running, planned, stopped = (
        round(total.running_seconds),
        round(total.planned_seconds),
        round(total.stopped_seconds),
    )
    return {
        "running_s": running,
        "planned_s": planned,
        "stopped_s": stopped,
        "good": int(total.good_count),
        "reject": int(total.reject_count),
        "counted_s": planned + stopped,
    }


def read_back(
    address: str,
    metadata: tuple[tuple[str, str], ...],
    period: tuple[int, int],
    expected: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """Every device's figures through GetUtilisation, compared exactly with what the bench sent."""
    with grpc.insecure_channel(address) as channel:
        stub = industry_pb2_grpc.IndustryServiceStub(channel)

        def one(device_id: str) -> tuple[str, dict[str, int]]:
            shown = utilisation(stub, metadata, period, device_id=device_id)
            shown.pop("counted_s")
            return device_id, shown

        with ThreadPoolExecutor(max_workers=8) as pool:
            found = dict(pool.map(one, expected))
    return compare_counts(expected, found)


def wait_drained(sampler: Sampler, timeout_s: float) -> float | None:
    """Seconds until the rollup's committed lag reads 0, or None if it did not within ``timeout_s``."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if sampler.lag_now() == 0:
            return time.monotonic() - began
        time.sleep(0.5)
    return None


# --- small helpers (also used by bench/hub.py, watch.py, soak.py) ----------------------------------


def _free_port() -> int:
    # Below the ephemeral range, as the tests pick theirs (tests/support.py says why).
    from tests.support import free_port

    return free_port()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its finished threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _git_revision() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    return {
        "revision": git("rev-parse", "HEAD") or "none (no commit yet)",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


# --- the service under test ------------------------------------------------------------------------------


class ServiceProcess:
    """`python -m services.<name>` in its own process, as `make run` starts it."""

    def __init__(self, env: dict[str, str], log_path: Path, module: str = "services.industry") -> None:
        self.port = int(env["GRPC_PORT"])
        self.module = module
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_serving(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.module} exited with {self.process.returncode}")
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.3)
        raise TimeoutError(f"{self.module} did not become SERVING within {timeout_s}s")

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


# --- setup: a district's worth of enterprises and devices -------------------------------------------------


def _credit_code(seed: int) -> str:
    from services.platform.identifiers import credit_code_check_char

    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "".join(alphabet[(seed // 31**i) % 31] for i in range(9))
    first17 = f"91331004{body}"
    return first17 + credit_code_check_char(first17)


def register_district(
    stub: industry_pb2_grpc.IndustryServiceStub,
    metadata: tuple[tuple[str, str], ...],
    enterprises: int,
    devices: int,
) -> list[str]:
    park = stub.RegisterPark(
        industry_pb2.RegisterParkRequest(request_id="bench-park", name="Bench park", division_code="331004"),
        metadata=metadata,
    ).park
    codes = [_credit_code(1000 + i) for i in range(enterprises)]

    def onboard(code: str) -> None:
        stub.OnboardEnterprise(
            industry_pb2.OnboardEnterpriseRequest(
                request_id=f"bench-{code}",
                credit_code=code,
                name=f"Bench enterprise {code[-6:]}",
                sector=industry_pb2.SECTOR_MACHINERY,
                park_id=park.park_id,
            ),
            metadata=metadata,
            timeout=60,
        )

    def register(index: int) -> str:
        return str(
            stub.RegisterDevice(
                industry_pb2.RegisterDeviceRequest(
                    request_id=f"bench-device-{index}",
                    serial_number=f"BENCH-{index:06d}",
                    credit_code=codes[index % enterprises],
                    workshop=f"W{index % 3 + 1}",
                    machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
                    rated_power_kw=15.0,
                    ideal_cycle_seconds=30.0,
                    sample_interval_ms=1000,
                ),
                metadata=metadata,
                timeout=60,
            ).device.device_id
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(onboard, codes))
        return list(pool.map(register, range(devices)))


def end_offsets(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return int(sum(consumer.end_offsets(partitions).values()))
    finally:
        consumer.close()


_PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max"
)


def producer_performance(bootstrap: str, topic: str, records: int, size: int) -> dict[str, float]:
    """Kafka's own producer benchmark from the jars the local broker runs on, acks=all."""
    from services.platform.kafka import _compression

    libs = REPO_ROOT / ".local" / "kafka" / "libs"
    java = shutil.which("java")
    if java is None or not libs.is_dir():
        raise RuntimeError("java or .local/kafka/libs is missing (run `make infra-up` once)")
    command = [
        java,
        "-Xmx512m",
        "-cp",
        f"{libs}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        # The service's own producer settings (services/platform/kafka.py make_producer).
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        f"batch.size={256 * 1024}",
        f"max.request.size={8 * 1024 * 1024}",
        f"compression.type={_compression() or 'none'}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    found = _PERF_LINE.findall(result.stdout)
    if result.returncode != 0 or not found:
        raise RuntimeError(
            f"ProducerPerformance failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    sent, per_s, mb_s, avg_ms, max_ms = found[-1]
    return {
        "records": float(sent),
        "records_per_s": float(per_s),
        "mb_per_s": float(mb_s),
        "avg_latency_ms": float(avg_ms),
        "max_latency_ms": float(max_ms),
    }


# --- orchestration ----------------------------------------------------------------------------------------


@contextmanager
def _stack() -> Iterator[tuple[str, str]]:
    from services.cli.infra import InfraSettings, down, ensure_up

    settings = InfraSettings()
    endpoints = ensure_up(settings)
    try:
        yield endpoints.kafka_bootstrap, endpoints.database_url
    finally:
        down(settings, kafka=endpoints.started_kafka, postgres=endpoints.started_postgres)


def _service_env(
    *, service: str, bootstrap: str, database: str, secrets_dir: Path, topics: tuple[str, str], **extra: str
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_JWT")}
    env.update(
        SERVICE_NAME=service,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        DATABASE_URL=database,
        GRPC_PORT=str(_free_port()),
        METRICS_PORT="0",
        LOG_FORMAT="json",
        INDUSTRY_EVENTS_TOPIC=topics[0],
        INDUSTRY_TELEMETRY_TOPIC=topics[1],
        CITYHUB_DEV_KEYS="true",
        CITYHUB_DEV_SECRETS_DIR=str(secrets_dir),
        LOG_LEVEL="warning",
    )
    env.update(extra)
    return env


def _tidy(bootstrap: str, database: str, topics: list[str], schema: str) -> None:
    from kafka import KafkaAdminClient

    admin: Any = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'DROP ROLE IF EXISTS "cityhub_{schema}"')
        conn.execute(f'DROP ROLE IF EXISTS "cityhub_{schema}_owner"')


# --- one step -----------------------------------------------------------------------------------------------


def run_step(
    ctx: dict[str, Any],
    deployment: Deployment,
    load: LoadProcess,
    *,
    path: str,
    rate: float,
    seconds: float,
    warmup: float,
    mode: str = "batch",
) -> dict[str, Any]:
    args = ctx["args"]
    print(
        f"{path} / {deployment.layout}: offering {rate:,.0f} samples/s for {warmup:.0f}+{seconds:.0f} s",
        flush=True,
    )
    sampler = Sampler(
        ctx["bootstrap"],
        ctx["group"],
        ctx["topic"],
        deployment.addresses[0],
        ctx["metadata"],
        ctx["probes"],
        args.poll_interval,
        ctx["period"],
    )
    cpu_before, wall_before = deployment.cpu_seconds(), time.monotonic()
    with sampler:
        result = load.ask(
            {
                "do": "run",
                "addresses": deployment.addresses,
                "rate": rate,
                "seconds": seconds,
                "warmup_s": warmup,
                "mode": mode,
                "max_in_flight": 64 if mode == "batch" else 512,
            },
            timeout_s=warmup + seconds + 300,
        )
        service_cpu = (deployment.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
        # Keep sampling a little after the last ack: the probes' last requests need time to show.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and sampler.polls and not _probes_caught_up(result, sampler):
            time.sleep(0.2)
    window_from = wall_before + 0.2 + warmup
    window_to = window_from + seconds
    points = [(t - window_from, lag) for t, lag, _ in sampler.lag if window_from <= t <= window_to]
    ends = [(t, end) for t, _, end in sampler.lag if window_from <= t <= window_to]
    records_per_s = (ends[-1][1] - ends[0][1]) / (ends[-1][0] - ends[0][0]) if len(ends) > 1 else 0.0
    verdict = lag_flat(points, records_per_s)
    acks = [a for a in result.pop("probe_acks") if window_from <= a[0] <= window_to]
    delays, unseen = visibility_delays(acks, sampler.polls)
    drained = wait_drained(sampler, max(120.0, 2 * seconds))
    step: dict[str, Any] = {
        "path": path,
        "layout": deployment.layout,
        **result,
        "service_cpu": service_cpu,
        "records_per_s": records_per_s,
        "samples_per_record": result["accepted"] / max(records_per_s * (seconds + warmup), 1.0),
        "lag": asdict(verdict),
        "lag_series": [(round(t, 1), lag) for t, lag in points],
        "visible_p50_s": percentile(delays, 0.5),
        "visible_p99_s": percentile(delays, 0.99),
        "visible_max_s": max(delays, default=0.0),
        "visible_measured": len(delays),
        "visible_unseen": unseen,
        "drained_after_s": drained,
        "load_1m": os.getloadavg()[0],
    }
    if drained is None:
        step["readback"] = {"exact": False, "devices_off": "?", "why": "the rollup did not drain in time"}
    else:
        expected = load.ask({"do": "figures"}, timeout_s=120)
        step["readback"] = read_back(deployment.addresses[0], ctx["metadata"], ctx["period"], expected)
    rb = step["readback"]
    print(
        f"  acked {step['acked_per_s']:,.0f}/s, lag {verdict.why} (max {verdict.max_lag_s:.1f} s),"
        f" ack->visible p50 {step['visible_p50_s']:.2f} s p99 {step['visible_p99_s']:.2f} s"
        f" ({len(delays)} probes), service CPU {service_cpu:.2f}, read-back"
        f" {'exact' if rb['exact'] else str(rb.get('devices_off')) + ' devices off'}",
        flush=True,
    )
    return step


def _probes_caught_up(result: dict[str, Any], sampler: Sampler) -> bool:
    last = {box: count for _, box, count in result["probe_acks"]}
    return all(sampler.polls[box] and sampler.polls[box][-1][1] >= count for box, count in last.items())


def failures_of(steps: list[dict[str, Any]]) -> list[str]:
    """What makes the run fail: any read-back not exact, any sample refused for a reason other than being
    a duplicate, any request never acknowledged, any retry answered differently."""
    found = []
    for s in steps:
        name = f"{s['path']} at {s['offered_per_s']:,.0f}/s ({s['layout']})"
        if not s["readback"].get("exact"):
            found.append(f"{name}: read-back not exact ({s['readback'].get('devices_off')} devices off)")
        if s["rejected_other"]:
            found.append(f"{name}: {s['rejected_other']} samples refused")
        if s["unacknowledged"]:
            found.append(f"{name}: {s['unacknowledged']} requests never acknowledged")
        if s["retry_answer_mismatch"]:
            found.append(f"{name}: {s['retry_answer_mismatch']} retries answered differently")
    return found


# --- the Kafka tool ---------------------------------------------------------------------------------------


def record_sizes(bootstrap: str, topic: str, limit: int = 3_000) -> dict[str, float]:
    """Mean size of the topic's records as the producer writes them (value + key + header names and
    values) and mean samples per record, from up to ``limit`` records."""
    from cityhub.industry.v1 import telemetry_pb2
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(0, ends[tp] - limit // len(partitions)))
        sizes: list[int] = []
        samples = 0
        deadline = time.monotonic() + 60
        while len(sizes) < limit and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=1000)
            if not batch and all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
            for records in batch.values():
                for r in records:
                    sizes.append(
                        len(r.value) + len(r.key or b"") + sum(len(k) + len(v or b"") for k, v in r.headers)
                    )
                    samples += len(telemetry_pb2.TelemetryBatch.FromString(r.value).samples)
    finally:
        consumer.close()
    return {
        "record_bytes": sum(sizes) / max(len(sizes), 1),
        "samples_per_record": samples / max(len(sizes), 1),
    }


# --- orchestration ----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:  # noqa: PLR0912, PLR0915 - one linear script, by step
    # The machine's speed before anything of the benchmark runs (bench/machine.py).
    probe_before = probe_ms()
    from services.industry.bootstrap import ROLLUP_CONSUMER
    from services.platform.kafka import ensure_topics
    from services.platform.security import TokenIssuer, load_security_settings

    _apply_quick(args)
    layouts = parse_layouts(args.layouts)
    if args.devices < args.enterprises:
        raise SystemExit("--devices must be at least --enterprises (one collection box per enterprise)")
    started = time.monotonic()
    suffix = secrets.token_hex(3)
    schema = f"industry_bench_{suffix}"
    events_topic = f"cityhub.industry.events.v1.bench-{suffix}"
    telemetry_topic = f"cityhub.industry.telemetry.v1.bench-{suffix}"
    perf_topic = f"cityhub.bench.producer-performance.{suffix}"
    steps: list[dict[str, Any]] = []
    report: dict[str, Any] = {"steps": steps, "producer_performance": []}
    sizes: dict[str, dict[str, float]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="cityhub-bench-telemetry-"))
    with _stack() as (bootstrap, database):
        security = load_security_settings(dev_keys=True, dev_secrets_dir=workdir / "keys")
        token = TokenIssuer.from_settings(security).issue(
            sub="bench-collector", roles=["service"], ttl_s=7200
        )
        metadata = (("authorization", f"Bearer {token}"),)
        base_env = _service_env(
            service=schema,
            bootstrap=bootstrap,
            database=database,
            secrets_dir=workdir / "keys",
            topics=(events_topic, telemetry_topic),
        )
        deployment: Deployment | None = None
        load: LoadProcess | None = None
        try:
            deployment = Deployment(base_env, workdir, 1, 0)
            print(f"service up (logs in {workdir})", flush=True)
            with grpc.insecure_channel(deployment.addresses[0]) as channel:
                began = time.monotonic()
                device_ids = register_district(
                    industry_pb2_grpc.IndustryServiceStub(channel), metadata, args.enterprises, args.devices
                )
            print(
                f"registered {args.enterprises} enterprises, {len(device_ids)} devices"
                f" in {time.monotonic() - began:.0f} s",
                flush=True,
            )
            codes = [_credit_code(1000 + i) for i in range(args.enterprises)]
            probe_boxes = [
                (k * args.enterprises) // args.probe_enterprises for k in range(args.probe_enterprises)
            ]
            # Device clocks start two days back (well inside the 7-day late-data window) on a whole minute,
            # so even 20x the real rate for the whole bench stays behind the server's clock.
            start_ms = (time.time_ns() // 1_000_000 - 2 * 86_400_000) // 60_000 * 60_000
            ctx = {
                "args": args,
                "bootstrap": bootstrap,
                "group": f"{schema}.{ROLLUP_CONSUMER}",
                "topic": telemetry_topic,
                "metadata": metadata,
                "probes": {str(b): codes[b] for b in probe_boxes},
                "period": (start_ms // 1000 - 3600, start_ms // 1000 + 3 * 86_400),
            }
            load = LoadProcess(
                {
                    "device_ids": device_ids,
                    "enterprises": args.enterprises,
                    "start_ms": start_ms,
                    "window_s": args.window_s,
                    "shares": {},
                    "seed": 17,
                    "run_id": f"bench-{suffix}",
                    "probe_boxes": probe_boxes,
                    "token": token,
                }
            )

            def in_budget() -> bool:
                return bool(time.monotonic() - started < args.budget_s)

            # 1. The packed path: a step search per layout.
            for ingest, rollup in layouts:
                if not in_budget():
                    break
                if (ingest, rollup) != (1, 0) or deployment is None:
                    if deployment is not None:
                        deployment.stop()
                    deployment = Deployment(base_env, workdir, ingest, rollup)
                tried: list[tuple[float, bool]] = []
                rate = telemetry_report.next_rate(tried, args.start_rate)
                while rate is not None and len(tried) < args.max_steps and in_budget():
                    step = run_step(
                        ctx,
                        deployment,
                        load,
                        path="packed",
                        rate=rate,
                        seconds=args.seconds,
                        warmup=args.warmup,
                    )
                    steps.append(step)
                    tried.append((rate, bool(telemetry_report.best_step([step]))))
                    rate = telemetry_report.next_rate(tried, args.start_rate)
            sizes["packed"] = record_sizes(bootstrap, telemetry_topic)
            best = telemetry_report.best_step(steps)
            report["best"] = best and {
                k: best[k]
                for k in (
                    "layout",
                    "acked_per_s",
                    "offered_per_s",
                    "visible_p50_s",
                    "visible_p99_s",
                    "service_cpu",
                )
            }

            # 2. Baselines, each isolating one idea, on `make run`'s layout.
            if not args.skip_baselines and in_budget():
                rate = best["offered_per_s"] if best else args.start_rate
                if deployment is not None:
                    deployment.stop()
                deployment = Deployment(base_env, workdir, 1, 0, INDUSTRY_TELEMETRY_RECORD_PER_SAMPLE="true")
                steps.append(
                    run_step(
                        ctx,
                        deployment,
                        load,
                        path="(a) batched RPCs, one record per sample",
                        rate=rate,
                        seconds=args.baseline_seconds,
                        warmup=args.warmup,
                    )
                )
                sizes["one_per_sample"] = record_sizes(bootstrap, telemetry_topic)
                deployment.stop()
                deployment = Deployment(base_env, workdir, 1, 0)
                steps.append(
                    run_step(
                        ctx,
                        deployment,
                        load,
                        path="(b) one RPC per sample",
                        rate=args.single_rate,
                        seconds=args.baseline_seconds,
                        warmup=args.warmup,
                        mode="single",
                    )
                )
        finally:
            if load is not None:
                load.stop()
            if deployment is not None:
                deployment.stop()
        try:
            # 3. Kafka's own producer, alone on the machine now, on records of the sizes measured.
            if not args.skip_java:
                ensure_topics(bootstrap, [perf_topic], 6, 1, with_dlq=False)
                for what, measured in sizes.items():
                    size = max(1, round(measured["record_bytes"]))
                    per_s_guess = 200_000 if size < 1000 else max(200, int(100e6 / size))
                    count = max(1_000, int(per_s_guess * args.java_seconds))
                    print(f"ProducerPerformance: {count:,} records of {size:,} B ({what})", flush=True)
                    perf = producer_performance(bootstrap, perf_topic, count, size)
                    report["producer_performance"].append(
                        {
                            **perf,
                            "record_bytes": size,
                            "what": f"{what}: {measured['samples_per_record']:,.0f} samples a record",
                        }
                    )
        finally:
            try:
                _tidy(
                    bootstrap,
                    database,
                    [
                        events_topic,
                        telemetry_topic,
                        f"{events_topic}.dlq",
                        f"{telemetry_topic}.dlq",
                        perf_topic,
                    ],
                    schema,
                )
            except Exception as error:  # noqa: BLE001 - tidying up must not hide the results
                print(f"warning: could not tidy up: {error}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    failures = failures_of(steps)
    if not any(s["path"] == "packed" for s in steps):
        failures.append("no packed step ran")
    report.update(
        benchmark="telemetry",
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=describe(probe_before),
        git=_git_revision(),
        command=" ".join(["python -m bench", *sys.argv[1:]]),
        options={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        district={"devices": args.devices, "enterprises": args.enterprises, "window_s": args.window_s},
        record_sizes=sizes,
        aim={"samples_per_s": AIM, "p99_visible_s": telemetry_report.AIM_P99_S},
        failed=bool(failures),
        failures=failures,
        wall_seconds=round(time.monotonic() - started, 1),
    )
    return report


def main(args: argparse.Namespace) -> int:
    targets = [REPO_ROOT / "README.md", REPO_ROOT / "docs" / "services" / "industry.md"]
    if args.publish is not None:
        source = telemetry_report.latest(RESULTS) if args.publish == "latest" else Path(args.publish)
        telemetry_report.publish(source, targets, REPO_ROOT)
        print(f"regenerated the telemetry figures in README.md and docs/services/industry.md from {source}")
        return 0
    report = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS / f"telemetry-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(telemetry_report.table(report))
    print(f"\nwritten: {output.relative_to(REPO_ROOT) if output.is_relative_to(REPO_ROOT) else output}")
    return 1 if report["failed"] else 0
