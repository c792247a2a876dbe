"""Telemetry rules without sockets: screening samples, rolling them up per hour, following states."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.industry.domain.telemetry import (
    HOUR_MS,
    DeviceProfile,
    FaultAlertCleared,
    FaultAlertDue,
    RejectionReason,
    SampleLimits,
    StateChange,
    StateCode,
    StatusSnapshot,
    accumulate,
    follow_states,
    screen_samples,
)

NOW = 1_800_000_000_000
LIMITS = SampleLimits(
    max_future_ms=300_000,
    max_age_ms=7 * 86_400_000,
    power_rated_multiple=2.0,
    temperature_min_c=-50.0,
    temperature_max_c=400.0,
    spindle_load_max_pct=300.0,
    max_parts_per_sample=100_000,
)
CNC = DeviceProfile("dev-cnc", "E1", "P1", "W1", 15.0, 30.0, 60_000, bucket=2)
PRESS = DeviceProfile("dev-press", "E2", "P1", "W2", 40.0, 10.0, 1_000, bucket=0)
DEVICES = {CNC.device_id: CNC, PRESS.device_id: PRESS}


@dataclass
class Sample:
    device_id: str = "dev-cnc"
    time_unix_ms: int = NOW - 1000
    state: int = StateCode.RUNNING
    good_count: int = 1
    reject_count: int = 0
    power_kw: float = 7.0
    spindle_load_pct: float = 50.0
    temperature_c: float = 45.0


def _reasons(*samples: Sample) -> list[tuple[int, RejectionReason, str]]:
    screened = screen_samples(samples, DEVICES, LIMITS, NOW, bucket_count=3)
    return [(r.index, r.reason, r.field) for r in screened.rejections]


def test_good_samples_are_grouped_by_their_devices_bucket_in_order() -> None:
    first, second, third = (
        Sample(time_unix_ms=NOW - 3000),
        Sample("dev-press"),
        Sample(time_unix_ms=NOW - 2000),
    )
    screened = screen_samples([first, second, third], DEVICES, LIMITS, NOW, bucket_count=3)
    assert screened.accepted == {2: [first, third], 0: [second]}
    assert screened.accepted_count == 3
    assert screened.rejections == []


@pytest.mark.parametrize(
    ("sample", "reason", "field"),
    [
        (Sample(device_id="dev-nope"), RejectionReason.UNKNOWN_DEVICE, "device_id"),
        (Sample(time_unix_ms=NOW + 300_001), RejectionReason.TIME_SKEW, "time_unix_ms"),
        (Sample(time_unix_ms=NOW - 8 * 86_400_000), RejectionReason.TIME_SKEW, "time_unix_ms"),
        (Sample(state=0), RejectionReason.OUT_OF_RANGE, "state"),
        (Sample(good_count=-1), RejectionReason.OUT_OF_RANGE, "good_count"),
        (Sample(reject_count=-1), RejectionReason.OUT_OF_RANGE, "reject_count"),
        (Sample(power_kw=30.01), RejectionReason.OUT_OF_RANGE, "power_kw"),
        (Sample(power_kw=-0.1), RejectionReason.OUT_OF_RANGE, "power_kw"),
        (Sample(power_kw=float("nan")), RejectionReason.OUT_OF_RANGE, "power_kw"),
        (Sample(spindle_load_pct=301.0), RejectionReason.OUT_OF_RANGE, "spindle_load_pct"),
        (Sample(temperature_c=400.5), RejectionReason.OUT_OF_RANGE, "temperature_c"),
        (Sample(temperature_c=-51.0), RejectionReason.OUT_OF_RANGE, "temperature_c"),
    ],
)
def test_a_bad_sample_is_rejected_naming_its_field(
    sample: Sample, reason: RejectionReason, field: str
) -> None:
    assert _reasons(Sample(time_unix_ms=NOW - 5000), sample) == [(1, reason, f"samples[1].{field}")]


def test_exactly_five_minutes_ahead_and_twice_the_rated_power_are_still_accepted() -> None:
    assert _reasons(Sample(time_unix_ms=NOW + 300_000, power_kw=30.0)) == []


def test_a_repeated_device_and_time_in_one_request_is_a_duplicate() -> None:
    assert _reasons(Sample(), Sample()) == [(1, RejectionReason.DUPLICATE, "samples[1].time_unix_ms")]


def test_a_caller_may_be_limited_to_some_devices() -> None:
    screened = screen_samples(
        [Sample(), Sample("dev-press")],
        DEVICES,
        LIMITS,
        NOW,
        permitted=lambda d: d.credit_code == "E1",
        bucket_count=3,
    )
    assert [(r.index, r.reason) for r in screened.rejections] == [(1, RejectionReason.NOT_PERMITTED)]
    assert screened.accepted_count == 1


def test_samples_add_up_per_device_and_hour() -> None:
    hour = NOW - NOW % HOUR_MS
    samples = [
        Sample(time_unix_ms=hour, good_count=2, reject_count=1),
        Sample(time_unix_ms=hour + 60_000, state=StateCode.IDLE, good_count=0),
        Sample(time_unix_ms=hour + 120_000, state=StateCode.FAULT, good_count=0),
        Sample(time_unix_ms=hour + 180_000, state=StateCode.STOPPED, good_count=0),
        Sample("dev-press", time_unix_ms=hour + 5, good_count=1),
        Sample(device_id="dev-unknown"),
    ]
    totals, skipped = accumulate(samples, DEVICES)
    assert skipped == 1
    cnc = totals[("dev-cnc", hour)]
    assert (cnc.running_ms, cnc.idle_ms, cnc.fault_ms, cnc.stopped_ms) == (60_000, 60_000, 60_000, 60_000)
    assert (cnc.good_count, cnc.reject_count, cnc.ideal_ms) == (2, 1, 90_000.0)
    press = totals[("dev-press", hour)]
    assert (press.running_ms, press.ideal_ms) == (1000, 10_000.0)


def test_an_interval_crossing_the_hour_is_split_and_its_parts_stay_in_the_first_hour() -> None:
    hour = NOW - NOW % HOUR_MS
    totals, _ = accumulate([Sample(time_unix_ms=hour + HOUR_MS - 20_000, good_count=2)], DEVICES)
    first, second = totals[("dev-cnc", hour)], totals[("dev-cnc", hour + HOUR_MS)]
    assert (first.running_ms, first.good_count) == (20_000, 2)
    assert (second.running_ms, second.good_count) == (40_000, 0)


def test_the_order_of_samples_does_not_change_the_rollup() -> None:
    hour = NOW - NOW % HOUR_MS
    samples = [Sample(time_unix_ms=hour + i * 60_000, state=1 + i % 4, good_count=i % 3) for i in range(60)]
    forward, _ = accumulate(samples, DEVICES)
    backward, _ = accumulate(list(reversed(samples)), DEVICES)
    assert forward == backward


def _ids() -> object:
    counter = iter(range(1, 100))
    return lambda: f"alert-{next(counter)}"


def test_state_changes_follow_sample_time_and_ignore_late_samples() -> None:
    status = StatusSnapshot("dev-cnc")
    happened = follow_states(
        status,
        [(0, StateCode.RUNNING), (60, StateCode.RUNNING), (120, StateCode.IDLE)],
        600_000,
        _ids(),  # type: ignore[arg-type]
    )
    assert happened == [
        StateChange("dev-cnc", 0, StateCode.RUNNING, 0),
        StateChange("dev-cnc", StateCode.RUNNING, StateCode.IDLE, 120),
    ]
    assert (status.state, status.state_since_ms, status.last_sample_ms) == (StateCode.IDLE, 120, 120)
    late = follow_states(status, [(90, StateCode.FAULT)], 600_000, _ids())  # type: ignore[arg-type]
    assert late == []
    assert status.state == StateCode.IDLE


def test_a_long_fault_raises_one_alert_and_recovery_clears_it() -> None:
    status = StatusSnapshot("dev-cnc", StateCode.RUNNING, 0, 0)
    minute = 60_000
    timeline = [(m * minute, StateCode.FAULT) for m in range(1, 15)] + [(15 * minute, StateCode.RUNNING)]
    happened = follow_states(status, timeline, 10 * minute, _ids())  # type: ignore[arg-type]
    assert happened == [
        StateChange("dev-cnc", StateCode.RUNNING, StateCode.FAULT, minute),
        FaultAlertDue("dev-cnc", "alert-1", minute, 11 * minute),
        FaultAlertCleared("dev-cnc", "alert-1", 15 * minute),
        StateChange("dev-cnc", StateCode.FAULT, StateCode.RUNNING, 15 * minute),
    ]
    assert status.fault_alert_id is None


def test_a_short_fault_raises_nothing() -> None:
    status = StatusSnapshot("dev-cnc", StateCode.RUNNING, 0, 0)
    happened = follow_states(
        status,
        [(60_000, StateCode.FAULT), (120_000, StateCode.RUNNING)],
        600_000,
        _ids(),  # type: ignore[arg-type]
    )
    assert not any(isinstance(h, FaultAlertDue) for h in happened)
