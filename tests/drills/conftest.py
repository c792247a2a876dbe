"""Fixtures of the fault drills: the stacks they run on and the figures they record.

The drills that kill a service or its relay run on the session's stack, each drill on schemas and
topics of its own. The ones that stop Kafka or PostgreSQL get a stack of their own (``own_stack``:
``cityhub infra``'s launcher on free ports and a scratch directory, the Kafka jars hard-linked from the
session's stack rather than fetched again): the stack everyone else shares is never touched.

Every drill appends its figures to one JSON file per session, ``drills-<UTC stamp>.json``, with the git
revision: under ``bench/results/`` when ``CITYHUB_DRILLS_RESULTS_DIR`` names it (``make drills`` does),
otherwise in pytest's temporary directory, so ``make test`` leaves no files behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.drills.drill_support import REPO, DrillStack, OwnStack

RESULTS_DIR_SETTING = "CITYHUB_DRILLS_RESULTS_DIR"
_written: list[Path] = []


@pytest.fixture
def shared_stack(kafka_bootstrap: str, database_url: str) -> DrillStack:
    return DrillStack(kafka_bootstrap, database_url, shared=True)


@pytest.fixture(scope="session")
def own_stack() -> Iterator[OwnStack]:
    """The drills' own stack, thrown away at the end of the session; the jars come from the session's."""
    from services.cli import infra

    root = Path(tempfile.mkdtemp(prefix="cityhub-drill-stack-"))
    _link_kafka_libs(infra.InfraSettings().local_dir / "kafka" / "libs", root / "kafka" / "libs")
    own = OwnStack(root)
    try:
        own.up()
        yield own
    finally:
        try:
            own.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _link_kafka_libs(source: Path, target: Path) -> None:
    """The session stack's jars (with the launcher's stamp), hard-linked where possible: the launcher
    then finds them complete and does not run Maven again. Without them it resolves its own."""
    if not (source / ".cityhub-libs-stamp").is_file():
        return

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


@pytest.fixture(scope="session")
def drill_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    results: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    yield results
    if not results:
        return
    configured = os.environ.get(RESULTS_DIR_SETTING, "").strip()
    directory = (REPO / configured) if configured else tmp_path_factory.mktemp("drill-results")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"drills-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report = {
        "suite": "drills",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git": _git_revision(),
        "command": " ".join(["pytest", *sys.argv[1:]]),
        "drills": results,
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    _written.append(path)


def _git_revision() -> dict[str, Any]:
    """The revision and whether tracked files differ from it, as bench/telemetry.py records them."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    return {
        "revision": git("rev-parse", "HEAD") or "none (no commit yet)",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _written:
        terminalreporter.write_line(f"drill figures: {path}")
