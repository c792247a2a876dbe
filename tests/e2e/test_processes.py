"""Every process `make run` starts, run as a real process: it becomes SERVING once PostgreSQL and Kafka
answer, reflection lists its services, and SIGTERM drains it and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.cli.run import ProcessSpec, load_processes
from tests.support import unique_name

REPO = Path(__file__).resolve().parents[2]
SPECS = load_processes()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(address: str) -> int | None:
    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status)
        except grpc.RpcError:
            return None


def _reflected(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        return {s.name for a in answers for s in a.list_services_response.service}


@pytest.mark.skipif(not SPECS, reason="deploy/local/processes.toml lists no process yet")
@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_process_serves_and_stops_cleanly_on_sigterm(
    spec: ProcessSpec, kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        **spec.env,
        # Its own schema, so this run shares nothing with a `make run` stack on the same database.
        "SERVICE_NAME": unique_name(spec.name),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "GRPC_PORT": str(port),
        "METRICS_PORT": "0",
        "LOG_FORMAT": "json",
        "CITYHUB_DEV_KEYS": "true",
    }
    log_path = tmp_path / f"{spec.name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module], env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO
        )
        try:
            address = f"127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            status = None
            while time.monotonic() < deadline and process.poll() is None:
                status = _health(address)
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
                time.sleep(0.5)
            assert status == health_pb2.HealthCheckResponse.SERVING, log_path.read_text()[-4000:]
            services = _reflected(address)
            assert any(name.startswith(f"cityhub.{spec.name}.") for name in services), services
            assert "grpc.health.v1.Health" in services

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0, log_path.read_text()[-4000:]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert '"shutdown_signal_received"' in log_path.read_text()
