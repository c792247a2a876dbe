"""Telemetry ingest throughput: samples per second from the IngestTelemetry RPC through to Kafka.

Three paths in one run, on the same broker:

1. **packed** - the industry service as it runs in production (its own process, `python -m
   services.industry`), fed by a few callers that each send batches of samples; the service screens each
   batch, packs the accepted samples into one Kafka record per partition and answers once Kafka has
   acknowledged them (acks=all). Counted: samples acknowledged.
2. **naive** - the same service, one sample per RPC, so one Kafka record per sample.
3. **kafka tool** - Kafka's own `org.apache.kafka.tools.ProducerPerformance` from the same jars, acks=all:
   once with records the size of one sample (one record per sample, no gRPC, no Python), once with
   records the size of the packed records (converted to samples per second).

Then, optionally, the service's telemetry rollup consumer is started on the records the run produced, to
show how fast the derived hourly figures keep up.

The district: 7,000 devices at one sample a second is 7,000 samples/s; the aim is ten times that.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc, telemetry_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results"
INGEST = "/cityhub.industry.v1.IndustryService/IngestTelemetry"
DISTRICT_DEVICES = 7_000
AIM = 70_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the packed run (default 60)")
    parser.add_argument(
        "--naive-seconds", type=float, default=None, help="length of the naive run (default: --seconds)"
    )
    parser.add_argument("--callers", type=int, default=4, help="concurrent callers of the packed path")
    parser.add_argument("--batch", type=int, default=5_000, help="samples per IngestTelemetry request")
    parser.add_argument("--naive-callers", type=int, default=16, help="concurrent callers, naive path")
    parser.add_argument("--devices", type=int, default=DISTRICT_DEVICES, help="devices registered")
    parser.add_argument("--enterprises", type=int, default=500, help="enterprises they belong to")
    parser.add_argument(
        "--java-records", type=int, default=5_000_000, help="records of one sample's size for the Kafka tool"
    )
    parser.add_argument("--skip-java", action="store_true", help="leave out Kafka's ProducerPerformance")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the naive path")
    parser.add_argument(
        "--rollup-seconds", type=float, default=45.0, help="measure the rollup consumer this long (0: skip)"
    )
    parser.add_argument("--no-verify", action="store_true", help="do not read the records back")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default: bench/results/...)")


# --- small helpers --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class PathResult:
    name: str
    samples: int
    seconds: float
    samples_per_s: float
    requests: int = 0
    kafka_records: int = 0
    request_p50_ms: float = 0.0
    request_p99_ms: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


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


def build_sections(device_ids: list[str], batch: int, count: int, base_ms: int) -> list[bytes]:
    """``count`` serialized runs of ``batch`` samples (field 2 of IngestTelemetryRequest) cycling over
    ``device_ids`` one second apart, so no (device, time) repeats within a request."""
    sections = []
    n_devices = len(device_ids)
    for k in range(count):
        samples = []
        for n in range(k * batch, (k + 1) * batch):
            index = n % n_devices
            running = index % 10 != 0
            samples.append(
                telemetry_pb2.TelemetrySample(
                    device_id=device_ids[index],
                    time_unix_ms=base_ms + (n // n_devices) * 1000,
                    state=telemetry_pb2.DEVICE_STATE_RUNNING if running else telemetry_pb2.DEVICE_STATE_IDLE,
                    good_count=1 if running and n % 3 == 0 else 0,
                    reject_count=0,
                    power_kw=11.5 if running else 1.2,
                    spindle_load_pct=62.5 if running else 0.0,
                    temperature_c=41.5,
                )
            )
        sections.append(industry_pb2.IngestTelemetryRequest(samples=samples).SerializeToString())
    return sections


def _request(section: bytes) -> bytes:
    # Serialized protobuf fields concatenate: the request id field followed by the samples field.
    head = industry_pb2.IngestTelemetryRequest(request_id=secrets.token_hex(8)).SerializeToString()
    return head + section


# --- the runs ---------------------------------------------------------------------------------------------


@dataclass
class _Tally:
    samples: int = 0
    requests: int = 0
    rejected: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def drive(
    address: str,
    metadata: tuple[tuple[str, str], ...],
    payloads: list[list[bytes]],
    seconds: float,
) -> tuple[_Tally, float]:
    """Each caller (one channel each) sends its payloads (serialized samples fields) round-robin, each
    under a fresh request id, until ``seconds`` have passed."""
    tally = _Tally()
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(len(payloads) + 1)

    def caller(mine: list[bytes]) -> None:
        with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
            call: Callable[..., industry_pb2.IngestTelemetryResponse] = channel.unary_unary(
                INGEST,
                request_serializer=None,
                response_deserializer=industry_pb2.IngestTelemetryResponse.FromString,
            )
            local_samples = local_requests = local_rejected = local_errors = 0
            latencies: list[float] = []
            start.wait()
            i = 0
            while time.monotonic() < stop_at:
                began = time.perf_counter()
                try:
                    # A fresh request id every time: a repeated id would publish records with repeated
                    # ids, which the rollup consumer rightly skips as retries.
                    response = call(_request(mine[i % len(mine)]), metadata=metadata, timeout=60)
                except grpc.RpcError:
                    local_errors += 1
                    continue
                latencies.append(time.perf_counter() - began)
                local_samples += response.accepted_count
                local_rejected += response.rejected_count
                local_requests += 1
                i += 1
            with tally.lock:
                tally.samples += local_samples
                tally.requests += local_requests
                tally.rejected += local_rejected
                tally.errors += local_errors
                tally.latencies.extend(latencies)

    threads = [threading.Thread(target=caller, args=(mine,), daemon=True) for mine in payloads]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    return tally, time.monotonic() - began


def end_offsets(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return int(sum(consumer.end_offsets(partitions).values()))
    finally:
        consumer.close()


def read_back(bootstrap: str, topic: str, timeout_s: float = 600.0) -> dict[str, int]:
    """What is on ``topic``, read from the beginning: records and samples, and separately the packed
    records (more than one sample) with their bytes."""
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        found = {"records": 0, "samples": 0, "packed_records": 0, "packed_samples": 0, "packed_bytes": 0}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=2000).values():
                for record in batch:
                    count = len(telemetry_pb2.TelemetryBatch.FromString(record.value).samples)
                    found["records"] += 1
                    found["samples"] += count
                    if count > 1:
                        found["packed_records"] += 1
                        found["packed_samples"] += count
                        found["packed_bytes"] += len(record.value)
        return found
    finally:
        consumer.close(autocommit=False)


def records_applied(database: str, schema: str, consumer: str) -> int:
    """Telemetry records the rollup consumer has applied (its rows in the schema's processed_events)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE consumer = %s").format(
                sql.Identifier(schema, "processed_events")
            ),
            (consumer,),
        ).fetchone()
    return int(row[0]) if row else 0


_PERF_LINE = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max"
)


def producer_performance(bootstrap: str, topic: str, records: int, size: int) -> dict[str, float]:
    """Kafka's own producer benchmark from the jars the local broker runs on, acks=all."""
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
        "acks=all",
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
        GRPC_MAX_WORKERS="32",
        # The callers send their 12 prepared sections over and over: with the ingest's memory of recent
        # sample starts on, every round after the first would be answered as duplicates and measure
        # nothing. Off, the samples are sent on and the rollup's coverage counts each once.
        INDUSTRY_TELEMETRY_RECENT_STARTS_PER_DEVICE="0",
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


def run(args: argparse.Namespace) -> dict[str, Any]:  # noqa: PLR0915 - one linear script, commented by step
    from services.platform.security import TokenIssuer, load_security_settings

    suffix = secrets.token_hex(3)
    schema = f"industry_bench_{suffix}"
    events_topic = f"cityhub.industry.events.v1.bench-{suffix}"
    telemetry_topic = f"cityhub.industry.telemetry.v1.bench-{suffix}"
    perf_topic = f"cityhub.bench.producer-performance.{suffix}"
    naive_seconds = args.seconds if args.naive_seconds is None else args.naive_seconds
    results: list[PathResult] = []
    report: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="cityhub-bench-"))
    with _stack() as (bootstrap, database):
        security = load_security_settings(dev_keys=True, dev_secrets_dir=workdir / "keys")
        token = TokenIssuer.from_settings(security).issue(
            sub="bench-collector", roles=["service"], ttl_s=7200
        )
        metadata = (("authorization", f"Bearer {token}"),)
        env = _service_env(
            service=schema,
            bootstrap=bootstrap,
            database=database,
            secrets_dir=workdir / "keys",
            topics=(events_topic, telemetry_topic),
            INDUSTRY_ROLLUP_CONSUMER_ENABLED="false",
            INDUSTRY_HEALTH_MONITOR_ENABLED="false",
        )
        service = ServiceProcess(env, workdir / "industry.log")
        rollup: ServiceProcess | None = None
        try:
            service.wait_serving()
            print(f"service up at {service.address} (log: {workdir / 'industry.log'})", flush=True)
            with grpc.insecure_channel(service.address) as channel:
                stub = industry_pb2_grpc.IndustryServiceStub(channel)
                began = time.monotonic()
                device_ids = register_district(stub, metadata, args.enterprises, args.devices)
                print(
                    f"registered {args.enterprises} enterprises and {len(device_ids)} devices"
                    f" in {time.monotonic() - began:.1f}s",
                    flush=True,
                )
            base_ms = time.time_ns() // 1_000_000 - 120_000
            shares = [device_ids[c :: args.callers] for c in range(args.callers)]
            sections = [build_sections(share, args.batch, 12, base_ms) for share in shares]
            payloads = sections
            sample_size = len(
                telemetry_pb2.TelemetrySample.FromString(
                    industry_pb2.IngestTelemetryRequest.FromString(sections[0][0])
                    .samples[0]
                    .SerializeToString()
                ).SerializeToString()
            )

            # Warm-up: connections, caches, the producer's metadata. Not counted.
            drive(service.address, metadata, payloads, 3.0)
            records_before = end_offsets(bootstrap, telemetry_topic)

            # 1. packed
            print(
                f"packed: {args.callers} callers x {args.batch} samples per request, {args.seconds:.0f}s",
                flush=True,
            )
            cpu_before, client_before = service.cpu_seconds(), time.process_time()
            tally, elapsed = drive(service.address, metadata, payloads, args.seconds)
            cpu_used, client_used = service.cpu_seconds() - cpu_before, time.process_time() - client_before
            records_after = end_offsets(bootstrap, telemetry_topic)
            packed = PathResult(
                name="packed: IngestTelemetry batches -> one record per partition",
                samples=tally.samples,
                seconds=elapsed,
                samples_per_s=tally.samples / elapsed,
                requests=tally.requests,
                kafka_records=records_after - records_before,
                request_p50_ms=_percentile(tally.latencies, 0.5) * 1000,
                request_p99_ms=_percentile(tally.latencies, 0.99) * 1000,
                server_cpu_s=cpu_used,
                client_cpu_s=client_used,
                extra={"rejected": tally.rejected, "errors": tally.errors, "batch": args.batch},
            )
            results.append(packed)
            print(f"  {packed.samples_per_s:,.0f} samples/s", flush=True)

            # Read everything back: the samples acknowledged are on the topic.
            packed_record_size = 0
            if not args.no_verify:
                print("reading the telemetry topic back", flush=True)
                found = read_back(bootstrap, telemetry_topic)
                packed_record_size = found["packed_bytes"] // max(found["packed_records"], 1)
                report["verified"] = {
                    **found,
                    "mean_packed_record_bytes": packed_record_size,
                    "mean_packed_record_samples": found["packed_samples"] // max(found["packed_records"], 1),
                }

            # The rollup consumer on what was produced: how fast derived figures keep up.
            if args.rollup_seconds > 0:
                from services.industry.bootstrap import ROLLUP_CONSUMER

                rollup_env = {
                    **env,
                    "INDUSTRY_ROLLUP_CONSUMER_ENABLED": "true",
                    "GRPC_PORT": str(_free_port()),
                }
                rollup = ServiceProcess(rollup_env, workdir / "industry-rollup.log")
                rollup.wait_serving()
                total_records = end_offsets(bootstrap, telemetry_topic)
                verified = report.get("verified")
                mean_samples = (
                    verified["samples"] / max(verified["records"], 1)
                    if verified
                    else packed.samples / max(packed.kafka_records, 1)
                )
                cpu_before = rollup.cpu_seconds()
                began = time.monotonic()
                stop_at = began + args.rollup_seconds
                done = 0
                while time.monotonic() < stop_at and done < total_records:
                    time.sleep(1.0)
                    done = records_applied(database, schema, ROLLUP_CONSUMER)
                elapsed = time.monotonic() - began
                cpu_used = rollup.cpu_seconds() - cpu_before
                # Conservative: the clock starts when the process is SERVING, so joining the consumer
                # group and the first poll count against it. Applied = committed to PostgreSQL.
                results.append(
                    PathResult(
                        name="rollup consumer: telemetry topic -> hourly rows (not part of ingest)",
                        samples=int(done * mean_samples),
                        seconds=elapsed,
                        samples_per_s=done * mean_samples / elapsed,
                        kafka_records=done,
                        server_cpu_s=cpu_used,
                        note=f"{done:,} of {total_records:,} records in {elapsed:.0f}s"
                        f" (~{mean_samples:,.0f} samples each), from start-up",
                    )
                )
                print(f"  rollup: {done * mean_samples / elapsed:,.0f} samples/s", flush=True)
                rollup.stop()
                rollup = None

            # 2. naive
            if not args.skip_naive:
                singles = [
                    [
                        industry_pb2.IngestTelemetryRequest(samples=[sample]).SerializeToString()
                        for sample in industry_pb2.IngestTelemetryRequest.FromString(section).samples[:500]
                    ]
                    for section in (sections[c % len(sections)][0] for c in range(args.naive_callers))
                ]
                print(
                    f"naive: {args.naive_callers} callers x 1 sample per request, {naive_seconds:.0f}s",
                    flush=True,
                )
                before = end_offsets(bootstrap, telemetry_topic)
                cpu_before, client_before = service.cpu_seconds(), time.process_time()
                tally, elapsed = drive(service.address, metadata, singles, naive_seconds)
                cpu_used, client_used = (
                    service.cpu_seconds() - cpu_before,
                    time.process_time() - client_before,
                )
                naive = PathResult(
                    name="naive: one RPC and one Kafka record per sample",
                    samples=tally.samples,
                    seconds=elapsed,
                    samples_per_s=tally.samples / elapsed,
                    requests=tally.requests,
                    kafka_records=end_offsets(bootstrap, telemetry_topic) - before,
                    request_p50_ms=_percentile(tally.latencies, 0.5) * 1000,
                    request_p99_ms=_percentile(tally.latencies, 0.99) * 1000,
                    server_cpu_s=cpu_used,
                    client_cpu_s=client_used,
                    extra={"rejected": tally.rejected, "errors": tally.errors},
                )
                results.append(naive)
                print(f"  {naive.samples_per_s:,.0f} samples/s", flush=True)

            service.stop()

            # 3. Kafka's own producer, from the same jars.
            if not args.skip_java:
                from services.platform.kafka import ensure_topics

                ensure_topics(bootstrap, [perf_topic], 6, 1, with_dlq=False)
                print(f"ProducerPerformance: {args.java_records:,} records of {sample_size} B", flush=True)
                small = producer_performance(bootstrap, perf_topic, args.java_records, sample_size)
                results.append(
                    PathResult(
                        name=f"Kafka ProducerPerformance, {sample_size} B records (one per sample)",
                        samples=int(small["records"]),
                        seconds=small["records"] / small["records_per_s"],
                        samples_per_s=small["records_per_s"],
                        kafka_records=int(small["records"]),
                        note=f"{small['mb_per_s']:.1f} MB/s, avg latency {small['avg_latency_ms']:.0f} ms",
                        extra=small,
                    )
                )
                print(f"  {small['records_per_s']:,.0f} records/s", flush=True)
                if packed_record_size:
                    per_record = report["verified"]["mean_packed_record_samples"]
                    count = max(200, int(400e6 / packed_record_size))
                    print(f"ProducerPerformance: {count:,} records of {packed_record_size:,} B", flush=True)
                    big = producer_performance(bootstrap, perf_topic, count, packed_record_size)
                    results.append(
                        PathResult(
                            name=f"Kafka ProducerPerformance, {packed_record_size:,} B records (packed size)",
                            samples=int(big["records"] * per_record),
                            seconds=big["records"] / big["records_per_s"],
                            samples_per_s=big["records_per_s"] * per_record,
                            kafka_records=int(big["records"]),
                            note=f"{big['records_per_s']:,.0f} records/s x {per_record:,.0f} samples, "
                            f"{big['mb_per_s']:.1f} MB/s",
                            extra=big,
                        )
                    )
                    print(f"  {big['records_per_s'] * per_record:,.0f} samples/s equivalent", flush=True)
        finally:
            if rollup is not None:
                rollup.stop()
            service.stop()
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
    report.update(
        benchmark="telemetry",
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine={
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        git=_git_revision(),
        command=" ".join(["python -m bench", *sys.argv[1:]]),
        options={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        aim_samples_per_s=AIM,
        sample_bytes=sample_size,
        results=[asdict(r) for r in results],
    )
    return report


def table(report: dict[str, Any]) -> str:
    rows = report["results"]
    packed = next((r for r in rows if r["name"].startswith("packed")), None)
    head = f"{'path':<72} {'samples/s':>12} {'x naive':>8} {'p50 ms':>8} {'p99 ms':>8} {'srv CPU':>8}"
    dirty = " (dirty)" if report["git"]["dirty"] else ""
    title = (
        f"telemetry ingest: {report['machine']['cores']} cores, git {report['git']['revision'][:12]}{dirty},"
        f" {report['finished_at']}"
    )
    lines = [
        title,
        head,
        "-" * len(head),
    ]
    naive = next((r for r in rows if r["name"].startswith("naive")), None)
    for row in rows:
        ratio = (
            f"{row['samples_per_s'] / naive['samples_per_s']:.1f}"
            if naive and naive["samples_per_s"]
            else "-"
        )
        cpu = f"{row['server_cpu_s'] / row['seconds']:.2f}" if row["server_cpu_s"] and row["seconds"] else "-"
        p50 = f"{row['request_p50_ms']:.1f}" if row["request_p50_ms"] else "-"
        p99 = f"{row['request_p99_ms']:.1f}" if row["request_p99_ms"] else "-"
        lines.append(
            f"{row['name']:<72} {row['samples_per_s']:>12,.0f} {ratio:>8} {p50:>8} {p99:>8} {cpu:>8}"
        )
        if row.get("note"):
            lines.append(f"{'':<4}{row['note']}")
    if packed:
        verdict = "meets" if packed["samples_per_s"] >= AIM else "misses"
        lines.append(
            f"packed path {verdict} the aim of {AIM:,} samples/s"
            f" (10 x the district's {DISTRICT_DEVICES:,} devices at one sample a second)"
        )
    verified = report.get("verified")
    if verified:
        lines.append(
            f"read back: {verified['records']:,} records holding {verified['samples']:,} samples;"
            f" packed records {verified['mean_packed_record_bytes']:,} B"
            f" / {verified['mean_packed_record_samples']:,} samples on average;"
            f" one sample {report['sample_bytes']} B"
        )
    lines.append("srv CPU = CPU seconds of the service process per second of the run (cores busy)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    report = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS / f"telemetry-{stamp}.json"
    output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(report))
    print(f"\nwritten: {output.relative_to(REPO_ROOT) if output.is_relative_to(REPO_ROOT) else output}")
    packed = next((r for r in report["results"] if r["name"].startswith("packed")), None)
    return 0 if packed is not None and packed["samples"] > 0 else 1
