"""`cityhub run` / `cityhub stop`: the whole system locally, supervised from one foreground command.

Kafka and PostgreSQL come up first (``cityhub infra up``). Then the processes of
deploy/local/processes.toml, by kind:

1. ``grpc`` services are launched in the file's order (they need not wait for each other: peers are
   called per request) and each is waited for until grpc.health.v1 answers SERVING;
2. ``http`` frontends (the web page) are started next and waited for until GET /healthz answers 200;
3. ``job`` processes (the simulator) start last, once everything above is ready; a job that ends with
   exit code 0 is done, not a failure.

A process that exits or is not ready within the bound stops the run: what it was, its log path and the
log's tail are shown, and everything started so far is stopped. When all is ready, one screen says where
everything listens, the dashboard link with a one-time login link, and a grpcurl line with a token. The
command stays in the foreground until Ctrl-C, SIGTERM or ``cityhub stop`` (which signals it through
.local/run/run.pid), then stops the processes it started and whatever part of the infrastructure it had to
start.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import click

from services.cli import infra

__all__ = ["KINDS", "ProcessSpec", "load_processes", "run_stack", "stop_stack"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES_FILE = REPO_ROOT / "deploy" / "local" / "processes.toml"
_STOP_GRACE_S = 15.0
# Bound on one process becoming ready (imports, migrations, Kafka topics on a cold 2-core machine).
_READY_TIMEOUT_S = float(os.environ.get("CITYHUB_RUN_READY_TIMEOUT_S", "90"))
_POLL_S = 0.2

Kind = Literal["grpc", "http", "job"]
KINDS: tuple[Kind, ...] = ("grpc", "http", "job")


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    module: str
    grpc_port: int = 0
    metrics_port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    kind: Kind = "grpc"
    http_port: int = 0


def _spec(raw: dict[str, Any]) -> ProcessSpec:
    kind = str(raw.get("kind", "grpc"))
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} (one of {', '.join(KINDS)})")
    return ProcessSpec(
        name=str(raw["name"]),
        module=str(raw["module"]),
        # Each kind's port is required for that kind alone (KeyError names the missing one).
        grpc_port=int(raw["grpc_port"]) if kind == "grpc" else 0,
        metrics_port=int(raw["metrics_port"]) if kind == "grpc" else int(raw.get("metrics_port", 0)),
        env={str(k): str(v) for k, v in dict(raw.get("env", {})).items()},
        kind="grpc" if kind == "grpc" else "http" if kind == "http" else "job",
        http_port=int(raw["http_port"]) if kind == "http" else 0,
    )


def load_processes(
    path: Path | None = None, *, kinds: Collection[str] | None = ("grpc",)
) -> list[ProcessSpec]:
    """The processes of ``path`` (default: deploy/local/processes.toml, or CITYHUB_PROCESSES_FILE) of the
    given kinds, in file order. The default is the gRPC services alone, which is what the drills and the
    process tests start; ``kinds=None`` gives every process."""
    path = path or Path(os.environ.get("CITYHUB_PROCESSES_FILE", "") or PROCESSES_FILE)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text()) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    specs = []
    for index, raw in enumerate(data.get("process", [])):
        try:
            spec = _spec(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise click.ClickException(f"{path}: process #{index + 1} is missing or has a bad {exc}") from exc
        if kinds is None or spec.kind in kinds:
            specs.append(spec)
    return specs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class _Dirs:
    run: Path
    logs: Path

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "run.pid"

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def _dirs(settings: infra.InfraSettings | None = None) -> _Dirs:
    local = (settings or infra.InfraSettings()).local_dir
    return _Dirs(local / "run", local / "logs")


def _instance_id(name: str) -> str:
    """``<host>-<process>``: stable across restarts on this machine, and as KAFKA_GROUP_INSTANCE_ID allows."""
    host = re.sub(r"[^a-zA-Z0-9._-]", "-", socket.gethostname())[:100] or "localhost"
    return f"{host}-{name}"


def _start(
    spec: ProcessSpec, endpoints: infra.Endpoints, extra_env: dict[str, str], dirs: _Dirs
) -> subprocess.Popen[bytes]:
    dirs.logs.mkdir(parents=True, exist_ok=True)
    ports: dict[str, str] = {"GRPC_HOST": "127.0.0.1"}
    if spec.kind == "grpc":
        ports |= {"GRPC_PORT": str(spec.grpc_port), "METRICS_PORT": str(spec.metrics_port)}
    elif spec.kind == "http":
        ports |= {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(spec.http_port)}
    env = {
        **os.environ,
        "SERVICE_NAME": spec.name,
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
        "DATABASE_URL": endpoints.database_url,
        "LOG_FORMAT": "json",
        # A process restarted after a crash takes its partitions back at once (docs/adr/0018).
        "KAFKA_GROUP_INSTANCE_ID": _instance_id(spec.name),
        **ports,
        **extra_env,
        **spec.env,
    }
    log_file = dirs.log_of(spec.name).open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", spec.module], env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT
    )
    log_file.close()  # the child holds its own descriptor
    (dirs.run / f"{spec.name}.pid").write_text(str(process.pid))
    return process


def _terminate(processes: dict[str, subprocess.Popen[bytes]], dirs: _Dirs) -> None:
    """SIGTERM the processes, last started first (the simulator before the services it calls), then wait
    for all of them together within the grace period."""
    for process in reversed(processes.values()):
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        (dirs.run / f"{name}.pid").unlink(missing_ok=True)


def grpc_serving(address: str, timeout_s: float = 1.0) -> bool:
    """Whether grpc.health.v1 at ``address`` answers SERVING for the whole server."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ready(url: str, timeout_s: float = 1.0) -> bool:
    """Whether GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 - a loopback http URL we built
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class NotReadyError(click.ClickException):
    """A process exited or did not become ready: the run stops, saying which and where its log is."""


def _log_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _wait_ready(
    spec: ProcessSpec,
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    stop: threading.Event,
    dirs: _Dirs,
) -> float:
    """Seconds until ``ready()``; NotReadyError when the process exits or the bound passes first."""
    began = time.monotonic()
    while not stop.is_set():
        if ready():
            return time.monotonic() - began
        code = process.poll()
        log_path = dirs.log_of(spec.name)
        if code is not None:
            raise NotReadyError(
                f"{spec.name} exited with code {code} before it was ready; its log: {log_path}\n"
                f"{_log_tail(log_path)}"
            )
        if time.monotonic() - began > _READY_TIMEOUT_S:
            raise NotReadyError(
                f"{spec.name} was not ready within {_READY_TIMEOUT_S:.0f} s; its log: {log_path}\n"
                f"{_log_tail(log_path)}"
            )
        stop.wait(_POLL_S)
    raise click.Abort()


def _say(text: str) -> None:
    click.echo(text, err=False)


def _login_link(base_url: str) -> str | None:
    """The web's one-time operator login link, when the web part is installed."""
    try:
        from services.web.links import login_link
    except ImportError:
        return None
    try:
        return str(login_link(base_url))
    except Exception as exc:  # noqa: BLE001 - the screen says why instead of failing the whole run
        return f"(no login link: {exc})"


def _operator_token(database_url: str) -> str:
    """A district operator's token for grpcurl, issued and recorded in the audit log as `cityhub token
    issue` does it (signed with the local development key)."""
    from services.cli.token_commands import _record_issue as record_issue
    from services.platform.security.settings import load_security_settings
    from services.platform.security.tokens import TokenIssuer

    issuer = TokenIssuer.from_settings(load_security_settings(dev_keys=True))
    bearer, claims = issuer.issue_with_claims(sub="newcomer", roles=("district_operator",), ttl_s=8 * 3600)
    record_issue(database_url, "security", claims, issuer.key_id)
    return bearer


def _screen(specs: list[ProcessSpec], endpoints: infra.Endpoints, dirs: _Dirs, took_s: float) -> None:
    _say("")
    _say(f"CityHub is running (ready in {took_s:.0f} s):")
    _say(f"  {'Kafka':<12} {endpoints.kafka_bootstrap}  (bootstrap servers)")
    _say(f"  {'PostgreSQL':<12} {infra.redact_url(endpoints.database_url)}")
    hub_address = ""
    for spec in specs:
        log = dirs.log_of(spec.name)
        if spec.kind == "grpc":
            metrics = f"  metrics http://127.0.0.1:{spec.metrics_port}/metrics" if spec.metrics_port else ""
            _say(f"  {spec.name:<12} grpc 127.0.0.1:{spec.grpc_port}{metrics}  log {log}")
            if spec.module == "services.hub":
                hub_address = f"127.0.0.1:{spec.grpc_port}"
        elif spec.kind == "http":
            _say(f"  {spec.name:<12} http://127.0.0.1:{spec.http_port}/  log {log}")
        else:
            _say(f"  {spec.name:<12} running  log {log}")
    if not specs:
        _say("  (no processes are listed in deploy/local/processes.toml yet)")
    for spec in specs:
        if spec.kind == "http":
            base = f"http://127.0.0.1:{spec.http_port}"
            _say("")
            _say(f"Dashboard: {base}/")
            link = _login_link(base)
            if link:
                _say(f"Log in (one-time link): {link}")
    target = hub_address or next((f"127.0.0.1:{s.grpc_port}" for s in specs if s.kind == "grpc"), "")
    if target:
        _say("")
        _say("Call a service (grpcurl; reflection is on; a district operator's token, valid 8 h):")
        _say(f"  export TOKEN={_operator_token(endpoints.database_url)}")
        call = (
            "-d '{}' " + target + " cityhub.hub.v1.HubService/ListInboxItems"
            if hub_address
            else f"{target} list"
        )
        _say(f'  {_grpcurl()} -plaintext -H "authorization: Bearer $TOKEN" {call}')
        issue = ".venv/bin/cityhub token issue --sub me --role district_operator --ttl 8h"
        _say(f"  another token: TOKEN=$(CITYHUB_DEV_KEYS=true {issue})")
    _say("Press Ctrl-C or run `make stop` to stop.")


def _grpcurl() -> str:
    """grpcurl as a fresh shell finds it: `make run` installs the pinned one under .local/tools/bin, which
    is not on PATH (a path relative to the repository, where the README's commands run)."""
    local = REPO_ROOT / ".local" / "tools" / "bin" / "grpcurl"
    return str(local.relative_to(REPO_ROOT)) if local.exists() else "grpcurl"


def run_stack(extra_env: dict[str, str] | None = None) -> None:
    """Bring everything up in order, say what is ready, print one screen, supervise until told to stop."""
    settings = infra.InfraSettings()
    dirs = _dirs(settings)
    dirs.run.mkdir(parents=True, exist_ok=True)
    if dirs.supervisor_pid.exists() and _alive(int(dirs.supervisor_pid.read_text() or 0)):
        raise click.ClickException(
            f"`cityhub run` is already running (pid {dirs.supervisor_pid.read_text()})"
        )
    dirs.supervisor_pid.write_text(str(os.getpid()))
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    began = time.monotonic()
    _say("starting Kafka and PostgreSQL…")
    try:
        endpoints = infra.ensure_up(settings)
    except infra.InfraError as error:
        # A taken port or a missing Java is the newcomer's to fix: say it plainly, not as a traceback.
        dirs.supervisor_pid.unlink(missing_ok=True)
        raise click.ClickException(str(error)) from None
    _say(f"ready    Kafka {endpoints.kafka_bootstrap}, PostgreSQL {infra.redact_url(endpoints.database_url)}")
    # Locally every process shares one generated key pair under .local/secrets (never in production,
    # where the public key comes from a Secret): services verify, `cityhub token issue` signs.
    local_env = {"CITYHUB_DEV_KEYS": "true", **(extra_env or {})}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    failed = False
    try:
        specs = load_processes(kinds=None)
        _start_all(specs, endpoints=endpoints, env=local_env, dirs=dirs, processes=processes, stop=stop)
        if not stop.is_set():
            _screen(specs, endpoints, dirs, time.monotonic() - began)
        _supervise(specs, processes, stop, dirs)
    except NotReadyError:
        failed = True
        raise
    except click.Abort:
        pass
    finally:
        _say("Stopping…")
        _terminate(processes, dirs)
        infra.down(settings, kafka=endpoints.started_kafka, postgres=endpoints.started_postgres)
        dirs.supervisor_pid.unlink(missing_ok=True)
        _say("Stopped." if not failed else "Stopped everything it had started.")


def _start_all(
    specs: list[ProcessSpec],
    *,
    endpoints: infra.Endpoints,
    env: dict[str, str],
    dirs: _Dirs,
    processes: dict[str, subprocess.Popen[bytes]],
    stop: threading.Event,
) -> None:
    services = [s for s in specs if s.kind == "grpc"]
    for spec in services:
        _say(f"starting {spec.name} (grpc 127.0.0.1:{spec.grpc_port})")
        processes[spec.name] = _start(spec, endpoints, env, dirs)
    for spec in services:
        address = f"127.0.0.1:{spec.grpc_port}"
        took = _wait_ready(spec, processes[spec.name], partial(grpc_serving, address), stop, dirs)
        _say(f"ready    {spec.name} SERVING ({took:.1f} s)")
    for spec in (s for s in specs if s.kind == "http"):
        url = f"http://127.0.0.1:{spec.http_port}/healthz"
        _say(f"starting {spec.name} (http 127.0.0.1:{spec.http_port})")
        processes[spec.name] = _start(spec, endpoints, env, dirs)
        took = _wait_ready(spec, processes[spec.name], partial(http_ready, url), stop, dirs)
        _say(f"ready    {spec.name} answers /healthz ({took:.1f} s)")
    for spec in (s for s in specs if s.kind == "job"):
        _say(f"starting {spec.name} (job)")
        processes[spec.name] = _start(spec, endpoints, env, dirs)


def _supervise(
    specs: list[ProcessSpec],
    processes: dict[str, subprocess.Popen[bytes]],
    stop: threading.Event,
    dirs: _Dirs,
) -> None:
    kinds = {s.name: s.kind for s in specs}
    finished: set[str] = set()
    while not stop.wait(1.0):
        for name, process in processes.items():
            code = process.poll()
            if code is None or name in finished:
                continue
            if kinds.get(name) == "job":
                finished.add(name)
                if code == 0:
                    _say(f"{name} finished")
                else:
                    # A job's failure leaves the services up: they are what the newcomer works with.
                    _say(f"{name} exited with code {code}; see {dirs.log_of(name)}")
                continue
            _say(f"{name} exited with code {code}; see {dirs.log_of(name)}")
            stop.set()


def stop_stack() -> None:
    """Stop a running `cityhub run` (it cleans up after itself); failing that, whatever is left."""
    dirs = _dirs()
    if dirs.supervisor_pid.exists():
        pid = int(dirs.supervisor_pid.read_text() or 0)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + _STOP_GRACE_S + 60
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            click.echo(f"stopped `cityhub run` (pid {pid})")
            return
        dirs.supervisor_pid.unlink(missing_ok=True)
    # No supervisor: stop stray service processes and the local infrastructure.
    for pid_file in dirs.run.glob("*.pid") if dirs.run.exists() else ():
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
