"""The hub benchmark's pure helpers (bench/hub.py): the verdicts and the table. No sockets. (Its percentile
is bench.telemetry_workload's, tested in test_bench_telemetry.py.)"""

from __future__ import annotations

from typing import Any

from bench import hub


def _report(p99: float, errors: int, rebuild_rate: float, events: int) -> dict[str, Any]:
    return {
        "finished_at": "2026-12-01T00:00:00+00:00",
        "machine": {"cores": 2},
        "git": {"revision": "0123456789abcdef", "dirty": True},
        "options": {"background_rate": 200.0},
        "population": {"enterprises": 500, "schools": 100, "registered_s": 30.0},
        "latency": [
            {
                "name": "360 (projections)",
                "detail": False,
                "target_rate": 500.0,
                "achieved_rate": 499.0,
                "errors": errors,
                "p50_ms": 2.0,
                "p99_ms": p99,
                "max_ms": 30.0,
                "service_p99_ms": p99,
                "unavailable_parts": 0,
                "hub_cpu": 0.8,
                "domains_cpu": 0.0,
            },
            {
                "name": "360 detail (naive: asks domains)",
                "detail": True,
                "target_rate": 500.0,
                "achieved_rate": 180.0,
                "errors": 12,
                "p50_ms": 900.0,
                "p99_ms": 2000.0,
                "max_ms": 3000.0,
                "service_p99_ms": 1100.0,
                "unavailable_parts": 40,
                "hub_cpu": 1.0,
                "domains_cpu": 0.9,
            },
        ],
        "rebuild": {
            "events": events,
            "seconds": events / rebuild_rate,
            "events_per_s": rebuild_rate,
            "produce_per_s": 20_000.0,
            "producers": 2,
            "note": "",
            "side_by_side": [
                {"engine": "memory", "events": 50_000, "seconds": 2.5, "events_per_s": 20_000.0},
                {"engine": "sql", "events": 50_000, "seconds": 100.0, "events_per_s": 500.0},
            ],
        },
    }


def test_verdicts_say_whether_each_aim_was_met() -> None:
    met = hub.verdicts(_report(p99=8.0, errors=0, rebuild_rate=60_000.0, events=1_000_700))
    assert met[0].startswith("360 (projections) meets the aim of p99 <= 10 ms at 500 requests/s")
    assert met[1].startswith("rebuild meets the aim of >= 50,000 events/s")
    missed = hub.verdicts(_report(p99=12.0, errors=0, rebuild_rate=60_000.0, events=50_000))
    assert "misses" in missed[0]
    # Fast, but over fewer than a million events: not the aim.
    assert "misses" in missed[1]
    # Errors miss the aim whatever the latency.
    assert "misses" in hub.verdicts(_report(p99=1.0, errors=3, rebuild_rate=1.0, events=1))[0]


def test_the_table_shows_every_run_and_the_verdicts() -> None:
    text = hub.table(_report(p99=8.0, errors=0, rebuild_rate=60_000.0, events=1_000_700))
    lines = text.splitlines()
    assert lines[0] == "hub: 2 cores, git 0123456789ab (dirty), 2026-12-01T00:00:00+00:00"
    assert "500 enterprises, 100 schools" in text
    assert any(line.startswith("360 (projections)") and "8.0" in line for line in lines)
    assert any(line.startswith("360 detail (naive: asks domains)") and "2000.0" in line for line in lines)
    assert "rebuild: 1,000,700 events" in text
    # The baseline beside it: the same records through both engines.
    assert "side by side, 50,000 events, in memory, one COPY per table: 2.5 s = 20,000 events/s" in text
    assert "side by side, 50,000 events, SQL per event (live way): 100.0 s = 500 events/s" in text
    assert text.rstrip().endswith("(60,000 events/s over 1,000,700)")
