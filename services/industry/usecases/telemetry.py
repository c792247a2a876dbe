"""Telemetry: the ingest hot path (straight to Kafka) and the rollup consumer (hourly sums, device state,
fault alerts).

Samples are a high-volume stream, not state changes: they are published straight to Kafka with the
producer (packed per partition), and the RPC answers only after Kafka acknowledged them (acks=all), so a
caller that sees an error retries and nothing acknowledged is lost. What is *derived* from telemetry
(state changes, alerts, hourly rollups) is state again and goes through the outbox, in
:class:`TelemetryRollup` (which runs in the consumer's transaction, on the connection it hands over).

A request id is claimed in the platform's request log in a short transaction of its own before anything is
sent, and its answer remembered in another once Kafka acknowledged, so no connection is held while Kafka
acknowledges: a retry of an answered request gets the same answer and publishes nothing; a retry after a
Kafka failure finds the claim without an answer and sends again, repeating the same record ids, which the
rollup skips; the same id with another batch is INVALID_ARGUMENT naming ``request_id``, before anything is
published. The fingerprint is a digest of the request's bytes, computed once by the caller, so the log
costs one small row per request whatever its size.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from kafka.errors import KafkaError

from services.industry import mapping
from services.industry.adapters.device_directory import DeviceDirectory
from services.industry.adapters.recent_starts import RecentStarts
from services.industry.adapters.telemetry_wire import bucket_keys, pack_batch
from services.industry.domain.access import Visibility
from services.industry.domain.commands import check_ingest
from services.industry.domain.model import AlertKind, Severity
from services.industry.domain.records import NewAlert
from services.industry.domain.telemetry import (
    DeviceProfile,
    FaultAlertCleared,
    FaultAlertDue,
    Rejection,
    RejectionReason,
    SampleLike,
    SampleLimits,
    Screened,
    StateChange,
    accumulate,
    follow_states,
    hours_touched,
    screen_samples,
)
from services.industry.repository import IndustryRepository
from services.industry.usecases.common import Clock, IndustryStore, utc_now
from services.platform import deadlines
from services.platform.breaker import Breaker
from services.platform.errors import InvalidArgumentError, UnavailableError
from services.platform.kafka import EventEnvelope, Producer
from services.platform.logs import get_logger
from services.platform.outbox import OutboxWriter
from services.platform.uow import UnitOfWork

__all__ = ["IngestResult", "TelemetryIngest", "TelemetryRollup", "UnusableTelemetryError"]

log = get_logger()
# Namespace for telemetry record ids: uuid5(request id / partition), so a retried request repeats them.
_TELEMETRY_NS = uuid.UUID("6f1d3c2e-9a57-4c1b-8a0e-3e2f1b7c9d41")
# The request log's operation name for telemetry ingest.
_INGEST = "ingest_telemetry"


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted_count: int
    rejections: list[Rejection]

    @property
    def duplicate_count(self) -> int:
        return sum(1 for r in self.rejections if r.reason == RejectionReason.DUPLICATE)


@dataclass(frozen=True, slots=True)
class IngestCommand:
    """What a replay of a request id must repeat exactly (the platform fingerprints it): the digest of
    the request's bytes, not its up to 20,000 samples."""

    request_id: str
    digest: str


def samples_digest(samples: Sequence[SampleLike], all_or_nothing: bool) -> str:
    """A digest of a batch from its fields, for callers that do not hold the request's bytes (the gRPC
    servicer digests the serialized request instead, which is cheaper)."""
    digest = hashlib.sha256(b"all_or_nothing" if all_or_nothing else b"")
    for s in samples:
        digest.update(
            repr(
                (
                    s.device_id,
                    s.time_unix_ms,
                    s.state,
                    s.good_count,
                    s.reject_count,
                    s.power_kw,
                    s.spindle_load_pct,
                    s.temperature_c,
                )
            ).encode()
        )
    return digest.hexdigest()


def _result_json(result: IngestResult) -> dict[str, Any]:
    """The answer, compact: a re-sent window can make thousands of rejections sharing a few texts, and a
    rejection's device id is the sample's (a replay carries the same samples)."""
    texts: dict[str, int] = {}
    rows = [
        [r.index, r.reason.value, r.field, texts.setdefault(r.description, len(texts))]
        for r in result.rejections
    ]
    return {"accepted": result.accepted_count, "texts": list(texts), "rejections": rows}


def _result_of(data: dict[str, Any], samples: Sequence[SampleLike]) -> IngestResult:
    texts = data["texts"]
    return IngestResult(
        int(data["accepted"]),
        [
            Rejection(int(i), samples[int(i)].device_id, RejectionReason(reason), str(name), str(texts[t]))
            for i, reason, name, t in data["rejections"]
        ],
    )


class DeviceLookup(Protocol):
    """The registered devices ingest screens against (services/industry/adapters/device_directory.py)."""

    @property
    def profiles(self) -> Mapping[str, DeviceProfile]: ...

    def resolve(self, device_ids: Iterable[str]) -> Mapping[str, DeviceProfile]: ...


@dataclass(frozen=True, slots=True)
class _ScreenedBatch:
    """A batch screened and ready to send, with the time it was received (its records carry it)."""

    batch: Screened
    received_ms: int


class TelemetryIngest:
    """Screen a batch against the device directory, pack the accepted samples into one ``TelemetryBatch``
    record per partition (the partition a record keyed by the device id would go to, so each device's
    samples stay in order), send them, wait for the acknowledgements."""

    def __init__(
        self,
        directory: DeviceLookup,
        producer: Producer,
        uow: UnitOfWork[IndustryStore],
        *,
        topic: str,
        partitions: int,
        source: str,
        limits: SampleLimits,
        max_samples: int,
        ack_timeout_s: float,
        breaker: Breaker | None = None,
        recent: RecentStarts | None = None,
        record_per_sample: bool = False,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._directory = directory
        self._producer = producer
        self._uow = uow
        self._recent = recent or RecentStarts(0)
        self._topic = topic
        self._keys = bucket_keys(partitions)
        self._partitions = partitions
        self._source = source
        self._limits = limits
        self._max_samples = max_samples
        self._ack_timeout = ack_timeout_s
        self._breaker = breaker or Breaker("Kafka")
        self._clock_ms = clock_ms
        self._record_per_sample = record_per_sample

    def ingest(
        self,
        request_id: str,
        samples: Sequence[SampleLike],
        visibility: Visibility,
        *,
        all_or_nothing: bool = False,
        digest: str = "",
    ) -> IngestResult:
        """Screen, publish, answer. ``digest`` identifies the batch for the request log (the servicer
        passes a hash of the request's bytes; without one it is computed from the samples)."""
        check_ingest(request_id, len(samples), self._max_samples)
        if not samples:
            return IngestResult(0, [])
        if not request_id:
            # Nothing to be idempotent by: no request log (and no database) on this path.
            result, accepted = self._screen_and_publish(
                f"auto-{uuid.uuid4()}", samples, visibility, all_or_nothing
            )
            self._recent.record(accepted.values())
            return result
        command = IngestCommand(request_id, digest or samples_digest(samples, all_or_nothing))
        # The claim commits on its own and no connection is held while Kafka acknowledges: the same id with
        # another batch is refused here, before anything is sent. A repeat of a claim whose answer was never
        # stored (Kafka failed, or the first attempt is still under way) sends again: the same batch makes
        # the same record ids, which the rollup drops as duplicates.
        # Screened first (memory only): a refused batch stores nothing, not even its claim.
        screened = self._screen(samples, visibility, all_or_nothing)
        with self._uow.transaction() as tx:
            replay = tx.claim(_INGEST, request_id, command, resumable=True)
        if replay is not None:
            return _result_of(replay, samples)
        result, accepted = self._publish_screened(screened, request_id)
        with self._uow.transaction() as tx:
            tx.remember(_INGEST, request_id, _result_json(result))
        # Only now, acknowledged and stored: a sample remembered is one that really was accepted.
        self._recent.record(accepted.values())
        return result

    def _screen_and_publish(
        self, request_id: str, samples: Sequence[SampleLike], visibility: Visibility, all_or_nothing: bool
    ) -> tuple[IngestResult, dict[int, list[SampleLike]]]:
        return self._publish_screened(self._screen(samples, visibility, all_or_nothing), request_id)

    def _screen(
        self, samples: Sequence[SampleLike], visibility: Visibility, all_or_nothing: bool
    ) -> _ScreenedBatch:
        """The batch screened against the device directory and the limits (INVALID_ARGUMENT when
        ``all_or_nothing`` and a sample is bad); touches no database."""
        now_ms = self._clock_ms()
        permitted = (
            None
            if visibility.everything
            else (lambda device: visibility.sees_enterprise(device.credit_code, device.park_id))
        )
        recent = self._recent.times
        screened = screen_samples(
            samples,
            self._directory.profiles,
            self._limits,
            now_ms,
            permitted,
            bucket_count=self._partitions,
            recent=recent,
        )
        if any(r.reason == RejectionReason.UNKNOWN_DEVICE for r in screened.rejections):
            # Registered since the last refresh (perhaps through another replica)? Looked up at most
            # every few seconds, however many unknown ids arrive.
            before = self._directory.profiles
            profiles = self._directory.resolve([r.device_id for r in screened.rejections])
            if profiles is not before:
                screened = screen_samples(
                    samples,
                    profiles,
                    self._limits,
                    now_ms,
                    permitted,
                    bucket_count=self._partitions,
                    recent=recent,
                )
        if all_or_nothing and len(screened.rejections) > screened.resent_count:
            # A sample sent again is not a bad one: it is answered as a duplicate, not refused.
            raise InvalidArgumentError([r.violation() for r in screened.rejections if not r.resent])
        return _ScreenedBatch(screened, now_ms)

    def _publish_screened(
        self, screened: _ScreenedBatch, request_id: str
    ) -> tuple[IngestResult, dict[int, list[SampleLike]]]:
        batch = screened.batch
        if batch.accepted:
            self._publish(batch.accepted, request_id, screened.received_ms)
        if batch.resent_count:
            log.info("telemetry_resent_samples", request_id=request_id, duplicates=batch.resent_count)
        return IngestResult(batch.accepted_count, batch.rejections), batch.accepted

    def _publish(self, groups: dict[int, list[SampleLike]], request_id: str, received_ms: int) -> None:
        """Send and wait for acks=all, within the caller's deadline (capped at the ack timeout). A broker
        that does not acknowledge in time is UNAVAILABLE; after a few, the breaker answers at once."""
        self._breaker.before()
        wait_s = deadlines.budget(self._ack_timeout, "sending to Kafka")
        started = time.monotonic()
        try:
            self._send_and_wait(groups, request_id, received_ms, started + wait_s)
        except KafkaError as error:
            self._breaker.failed()
            log.warning("telemetry_not_acknowledged", error=type(error).__name__, waited_s=round(wait_s, 3))
            raise UnavailableError(
                f"Kafka did not acknowledge the samples within {wait_s:.1f}s; retry with the same request_id"
            ) from None
        self._breaker.succeeded()

    def _send_and_wait(
        self, groups: dict[int, list[SampleLike]], request_id: str, received_ms: int, until: float
    ) -> None:
        if self._record_per_sample:
            self._send_each_and_wait(groups, request_id, received_ms, until)
            return
        futures = []
        received = _ms_to_dt(received_ms)
        for bucket, group in groups.items():
            key = self._keys[bucket]
            envelope = EventEnvelope(
                id=str(uuid.uuid5(_TELEMETRY_NS, f"{request_id}/{bucket}")),
                source=self._source,
                type=mapping.TELEMETRY_BATCH_TYPE,
                subject=key.decode(),
                time=received,
                traceparent=None,
                key=None,
                payload=pack_batch(group, request_id, received_ms),
                topic=self._topic,
            )
            futures.append(
                self._producer.send(
                    self._topic,
                    value=envelope.payload,
                    key=key,
                    headers=envelope.headers(),
                    partition=bucket,
                    timestamp_ms=received_ms,
                )
            )
        for future in futures:
            # acks=all: once this returns the samples are on every in-sync replica. Raising here fails the
            # RPC; the caller retries with the same request id and consumers skip what got through twice.
            future.get(timeout=max(0.001, until - time.monotonic()))

    def _send_each_and_wait(
        self, groups: dict[int, list[SampleLike]], request_id: str, received_ms: int, until: float
    ) -> None:
        """The benchmark's baseline without packing (``industry_telemetry_record_per_sample``): one
        TelemetryBatch record of one sample per accepted sample, keyed by its device, same partition."""
        futures = []
        received = _ms_to_dt(received_ms)
        for bucket, group in groups.items():
            for index, sample in enumerate(group):
                envelope = EventEnvelope(
                    id=str(uuid.uuid5(_TELEMETRY_NS, f"{request_id}/{bucket}/{index}")),
                    source=self._source,
                    type=mapping.TELEMETRY_BATCH_TYPE,
                    subject=sample.device_id,
                    time=received,
                    traceparent=None,
                    key=None,
                    payload=pack_batch([sample], request_id, received_ms),
                    topic=self._topic,
                )
                futures.append(
                    self._producer.send(
                        self._topic,
                        value=envelope.payload,
                        key=sample.device_id.encode(),
                        headers=envelope.headers(),
                        partition=bucket,
                        timestamp_ms=received_ms,
                    )
                )
        for future in futures:
            future.get(timeout=max(0.001, until - time.monotonic()))


class UnusableTelemetryError(ValueError):
    """A TelemetryBatch record names a device the registry does not have (or a state code no device
    sends): it did not come through IngestTelemetry's screening, and no retry will make it applicable.
    Raised out of the consumer's handler, it sends the record to the dead-letter topic with this text."""


_NAMED_AT_MOST = 10


def _unusable(samples: Sequence[SampleLike], profiles: Mapping[str, DeviceProfile]) -> str | None:
    """Why some of ``samples`` cannot be rolled up (None if all can): unknown devices, bad state codes."""
    unknown: dict[str, int] = {}
    bad_states: dict[int, int] = {}
    for sample in samples:
        if sample.device_id not in profiles:
            unknown[sample.device_id] = unknown.get(sample.device_id, 0) + 1
        elif not 1 <= sample.state <= 4:
            bad_states[sample.state] = bad_states.get(sample.state, 0) + 1
    reasons = []
    if unknown:
        named = ", ".join(list(unknown)[:_NAMED_AT_MOST])
        more = f" and {len(unknown) - _NAMED_AT_MOST} more" if len(unknown) > _NAMED_AT_MOST else ""
        reasons.append(
            f"unknown device: {sum(unknown.values())} of {len(samples)} samples name devices not in the"
            f" registry ({named}{more})"
        )
    if bad_states:
        codes = ", ".join(str(code) for code in sorted(bad_states))
        reasons.append(
            f"unknown state: {sum(bad_states.values())} of {len(samples)} samples carry state codes"
            f" other than 1-4 ({codes})"
        )
    return "; ".join(reasons) or None


class TelemetryRollup:
    """The telemetry topic's consumer (an IdempotentConsumer handler: it runs in the batch's transaction,
    on the connection the platform hands it, and each record's id is recorded with it). Adds each
    record's samples to the hourly rollup, follows each device's state in sample-time order (state
    changes, fault alerts), clears offline alerts, and records when the platform last heard from each
    device."""

    def __init__(
        self,
        directory: DeviceDirectory,
        outbox: OutboxWriter,
        *,
        fault_after: timedelta,
        clock: Clock = utc_now,
    ) -> None:
        self._directory = directory
        self._outbox = outbox
        self._fault_after_ms = int(fault_after.total_seconds() * 1000)
        self._clock = clock

    def apply_many(self, conn: psycopg.Connection[Any], batches: Sequence[tuple[Any, datetime]]) -> None:
        """Apply several TelemetryBatch records at once (one poll of the consumer): one upsert of the
        hourly sums, one lock and one update of the devices' status rows, whatever the number of records.
        Per record, each device's row would be rewritten once a record, i.e. about once per sample."""
        repo = IndustryRepository(conn)
        samples: list[SampleLike] = [sample for message, _ in batches for sample in message.samples]
        profiles = self._directory.profiles
        keys, skipped = hours_touched(samples, profiles)
        if skipped:
            # Registered since the last refresh? Then, before calling a device unknown, by id.
            self._directory.refresh(conn)
            profiles = self._directory.confirm([s.device_id for s in samples], conn)
            reason = _unusable(samples, profiles)
            if reason is not None:
                # The whole record goes to the DLQ, its known devices' samples too (see
                # docs/services/industry.md, Rollup): the ingest path never publishes such samples.
                raise UnusableTelemetryError(reason)
            keys, _ = hours_touched(samples, profiles)
        # What each touched device-hour already counts, its rows locked until commit: one query for the
        # poll, then each sample adds only what it newly covers (samples in the order they were received,
        # so the first report of a moment decides its state).
        coverage = repo.lock_hour_coverage(keys)
        totals, _ = accumulate(samples, profiles, coverage)
        repo.add_hourly(totals, coverage)
        timelines: dict[str, list[tuple[int, int]]] = {}
        heard: dict[str, datetime] = {}
        for message, published_at in batches:
            received = _ms_to_dt(message.received_unix_ms) if message.received_unix_ms else published_at
            for sample in message.samples:
                device_id = sample.device_id
                line = timelines.get(device_id)
                entry = (sample.time_unix_ms, sample.state)
                if line is None:
                    timelines[device_id] = [entry]
                    heard[device_id] = received
                else:
                    line.append(entry)
                    heard[device_id] = max(heard[device_id], received)
        profiles = self._directory.profiles
        statuses = repo.lock_statuses([d for d in timelines if d in profiles])
        for device_id, status in statuses.items():
            device = profiles[device_id]
            line = timelines[device_id]
            line.sort()
            if status.offline_alert_id is not None and (
                status.offline_raised_at is None or heard[device_id] > status.offline_raised_at
            ):
                self._clear(repo, status.offline_alert_id, device, AlertKind.OFFLINE, self._clock())
                status.offline_alert_id = None
            for happening in follow_states(
                status.snapshot, line, self._fault_after_ms, lambda: str(uuid.uuid4())
            ):
                if isinstance(happening, StateChange):
                    event = mapping.device_state_changed(
                        device, happening.previous, happening.state, happening.at_ms
                    )
                    self._outbox.add(conn, key=device_id, subject=device_id, message=event)
                elif isinstance(happening, FaultAlertDue):
                    self._raise_fault(repo, device, happening)
                elif isinstance(happening, FaultAlertCleared):
                    self._clear(repo, happening.alert_id, device, AlertKind.FAULT, _ms_to_dt(happening.at_ms))
        repo.save_statuses(statuses.values(), heard)

    def _raise_fault(self, repo: IndustryRepository, device: DeviceProfile, due: FaultAlertDue) -> None:
        since, at = _ms_to_dt(due.since_ms), _ms_to_dt(due.at_ms)
        repo.add_alert(NewAlert(due.alert_id, device, AlertKind.FAULT, Severity.HIGH, since, at))
        event = mapping.alert_raised(
            due.alert_id, device, AlertKind.FAULT, severity=Severity.HIGH, since=since, at=at
        )
        self._outbox.add(repo.conn, key=device.device_id, subject=device.device_id, message=event)
        log.info("device_alert_raised", device_id=device.device_id, kind="fault")

    def _clear(
        self, repo: IndustryRepository, alert_id: str, device: DeviceProfile, kind: AlertKind, at: datetime
    ) -> None:
        raised_at = repo.clear_alert(alert_id, at)
        if raised_at is None:
            return
        event = mapping.alert_cleared(alert_id, device, kind, raised_at, at)
        self._outbox.add(repo.conn, key=device.device_id, subject=device.device_id, message=event)
        log.info("device_alert_cleared", device_id=device.device_id, kind=kind.value)
