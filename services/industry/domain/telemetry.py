"""Telemetry rules: which samples are acceptable, how samples add up to hourly figures, and how a
device's stream of states becomes state changes and fault alerts.

A sample describes its device over ``[time_unix_ms, time_unix_ms + the device's sample interval)``: its
state for that whole interval and the parts completed in it. The rollup counts each (device, start time)
once and each moment of a device's time once, whichever request carries a sample and however often it is
sent again: :class:`HourCoverage` remembers, per device and hour, which ticks of the hour and which start
slots are already counted, and a sample adds only what it newly covers (see :func:`accumulate`).

:func:`screen_samples` is the ingest hot path (tens of thousands of samples a second): it reads each
protobuf field once into a local and compares against precomputed bounds, and reports only the first
problem of a sample.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol

from services.industry.domain.model import DeviceState
from services.platform.errors import FieldViolation

__all__ = [
    "HOUR_MS",
    "STATE_OF_CODE",
    "DeviceProfile",
    "FaultAlertCleared",
    "FaultAlertDue",
    "HourCoverage",
    "HourTotals",
    "Rejection",
    "RejectionReason",
    "SampleLike",
    "SampleLimits",
    "Screened",
    "StateChange",
    "StateCode",
    "StatusSnapshot",
    "accumulate",
    "follow_states",
    "hours_touched",
    "resolution_ms",
    "screen_samples",
]

HOUR_MS = 3_600_000


class StateCode(IntEnum):
    """The numbers a collection box sends for its state (``TelemetrySample.state``, also what
    ``device_status.state`` stores). The hot paths compare these integers, never the domain's names."""

    RUNNING = 1
    IDLE = 2
    STOPPED = 3
    FAULT = 4


# A state code as the domain's state; 0 (never reported) and unknown codes are absent.
STATE_OF_CODE: Mapping[int, DeviceState] = {
    StateCode.RUNNING: DeviceState.RUNNING,
    StateCode.IDLE: DeviceState.IDLE,
    StateCode.STOPPED: DeviceState.STOPPED,
    StateCode.FAULT: DeviceState.FAULT,
}


class RejectionReason(StrEnum):
    UNKNOWN_DEVICE = "unknown_device"
    TIME_SKEW = "time_skew"
    OUT_OF_RANGE = "out_of_range"
    NOT_PERMITTED = "not_permitted"
    DUPLICATE = "duplicate"


class SampleLike(Protocol):
    """The fields of cityhub.industry.v1.TelemetrySample (the generated class satisfies this)."""

    @property
    def device_id(self) -> str: ...
    @property
    def time_unix_ms(self) -> int: ...
    @property
    def state(self) -> int: ...
    @property
    def good_count(self) -> int: ...
    @property
    def reject_count(self) -> int: ...
    @property
    def power_kw(self) -> float: ...
    @property
    def spindle_load_pct(self) -> float: ...
    @property
    def temperature_c(self) -> float: ...


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What telemetry handling needs to know about a registered device."""

    device_id: str
    credit_code: str
    park_id: str | None
    workshop: str
    rated_power_kw: float
    ideal_cycle_seconds: float
    sample_interval_ms: int
    # The stream partition its samples go to (assigned by the directory that knows the partition count).
    bucket: int = 0


@dataclass(frozen=True, slots=True)
class SampleLimits:
    max_future_ms: int
    max_age_ms: int
    power_rated_multiple: float
    temperature_min_c: float
    temperature_max_c: float
    spindle_load_max_pct: float
    max_parts_per_sample: int


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    device_id: str
    reason: RejectionReason
    field: str
    description: str
    # A re-send of a sample an earlier request got accepted (reason DUPLICATE): not bad input.
    resent: bool = False

    def violation(self) -> FieldViolation:
        return FieldViolation(self.field, self.description)


@dataclass(slots=True)
class Screened:
    """Accepted samples grouped by their device's bucket (original order kept), and the rejections."""

    accepted: dict[int, list[SampleLike]] = field(default_factory=dict)
    accepted_count: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # Rejections that are re-sends of samples accepted by an earlier request (reason DUPLICATE): not bad
    # input, so ``all_or_nothing`` does not refuse a request for them.
    resent_count: int = 0


def screen_samples(
    samples: Sequence[SampleLike],
    devices: Mapping[str, DeviceProfile],
    limits: SampleLimits,
    now_ms: int,
    permitted: Callable[[DeviceProfile], bool] | None = None,
    *,
    bucket_count: int = 1,
    recent: Mapping[str, Sequence[int]] | None = None,
) -> Screened:
    """Split ``samples`` into acceptable ones (by bucket, ``0 <= bucket < bucket_count``) and rejections
    with reason and field path. ``permitted`` (None: every device) says whether the caller may report
    for a device. ``recent`` (sorted start times per device, of samples earlier requests got accepted)
    turns a re-sent sample into a DUPLICATE rejection; a sample newer than a device's newest known one
    (the usual case) costs one comparison.

    The loop is written for the common case, a good sample: one chained comparison over every field,
    no per-field branches, no allocation but the duplicate key. Only a sample that fails goes through
    :func:`_diagnose` to find out which check it failed."""
    lists: list[list[SampleLike]] = [[] for _ in range(max(bucket_count, 1))]
    rejections: list[Rejection] = []
    latest = now_ms + limits.max_future_ms
    earliest = now_ms - limits.max_age_ms
    multiple = limits.power_rated_multiple
    t_min, t_max = limits.temperature_min_c, limits.temperature_max_c
    load_max = limits.spindle_load_max_pct
    parts_max = limits.max_parts_per_sample
    lookup = devices.get
    seen: set[tuple[str, int]] = set()
    seen_add = seen.add
    known = (recent or {}).get
    resent = 0
    for index, sample in enumerate(samples):
        device_id = sample.device_id
        device = lookup(device_id)
        if device is not None and (permitted is None or permitted(device)):
            moment = sample.time_unix_ms
            # Written so that NaN fails every float comparison too.
            if (
                earliest <= moment <= latest
                and 1 <= sample.state <= 4
                and 0 <= sample.good_count <= parts_max
                and 0 <= sample.reject_count <= parts_max
                and 0.0 <= sample.power_kw <= device.rated_power_kw * multiple
                and 0.0 <= sample.spindle_load_pct <= load_max
                and t_min <= sample.temperature_c <= t_max
            ):
                key = (device_id, moment)
                if key not in seen:
                    seen_add(key)
                    times = known(device_id)
                    if times and moment <= times[-1] and _contains(times, moment):
                        resent += 1
                        rejections.append(
                            Rejection(
                                index,
                                device_id,
                                RejectionReason.DUPLICATE,
                                f"samples[{index}].time_unix_ms",
                                "already received in an earlier request (this device and time); counted once",
                                resent=True,
                            )
                        )
                        continue
                    lists[device.bucket].append(sample)
                    continue
        rejections.append(_diagnose(index, sample, device, permitted=permitted, limits=limits, now_ms=now_ms))
    accepted = {bucket: group for bucket, group in enumerate(lists) if group}
    return Screened(accepted, len(samples) - len(rejections), rejections, resent)


def _contains(times: Sequence[int], moment: int) -> bool:
    at = bisect_left(times, moment)
    return at < len(times) and times[at] == moment


# A diagnosis is a list of checks, each answering at once.
def _diagnose(  # noqa: PLR0911
    index: int,
    sample: SampleLike,
    device: DeviceProfile | None,
    *,
    permitted: Callable[[DeviceProfile], bool] | None,
    limits: SampleLimits,
    now_ms: int,
) -> Rejection:
    """Why :func:`screen_samples` refused ``sample``: the first check it fails, in the order the fast
    path makes them (a sample passing them all was a duplicate)."""
    device_id = sample.device_id

    def rejection(reason: RejectionReason, name: str, why: str) -> Rejection:
        return Rejection(index, device_id, reason, f"samples[{index}].{name}", why)

    out_of_range = RejectionReason.OUT_OF_RANGE
    if device is None:
        return rejection(RejectionReason.UNKNOWN_DEVICE, "device_id", "no such device")
    if permitted is not None and not permitted(device):
        return rejection(
            RejectionReason.NOT_PERMITTED,
            "device_id",
            "the caller may not report for this device's enterprise",
        )
    moment = sample.time_unix_ms
    if moment > now_ms + limits.max_future_ms:
        return rejection(
            RejectionReason.TIME_SKEW,
            "time_unix_ms",
            f"is more than {limits.max_future_ms // 1000} s ahead of the server clock",
        )
    if moment < now_ms - limits.max_age_ms:
        return rejection(
            RejectionReason.TIME_SKEW,
            "time_unix_ms",
            f"is older than the {limits.max_age_ms // 1000} s late-data window",
        )
    if not 1 <= sample.state <= 4:
        return rejection(out_of_range, "state", "must be running, idle, stopped or fault")
    parts_max = limits.max_parts_per_sample
    if not 0 <= sample.good_count <= parts_max:
        return rejection(out_of_range, "good_count", f"must be between 0 and {parts_max}")
    if not 0 <= sample.reject_count <= parts_max:
        return rejection(out_of_range, "reject_count", f"must be between 0 and {parts_max}")
    rated, multiple = device.rated_power_kw, limits.power_rated_multiple
    if not 0.0 <= sample.power_kw <= rated * multiple:
        return rejection(
            out_of_range,
            "power_kw",
            f"must be between 0 and {rated * multiple:g} kW ({multiple:g} x the rated {rated:g} kW)",
        )
    load_max = limits.spindle_load_max_pct
    if not 0.0 <= sample.spindle_load_pct <= load_max:
        return rejection(out_of_range, "spindle_load_pct", f"must be between 0 and {load_max:g} %")
    t_min, t_max = limits.temperature_min_c, limits.temperature_max_c
    if not t_min <= sample.temperature_c <= t_max:
        return rejection(
            out_of_range, "temperature_c", f"must be between {t_min:g} and {t_max:g} degrees Celsius"
        )
    return rejection(
        RejectionReason.DUPLICATE,
        "time_unix_ms",
        "an earlier sample in this request has the same device and time",
    )


# --- rollup -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class HourTotals:
    """One device's sums for one hour (UTC). Times in milliseconds."""

    running_ms: int = 0
    idle_ms: int = 0
    stopped_ms: int = 0
    fault_ms: int = 0
    good_count: int = 0
    reject_count: int = 0
    ideal_ms: float = 0.0

    def add_time(self, state: int, ms: int) -> None:
        if state == StateCode.RUNNING:
            self.running_ms += ms
        elif state == StateCode.IDLE:
            self.idle_ms += ms
        elif state == StateCode.STOPPED:
            self.stopped_ms += ms
        elif state == StateCode.FAULT:
            self.fault_ms += ms


# The rollup counts time in ticks: tick k of an hour is the instant hour + k x the device's resolution, and a
# sample [t, t + interval) counts the ticks it contains. Whole-second times (the norm) are counted exactly;
# a contiguous stream with sub-second times still adds up to its length (the ticks tile it), and no device
# can ever be counted for more ticks than an hour has. Devices reporting faster than once a second are
# counted in 100 ms ticks (the shortest interval a device may have), so their short samples are not lost
# between whole seconds; everything else in whole seconds, which keeps a row's bitmaps at 450 bytes.
_FINE_MS = 100
_COARSE_MS = 1000


def resolution_ms(device: DeviceProfile) -> int:
    """The tick (and start slot) width the rollup counts ``device``'s time in."""
    return _COARSE_MS if device.sample_interval_ms >= _COARSE_MS else _FINE_MS


@dataclass(slots=True)
class HourCoverage:
    """What of one device's hour is already counted, as bitsets (Python ints; bit k = tick or slot k).

    ``covered``: the ticks some sample already counted (its time went to that sample's state).
    ``starts``: the start slots (start time rounded to the nearest tick) whose sample's parts counted.
    Two samples of a device starting in one slot are one sample: both would describe almost the same
    interval, so only an exact or near re-send can do that. Rounding (not truncating) keeps a regular
    stream with clock jitter below half a tick in distinct slots.
    """

    covered: int = 0
    starts: int = 0

    def take_ticks(self, first: int, last: int) -> int:
        """Mark ticks ``[first, last)`` covered; how many of them were not before."""
        if last <= first:
            return 0
        fresh = (((1 << (last - first)) - 1) << first) & ~self.covered
        if not fresh:
            return 0
        self.covered |= fresh
        return fresh.bit_count()

    def take_start(self, slot: int) -> bool:
        """Mark start slot ``slot`` seen; whether it was new."""
        bit = 1 << slot
        if self.starts & bit:
            return False
        self.starts |= bit
        return True


def _row(totals: dict[tuple[str, int], HourTotals], key: tuple[str, int]) -> HourTotals:
    row = totals.get(key)
    if row is None:
        row = totals[key] = HourTotals()
    return row


def _coverage(coverage: MutableMapping[tuple[str, int], HourCoverage], key: tuple[str, int]) -> HourCoverage:
    cov = coverage.get(key)
    if cov is None:
        cov = coverage[key] = HourCoverage()
    return cov


def hours_touched(
    samples: Iterable[SampleLike], devices: Mapping[str, DeviceProfile]
) -> tuple[set[tuple[str, int]], int]:
    """The (device, hour start in Unix ms) rows ``samples`` add to (an interval crossing the hour touches
    the next one too), and how many samples named a device not in ``devices`` or a state no device
    sends (skipped)."""
    keys: set[tuple[str, int]] = set()
    add = keys.add
    skipped = 0
    for sample in samples:
        device = devices.get(sample.device_id)
        if device is None or not 1 <= sample.state <= 4:
            skipped += 1
            continue
        moment = sample.time_unix_ms
        hour = moment - moment % HOUR_MS
        add((sample.device_id, hour))
        if moment + device.sample_interval_ms > hour + HOUR_MS:
            add((sample.device_id, hour + HOUR_MS))
    return keys, skipped


def accumulate(
    samples: Iterable[SampleLike],
    devices: Mapping[str, DeviceProfile],
    coverage: MutableMapping[tuple[str, int], HourCoverage] | None = None,
) -> tuple[dict[tuple[str, int], HourTotals], int]:
    """What ``samples`` add per (device, hour start in Unix ms), given what ``coverage`` says is already
    counted (updated in place; a missing row is an hour with nothing counted yet).

    A sample adds only the ticks of its interval no sample covered before, to its own state (so the first
    sample received for a moment decides its state), and its parts only if its start slot is new (parts
    count in the hour the interval starts in). An interval crossing the hour adds to the next hour's
    ticks too. An exact re-send therefore adds nothing, overlapping intervals add wall time once, and a
    device's hour never exceeds 3,600 s, in whatever order and grouping samples arrive. Returns the
    additions (only rows that changed; coverage of those rows is what to store) and how many samples
    named a device not in ``devices`` or a state no device sends (skipped)."""
    if coverage is None:
        coverage = {}
    totals: dict[tuple[str, int], HourTotals] = {}
    skipped = 0
    for sample in samples:
        device_id = sample.device_id
        device = devices.get(device_id)
        state = sample.state
        if device is None or not 1 <= state <= 4:
            skipped += 1
            continue
        tick = _COARSE_MS if device.sample_interval_ms >= _COARSE_MS else _FINE_MS
        moment = sample.time_unix_ms
        hour = moment - moment % HOUR_MS
        offset = moment - hour
        end = offset + device.sample_interval_ms
        key = (device_id, hour)
        cov = _coverage(coverage, key)
        new_ticks = cov.take_ticks(-(-offset // tick), -(-end // tick) if end <= HOUR_MS else HOUR_MS // tick)
        new_start = cov.take_start((offset + tick // 2) // tick)
        if new_ticks or new_start:
            row = _row(totals, key)
            if new_ticks:
                row.add_time(state, new_ticks * tick)
            if new_start:
                good, reject = sample.good_count, sample.reject_count
                row.good_count += good
                row.reject_count += reject
                row.ideal_ms += (good + reject) * device.ideal_cycle_seconds * 1000.0
        if end > HOUR_MS:
            # Intervals are at most an hour long, so at most one more hour is touched.
            following_key = (device_id, hour + HOUR_MS)
            new_ticks = _coverage(coverage, following_key).take_ticks(0, -(-(end - HOUR_MS) // tick))
            if new_ticks:
                _row(totals, following_key).add_time(state, new_ticks * tick)
    return totals, skipped


# --- state and fault alerts --------------------------------------------------------------------------


@dataclass(slots=True)
class StatusSnapshot:
    """A device's newest known state (what ``device_status`` holds)."""

    device_id: str
    state: int = 0
    state_since_ms: int | None = None
    last_sample_ms: int | None = None
    fault_alert_id: str | None = None


@dataclass(frozen=True, slots=True)
class StateChange:
    device_id: str
    previous: int
    state: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class FaultAlertDue:
    device_id: str
    alert_id: str
    since_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class FaultAlertCleared:
    device_id: str
    alert_id: str
    at_ms: int


Happening = StateChange | FaultAlertDue | FaultAlertCleared


def follow_states(
    status: StatusSnapshot,
    timeline: Sequence[tuple[int, int]],
    fault_after_ms: int,
    new_alert_id: Callable[[], str],
) -> list[Happening]:
    """Walk ``timeline`` ((time ms, state) sorted by time) forward from ``status``, updating it, and return
    what happened: state changes, a fault alert once the device has been in fault for ``fault_after_ms``,
    and that alert's clearing when the device leaves fault. Samples not newer than the last one seen
    (late or repeated) change nothing here; they still count in the rollup."""
    happened: list[Happening] = []
    for moment, state in timeline:
        if status.last_sample_ms is not None and moment <= status.last_sample_ms:
            continue
        if state != status.state:
            if status.fault_alert_id is not None:
                happened.append(FaultAlertCleared(status.device_id, status.fault_alert_id, moment))
                status.fault_alert_id = None
            happened.append(StateChange(status.device_id, status.state, state, moment))
            status.state = state
            status.state_since_ms = moment
        status.last_sample_ms = moment
        since = status.state_since_ms
        if (
            state == StateCode.FAULT
            and status.fault_alert_id is None
            and since is not None
            and moment - since >= fault_after_ms
        ):
            status.fault_alert_id = new_alert_id()
            happened.append(FaultAlertDue(status.device_id, status.fault_alert_id, since, moment))
    return happened
