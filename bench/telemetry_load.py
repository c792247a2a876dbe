"""The telemetry benchmark's load generator: a process of its own (so no client thread contends for the
GIL of the bench's own threads that sample lag and probe GetUtilisation), one asyncio event loop, one
gRPC channel per ingest replica. It keeps the district's state across steps: every device's clock and
state, and the figures the service must show, counted from what was newly sent and acknowledged.

Open loop: requests are scheduled ``new samples / rate`` apart and sent at their moment whatever came
back before (up to ``max_in_flight`` outstanding); latency is measured from the scheduled moment.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from bench.telemetry_workload import District, Request, Shares, Tally, encode_request, percentile

INGEST = "/cityhub.industry.v1.IndustryService/IngestTelemetry"
RETRIES = 5
# One-sample RPCs in flight at once per load process (baseline b).
SINGLE_IN_FLIGHT = 32


@dataclass
class _Step:
    window_from: float
    window_to: float
    new_acked: int = 0
    requests: int = 0
    samples_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected_other: int = 0
    retries_same_id: int = 0
    retry_answer_mismatch: int = 0
    errors: int = 0
    unacknowledged: int = 0
    latencies: list[float] = field(default_factory=list)
    behind_s: float = 0.0
    probe_acks: list[tuple[float, str, int]] = field(default_factory=list)


class Load:
    def __init__(self, setup: dict[str, Any]) -> None:
        self.district = District(
            setup["device_ids"],
            setup["enterprises"],
            setup["start_ms"],
            window_s=setup["window_s"],
            shares=Shares(**setup["shares"]),
            seed=setup["seed"],
            run_id=setup["run_id"],
        )
        self.expected: dict[int, Tally] = {}
        self.probes: set[int] = set(setup["probe_boxes"])
        self.probe_counted: dict[int, int] = dict.fromkeys(self.probes, 0)
        self.metadata = (("authorization", f"Bearer {setup['token']}"),)
        self.cursor = 0
        # Made per run: a semaphore belongs to the event loop that first waits on it.
        self._single_slots: asyncio.Semaphore | None = None

    async def _call(self, call: Any, payload: bytes, step: _Step) -> Any:
        for attempt in range(RETRIES):
            try:
                return await call(payload, metadata=self.metadata, timeout=30)
            except Exception:  # noqa: BLE001 - any failure: retry the same request id, as a client does
                step.errors += 1
                if attempt + 1 < RETRIES:
                    # A client's back-off before retrying, not a synchronisation wait.
                    await asyncio.sleep(0.5 * (attempt + 1))
        return None

    async def _one_of_many(self, call: Any, payload: bytes, step: _Step) -> Any:
        # A box's window sent sample by sample is hundreds of RPCs at once: as a client would, keep a bounded
        # number in flight instead of bursting past the service's admission limit (RESOURCE_EXHAUSTED).
        assert self._single_slots is not None, "made at the start of each run"
        async with self._single_slots:
            return await self._call(call, payload, step)

    def _acked(self, request: Request, step: _Step, acked_at: float) -> None:
        for index, tally in request.added.items():
            self.expected.setdefault(index, Tally()).merge(tally)
        if step.window_from <= acked_at <= step.window_to:
            step.new_acked += request.new_samples
        if request.box in self.probes:
            self.probe_counted[request.box] += sum(t.counted_s for t in request.added.values())
            step.probe_acks.append((acked_at, str(request.box), self.probe_counted[request.box]))

    async def _send(self, call: Any, request: Request, scheduled: float, step: _Step, single: bool) -> None:
        from cityhub.industry.v1 import industry_pb2

        if single:
            # One RPC per sample (baseline): each new sample of the box's window in a request of its own.
            parsed = industry_pb2.IngestTelemetryRequest.FromString(request.payload)
            payloads = [
                encode_request(f"{request.request_id}-{k}", [s.SerializeToString()])
                for k, s in enumerate(parsed.samples[: request.new_samples])
            ]
            answers = await asyncio.gather(*(self._one_of_many(call, p, step) for p in payloads))
        else:
            answers = [await self._call(call, request.payload, step)]
        done = time.monotonic()
        if any(a is None for a in answers):
            step.unacknowledged += 1
            return
        responses = [industry_pb2.IngestTelemetryResponse.FromString(a) for a in answers]
        step.requests += len(responses)
        step.samples_sent += request.samples if not single else request.new_samples
        for response in responses:
            step.accepted += response.accepted_count
            step.duplicates += response.duplicate_count
            step.rejected_other += response.rejected_count - response.duplicate_count
        if scheduled >= step.window_from:
            step.latencies.append(done - scheduled)
        self._acked(request, step, done)
        if not single and self.district.rng.random() < self.district.shares.retry:
            # The same request again, byte for byte: answered from the request log, nothing published.
            again = await self._call(call, request.payload, step)
            if again is not None:
                step.retries_same_id += 1
                first = responses[0]
                replay = industry_pb2.IngestTelemetryResponse.FromString(again)
                if (replay.accepted_count, replay.rejected_count) != (
                    first.accepted_count,
                    first.rejected_count,
                ):
                    step.retry_answer_mismatch += 1

    async def run(self, command: dict[str, Any]) -> dict[str, Any]:
        import grpc
        from cityhub.industry.v1 import industry_pb2  # noqa: F401 - loaded before the clock starts

        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        channels = [grpc.aio.insecure_channel(a, options=options) for a in command["addresses"]]
        calls: list[Any] = [
            ch.unary_unary(INGEST, request_serializer=None, response_deserializer=None) for ch in channels
        ]
        rate, single = float(command["rate"]), command["mode"] == "single"
        self._single_slots = asyncio.Semaphore(SINGLE_IN_FLIGHT)
        cap = int(command["max_in_flight"])
        began = time.monotonic() + 0.2
        step = _Step(began + command["warmup_s"], began + command["warmup_s"] + command["seconds"])
        cpu_before = time.process_time()
        pending: set[asyncio.Task[None]] = set()
        boxes = len(self.district.boxes)
        next_at = began
        while next_at < step.window_to:
            now = time.monotonic()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            elif now - next_at > step.behind_s:
                step.behind_s = now - next_at
            while len(pending) >= cap:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            box = self.cursor
            self.cursor = (self.cursor + 1) % boxes
            request = self.district.next_request(box)
            task = asyncio.create_task(self._send(calls[box % len(calls)], request, next_at, step, single))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += request.new_samples / rate
        if pending:
            await asyncio.wait(pending, timeout=120)
        for channel in channels:
            await channel.close()
        seconds = step.window_to - step.window_from
        return {
            "offered_per_s": rate,
            "seconds": seconds,
            "acked_per_s": step.new_acked / seconds,
            "new_samples_acked": step.new_acked,
            "requests": step.requests,
            "samples_sent": step.samples_sent,
            "accepted": step.accepted,
            "duplicates_answered": step.duplicates,
            "rejected_other": step.rejected_other,
            "retries_same_id": step.retries_same_id,
            "retry_answer_mismatch": step.retry_answer_mismatch,
            "errors": step.errors,
            "unacknowledged": step.unacknowledged,
            "request_p50_ms": percentile(step.latencies, 0.5) * 1000,
            "request_p99_ms": percentile(step.latencies, 0.99) * 1000,
            "generator_behind_s": step.behind_s,
            "client_cpu": (time.process_time() - cpu_before) / (time.monotonic() - began),
            "probe_acks": step.probe_acks,
            "device_clock_ms": self.district.newest_ms(),
        }

    def figures(self) -> dict[str, dict[str, int]]:
        ids = self.district.device_ids
        return {ids[i]: self.expected.get(i, Tally()).figures() for i in range(len(ids))}


def serve(conn: Connection, setup: dict[str, Any]) -> None:
    """The process's entry point: obey commands from the bench until told to stop."""
    load = Load(setup)
    while True:
        command = conn.recv()
        if command["do"] == "stop":
            conn.send({})
            return
        if command["do"] == "figures":
            conn.send(load.figures())
        elif command["do"] == "run":
            conn.send(asyncio.run(load.run(command)))
