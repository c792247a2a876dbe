"""`cityhub run` / `cityhub stop`: the whole system locally, supervised from one foreground command.

Kafka and PostgreSQL come up first (``cityhub infra up``); then every process listed in
deploy/local/processes.toml starts with its environment pointing at them. The command stays in the
foreground until Ctrl-C, SIGTERM or ``cityhub stop`` (which signals it through .local/run/run.pid), then
stops the processes it started and whatever part of the infrastructure it had to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from services.cli import infra

__all__ = ["ProcessSpec", "load_processes", "run_stack", "stop_stack"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES_FILE = REPO_ROOT / "deploy" / "local" / "processes.toml"
RUN_DIR = REPO_ROOT / ".local" / "run"
LOG_DIR = REPO_ROOT / ".local" / "logs"
SUPERVISOR_PID = RUN_DIR / "run.pid"
_STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    module: str
    grpc_port: int
    metrics_port: int
    env: dict[str, str] = field(default_factory=dict)


def load_processes(path: Path = PROCESSES_FILE) -> list[ProcessSpec]:
    data: dict[str, Any] = tomllib.loads(path.read_text()) if path.exists() else {}
    specs = []
    for index, raw in enumerate(data.get("process", [])):
        try:
            specs.append(
                ProcessSpec(
                    name=str(raw["name"]),
                    module=str(raw["module"]),
                    grpc_port=int(raw["grpc_port"]),
                    metrics_port=int(raw["metrics_port"]),
                    env={str(k): str(v) for k, v in dict(raw.get("env", {})).items()},
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise click.ClickException(f"{path}: process #{index + 1} is missing or has a bad {exc}") from exc
    return specs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start(
    spec: ProcessSpec, endpoints: infra.Endpoints, extra_env: dict[str, str]
) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SERVICE_NAME": spec.name,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "DATABASE_URL": endpoints.database_url,
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(spec.grpc_port),
        "METRICS_PORT": str(spec.metrics_port),
        "LOG_FORMAT": "json",
        **extra_env,
        **spec.env,
    }
    log_file = (LOG_DIR / f"{spec.name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", spec.module], env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT
    )
    (RUN_DIR / f"{spec.name}.pid").write_text(str(process.pid))
    return process


def _terminate(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        (RUN_DIR / f"{name}.pid").unlink(missing_ok=True)


def run_stack(extra_env: dict[str, str] | None = None) -> None:
    """Bring everything up, print where it listens, and supervise until told to stop."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    if SUPERVISOR_PID.exists() and _alive(int(SUPERVISOR_PID.read_text() or 0)):
        raise click.ClickException(f"`cityhub run` is already running (pid {SUPERVISOR_PID.read_text()})")
    SUPERVISOR_PID.write_text(str(os.getpid()))
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    settings = infra.InfraSettings()
    endpoints = infra.ensure_up(settings)
    # Locally every process shares one generated key pair under .local/secrets (never in production,
    # where the public key comes from a Secret): services verify, `cityhub token issue` signs.
    local_env = {"CITYHUB_DEV_KEYS": "true", **(extra_env or {})}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        specs = load_processes()
        for spec in specs:
            processes[spec.name] = _start(spec, endpoints, local_env)
        click.echo("")
        click.echo("CityHub is running:")
        click.echo(f"  {'Kafka':<12} {endpoints.kafka_bootstrap}  (bootstrap servers)")
        click.echo(f"  {'PostgreSQL':<12} {infra.redact_url(endpoints.database_url)}")
        for spec in specs:
            click.echo(
                f"  {spec.name:<12} grpc 127.0.0.1:{spec.grpc_port}  metrics http://127.0.0.1:{spec.metrics_port}"
                f"/metrics  log {LOG_DIR / (spec.name + '.log')}"
            )
        if not specs:
            click.echo("  (no services are listed in deploy/local/processes.toml yet)")
        issue = "uv run cityhub token issue --sub me --role district_operator"
        click.echo(f"A token for calling them: CITYHUB_DEV_KEYS=true {issue}")
        click.echo("Press Ctrl-C or run `make stop` to stop.")
        while not stop.wait(1.0):
            for name, process in processes.items():
                if process.poll() is not None:
                    click.echo(
                        f"{name} exited with code {process.returncode}; see {LOG_DIR / (name + '.log')}"
                    )
                    stop.set()
    finally:
        click.echo("Stopping…")
        _terminate(processes)
        infra.down(settings, kafka=endpoints.started_kafka, postgres=endpoints.started_postgres)
        SUPERVISOR_PID.unlink(missing_ok=True)
        click.echo("Stopped.")


def stop_stack() -> None:
    """Stop a running `cityhub run` (it cleans up after itself); failing that, whatever is left."""
    if SUPERVISOR_PID.exists():
        pid = int(SUPERVISOR_PID.read_text() or 0)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_GRACE_S + 60
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            click.echo(f"stopped `cityhub run` (pid {pid})")
            return
        SUPERVISOR_PID.unlink(missing_ok=True)
    # No supervisor: stop stray service processes and the local infrastructure.
    for pid_file in RUN_DIR.glob("*.pid") if RUN_DIR.exists() else ():
        if pid_file.name == "kafka.pid":
            continue
        try:
            pid = int(pid_file.read_text() or 0)
        except ValueError:
            pid = 0
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
    infra.down(infra.InfraSettings())
    click.echo("stopped the local stack")
