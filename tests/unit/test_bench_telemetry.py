"""The telemetry benchmark's pure parts: the sample codec, the workload's bookkeeping, percentiles, the
lag-flat decision, the exact read-back comparison, the step search and the generated figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cityhub.industry.v1 import industry_pb2, telemetry_pb2

from bench import telemetry_report
from bench.telemetry_workload import (
    RUNNING,
    District,
    Shares,
    compare_counts,
    encode_request,
    encode_sample,
    lag_flat,
    percentile,
    visibility_delays,
)


@pytest.mark.parametrize(("state", "good", "reject"), [(1, 0, 0), (1, 1, 0), (2, 0, 0), (3, 0, 1), (4, 1, 1)])
def test_the_hand_written_sample_is_what_protobuf_writes(state: int, good: int, reject: int) -> None:
    raw = encode_sample("dev-0123456789abcdef", 1_764_000_000_000, state, good, reject)
    sample = telemetry_pb2.TelemetrySample.FromString(raw)
    assert sample.SerializeToString() == raw
    assert (sample.device_id, sample.time_unix_ms, sample.state) == (
        "dev-0123456789abcdef",
        1_764_000_000_000,
        state,
    )
    assert (sample.good_count, sample.reject_count) == (good, reject)


def test_a_request_carries_its_id_and_samples() -> None:
    samples = [encode_sample("d1", 1000, RUNNING), encode_sample("d2", 2000, RUNNING, 1)]
    parsed = industry_pb2.IngestTelemetryRequest.FromString(encode_request("r-1", samples))
    assert parsed.request_id == "r-1"
    assert [s.device_id for s in parsed.samples] == ["d1", "d2"]


def _district(**shares: Any) -> District:
    return District([f"d{i}" for i in range(6)], 2, 1_764_000_000_000, window_s=60, shares=Shares(**shares))


def test_new_samples_have_distinct_increasing_times_and_are_tallied_once() -> None:
    district = _district(late=0.1, resend=1.0, resend_s=10, retry=0.0)
    seen: dict[str, list[int]] = {}
    tallied = 0
    duplicates = 0
    for n in range(6):
        request = district.next_request(n % 2)
        parsed = industry_pb2.IngestTelemetryRequest.FromString(request.payload)
        assert len(parsed.samples) == request.samples
        for sample in parsed.samples[: request.new_samples]:
            assert sample.time_unix_ms % 1000 == 0
            seen.setdefault(sample.device_id, []).append(sample.time_unix_ms)
        duplicates += request.samples - request.new_samples
        tallied += sum(t.counted_s for t in request.added.values())
    for times in seen.values():
        assert len(times) == len(set(times))  # no device sends a moment twice as new
    assert tallied == sum(len(t) for t in seen.values())
    assert duplicates > 0  # the re-sent tails ride along in later requests
    # Late samples: some new samples arrive after a newer one of their device.
    assert any(times != sorted(times) for times in seen.values())


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(list(reversed(values)), 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) == 0.0
    # Ten values: p99 is the largest, p50 the fifth.
    assert percentile([float(v) for v in range(10)], 0.99) == 9.0
    assert percentile([float(v) for v in range(10)], 0.50) == 4.0


def test_a_saw_tooth_lag_that_does_not_grow_is_flat() -> None:
    points = [(float(t), 400 if t % 3 == 0 else 50) for t in range(60)]
    verdict = lag_flat(points, records_per_s=500.0)
    assert verdict.flat
    assert verdict.max_lag_records == 400


def test_a_growing_lag_is_not_flat() -> None:
    points = [(float(t), 50 * t) for t in range(60)]
    verdict = lag_flat(points, records_per_s=500.0)
    assert not verdict.flat
    assert "growing" in verdict.why


def test_a_constant_backlog_beyond_the_bound_is_not_flat() -> None:
    points = [(float(t), 5_000) for t in range(60)]  # 10 s of data behind, steadily
    verdict = lag_flat(points, records_per_s=500.0)
    assert not verdict.flat
    assert verdict.end_lag_s == pytest.approx(10.0)


def test_too_few_lag_samples_are_not_a_pass() -> None:
    assert not lag_flat([(0.0, 0), (1.0, 0)], records_per_s=500.0).flat


def test_visibility_is_the_first_poll_after_the_ack_that_shows_the_count() -> None:
    acks = [(10.0, "a", 100), (20.0, "a", 200), (30.0, "b", 50)]
    polls = {"a": [(9.0, 100), (10.5, 90), (11.0, 100), (25.0, 200)], "b": [(29.0, 60)]}
    delays, unseen = visibility_delays(acks, polls)
    assert delays == [1.0, 5.0]
    assert unseen == 1  # b's only poll was answered before its ack


def test_the_read_back_is_exact_or_names_the_devices_off() -> None:
    expected = {
        "d1": {"running_s": 60, "planned_s": 60, "good": 2},
        "d2": {"running_s": 0, "planned_s": 30, "good": 0},
    }
    assert compare_counts(expected, {k: dict(v) for k, v in expected.items()})["exact"]
    counted_twice = {"d1": {"running_s": 70, "planned_s": 70, "good": 2}, "d2": expected["d2"]}
    result = compare_counts(expected, counted_twice)
    assert not result["exact"]
    assert result["devices_off"] == 1
    assert result["first_differences"][0]["device"] == "d1"
    assert result["first_differences"][0]["expected_vs_shown"]["planned_s"] == (60, 70)
    assert not compare_counts(expected, {"d1": expected["d1"]})["exact"]  # d2 missing reads as zeros


def test_the_step_search_climbs_while_flat_and_stops_at_the_bracket() -> None:
    assert telemetry_report.next_rate([], 70_000) == 70_000
    assert telemetry_report.next_rate([(70_000, True)], 70_000) == pytest.approx(87_500)
    assert telemetry_report.next_rate([(70_000, True), (87_500, False)], 70_000) is None
    assert telemetry_report.next_rate([(70_000, False)], 70_000) == pytest.approx(56_000)
    assert telemetry_report.next_rate([(70_000, False), (56_000, True)], 70_000) is None


def _step(
    rate: float, flat: bool, exact: bool = True, layout: str = "1 process (rollup inside)"
) -> dict[str, Any]:
    return {
        "path": "packed",
        "layout": layout,
        "offered_per_s": rate,
        "acked_per_s": rate,
        "lag": {"flat": flat, "why": "flat" if flat else "growing 0.100 s of data per s", "max_lag_s": 1.0},
        "visible_p50_s": 0.4,
        "visible_p99_s": 1.5,
        "request_p99_ms": 80.0,
        "service_cpu": 0.9,
        "client_cpu": 0.3,
        "readback": {"exact": exact, "devices_off": 0 if exact else 3},
    }


def test_the_best_step_is_the_fastest_flat_and_exact_one() -> None:
    steps = [_step(70_000, True), _step(87_500, True, exact=False), _step(100_000, False)]
    best = telemetry_report.best_step(steps)
    assert best is not None
    assert best["offered_per_s"] == 70_000


def test_a_faster_step_over_the_p99_aim_does_not_hide_a_slower_one_within_it() -> None:
    slow_view = _step(109_375, True, layout="2 ingest + 1 rollup")
    slow_view["visible_p99_s"] = 4.2
    within = _step(87_500, True, layout="2 ingest + 1 rollup")
    best = telemetry_report.best_step([_step(70_000, True), within, slow_view])
    assert best is within
    report = {**_report(), "best": best}
    assert telemetry_report.verdict(report).startswith("meets")
    # With no step within the p99 aim, the fastest flat one is reported, as a miss.
    best = telemetry_report.best_step([slow_view])
    assert best is slow_view
    assert telemetry_report.verdict({**_report(), "best": best}).startswith("misses")


def test_a_rate_not_carried_is_not_the_best() -> None:
    lagging_acks = _step(87_500, True)
    lagging_acks["acked_per_s"] = 80_000.0  # flat only because the service acknowledged less
    best = telemetry_report.best_step([_step(70_000, True), lagging_acks])
    assert best is not None
    assert best["offered_per_s"] == 70_000


def test_the_aim_needs_the_rate_and_the_p99() -> None:
    report = _report()
    assert telemetry_report.verdict(report).startswith("meets")
    report["best"] = {**report["best"], "visible_p99_s": 2.5}
    assert telemetry_report.verdict(report).startswith("misses")


def _report(dirty: bool = False) -> dict[str, Any]:
    steps = [_step(70_000, True), _step(87_500, False)]
    best = telemetry_report.best_step(steps)
    return {
        "steps": steps,
        "best": best,
        "git": {"revision": "0123456789abcdef", "dirty": dirty},
        "command": "python -m bench telemetry",
        "finished_at": "2026-12-01T00:00:00+00:00",
        "machine": {"cores": 2},
        "district": {"devices": 7000, "enterprises": 500},
        "producer_performance": [
            {
                "records_per_s": 5000.0,
                "record_bytes": 9000,
                "what": "packed",
                "mb_per_s": 45.0,
                "avg_latency_ms": 3.0,
            }
        ],
        "failed": False,
        "failures": [],
    }


def test_the_generated_table_is_spliced_between_the_markers_only(tmp_path: Any) -> None:
    generated = telemetry_report.markdown(_report())
    assert "| packed | 1 process (rollup inside) | 70,000 | 70,000 | flat |" in generated
    assert "meets the aim" in generated
    assert "git 0123456789ab;" in generated
    text = f"before\n{telemetry_report.BEGIN}\nold figures\n{telemetry_report.END}\nafter\n"
    spliced = telemetry_report.splice(text, generated)
    assert spliced.startswith("before\n")
    assert spliced.endswith("after\n")
    assert "old figures" not in spliced
    assert generated in spliced
    assert telemetry_report.splice(spliced, generated) == spliced  # regenerating changes nothing


def test_a_dirty_tree_is_said_so_in_the_figures() -> None:
    assert "dirty tree" in telemetry_report.markdown(_report(dirty=True))


def test_splicing_without_markers_refuses() -> None:
    with pytest.raises(ValueError, match="markers"):
        telemetry_report.splice("no markers here", "x")


# --- the industry setting behind baseline (a) ------------------------------------------------------------


@dataclass
class _AckingBroker:
    """A producer that acknowledges at once and keeps what it was given."""

    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, topic: str, **record: Any) -> _AckingBroker:  # noqa: ARG002
        self.sent.append(record)
        return self

    def get(self, timeout: float | None = None) -> None:  # noqa: ARG002
        return None


@pytest.mark.parametrize("record_per_sample", [False, True])
def test_one_record_per_sample_sends_the_same_samples_unpacked(record_per_sample: bool) -> None:
    from services.industry.domain.access import Visibility
    from services.industry.usecases.telemetry import TelemetryIngest
    from services.platform.uow import FakeUnitOfWork
    from tests.unit.industry.fakes import FakeIndustryRepository
    from tests.unit.industry.test_industry_ingest_outage import LIMITS, NOW_MS, Directory

    broker = _AckingBroker()
    ingest = TelemetryIngest(
        Directory(),
        broker,  # type: ignore[arg-type]
        FakeUnitOfWork(FakeIndustryRepository()),
        topic="t",
        partitions=1,
        source="test",
        limits=LIMITS,
        max_samples=1000,
        ack_timeout_s=5.0,
        record_per_sample=record_per_sample,
        clock_ms=lambda: NOW_MS,
    )
    samples = [
        telemetry_pb2.TelemetrySample(
            device_id="dev_1", time_unix_ms=NOW_MS - k * 1000, state=telemetry_pb2.DEVICE_STATE_RUNNING
        )
        for k in range(1, 4)
    ]
    result = ingest.ingest("req-1", samples, Visibility.of(everything=True))
    assert result.accepted_count == 3
    batches = [telemetry_pb2.TelemetryBatch.FromString(r["value"]) for r in broker.sent]
    assert [s.time_unix_ms for b in batches for s in b.samples] == [s.time_unix_ms for s in samples]
    assert len(broker.sent) == (3 if record_per_sample else 1)
    ids = {dict(r["headers"])["ce_id"] for r in broker.sent}
    assert len(ids) == len(broker.sent)  # each record its own id: the rollup skips none of them
