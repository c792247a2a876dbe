"""Every log line is one JSON record, however many threads log at once through structlog and the stdlib.

A service has two writers on stdout: structlog's logger (the service's own lines) and the stdlib handler
(kafka-python, grpc and psycopg_pool lines, passed through the same processors). Each record must reach
the stream as one write of the whole line, newline included, serialised across both writers; otherwise a
line can hold two records (issue #16, defect 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
THREADS = 8  # half structlog, half stdlib library loggers
LINES = 2_500  # per thread

# Runs in a child process so that its stdout is a real pipe (not pytest's capture) and the logging set-up
# is the one a service gets. A tiny switch interval makes the interpreter swap threads between any two
# writes, which is what a loaded machine does now and then.
_CHILD = f"""
import logging, os, sys, threading
from services.platform.logs import configure_logging, get_logger
from services.platform.security.redaction import install_redaction

install_redaction()
configure_logging("logs-test", "info", os.environ["LOG_FORMAT"])
sys.setswitchinterval(1e-6)
start = threading.Barrier({THREADS})

def own(n):
    log = get_logger()
    start.wait()
    for i in range({LINES}):
        log.info("own_line", writer=n, i=i, pad="x" * (i % 97))

def library(n):
    log = logging.getLogger(f"kafka.test{{n}}")
    start.wait()
    for i in range({LINES}):
        log.warning("library line writer=%d i=%d %s", n, i, "y" * (i % 89))

threads = [
    threading.Thread(target=own if n % 2 == 0 else library, args=(n,)) for n in range({THREADS})
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_concurrent_structlog_and_library_lines_are_one_json_record_each() -> None:
    env = {**os.environ, "LOG_FORMAT": "json", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,  # stdout is a pipe, as under a container runtime
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    lines = result.stdout.decode("utf-8").split("\n")
    assert lines[-1] == "", "the output does not end with a newline"
    lines.pop()
    broken = []
    seen: Counter[tuple[str, int]] = Counter()
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            broken.append((number, line[:300]))
            continue
        assert isinstance(record, dict), line[:300]
        if record["event"] == "own_line":
            seen[("own", record["i"])] += 1
        elif record.get("logger", "").startswith("kafka.test"):
            seen[("library", int(record["event"].split(" i=")[1].split()[0]))] += 1
    assert not broken, f"{len(broken)} of {len(lines)} lines are not one JSON record: {broken[:3]}"
    assert len(lines) == THREADS * LINES
    # Every record exactly once per writer of its kind.
    assert set(seen.values()) == {THREADS // 2}
    assert len(seen) == 2 * LINES
