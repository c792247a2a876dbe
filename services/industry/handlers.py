"""Use cases of the industry service. Each command validates before it opens a transaction, then writes
its state and its event rows (outbox) in one transaction; queries read in one.

Telemetry is the exception on purpose: samples are a high-volume stream, not state changes. They are
published straight to Kafka with the producer (packed per partition, see :class:`TelemetryIngest`), and
the RPC answers only after Kafka acknowledged them (acks=all), so a caller that sees an error retries
and nothing acknowledged is lost. What is *derived* from telemetry (state changes, alerts, hourly
rollups) is state again and goes through the outbox, in :class:`TelemetryRollup` and
:class:`HealthMonitor`.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import events_pb2, industry_pb2, telemetry_pb2
from psycopg_pool import ConnectionPool

from services.industry import repository as repo
from services.industry.domain.access import Visibility
from services.industry.domain.orders import (
    OrderSpec,
    OrderStage,
    check_advance,
    check_occurred_at,
    check_order,
    cycle_days,
    is_late,
)
from services.industry.domain.registry import (
    DEFAULT_SAMPLE_INTERVAL_MS,
    Device,
    DeviceSpec,
    Enterprise,
    EnterpriseSpec,
    Park,
    ParkSpec,
    check_device,
    check_enterprise,
    check_park,
)
from services.industry.domain.telemetry import (
    DeviceProfile,
    FaultAlertCleared,
    FaultAlertDue,
    Rejection,
    RejectionReason,
    SampleLike,
    SampleLimits,
    StateChange,
    accumulate,
    follow_states,
    screen_samples,
)
from services.industry.domain.utilisation import Change, Totals, compare
from services.industry.domain.workshops import WorkshopCoverage
from services.industry.repository import DeviceDirectory, Subject
from services.industry.settings import IndustrySettings
from services.platform.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    Violations,
)
from services.platform.kafka import EventEnvelope, Producer
from services.platform.logs import get_logger
from services.platform.outbox import OutboxWriter
from services.platform.protoconv import to_timestamp as timestamp

__all__ = [
    "HealthMonitor",
    "IngestResult",
    "OrderView",
    "Orders",
    "Registry",
    "TelemetryIngest",
    "TelemetryRollup",
    "UtilisationQueries",
    "bucket_keys",
    "device_partitioner",
    "figures_message",
    "pack_batch",
    "timestamp",
]

log = get_logger()
Clock = Callable[[], datetime]
_DEFAULT_PAGE = 100
_MAX_PAGE = 1000
_MAX_FUTURE = timedelta(minutes=5)
# Namespace for telemetry record ids: uuid5(request id / partition), so a retried request repeats them.
_TELEMETRY_NS = uuid.UUID("6f1d3c2e-9a57-4c1b-8a0e-3e2f1b7c9d41")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- paging ---------------------------------------------------------------------------------------------


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgumentError.of("page.page_size", "must not be negative")
    return min(size or _DEFAULT_PAGE, _MAX_PAGE)


def encode_token(*parts: str) -> str:
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode().rstrip("=")


def decode_token(token: str, count: int) -> list[str] | None:
    if not token:
        return None
    try:
        parts = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("\x1f")
    except (ValueError, UnicodeDecodeError):
        parts = []
    if len(parts) != count:
        raise InvalidArgumentError.of("page.page_token", "is not a token this service issued")
    return parts


def _time_token(token: str) -> tuple[datetime, str] | None:
    parts = decode_token(token, 2)
    if parts is None:
        return None
    try:
        return datetime.fromisoformat(parts[0]), parts[1]
    except ValueError:
        raise InvalidArgumentError.of("page.page_token", "is not a token this service issued") from None


def _request_id(request_id: str) -> str:
    """A create without a request id still works, it just is not idempotent."""
    return request_id or f"auto-{uuid.uuid4()}"


# --- registry: parks, enterprises, devices --------------------------------------------------------------


class Registry:
    def __init__(
        self,
        pool: ConnectionPool,
        outbox: OutboxWriter,
        directory: DeviceDirectory,
        settings: IndustrySettings,
        clock: Clock = utc_now,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._directory = directory
        self._settings = settings
        self._clock = clock

    def register_park(self, request_id: str, spec: ParkSpec, visibility: Visibility) -> Park:
        check_park(spec, request_id)
        if not visibility.everything:
            raise PermissionDeniedError("only district-wide industry operators register parks")
        rid = _request_id(request_id)
        with self._pool.connection() as conn, conn.transaction():
            existing = repo.park_by_request(conn, rid)
            if existing is not None:
                return existing
            park = Park(
                f"park-{secrets.token_hex(4)}", spec.name, spec.division_code, spec.address, self._clock()
            )
            repo.insert_park(conn, park, rid)
            self._outbox.add(
                conn,
                key=park.park_id,
                subject=park.park_id,
                message=events_pb2.ParkRegistered(
                    park_id=park.park_id,
                    division_code=park.division_code,
                    registered_at=timestamp(park.registered_at),
                ),
            )
        log.info("park_registered", park_id=park.park_id)
        return park

    def list_parks(self, visibility: Visibility, size: int, token: str) -> tuple[list[Park], str]:
        limit = page_size(size)
        after = (decode_token(token, 1) or [""])[0]
        with self._pool.connection() as conn:
            parks = repo.list_parks(conn, visibility, after, limit + 1)
        return parks[:limit], encode_token(parks[limit - 1].park_id) if len(parks) > limit else ""

    def onboard_enterprise(self, request_id: str, spec: EnterpriseSpec, visibility: Visibility) -> Enterprise:
        check_enterprise(spec, request_id)
        if not visibility.sees_enterprise(spec.credit_code, spec.park_id):
            # Park staff onboard into their own parks; an enterprise user only its own enterprise.
            raise PermissionDeniedError(f"the caller may not onboard {spec.credit_code} into this park")
        rid = _request_id(request_id)
        with self._pool.connection() as conn, conn.transaction():
            existing = repo.enterprise_by_request(conn, rid)
            if existing is not None:
                return existing
            if spec.park_id and repo.get_park(conn, spec.park_id) is None:
                raise InvalidArgumentError.of("park_id", "no such park")
            if repo.get_enterprise(conn, spec.credit_code) is not None:
                raise AlreadyExistsError(f"enterprise {spec.credit_code} is already on the platform")
            enterprise = Enterprise(
                spec.credit_code, spec.name, spec.sector, spec.park_id or None, spec.address, self._clock()
            )
            repo.insert_enterprise(conn, enterprise, rid)
            self._outbox.add(
                conn,
                key=enterprise.credit_code,
                subject=enterprise.credit_code,
                message=events_pb2.EnterpriseOnboarded(
                    enterprise_id=enterprise.credit_code,
                    sector=enterprise.sector,  # type: ignore[arg-type]
                    park_id=enterprise.park_id or "",
                    division_code=enterprise.division_code,
                    onboarded_at=timestamp(enterprise.onboarded_at),
                ),
            )
        log.info("enterprise_onboarded", enterprise_id=enterprise.credit_code, park_id=enterprise.park_id)
        return enterprise

    def get_enterprise(self, credit_code: str, visibility: Visibility) -> Enterprise:
        with self._pool.connection() as conn:
            enterprise = repo.get_enterprise(conn, credit_code)
        if enterprise is None:
            raise NotFoundError(f"no enterprise {credit_code}")
        require_enterprise(visibility, enterprise.credit_code, enterprise.park_id)
        return enterprise

    def list_enterprises(
        self, visibility: Visibility, park_id: str, size: int, token: str
    ) -> tuple[list[Enterprise], str]:
        limit = page_size(size)
        after = (decode_token(token, 1) or [""])[0]
        with self._pool.connection() as conn:
            found = repo.list_enterprises(conn, visibility, park_id, after, limit + 1)
        more = len(found) > limit
        return found[:limit], encode_token(found[limit - 1].credit_code) if more else ""

    def register_device(self, request_id: str, spec: DeviceSpec, visibility: Visibility) -> Device:
        if spec.sample_interval_ms == 0:
            spec = DeviceSpec(
                spec.serial_number,
                spec.enterprise_id,
                spec.workshop,
                spec.machine_type,
                spec.rated_power_kw,
                spec.ideal_cycle_seconds,
                DEFAULT_SAMPLE_INTERVAL_MS,
            )
        check_device(spec, request_id)
        rid = _request_id(request_id)
        with self._pool.connection() as conn, conn.transaction():
            existing = repo.device_by_request(conn, rid)
            if existing is not None:
                return existing
            enterprise = repo.get_enterprise(conn, spec.enterprise_id)
            if enterprise is None:
                raise InvalidArgumentError.of("enterprise_id", "no such enterprise on the platform")
            require_enterprise(visibility, enterprise.credit_code, enterprise.park_id)
            if repo.device_by_serial(conn, spec.serial_number) is not None:
                raise AlreadyExistsError(f"a device with serial number {spec.serial_number} is registered")
            device = Device(
                f"dev-{secrets.token_hex(8)}",
                spec.serial_number,
                enterprise.credit_code,
                enterprise.park_id,
                spec.workshop.strip(),
                spec.machine_type,
                spec.rated_power_kw,
                spec.ideal_cycle_seconds,
                spec.sample_interval_ms,
                self._clock(),
            )
            repo.insert_device(conn, device, rid)
            self._outbox.add(
                conn,
                key=device.device_id,
                subject=device.device_id,
                message=events_pb2.DeviceRegistered(
                    device_id=device.device_id,
                    enterprise_id=device.enterprise_id,
                    park_id=device.park_id or "",
                    workshop=device.workshop,
                    machine_type=device.machine_type,  # type: ignore[arg-type]
                    rated_power_kw=device.rated_power_kw,
                    ideal_cycle_seconds=device.ideal_cycle_seconds,
                    sample_interval_ms=device.sample_interval_ms,
                    registered_at=timestamp(device.registered_at),
                ),
            )
        self._directory.add(device)
        log.info("device_registered", device_id=device.device_id, enterprise_id=device.enterprise_id)
        return device

    def list_devices(
        self,
        visibility: Visibility,
        *,
        enterprise_id: str,
        workshop: str,
        park_id: str,
        size: int,
        token: str,
    ) -> tuple[list[tuple[repo.DeviceRow, bool]], str]:
        """Devices with whether each is reporting (heard from within the silence threshold)."""
        if workshop and not enterprise_id:
            raise InvalidArgumentError.of("enterprise_id", "is required when filtering by workshop")
        limit = page_size(size)
        after = (decode_token(token, 1) or [""])[0]
        with self._pool.connection() as conn:
            rows = repo.list_devices(
                conn,
                visibility,
                enterprise_id=enterprise_id,
                workshop=workshop,
                park_id=park_id,
                after=after,
                limit=limit + 1,
            )
        horizon = self._clock() - timedelta(seconds=self._settings.silence_alert_after_s)
        shown = [
            (row, row.last_sample_at is not None and row.last_seen_at >= horizon) for row in rows[:limit]
        ]
        return shown, encode_token(rows[limit - 1].device.device_id) if len(rows) > limit else ""

    def digital_workshops(
        self, park_id: str, digital_only: bool, visibility: Visibility
    ) -> list[tuple[WorkshopCoverage, bool]]:
        if not park_id:
            raise InvalidArgumentError.of("park_id", "is required")
        if not visibility.sees_park(park_id):
            raise PermissionDeniedError(f"the caller may not see park {park_id}")
        horizon = self._clock() - timedelta(seconds=self._settings.silence_alert_after_s)
        with self._pool.connection() as conn:
            if repo.get_park(conn, park_id) is None:
                raise NotFoundError(f"no park {park_id}")
            found = repo.workshop_coverage(conn, park_id, horizon)
        threshold = self._settings.digital_workshop_share
        rated = [(coverage, coverage.is_digital(threshold)) for coverage in found]
        return [item for item in rated if item[1]] if digital_only else rated


def require_enterprise(visibility: Visibility, enterprise_id: str, park_id: str | None) -> None:
    if not visibility.sees_enterprise(enterprise_id, park_id):
        raise PermissionDeniedError(f"the caller may not see enterprise {enterprise_id}")


# --- telemetry: ingest ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted_count: int
    rejections: list[Rejection]


def bucket_keys(partitions: int) -> list[bytes]:
    """For each partition, a record key that Kafka's default partitioner (murmur2) maps to it: records
    keep key and partition consistent, so a replay that re-sends by key lands where the original did."""
    from kafka.partitioner.default import murmur2

    keys: list[bytes] = []
    for partition in range(partitions):
        candidate = 0
        while True:
            key = f"telemetry-{candidate}".encode()
            if (murmur2(key) & 0x7FFFFFFF) % partitions == partition:
                keys.append(key)
                break
            candidate += 1
    return keys


def device_partitioner(partitions: int) -> Callable[[str], int]:
    """The partition Kafka's default partitioner picks for a record keyed by the device id."""
    from kafka.partitioner.default import murmur2

    def bucket_of(device_id: str) -> int:
        return int((murmur2(device_id.encode()) & 0x7FFFFFFF) % partitions)

    return bucket_of


def sample_limits(settings: IndustrySettings) -> SampleLimits:
    return SampleLimits(
        max_future_ms=int(settings.telemetry_max_future_s * 1000),
        max_age_ms=int(settings.telemetry_max_age_s * 1000),
        power_rated_multiple=settings.power_rated_multiple,
        temperature_min_c=settings.temperature_min_c,
        temperature_max_c=settings.temperature_max_c,
        spindle_load_max_pct=settings.spindle_load_max_pct,
        max_parts_per_sample=settings.max_parts_per_sample,
    )


# Field 1 of TelemetryBatch (repeated TelemetrySample samples), wire type 2: tag byte 0x0a, then the length.
_SAMPLE_TAG = b"\x0a"
_FRAMES = [_SAMPLE_TAG + bytes((n,)) for n in range(128)]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _framed(chunk: bytes) -> bytes:
    size = len(chunk)
    return (_FRAMES[size] if size < 128 else _SAMPLE_TAG + _varint(size)) + chunk


def pack_batch(samples: Sequence[SampleLike], request_id: str, received_ms: int) -> bytes:
    """The serialized TelemetryBatch of ``samples``, built from each sample's own serialization.

    Protobuf's wire format lets a message be written field by field in any order, and a repeated
    message field is its elements one after another, each as tag + length + bytes. Serializing each
    sample and framing it costs half as much as copying the sample messages into a new TelemetryBatch
    (``samples.extend``) and serializing that, which was the largest item of the ingest path after
    screening. The result parses to exactly the message the slow way builds (a unit test checks)."""
    head = telemetry_pb2.TelemetryBatch(request_id=request_id, received_unix_ms=received_ms)
    serialize = telemetry_pb2.TelemetrySample.SerializeToString
    return b"".join([head.SerializeToString(), *map(_framed, map(serialize, samples))])  # type: ignore[arg-type]


class TelemetryIngest:
    """The ingest hot path: screen a batch against the device directory, pack the accepted samples into
    one ``TelemetryBatch`` record per partition (the partition a record keyed by the device id would go
    to, so each device's samples stay in order), send them, wait for the acknowledgements."""

    def __init__(
        self,
        directory: DeviceDirectory,
        producer: Producer,
        *,
        topic: str,
        partitions: int,
        source: str,
        settings: IndustrySettings,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._directory = directory
        self._producer = producer
        self._topic = topic
        self._keys = bucket_keys(partitions)
        self._partitions = partitions
        self._source = source
        self._limits = sample_limits(settings)
        self._max_samples = settings.telemetry_max_samples_per_request
        self._ack_timeout = settings.telemetry_ack_timeout_s
        self._clock_ms = clock_ms

    def ingest(
        self,
        request_id: str,
        samples: Sequence[SampleLike],
        visibility: Visibility,
        *,
        all_or_nothing: bool = False,
    ) -> IngestResult:
        if len(samples) > self._max_samples:
            raise InvalidArgumentError.of("samples", f"at most {self._max_samples} samples per request")
        if len(request_id) > 128:
            raise InvalidArgumentError.of("request_id", "must be at most 128 characters")
        if not samples:
            return IngestResult(0, [])
        now_ms = self._clock_ms()
        permitted = (
            None
            if visibility.everything
            else (lambda device: visibility.sees_enterprise(device.enterprise_id, device.park_id))
        )
        screened = screen_samples(
            samples, self._directory.profiles, self._limits, now_ms, permitted, bucket_count=self._partitions
        )
        if any(r.reason == RejectionReason.UNKNOWN_DEVICE for r in screened.rejections):
            # Registered since the last refresh (perhaps through another replica)? Looked up at most
            # every few seconds, however many unknown ids arrive.
            before = self._directory.profiles
            profiles = self._directory.resolve([r.device_id for r in screened.rejections])
            if profiles is not before:
                screened = screen_samples(
                    samples, profiles, self._limits, now_ms, permitted, bucket_count=self._partitions
                )
        if all_or_nothing and screened.rejections:
            raise InvalidArgumentError([r.violation() for r in screened.rejections])
        if screened.accepted:
            self._publish(screened.accepted, request_id or f"auto-{uuid.uuid4()}", now_ms)
        return IngestResult(screened.accepted_count, screened.rejections)

    def _publish(self, groups: dict[int, list[SampleLike]], request_id: str, received_ms: int) -> None:
        futures = []
        received = _ms_to_dt(received_ms)
        for bucket, group in groups.items():
            payload = pack_batch(group, request_id, received_ms)
            key = self._keys[bucket]
            envelope = EventEnvelope(
                id=str(uuid.uuid5(_TELEMETRY_NS, f"{request_id}/{bucket}")),
                source=self._source,
                type=telemetry_pb2.TelemetryBatch.DESCRIPTOR.full_name,
                subject=key.decode(),
                time=received,
                traceparent=None,
                key=None,
                payload=payload,
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
            future.get(timeout=self._ack_timeout)


# --- telemetry: rollup consumer and health ---------------------------------------------------------------


def _alert_raised(
    alert_id: str, device: DeviceProfile, kind: int, *, severity: int, since: datetime, at: datetime
) -> events_pb2.DeviceAlertRaised:
    return events_pb2.DeviceAlertRaised(
        alert_id=alert_id,
        device_id=device.device_id,
        enterprise_id=device.enterprise_id,
        park_id=device.park_id or "",
        kind=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        raised_at=timestamp(at),
        condition_since=timestamp(since),
    )


def _alert_cleared(
    alert_id: str, device: DeviceProfile, kind: int, raised_at: datetime, cleared_at: datetime
) -> events_pb2.DeviceAlertCleared:
    return events_pb2.DeviceAlertCleared(
        alert_id=alert_id,
        device_id=device.device_id,
        enterprise_id=device.enterprise_id,
        park_id=device.park_id or "",
        kind=kind,  # type: ignore[arg-type]
        raised_at=timestamp(raised_at),
        cleared_at=timestamp(max(cleared_at, raised_at)),
    )


FAULT = industry_pb2.DEVICE_ALERT_KIND_FAULT
OFFLINE = industry_pb2.DEVICE_ALERT_KIND_OFFLINE


class TelemetryRollup:
    """The telemetry topic's consumer (an IdempotentConsumer handler: it runs in the batch's transaction
    and each record's id is recorded with it). Adds each record's samples to the hourly rollup, follows
    each device's state in sample-time order (state changes, fault alerts), clears offline alerts, and
    records when the platform last heard from each device."""

    def __init__(
        self,
        directory: DeviceDirectory,
        outbox: OutboxWriter,
        settings: IndustrySettings,
        clock: Clock = utc_now,
    ) -> None:
        self._directory = directory
        self._outbox = outbox
        self._fault_after_ms = int(settings.fault_alert_after_s * 1000)
        self._clock = clock

    def apply(
        self, conn: psycopg.Connection[Any], message: telemetry_pb2.TelemetryBatch, published_at: datetime
    ) -> None:
        self.apply_many(conn, [(message, published_at)])

    def apply_many(
        self,
        conn: psycopg.Connection[Any],
        batches: Sequence[tuple[telemetry_pb2.TelemetryBatch, datetime]],
    ) -> None:
        """Apply several records at once (one poll of the consumer): one upsert of the hourly sums, one
        lock and one update of the devices' status rows, whatever the number of records. Per record,
        each device's row would be rewritten once a record, i.e. about once per sample."""
        samples = [sample for message, _ in batches for sample in message.samples]
        totals, skipped = accumulate(samples, self._directory.profiles)
        if skipped:
            self._directory.refresh(conn)
            totals, skipped = accumulate(samples, self._directory.profiles)
            if skipped:
                log.warning("telemetry_samples_skipped", count=skipped, reason="unknown device or state")
        repo.add_hourly(conn, totals)
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
        statuses = repo.lock_statuses(conn, [d for d in timelines if d in profiles])
        for device_id, status in statuses.items():
            received = heard[device_id]
            device = profiles[device_id]
            line = timelines[device_id]
            line.sort()
            if status.offline_alert_id is not None and (
                status.offline_raised_at is None or received > status.offline_raised_at
            ):
                self._clear(conn, status.offline_alert_id, device, OFFLINE, self._clock())
                status.offline_alert_id = None
            happenings = follow_states(status.snapshot, line, self._fault_after_ms, lambda: str(uuid.uuid4()))
            for happening in happenings:
                if isinstance(happening, StateChange):
                    self._outbox.add(
                        conn,
                        key=device_id,
                        subject=device_id,
                        message=events_pb2.DeviceStateChanged(
                            device_id=device_id,
                            enterprise_id=device.enterprise_id,
                            park_id=device.park_id or "",
                            previous_state=happening.previous,  # type: ignore[arg-type]
                            state=happening.state,  # type: ignore[arg-type]
                            changed_at=timestamp(_ms_to_dt(happening.at_ms)),
                        ),
                    )
                elif isinstance(happening, FaultAlertDue):
                    since, at = _ms_to_dt(happening.since_ms), _ms_to_dt(happening.at_ms)
                    repo.insert_alert(
                        conn,
                        alert_id=happening.alert_id,
                        device=device,
                        kind=FAULT,
                        severity=common_pb2.SEVERITY_HIGH,
                        condition_since=since,
                        raised_at=at,
                    )
                    self._outbox.add(
                        conn,
                        key=device_id,
                        subject=device_id,
                        message=_alert_raised(
                            happening.alert_id,
                            device,
                            FAULT,
                            severity=common_pb2.SEVERITY_HIGH,
                            since=since,
                            at=at,
                        ),
                    )
                    log.info("device_alert_raised", device_id=device_id, kind="fault")
                elif isinstance(happening, FaultAlertCleared):
                    self._clear(conn, happening.alert_id, device, FAULT, _ms_to_dt(happening.at_ms))
        repo.save_statuses(conn, statuses.values(), heard)

    def _clear(
        self, conn: psycopg.Connection[Any], alert_id: str, device: DeviceProfile, kind: int, at: datetime
    ) -> None:
        raised_at = repo.clear_alert(conn, alert_id, at)
        if raised_at is None:
            return
        self._outbox.add(
            conn,
            key=device.device_id,
            subject=device.device_id,
            message=_alert_cleared(alert_id, device, kind, raised_at, at),
        )
        log.info(
            "device_alert_cleared", device_id=device.device_id, kind="fault" if kind == FAULT else "offline"
        )


_HEALTH_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtext('cityhub_industry_health'), 0)"


class HealthMonitor:
    """The service's clock-driven rules, run every few seconds by one replica at a time: raise an offline
    alert for each device not heard from for longer than the silence threshold, and publish the
    figures of finished hours (UtilisationRolledUp) once the late-data delay has passed."""

    def __init__(
        self,
        pool: ConnectionPool,
        outbox: OutboxWriter,
        directory: DeviceDirectory,
        settings: IndustrySettings,
        *,
        clock: Clock = utc_now,
        batch_limit: int = 1000,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._directory = directory
        self._silence = timedelta(seconds=settings.silence_alert_after_s)
        self._publish_delay = timedelta(seconds=settings.rollup_publish_delay_s)
        self._interval = settings.health_check_interval_s
        self._clock = clock
        self._limit = batch_limit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> tuple[int, int]:
        """One round; returns (offline alerts raised, hourly rollups published)."""
        now = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            locked = conn.execute(_HEALTH_LOCK_SQL).fetchone()
            if not locked or not locked[0]:
                return 0, 0
            raised = self._raise_offline(conn, now)
            published = self._publish_rollups(conn, now)
        if raised or published:
            log.info("health_tick", offline_alerts_raised=raised, rollups_published=published)
        return raised, published

    def _raise_offline(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        silent = repo.lock_silent_devices(conn, now - self._silence, self._limit)
        if not silent:
            return 0
        profiles = self._directory.resolve([s.device_id for s in silent], conn)
        for item in silent:
            device = profiles.get(item.device_id)
            if device is None:
                continue
            alert_id = str(uuid.uuid4())
            repo.insert_alert(
                conn,
                alert_id=alert_id,
                device=device,
                kind=OFFLINE,
                severity=common_pb2.SEVERITY_MEDIUM,
                condition_since=item.last_seen_at,
                raised_at=now,
            )
            repo.set_offline_alert(conn, item.device_id, alert_id)
            self._outbox.add(
                conn,
                key=item.device_id,
                subject=item.device_id,
                message=_alert_raised(
                    alert_id,
                    device,
                    OFFLINE,
                    severity=common_pb2.SEVERITY_MEDIUM,
                    since=item.last_seen_at,
                    at=now,
                ),
            )
        return len(silent)

    def _publish_rollups(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        due = repo.lock_due_rollups(conn, now - self._publish_delay - timedelta(hours=1), self._limit)
        if not due:
            return 0
        profiles = self._directory.resolve([d.device_id for d in due], conn)
        for row in due:
            device = profiles.get(row.device_id)
            self._outbox.add(
                conn,
                key=row.device_id,
                subject=row.device_id,
                message=events_pb2.UtilisationRolledUp(
                    device_id=row.device_id,
                    enterprise_id=device.enterprise_id if device else "",
                    park_id=(device.park_id or "") if device else "",
                    workshop=device.workshop if device else "",
                    hour_start=timestamp(row.hour_start),
                    figures=figures_message(row.totals),
                ),
            )
        repo.mark_rollups_published(conn, [(d.device_id, d.hour_start) for d in due])
        return len(due)

    def run(self, stop: threading.Event) -> None:
        log.info("health_monitor_started", interval_s=self._interval)
        while not stop.is_set():
            try:
                while any(count >= self._limit for count in self.tick()):
                    if stop.is_set():
                        break
            except Exception as error:  # noqa: BLE001 - the next round retries; the thread must live on
                log.warning("health_tick_failed", error=str(error), error_type=type(error).__name__)
            stop.wait(self._interval)
        log.info("health_monitor_stopped")


def figures_message(totals: Totals) -> industry_pb2.UtilisationFigures:
    return industry_pb2.UtilisationFigures(
        running_seconds=totals.running_ms / 1000,
        idle_seconds=totals.idle_ms / 1000,
        stopped_seconds=totals.stopped_ms / 1000,
        fault_seconds=totals.fault_ms / 1000,
        planned_seconds=totals.planned_ms / 1000,
        good_count=totals.good_count,
        reject_count=totals.reject_count,
        ideal_seconds=totals.ideal_ms / 1000,
        availability=totals.availability,
        performance=totals.performance,
        quality=totals.quality,
        oee=totals.oee,
    )


# --- utilisation and alerts ---------------------------------------------------------------------------


def _period(
    violations: Violations, field: str, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    if start is None or end is None:
        violations.add(field, "needs start_time and end_time")
        return datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)
    if end <= start:
        violations.add(field, "end_time must be after start_time")
    return start, end


def _whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    floor = start.replace(minute=0, second=0, microsecond=0)
    ceiling = end.replace(minute=0, second=0, microsecond=0)
    if ceiling < end:
        ceiling += timedelta(hours=1)
    return floor, ceiling


class UtilisationQueries:
    def __init__(self, pool: ConnectionPool, settings: IndustrySettings) -> None:
        self._pool = pool
        self._zone = settings.district_time_zone

    def _check_subject(self, conn: psycopg.Connection[Any], subject: Subject, visibility: Visibility) -> None:
        if subject.device_id:
            device = repo.get_device(conn, subject.device_id)
            if device is None:
                raise NotFoundError(f"no device {subject.device_id}")
            require_enterprise(visibility, device.enterprise_id, device.park_id)
        elif subject.enterprise_id:
            enterprise = repo.get_enterprise(conn, subject.enterprise_id)
            if enterprise is None:
                raise NotFoundError(f"no enterprise {subject.enterprise_id}")
            require_enterprise(visibility, enterprise.credit_code, enterprise.park_id)
        elif subject.park_id:
            if repo.get_park(conn, subject.park_id) is None:
                raise NotFoundError(f"no park {subject.park_id}")
            if not visibility.sees_park(subject.park_id):
                raise PermissionDeniedError(f"the caller may not see park {subject.park_id}")

    def get(
        self,
        subject: Subject,
        start: datetime | None,
        end: datetime | None,
        *,
        granularity: str,
        time_zone: str,
        visibility: Visibility,
    ) -> tuple[Totals, list[tuple[datetime, datetime, Totals]]]:
        violations = Violations()
        check_subject(violations, subject)
        first, last = _period(violations, "period", start, end)
        zone = time_zone or self._zone
        if not _known_zone(zone):
            violations.add("time_zone", "is not an IANA time zone")
        violations.check()
        first, last = _whole_hours(first, last)
        with self._pool.connection() as conn:
            self._check_subject(conn, subject, visibility)
            rows = repo.utilisation(
                conn, subject, first, last, granularity=granularity or "total", time_zone=zone
            )
        total = Totals()
        buckets: list[tuple[datetime, datetime, Totals]] = []
        tz = ZoneInfo(zone)
        for bucket, totals in rows:
            total = total + totals
            if bucket is not None:
                if granularity == "hour":
                    bucket_end = bucket + timedelta(hours=1)
                else:
                    local = bucket.astimezone(tz)
                    bucket_end = datetime.combine(local.date() + timedelta(days=1), local.time(), tz)
                buckets.append((bucket, bucket_end.astimezone(UTC), totals))
        return total, buckets

    def compare(
        self,
        subject: Subject,
        base: tuple[datetime | None, datetime | None],
        later: tuple[datetime | None, datetime | None],
        visibility: Visibility,
    ) -> tuple[Totals, Totals, Change]:
        violations = Violations()
        check_subject(violations, subject)
        base_period = _period(violations, "base_period", *base)
        later_period = _period(violations, "compare_period", *later)
        violations.check()
        with self._pool.connection() as conn:
            self._check_subject(conn, subject, visibility)
            before = _sum(
                repo.utilisation(
                    conn, subject, *_whole_hours(*base_period), granularity="total", time_zone=self._zone
                )
            )
            after = _sum(
                repo.utilisation(
                    conn, subject, *_whole_hours(*later_period), granularity="total", time_zone=self._zone
                )
            )
        return before, after, compare(before, after)

    def alerts(
        self,
        visibility: Visibility,
        *,
        enterprise_id: str,
        park_id: str,
        device_id: str,
        open_only: bool,
        size: int,
        token: str,
    ) -> tuple[list[repo.AlertRow], str]:
        limit = page_size(size)
        before = _time_token(token)
        with self._pool.connection() as conn:
            rows = repo.list_alerts(
                conn,
                visibility,
                enterprise_id=enterprise_id,
                park_id=park_id,
                device_id=device_id,
                open_only=open_only,
                before=before,
                limit=limit + 1,
            )
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        return rows[:limit], encode_token(last.raised_at.isoformat(), last.alert_id) if last else ""


def _sum(rows: list[tuple[datetime | None, Totals]]) -> Totals:
    total = Totals()
    for _bucket, totals in rows:
        total = total + totals
    return total


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        return False
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError and friends: not a zone we know
        return False
    return True


def check_subject(violations: Violations, subject: Subject) -> None:
    chosen = [
        name
        for name, value in (
            ("device_id", subject.device_id),
            ("workshop", subject.workshop),
            ("enterprise_id", subject.enterprise_id and not subject.workshop),
            ("park_id", subject.park_id),
        )
        if value
    ]
    if len(chosen) != 1:
        violations.add("subject", "name exactly one device, workshop, enterprise or park")
    if subject.workshop and not subject.enterprise_id:
        violations.add("subject.workshop.enterprise_id", "is required")


# --- orders ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderView:
    row: repo.OrderRow
    late: bool
    delivery_cycle_days: float


class Orders:
    def __init__(
        self, pool: ConnectionPool, outbox: OutboxWriter, settings: IndustrySettings, clock: Clock = utc_now
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._zone_name = settings.district_time_zone
        self._zone = ZoneInfo(settings.district_time_zone)
        self._clock = clock

    def view(self, row: repo.OrderRow, now: datetime | None = None) -> OrderView:
        moment = now or self._clock()
        days = cycle_days(row.ordered_at, row.delivered_at) if row.delivered_at else 0.0
        return OrderView(row, is_late(row.promised_date, row.delivered_at, moment, self._zone), days)

    def create(self, request_id: str, spec: OrderSpec, visibility: Visibility) -> OrderView:
        now = self._clock()
        problem = "must be at most 128 characters" if len(request_id) > 128 else None
        promised = check_order(spec, now, _MAX_FUTURE, problem)
        rid = _request_id(request_id)
        with self._pool.connection() as conn, conn.transaction():
            existing = repo.order_by_request(conn, rid)
            if existing is not None:
                return self.view(existing, now)
            enterprise = repo.get_enterprise(conn, spec.enterprise_id)
            if enterprise is None:
                raise InvalidArgumentError.of("enterprise_id", "no such enterprise on the platform")
            require_enterprise(visibility, enterprise.credit_code, enterprise.park_id)
            row = repo.OrderRow(
                order_id=f"ord-{secrets.token_hex(8)}",
                enterprise_id=enterprise.credit_code,
                park_id=enterprise.park_id,
                customer=spec.customer.strip(),
                product=spec.product.strip(),
                customisation=spec.customisation,
                promised_date=promised,
                stage=OrderStage.SALES,
                ordered_at=spec.ordered_at or now,
                delivered_at=None,
                stage_times=((OrderStage.SALES, spec.ordered_at or now),),
            )
            repo.insert_order(conn, row, rid)
            view = self.view(row, now)
            self._outbox.add(conn, key=row.order_id, subject=row.order_id, message=self._event(view, 0, now))
        log.info("order_created", order_id=row.order_id, enterprise_id=row.enterprise_id)
        return view

    def _event(self, view: OrderView, previous: int, at: datetime) -> events_pb2.OrderStageChanged:
        row = view.row
        return events_pb2.OrderStageChanged(
            order_id=row.order_id,
            enterprise_id=row.enterprise_id,
            previous_stage=previous,  # type: ignore[arg-type]
            stage=row.stage,  # type: ignore[arg-type]
            changed_at=timestamp(at if previous else row.ordered_at),
            ordered_at=timestamp(row.ordered_at),
            promised_date=row.promised_date.isoformat(),
            delivery_cycle_days=view.delivery_cycle_days,
            late=view.late,
        )

    def advance(
        self, order_id: str, stage: int, occurred_at: datetime | None, visibility: Visibility
    ) -> OrderView:
        now = self._clock()
        violations = Violations()
        if not order_id:
            violations.add("order_id", "is required")
        check_occurred_at(violations, "occurred_at", occurred_at, now, _MAX_FUTURE)
        violations.check()
        at = occurred_at or now
        with self._pool.connection() as conn, conn.transaction():
            row = repo.get_order(conn, order_id, for_update=True)
            if row is None:
                raise NotFoundError(f"no order {order_id}")
            require_enterprise(visibility, row.enterprise_id, row.park_id)
            target = check_advance(OrderStage(row.stage), stage)
            entered = max(moment for _stage, moment in row.stage_times) if row.stage_times else row.ordered_at
            if at < entered:
                raise InvalidArgumentError.of(
                    "occurred_at", f"is before the order entered its current stage ({entered.isoformat()})"
                )
            delivered = target == OrderStage.DELIVERY
            repo.move_order(conn, order_id, target, at, delivered=delivered)
            moved = repo.OrderRow(
                row.order_id,
                row.enterprise_id,
                row.park_id,
                row.customer,
                row.product,
                row.customisation,
                row.promised_date,
                target,
                row.ordered_at,
                at if delivered else row.delivered_at,
                (*row.stage_times, (target, at)),
            )
            view = self.view(moved, now)
            self._outbox.add(conn, key=order_id, subject=order_id, message=self._event(view, row.stage, at))
        log.info("order_advanced", order_id=order_id, stage=target.label)
        return view

    def get(self, order_id: str, visibility: Visibility) -> OrderView:
        with self._pool.connection() as conn:
            row = repo.get_order(conn, order_id)
        if row is None:
            raise NotFoundError(f"no order {order_id}")
        require_enterprise(visibility, row.enterprise_id, row.park_id)
        return self.view(row)

    def list(
        self, visibility: Visibility, enterprise_id: str, late_only: bool, size: int, token: str
    ) -> tuple[list[OrderView], str]:
        limit = page_size(size)
        before = _time_token(token)
        now = self._clock()
        with self._pool.connection() as conn:
            rows = repo.list_orders(
                conn,
                visibility,
                enterprise_id=enterprise_id,
                late_only=late_only,
                today=now.astimezone(self._zone).date(),
                time_zone=self._zone_name,
                before=before,
                limit=limit + 1,
            )
        more = len(rows) > limit
        last = rows[limit - 1] if more else None
        token_out = encode_token(last.ordered_at.isoformat(), last.order_id) if last else ""
        return [self.view(row, now) for row in rows[:limit]], token_out

    def cycle_stats(
        self, enterprise_id: str, start: datetime | None, end: datetime | None, visibility: Visibility
    ) -> repo.CycleStats:
        violations = Violations()
        first, last = _period(violations, "period", start, end)
        violations.check()
        with self._pool.connection() as conn:
            self._check_enterprise(conn, enterprise_id, visibility)
            return repo.delivery_cycle_stats(
                conn, visibility, enterprise_id, first, last, time_zone=self._zone_name
            )

    def compare_cycles(
        self,
        enterprise_id: str,
        base: tuple[datetime | None, datetime | None],
        later: tuple[datetime | None, datetime | None],
        visibility: Visibility,
    ) -> tuple[repo.CycleStats, repo.CycleStats]:
        violations = Violations()
        base_period = _period(violations, "base_period", *base)
        later_period = _period(violations, "compare_period", *later)
        violations.check()
        with self._pool.connection() as conn:
            self._check_enterprise(conn, enterprise_id, visibility)
            before = repo.delivery_cycle_stats(
                conn, visibility, enterprise_id, *base_period, time_zone=self._zone_name
            )
            after = repo.delivery_cycle_stats(
                conn, visibility, enterprise_id, *later_period, time_zone=self._zone_name
            )
        return before, after

    @staticmethod
    def _check_enterprise(conn: psycopg.Connection[Any], enterprise_id: str, visibility: Visibility) -> None:
        if not enterprise_id:
            return
        enterprise = repo.get_enterprise(conn, enterprise_id)
        if enterprise is None:
            raise NotFoundError(f"no enterprise {enterprise_id}")
        require_enterprise(visibility, enterprise.credit_code, enterprise.park_id)
