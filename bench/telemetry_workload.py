"""The telemetry benchmark's workload and its pure arithmetic (no sockets, no processes): what collection
boxes send, what the service must therefore show, and how a run's measurements are judged.

Unit-tested in tests/unit/test_bench_telemetry.py.

A district: ``devices`` machines in ``enterprises`` enterprises, one collection box per enterprise (device
``i`` belongs to enterprise ``i % enterprises``, as ``register_district`` registers them). Each machine
reports one sample a second of its own time (interval 1,000 ms, whole seconds, strictly increasing per
device); it changes state now and then (running, idle, stopped, fault) and completes a part every
ideal cycle or so while running. A box sends its machines' samples in one IngestTelemetry request per
``window_s`` seconds of device time (the simulator's boxes send once a minute). To offer more than the
district's real rate the device clock runs faster than the wall clock: at 70,000 samples/s offered, 7,000
devices advance ten seconds of their time per second.

Realistic untidiness, each a share of the traffic:
* *late* samples: held back by the box and sent in its next request (older than that request's others);
* *re-sent windows*: a request also carries the last ``resend_s`` seconds of the box's previous request
  (a gateway re-sending after a reconnect) — duplicates inside a later request;
* *retries*: a request sent again, byte for byte, with the same request id (a client that lost an
  answer) — answered from the request log, nothing published.

The expected figures are kept from what was *newly* sent and acknowledged, independently of the
service: each new sample adds 1 s to its device's state and its parts; duplicates add nothing.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.industry.adapters.telemetry_wire import varint

# TelemetrySample field tags (protos/cityhub/industry/v1/telemetry.proto), wire types as protobuf writes
# them: 1 device_id (string), 2 time_unix_ms (varint), 3 state (varint), 4 good_count, 5 reject_count
# (varint), 6 power_kw, 7 spindle_load_pct, 8 temperature_c (float, fixed32).
RUNNING, IDLE, STOPPED, FAULT = 1, 2, 3, 4
STATES = (RUNNING, IDLE, STOPPED, FAULT)
# Per state: power kW, spindle load %, temperature degrees C (a 15 kW machine tool).
_READINGS = {
    RUNNING: (11.5, 62.5, 41.5),
    IDLE: (1.2, 0.0, 28.0),
    STOPPED: (0.0, 0.0, 22.0),
    FAULT: (0.4, 0.0, 35.0),
}
# How often a state is chosen when a machine changes state.
_STATE_WEIGHTS = (RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, RUNNING, IDLE, IDLE, STOPPED, FAULT)
SAMPLE_MS = 1000


def _float_field(tag: int, value: float) -> bytes:
    # proto3 leaves a zero scalar out of the encoding; so does this.
    return b"" if value == 0.0 else bytes((tag,)) + struct.pack("<f", value)


def _tail(state: int, good: int, reject: int) -> bytes:
    power, load, temperature = _READINGS[state]
    out = b"\x18" + varint(state)
    if good:
        out += b"\x20" + varint(good)
    if reject:
        out += b"\x28" + varint(reject)
    return out + _float_field(0x35, power) + _float_field(0x3D, load) + _float_field(0x45, temperature)


# The bytes after the time field, for each (state, good, reject) a sample can have here.
_TAILS = {(s, g, r): _tail(s, g, r) for s in STATES for g in (0, 1) for r in (0, 1)}


def encode_sample(device_id: str, time_ms: int, state: int, good: int = 0, reject: int = 0) -> bytes:
    """The serialized TelemetrySample, byte for byte what the generated class writes (a unit test checks),
    at a fraction of its cost: the load generator writes tens of thousands a second."""
    raw = device_id.encode()
    return b"\x0a" + varint(len(raw)) + raw + b"\x10" + varint(time_ms) + _TAILS[(state, good, reject)]


def encode_request(request_id: str, samples: Iterable[bytes]) -> bytes:
    """A serialized IngestTelemetryRequest: field 1 the request id, field 2 each sample."""
    raw = request_id.encode()
    parts = [b"\x0a", varint(len(raw)), raw]
    for sample in samples:
        parts += (b"\x12", varint(len(sample)), sample)
    return b"".join(parts)


# --- the expected figures ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What one device's samples add up to: seconds per state and parts."""

    running_s: int = 0
    idle_s: int = 0
    stopped_s: int = 0
    fault_s: int = 0
    good: int = 0
    reject: int = 0

    def add(self, state: int, good: int, reject: int) -> None:
        if state == RUNNING:
            self.running_s += 1
        elif state == IDLE:
            self.idle_s += 1
        elif state == STOPPED:
            self.stopped_s += 1
        else:
            self.fault_s += 1
        self.good += good
        self.reject += reject

    def merge(self, other: Tally) -> None:
        self.running_s += other.running_s
        self.idle_s += other.idle_s
        self.stopped_s += other.stopped_s
        self.fault_s += other.fault_s
        self.good += other.good
        self.reject += other.reject

    @property
    def planned_s(self) -> int:
        """Planned production time as the service defines it: running + idle + fault (stopped is planned
        downtime)."""
        return self.running_s + self.idle_s + self.fault_s

    @property
    def counted_s(self) -> int:
        return self.planned_s + self.stopped_s

    def figures(self) -> dict[str, int]:
        return {
            "running_s": self.running_s,
            "planned_s": self.planned_s,
            "stopped_s": self.stopped_s,
            "good": self.good,
            "reject": self.reject,
        }


def compare_counts(
    expected: Mapping[str, Mapping[str, int]], found: Mapping[str, Mapping[str, int]], *, named: int = 10
) -> dict[str, Any]:
    """Every device's figures as the service shows them against what was sent: exact equality per device
    and figure. Returns the number of devices checked and off, the sums, and the first few differences."""
    off: list[dict[str, Any]] = []
    sums_expected: dict[str, int] = {}
    sums_found: dict[str, int] = {}
    for device, figures in expected.items():
        shown = found.get(device, {})
        for name, value in figures.items():
            sums_expected[name] = sums_expected.get(name, 0) + value
            sums_found[name] = sums_found.get(name, 0) + int(shown.get(name, 0))
        diff = {
            name: (value, int(shown.get(name, 0)))
            for name, value in figures.items()
            if int(shown.get(name, 0)) != value
        }
        if diff:
            off.append({"device": device, "expected_vs_shown": diff})
    extra = sorted(set(found) - set(expected))
    return {
        "devices": len(expected),
        "devices_off": len(off) + len(extra),
        "exact": not off and not extra,
        "expected_sums": sums_expected,
        "shown_sums": sums_found,
        "first_differences": off[:named] + [{"device": d, "unexpected": True} for d in extra[:named]],
    }


# --- the boxes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shares:
    late: float = 0.02  # of samples: held back to the box's next request
    resend: float = 0.03  # of requests: also carry the tail of the box's previous request
    resend_s: int = 10  # how much of it (seconds of each device's time)
    retry: float = 0.01  # of requests: sent again with the same request id once answered


@dataclass(slots=True)
class Request:
    """One IngestTelemetry request as a box sends it, with what it newly adds per device."""

    box: int
    request_id: str
    payload: bytes
    samples: int  # every sample in it
    new_samples: int  # the ones never sent before
    added: dict[int, Tally]  # device index -> what the new samples add
    retry_of: bool = False


@dataclass(slots=True)
class _Device:
    index: int
    device_id: str
    state: int
    next_ms: int


@dataclass(slots=True)
class _Box:
    devices: list[_Device]
    late: list[tuple[int, bytes, int, int, int]] = field(default_factory=list)  # (dev, bytes, state, g, r)
    previous: list[bytes] = field(default_factory=list)  # the tail of the previous request's samples
    sent: int = 0


class District:
    """Every box's machines and where each stands; makes the next request of any box."""

    def __init__(
        self,
        device_ids: Sequence[str],
        enterprises: int,
        start_ms: int,
        *,
        window_s: int = 60,
        shares: Shares | None = None,
        seed: int = 17,
        change_every_s: float = 600.0,
        cycle_s: float = 30.0,
        run_id: str = "run",
    ) -> None:
        self.rng = random.Random(seed)
        self.window_s = window_s
        self.shares = shares or Shares()
        self.run_id = run_id
        self._change = 1.0 / change_every_s
        self._part = 1.0 / cycle_s
        start_ms -= start_ms % SAMPLE_MS
        self.boxes = [
            _Box(
                [
                    _Device(i, device_ids[i], self.rng.choice(_STATE_WEIGHTS), start_ms)
                    for i in range(b, len(device_ids), enterprises)
                ]
            )
            for b in range(enterprises)
        ]
        self.boxes = [box for box in self.boxes if box.devices]
        self.device_ids = list(device_ids)

    def box_of(self, device_index: int) -> int:
        return device_index % len(self.boxes)

    def newest_ms(self) -> int:
        """The newest sample time any box has made (the device clock's front)."""
        return max(d.next_ms for box in self.boxes for d in box.devices) - SAMPLE_MS

    def next_request(self, box_index: int) -> Request:
        """The box's next window of samples (plus last window's late ones, and now and then a re-sent
        tail of the previous request)."""
        box = self.boxes[box_index]
        rng = self.rng
        late_share, change, part = self.shares.late, self._change, self._part
        samples: list[bytes] = []
        added: dict[int, Tally] = {}
        # Last request's late samples go first: older than everything else in this request.
        held, box.late = box.late, []
        for index, raw, state, good, reject in held:
            samples.append(raw)
            added.setdefault(index, Tally()).add(state, good, reject)
        resent: list[bytes] = []
        if box.previous and rng.random() < self.shares.resend:
            resent = box.previous
        tail_from = self.window_s - self.shares.resend_s
        previous: list[bytes] = []
        for device in box.devices:
            tally = added.setdefault(device.index, Tally())
            device_id, state, moment = device.device_id, device.state, device.next_ms
            for second in range(self.window_s):
                if rng.random() < change:
                    state = rng.choice(_STATE_WEIGHTS)
                good = 1 if state == RUNNING and rng.random() < part else 0
                raw = encode_sample(device_id, moment, state, good)
                if rng.random() < late_share:
                    box.late.append((device.index, raw, state, good, 0))
                else:
                    samples.append(raw)
                    tally.add(state, good, 0)
                    if second >= tail_from:
                        previous.append(raw)
                moment += SAMPLE_MS
            device.state, device.next_ms = state, moment
        box.previous = previous
        new = len(samples)
        samples.extend(resent)
        box.sent += 1
        request_id = f"{self.run_id}-b{box_index}-{box.sent}"
        return Request(box_index, request_id, encode_request(request_id, samples), len(samples), new, added)


# --- judging a run ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``values``; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered) - 1e-9))
    return float(ordered[min(len(ordered), rank) - 1])


@dataclass(frozen=True, slots=True)
class LagVerdict:
    flat: bool
    slope_s_per_s: float  # growth of the lag, in seconds of data per second of run
    end_lag_s: float  # the mean lag over the last quarter, seconds of data
    max_lag_s: float
    max_lag_records: int
    why: str


# Flat: the backlog grows by less than this many seconds of data per second of run (1.2 s over 60 s) ...
FLAT_SLOPE = 0.02
# ... and, over the last quarter of the window, is on average at most this much data behind.
FLAT_END_LAG_S = 3.0


def lag_flat(points: Sequence[tuple[float, int]], records_per_s: float) -> LagVerdict:
    """Whether the rollup keeps up: ``points`` are (seconds into the window, lag in records as the broker
    shows it) sampled through the window; ``records_per_s`` the rate records were produced at, which turns
    records into seconds of data. Flat = the least-squares slope of the lag is under FLAT_SLOPE and the
    mean lag over the last quarter under FLAT_END_LAG_S. A consumer that polls in large batches makes a
    saw-tooth; both tests look through it."""
    if len(points) < 4 or records_per_s <= 0:
        return LagVerdict(False, 0.0, 0.0, 0.0, 0, "too few lag samples to judge")
    xs = [t for t, _ in points]
    ys = [lag / records_per_s for _, lag in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    span = xs[-1] - xs[0]
    last = [y for x, y in zip(xs, ys, strict=True) if x >= xs[-1] - span / 4]
    end = sum(last) / len(last)
    flat = slope < FLAT_SLOPE and end <= FLAT_END_LAG_S
    why = (
        "flat"
        if flat
        else (
            f"growing {slope:.3f} s of data per s" if slope >= FLAT_SLOPE else f"{end:.1f} s of data behind"
        )
    )
    return LagVerdict(flat, slope, end, max(ys), max(lag for _, lag in points), why)


def visibility_delays(
    acks: Sequence[tuple[float, str, int]], polls: Mapping[str, Sequence[tuple[float, int]]]
) -> tuple[list[float], int]:
    """From acknowledgement to visible: ``acks`` are (ack time, probe subject, the subject's counted
    seconds once that request is counted), ``polls`` per subject (answer time, counted seconds shown),
    in time order. A request is visible at the first poll answered at or after its ack showing at least
    its count; the delay is that poll's answer time minus the ack time (so it includes up to one poll
    interval of sampling). Returns the delays and how many acks never became visible in the polls."""
    delays: list[float] = []
    unseen = 0
    for acked_at, subject, count in acks:
        seen = polls.get(subject, ())
        for answered_at, shown in seen:
            if answered_at >= acked_at and shown >= count:
                delays.append(answered_at - acked_at)
                break
        else:
            unseen += 1
    return delays, unseen
