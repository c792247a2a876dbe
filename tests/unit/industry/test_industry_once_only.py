"""Each (device, sample start) counts once and a device's time never exceeds wall time (issue 17): the
rollup's coverage arithmetic, the ingest's memory of re-sent samples, and reused request ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from cityhub.industry.v1 import telemetry_pb2
from kafka.errors import KafkaTimeoutError

from services.industry.adapters.recent_starts import RecentStarts
from services.industry.domain.access import Visibility
from services.industry.domain.telemetry import (
    HOUR_MS,
    DeviceProfile,
    HourCoverage,
    RejectionReason,
    SampleLimits,
    StateCode,
    accumulate,
    hours_touched,
    screen_samples,
)
from services.industry.usecases.telemetry import TelemetryIngest
from services.platform.errors import InvalidArgumentError, UnavailableError
from services.platform.uow import FakeUnitOfWork
from tests.unit.industry.fakes import FakeIndustryRepository

NOW = 1_800_000_000_000
HOUR = NOW - NOW % HOUR_MS - HOUR_MS
MINUTE = 60_000
# One sample a minute (ideal cycle 30 s), one a second, ten a second.
CNC = DeviceProfile("dev-cnc", "E1", "P1", "W1", 15.0, 30.0, 60_000)
PRESS = DeviceProfile("dev-press", "E1", "P1", "W1", 40.0, 10.0, 1_000)
FAST = DeviceProfile("dev-fast", "E1", "P1", "W1", 5.0, 0.1, 100)
DEVICES = {d.device_id: d for d in (CNC, PRESS, FAST)}
LIMITS = SampleLimits(300_000, 7 * 86_400_000, 2.0, -50.0, 400.0, 300.0, 100_000)


@dataclass
class Sample:
    device_id: str = "dev-cnc"
    time_unix_ms: int = HOUR
    state: int = StateCode.RUNNING
    good_count: int = 1
    reject_count: int = 0
    power_kw: float = 7.0
    spindle_load_pct: float = 50.0
    temperature_c: float = 45.0


def _roll(*requests: list[Sample]) -> dict[tuple[str, int], tuple[int, int, int, int, int, int]]:
    """Roll requests up one after the other through one coverage store, as successive polls do, and sum
    what each added: (running, idle, stopped, fault ms, good, reject) per (device, hour)."""
    coverage: dict[tuple[str, int], HourCoverage] = {}
    sums: dict[tuple[str, int], list[int]] = {}
    for samples in requests:
        totals, skipped = accumulate(samples, DEVICES, coverage)
        assert skipped == 0
        for key, t in totals.items():
            row = sums.setdefault(key, [0] * 6)
            for i, value in enumerate(
                (t.running_ms, t.idle_ms, t.stopped_ms, t.fault_ms, t.good_count, t.reject_count)
            ):
                row[i] += value
    return {key: (r[0], r[1], r[2], r[3], r[4], r[5]) for key, r in sums.items()}


def _hour(idle_minutes: int = 30) -> list[Sample]:
    return [
        Sample(
            time_unix_ms=HOUR + m * MINUTE,
            state=StateCode.IDLE if m < idle_minutes else StateCode.RUNNING,
            good_count=0 if m < idle_minutes else 2,
        )
        for m in range(60)
    ]


def test_an_exact_resend_in_a_later_request_adds_neither_time_nor_parts() -> None:
    hour = _hour()
    once = _roll(hour)
    assert once == {("dev-cnc", HOUR): (1_800_000, 1_800_000, 0, 0, 60, 0)}
    # The gateway re-sends its last ten minutes after a reconnect, in a later request.
    assert _roll(hour, hour[-10:]) == once
    assert _roll(hour, hour, hour) == once


def test_samples_30_s_apart_with_a_60_s_interval_count_90_s_not_120() -> None:
    first = Sample(time_unix_ms=HOUR, good_count=1)
    second = Sample(time_unix_ms=HOUR + 30_000, good_count=1)
    # Both starts are new, so both samples' parts count; their time counts once.
    assert _roll([first, second]) == {("dev-cnc", HOUR): (90_000, 0, 0, 0, 2, 0)}
    assert _roll([first], [second]) == _roll([first, second])


def test_out_of_order_arrival_counts_the_same_and_the_first_report_of_a_moment_decides_its_state() -> None:
    hour = _hour()
    assert _roll(list(reversed(hour))) == _roll(hour)
    assert _roll(hour[30:], hour[:30]) == _roll(hour)
    # Overlapping reports that disagree: the seconds go to whichever was received first, never twice.
    running = Sample(time_unix_ms=HOUR, state=StateCode.RUNNING, good_count=0)
    idle = Sample(time_unix_ms=HOUR + 30_000, state=StateCode.IDLE, good_count=0)
    assert _roll([running, idle]) == {("dev-cnc", HOUR): (60_000, 30_000, 0, 0, 0, 0)}
    assert _roll([idle], [running]) == {("dev-cnc", HOUR): (30_000, 60_000, 0, 0, 0, 0)}


def test_a_sample_crossing_the_hour_splits_and_its_resend_adds_nothing_to_either_hour() -> None:
    crossing = Sample(time_unix_ms=HOUR + HOUR_MS - 20_000, good_count=2)
    assert hours_touched([crossing], DEVICES) == ({("dev-cnc", HOUR), ("dev-cnc", HOUR + HOUR_MS)}, 0)
    expected = {
        ("dev-cnc", HOUR): (20_000, 0, 0, 0, 2, 0),
        ("dev-cnc", HOUR + HOUR_MS): (40_000, 0, 0, 0, 0, 0),
    }
    assert _roll([crossing]) == expected
    assert _roll([crossing], [crossing]) == expected
    # The next hour's own first sample overlaps the spill-over: only its new seconds count.
    following = Sample(time_unix_ms=HOUR + HOUR_MS, good_count=1)
    assert _roll([crossing], [following])[("dev-cnc", HOUR + HOUR_MS)] == (60_000, 0, 0, 0, 1, 0)


def test_parts_count_once_per_start_whatever_else_the_resend_says() -> None:
    original = Sample(time_unix_ms=HOUR + 5 * MINUTE, good_count=3, reject_count=1)
    changed = Sample(time_unix_ms=HOUR + 5 * MINUTE, good_count=7, reject_count=0, state=StateCode.FAULT)
    assert _roll([original], [changed]) == {("dev-cnc", HOUR): (60_000, 0, 0, 0, 3, 1)}


def test_a_device_hour_never_exceeds_wall_time() -> None:
    # Every second of the hour reported by a once-a-second device, three times over, shifted by 400 ms.
    seconds = [Sample("dev-press", HOUR + s * 1000, good_count=1) for s in range(3600)]
    shifted = [Sample("dev-press", HOUR + s * 1000 + 400, good_count=1) for s in range(3600)]
    rows = _roll(seconds, seconds, shifted)
    planned = sum(r[0] + r[1] + r[3] for r in rows.values())
    assert rows[("dev-press", HOUR)][0] == 3_600_000
    assert planned <= 3_600_000 + 1000  # the shifted last sample spills 400 ms into the next hour's tick
    # A start within half a tick of a counted one is that sample again (rounded to the same slot).
    assert rows[("dev-press", HOUR)][4] == 3600


def test_devices_reporting_ten_times_a_second_keep_every_samples_parts_and_their_time() -> None:
    samples = [Sample("dev-fast", HOUR + k * 100, good_count=1) for k in range(600)]
    assert _roll(samples, samples[-100:]) == {("dev-fast", HOUR): (60_000, 0, 0, 0, 600, 0)}


def test_sub_second_times_of_a_contiguous_stream_add_up_to_its_length() -> None:
    samples = [Sample("dev-press", HOUR + 250 + s * 1000) for s in range(10)]
    assert _roll(samples)[("dev-press", HOUR)][0] == 10_000


# --- the ingest: re-sent samples answered as duplicates, reused request ids refused ----------------------


def test_screening_calls_a_sample_an_earlier_request_got_accepted_a_duplicate() -> None:
    recent = RecentStarts(100)
    first = [Sample(time_unix_ms=NOW - 3 * MINUTE), Sample(time_unix_ms=NOW - 2 * MINUTE)]
    recent.record([first])
    again = [Sample(time_unix_ms=NOW - 2 * MINUTE), Sample(time_unix_ms=NOW - MINUTE)]
    screened = screen_samples(again, DEVICES, LIMITS, NOW, recent=recent.times)
    rejected = [(r.index, r.reason, r.resent) for r in screened.rejections]
    assert rejected == [(0, RejectionReason.DUPLICATE, True)]
    assert screened.accepted == {0: [again[1]]}
    assert screened.resent_count == 1


def test_the_memory_is_bounded_per_device_and_keeps_the_newest() -> None:
    recent = RecentStarts(10)
    recent.record([[Sample(time_unix_ms=NOW - k * 1000) for k in range(100)]])
    times = recent.times["dev-cnc"]
    assert len(times) <= 15
    assert list(times) == sorted(times)
    assert times[-1] == NOW
    assert RecentStarts(0).times == {} or not RecentStarts(0).times


class Directory:
    profiles = DEVICES

    def resolve(self, device_ids: object) -> dict[str, DeviceProfile]:  # noqa: ARG002
        return DEVICES


@dataclass
class Broker:
    """A producer that acknowledges at once, counting what it was given."""

    sends: int = 0
    ids: list[bytes] = field(default_factory=list)

    def send(self, topic: str, **kwargs: Any) -> Broker:  # noqa: ARG002
        self.sends += 1
        self.ids.append(dict(kwargs["headers"])["ce_id"])
        return self

    def get(self, timeout: float | None = None) -> None:  # noqa: ARG002
        return None


def _ingest(broker: Broker) -> TelemetryIngest:
    return TelemetryIngest(
        Directory(),
        broker,  # type: ignore[arg-type]
        FakeUnitOfWork(FakeIndustryRepository()),
        topic="t",
        partitions=1,
        source="test",
        limits=LIMITS,
        max_samples=1000,
        ack_timeout_s=5.0,
        recent=RecentStarts(600),
        clock_ms=lambda: NOW,
    )


def _pb(minute: int) -> telemetry_pb2.TelemetrySample:
    return telemetry_pb2.TelemetrySample(
        device_id="dev-cnc", time_unix_ms=NOW - minute * MINUTE, state=telemetry_pb2.DEVICE_STATE_RUNNING
    )


def test_a_resent_sample_is_answered_as_a_duplicate_and_not_published_again() -> None:
    broker = Broker()
    use_case = _ingest(broker)
    everyone = Visibility.of(everything=True)
    first = use_case.ingest("req-1", [_pb(3), _pb(2)], everyone)
    assert (first.accepted_count, first.duplicate_count, broker.sends) == (2, 0, 1)
    second = use_case.ingest("req-2", [_pb(2), _pb(1)], everyone, all_or_nothing=True)
    assert (second.accepted_count, second.duplicate_count, broker.sends) == (1, 1, 2)
    assert [(r.index, r.reason) for r in second.rejections] == [(0, RejectionReason.DUPLICATE)]
    nothing_new = use_case.ingest("req-3", [_pb(3), _pb(2), _pb(1)], everyone)
    assert (nothing_new.accepted_count, nothing_new.duplicate_count, broker.sends) == (0, 3, 2)


def test_a_request_id_reused_for_another_batch_is_refused_and_a_retry_gets_the_first_answer() -> None:
    broker = Broker()
    use_case = _ingest(broker)
    everyone = Visibility.of(everything=True)
    first = use_case.ingest("req-1", [_pb(3), _pb(2)], everyone)
    # A retry of the same batch: the same answer (not "2 duplicates"), nothing published again.
    assert use_case.ingest("req-1", [_pb(3), _pb(2)], everyone) == first
    assert broker.sends == 1
    with pytest.raises(InvalidArgumentError) as caught:
        use_case.ingest("req-1", [_pb(3), _pb(1)], everyone)
    assert [v.field for v in caught.value.violations] == ["request_id"]
    assert broker.sends == 1


@dataclass
class FlakyBroker(Broker):
    """Acknowledges nothing the first time, then everything."""

    failures: int = 1

    def get(self, timeout: float | None = None) -> None:  # noqa: ARG002
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError("no ack")


def test_a_retry_after_kafka_failed_is_a_first_attempt_again_with_the_same_record_ids() -> None:
    broker = FlakyBroker()
    use_case = _ingest(broker)
    everyone = Visibility.of(everything=True)
    with pytest.raises(UnavailableError):
        use_case.ingest("req-1", [_pb(3), _pb(2)], everyone)
    # The claim rolled back and nothing was remembered as seen: the retry is accepted, not refused as a
    # reused id nor answered as duplicates; its records repeat the first attempt's ids (the rollup skips).
    retried = use_case.ingest("req-1", [_pb(3), _pb(2)], everyone)
    assert (retried.accepted_count, retried.duplicate_count, broker.sends) == (2, 0, 2)
    assert broker.ids[0] == broker.ids[1]
