"""What a benchmark ran on, with a speed probe: this machine is shared and its speed varies from day to day.

The same revision (a064d4e) served 500 360s/s with p99 4.8 ms on Dec 1 and saturated at ~310/s on Dec 2,
with the hub at 0.76 of a core instead of 0.47: the host was slower, not the code. Figures from two runs
can only be compared with a measure of the machine beside them, so every result carries ``probe_ms``: the
best of several timings of one fixed pure-Python workload (a one-core, interpreter-bound loop, the kind
of work the services do), taken before the benchmark starts anything and again at its end.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

__all__ = ["describe", "probe_ms"]

_ROUNDS = 7


def _workload() -> int:
    # Integer arithmetic, a dict and attribute-free calls: bound by the interpreter, not by memory.
    total = 0
    seen: dict[int, int] = {}
    for i in range(200_000):
        total += (i * i) % 7
        seen[i & 1023] = total
    return total + len(seen)


def probe_ms(rounds: int = _ROUNDS) -> float:
    """The fastest of ``rounds`` timings of the workload, in ms: the machine's speed when least disturbed."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        _workload()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(probe_before_ms: float) -> dict[str, Any]:
    """The ``machine`` entry of a result: cores, CPU, Python, and the probe before and now (the end)."""
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "probe_ms_before": probe_before_ms,
        "probe_ms_after": probe_ms(),
    }
