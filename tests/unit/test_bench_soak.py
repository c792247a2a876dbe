"""The soak's judgement (bench/soak.py): what counts as flat, and the load's shape. No sockets."""

from __future__ import annotations

import argparse

from cityhub.industry.v1 import telemetry_pb2

from bench import soak


def _times(n: int) -> list[float]:
    return [i * 10.0 for i in range(n)]


def test_memory_that_settles_after_warm_up_is_flat() -> None:
    # Grows during the warm-up third, then holds within noise.
    values = [80.0, 90, 100, 110, 120, 121, 120, 122, 121, 122, 121, 123]
    verdict = soak.judge_memory("x.rss_mb", _times(12), values, tolerance_pct=10, tolerance_mb=30)
    assert verdict.flat
    assert verdict.middle_median == 120.5  # 120, 121, 120, 122


def test_memory_growing_past_the_tolerance_is_not_flat() -> None:
    values = [100.0 + 10 * i for i in range(12)]  # 10 MB a sample: 40 MB a third
    verdict = soak.judge_memory("x.rss_mb", _times(12), values, tolerance_pct=10, tolerance_mb=30)
    assert not verdict.flat
    assert "grew +40.0 MB" in verdict.note
    assert verdict.per_hour == 3600.0  # 1 MB/s


def test_memory_tolerance_is_the_larger_of_percent_and_megabytes() -> None:
    values = [1000.0] * 8 + [1090.0] * 4  # +90 MB on 1,000 MB: within 10 %, beyond 30 MB
    verdict = soak.judge_memory("x.rss_mb", _times(12), values, tolerance_pct=10, tolerance_mb=30)
    assert verdict.flat
    assert verdict.allowed == 100.0


def test_lag_above_the_bound_two_samples_running_is_not_flat() -> None:
    values = [0.0] * 6 + [600.0, 700.0] + [0.0] * 4
    verdict = soak.judge_bounded("lag", _times(12), values, bound=500, unit="records")
    assert not verdict.flat
    assert "two samples running from t=60s (peak 700)" in verdict.note


def test_a_burst_gone_by_the_next_sample_is_flat_and_noted() -> None:
    # The hour's rollups go out in one go: the outbox holds hundreds of rows for a moment.
    values = [0.0] * 6 + [1000.0] + [0.0] * 5
    verdict = soak.judge_bounded("backlog", _times(12), values, bound=500, unit="rows")
    assert verdict.flat
    assert verdict.note == "burst 1,000 at t=60s, gone by the next sample"


def test_ending_above_the_bound_is_not_flat() -> None:
    values = [0.0] * 11 + [900.0]
    verdict = soak.judge_bounded("backlog", _times(12), values, bound=500, unit="rows")
    assert not verdict.flat
    assert "at the end" in verdict.note


def test_lag_trending_up_within_the_bound_is_not_flat() -> None:
    values = [0.0] * 8 + [200.0] * 4
    verdict = soak.judge_bounded("lag", _times(12), values, bound=500, unit="records")
    assert not verdict.flat
    assert "trends up" in verdict.note


def test_a_busy_warm_up_does_not_count() -> None:
    values = [5000.0] * 4 + [3.0, 0.0, 6.0, 0.0, 0.0, 6.0, 0.0, 0.0]
    verdict = soak.judge_bounded("lag", _times(12), values, bound=500, unit="records")
    assert verdict.flat


def test_too_few_samples_is_not_flat() -> None:
    assert not soak.judge_memory("x", [0.0], [1.0], tolerance_pct=10, tolerance_mb=30).flat
    assert not soak.judge_bounded("x", [0.0, 1.0], [0.0, 0.0], bound=1, unit="rows").flat


def _args(**overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    soak.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_the_plan_scales_the_district() -> None:
    full = soak.Plan.of(_args(minutes=30.0))
    assert (full.enterprises, full.devices, full.sites, full.watchers) == (500, 7_000, 100, 300)
    assert full.sample_every_s == 10.0
    small = soak.Plan.of(_args(minutes=2.0, scale=0.1, incident_every=10.0))
    assert (small.enterprises, small.devices, small.sites, small.watchers) == (50, 700, 10, 30)
    assert small.incident_every_s == 10.0
    assert small.alarm_every_s == 600.0
    assert soak.Plan.of(_args(minutes=1.0)).sample_every_s == 5.0  # at least 12 samples


def test_judge_leaves_out_failed_readings_and_sets_the_lag_bound_from_the_input_rate() -> None:
    samples = [
        {
            "t_s": i * 10.0,
            "industry.rss_mb": 100.0,
            "safety.rss_mb": 90.0,
            "industry.telemetry_records": i * 240,  # 24 records/s
            "industry.consumer_lag_kafka": 6,
            "industry.consumer_lag_gauge": 0.0,
            "industry.outbox_backlog_gauge": 0.0,
            "industry.outbox_backlog_db": 0,
            "safety.outbox_backlog_gauge": 0.0,
            "safety.outbox_backlog_db": 1,
        }
        for i in range(12)
    ]
    del samples[7]["safety.rss_mb"]  # a /proc read that failed once
    verdicts, derived = soak.judge(samples, _args())
    assert derived["lag_bound_records"] == 720.0
    assert all(v.flat for v in verdicts)
    assert {v.series for v in verdicts} >= {"industry.rss_mb", "industry.consumer_lag_kafka"}


def test_device_samples_are_deterministic_and_some_devices_fall_silent() -> None:
    second = 1_700_000_000
    first = soak.device_sample(1, "d1", second)
    assert first is not None
    assert first == soak.device_sample(1, "d1", second)
    assert first.time_unix_ms == second * 1000
    silent = [s for s in range(second, second + 15 * 60, 60) if soak.device_sample(5, "d5", s) is None]
    assert len(silent) == 7  # 7 minutes in 15
    faults = [
        s
        for s in range(second, second + 20 * 60, 60)
        if (sample := soak.device_sample(3, "d3", s)) is not None
        and sample.state == telemetry_pb2.DEVICE_STATE_FAULT
    ]
    assert len(faults) >= 12
