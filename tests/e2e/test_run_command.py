"""`cityhub run` as a newcomer meets it, on a processes file of the test's own (free ports, its own schema,
topics and .local directory, the shared Kafka and PostgreSQL): it says what it starts and when each part is
SERVING, starts the simulator job only after, prints one screen with where things listen and a grpcurl line
whose token works, outlives a job that ends with exit code 0, and `cityhub stop` stops everything. A
process that dies before it is ready stops the run, naming it and its log, and what was started is stopped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc

from services.cli.run import grpc_serving
from services.platform.security.settings import ensure_dev_keys
from tests.kafka_support import delete_topics
from tests.support import free_port, unique_name, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STARTUP_BOUND_S = 120.0
# `make test` and `make run` install the pinned grpcurl here (the Makefile's grpcurl target).
GRPCURL = ".local/tools/bin/grpcurl"


@dataclass
class Supervisor:
    """`cityhub run` in a process of its own, its output collected line by line."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float = STARTUP_BOUND_S) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.text)
            if match is None and self.process.poll() is not None:
                raise AssertionError(f"`cityhub run` exited ({self.process.returncode}):\n{self.text}")
            return match

        return wait_until(found, timeout_s=timeout_s, what=f"{pattern!r} from `cityhub run`", interval_s=0.1)

    def stop(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "services.cli", "stop"], env=self.env, cwd=REPO, check=True, timeout=120
        )


def _start(tmp_path: Path, processes_toml: str, kafka_bootstrap: str, database_url: str) -> Supervisor:
    ensure_dev_keys()
    config = tmp_path / "processes.toml"
    config.write_text(processes_toml)
    env = {
        **os.environ,
        "CITYHUB_PROCESSES_FILE": str(config),
        "CITYHUB_LOCAL_DIR": str(tmp_path / "local"),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "CITYHUB_RUN_READY_TIMEOUT_S": "90",
        # Local ports of nothing: the shared Kafka and PostgreSQL are then external to this run, which
        # checks them and never starts or stops them.
        "CITYHUB_KAFKA_PORT": str(free_port()),
        "CITYHUB_KAFKA_CONTROLLER_PORT": str(free_port()),
        "CITYHUB_PG_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    supervisor = Supervisor(process, env)
    assert process.stdout is not None
    threading.Thread(target=supervisor.read, args=(process.stdout,), daemon=True).start()
    return supervisor


def _safety_entry(name: str, port: int, topic: str) -> str:
    return f"""
[[process]]
name = "{name}"
module = "services.safety"
grpc_port = {port}
metrics_port = {free_port()}
env = {{ SAFETY_EVENTS_TOPIC = "{topic}" }}
"""


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = unique_name("cityhub.safety.events.v1.run")
    yield name
    delete_topics(kafka_bootstrap, [name, f"{name}.dlq"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_run_says_what_is_ready_starts_the_job_last_prints_one_screen_and_stops(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topic: str
) -> None:
    name, port = unique_name("safety_run"), free_port()
    settings = {
        "SIMULATOR_SCENARIO": "reference-incident",
        "SIMULATOR_SPEED": "max",
        "SIMULATOR_DURATION": "15m",
        "SIMULATOR_SCALE": "0.02",
        "SIMULATOR_TARGETS": f"safety=127.0.0.1:{port}",
    }
    inline = ", ".join(f'{k} = "{v}"' for k, v in settings.items())
    job = '\n[[process]]\nname = "simulator"\nkind = "job"\nmodule = "services.simulator"\n'
    job += f"env = {{ {inline} }}\n"
    supervisor = _start(tmp_path, _safety_entry(name, port, topic) + job, kafka_bootstrap, database_url)
    try:
        supervisor.wait_for(r"Press Ctrl-C or run `make stop` to stop\.")
        lines = supervisor.lines
        started = lines.index(f"starting {name} (grpc 127.0.0.1:{port})")
        ready = next(i for i, line in enumerate(lines) if line.startswith(f"ready    {name} SERVING"))
        job_started = lines.index("starting simulator (job)")
        screen = next(i for i, line in enumerate(lines) if line.startswith("CityHub is running"))
        assert started < ready < job_started < screen
        assert any(f"{name:<12} grpc 127.0.0.1:{port}" in line for line in lines[screen:])
        assert str(tmp_path / "local" / "logs" / "simulator.log") in supervisor.text

        # The printed token works as printed: a district operator may list the sites.
        token = supervisor.wait_for(r"export TOKEN=(\S+)").group(1)
        printed = supervisor.wait_for(r"(?m)^  (\S*grpcurl -plaintext .* 127\.0\.0\.1:\d+ list)$").group(1)
        assert printed == f'{GRPCURL} -plaintext -H "authorization: Bearer $TOKEN" 127.0.0.1:{port} list'
        # ... and works as printed, from the repository in a shell that has only TOKEN set.
        listed = subprocess.run(
            ["bash", "-c", printed],
            cwd=REPO,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TOKEN": token},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert "cityhub.safety.v1.SafetyService" in listed.stdout.split()
        assert ".venv/bin/cityhub token issue" in supervisor.text
        assert "uv run" not in supervisor.text
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Any = safety_pb2_grpc.SafetyServiceStub(channel)
            # The simulator registered the reference incident's school through the public API.
            sites = wait_until(
                lambda: (
                    stub.ListSites(
                        safety_pb2.ListSitesRequest(),
                        metadata=(("authorization", f"Bearer {token}"),),
                        timeout=10,
                    ).sites
                ),
                timeout_s=60,
                what="the simulator's school",
            )
            assert [s.kind for s in sites] == [safety_pb2.SITE_KIND_SCHOOL]

        # The job's exit code 0 is the end of its work, not a failure: the service stays up.
        supervisor.wait_for(r"simulator finished")
        pid = int((tmp_path / "local" / "run" / f"{name}.pid").read_text())
        assert _alive(pid)
        assert supervisor.process.poll() is None
    finally:
        if supervisor.process.poll() is None:
            supervisor.stop()
        supervisor.process.wait(timeout=60)
    assert supervisor.process.returncode == 0
    assert "Stopped." in supervisor.text
    assert not _alive(pid)
    assert not (tmp_path / "local" / "run" / "run.pid").exists()


def test_a_process_that_dies_before_it_is_ready_stops_the_run_naming_its_log(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topic: str
) -> None:
    name, port = unique_name("safety_run"), free_port()
    broken = f"""
[[process]]
name = "broken"
module = "services.no_such_service"
grpc_port = {free_port()}
metrics_port = {free_port()}
"""
    supervisor = _start(tmp_path, _safety_entry(name, port, topic) + broken, kafka_bootstrap, database_url)
    try:
        supervisor.process.wait(timeout=STARTUP_BOUND_S)
    finally:
        if supervisor.process.poll() is None:
            supervisor.stop()
    log_path = tmp_path / "local" / "logs" / "broken.log"
    assert supervisor.process.returncode != 0
    wait_until(lambda: "Stopped everything" in supervisor.text, timeout_s=10, what="the last words")
    assert f"broken exited with code 1 before it was ready; its log: {log_path}" in supervisor.text
    assert "No module named services.no_such_service" in supervisor.text
    # The service started before it was stopped with the run.
    assert (tmp_path / "local" / "logs" / f"{name}.log").exists()
    assert not (tmp_path / "local" / "run" / f"{name}.pid").exists()
    assert not grpc_serving(f"127.0.0.1:{port}")
    assert "simulator" not in supervisor.text
