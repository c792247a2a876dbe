"""Kafka for CityHub: CloudEvents binary mode on records, a tuned producer, topic administration.

Every event record carries the CloudEvents Kafka binding headers (``ce_id``, ``ce_source``, ``ce_type`` =
the protobuf message's full name, ``ce_subject``, ``ce_time``, ``ce_specversion``, ``content-type``) plus
W3C ``traceparent``; its key is the subject entity's id and its value the protobuf bytes. Any tool that
has the repo's generated contracts can therefore route and decode any topic without a schema registry:
:func:`decode_payload` finds the message class by ``ce_type`` in the protobuf default descriptor pool.

kafka-python ships no type information; the rest of the code base sees it only through the small
protocols and typed functions here.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from services.platform.logs import get_logger
from services.platform.settings import ServiceSettings
from services.platform.tracing import TraceContext, parse_traceparent

__all__ = [
    "CONTENT_TYPE_PROTOBUF",
    "DELIVERY_TIMEOUT_MS",
    "DLQ_SUFFIX",
    "RECONNECT_BACKOFF_MAX_MS",
    "SPEC_VERSION",
    "EnvelopeError",
    "EventEnvelope",
    "KafkaRecord",
    "PayloadDecodeError",
    "Producer",
    "SendFuture",
    "UnknownEventTypeError",
    "bootstrap_list",
    "decode_payload",
    "dlq_topic",
    "ensure_topics",
    "envelope_from_record",
    "format_ce_time",
    "list_topics",
    "load_all_contracts",
    "make_producer",
    "parse_ce_time",
    "to_json",
]

SPEC_VERSION = "1.0"
CONTENT_TYPE_PROTOBUF = "application/protobuf"
DLQ_SUFFIX = ".dlq"
# The longest a long-lived client (the relay's producer, a consumer) waits between attempts to reach a
# broker it lost. kafka-python's default is 30 s (Java's is 1 s): after a broker restart the relay then sat
# out up to half a minute with the broker back, its backlog growing (tests/drills: broker restart).
RECONNECT_BACKOFF_MAX_MS = 1000
# The longest the relay's producer holds a record before giving it up (see make_producer).
DELIVERY_TIMEOUT_MS = 20_000
# Kafka's own limits on topic names (legal characters, at most 249 of them).
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")

log = get_logger()


class EnvelopeError(ValueError):
    """A record is not a CityHub CloudEvent this process can decode; retrying will not change that."""


class UnknownEventTypeError(EnvelopeError):
    """``ce_type`` names no message in any generated contract this process has loaded."""


class PayloadDecodeError(EnvelopeError):
    """The record value is not a valid serialisation of the message ``ce_type`` names."""


class SendFuture(Protocol):
    """What ``KafkaProducer.send`` returns: ``get`` blocks until the broker acknowledged or raises."""

    def get(self, timeout: float | None = None) -> Any: ...


class Producer(Protocol):
    """The part of ``kafka.KafkaProducer`` CityHub uses."""

    def send(
        self,
        topic: str,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> SendFuture: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


class KafkaRecord(Protocol):
    """The fields of ``kafka.consumer.fetcher.ConsumerRecord`` that CityHub reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...


def format_ce_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: the form every CloudEvents SDK parses."""
    if moment.tzinfo is None:
        raise ValueError("ce_time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ce_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise EnvelopeError(f"ce_time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """One CloudEvent as CityHub carries it on Kafka (binary content mode).

    ``partition`` and ``offset`` are set only on envelopes read back from a topic.
    """

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    traceparent: str | None
    key: str | None
    payload: bytes
    topic: str
    partition: int | None = field(default=None, compare=False)
    offset: int | None = field(default=None, compare=False)

    @classmethod
    def for_message(
        cls,
        message: Message,
        *,
        topic: str,
        key: str,
        subject: str,
        source: str,
        event_id: str | None = None,
        time: datetime | None = None,
        traceparent: str | None = None,
    ) -> EventEnvelope:
        """Wrap a protobuf event; ``ce_type`` is the message's full name so consumers can decode it."""
        return cls(
            id=event_id or str(uuid.uuid4()),
            source=source,
            type=message.DESCRIPTOR.full_name,
            subject=subject,
            time=time or datetime.now(UTC),
            traceparent=traceparent or TraceContext.new().traceparent,
            key=key,
            payload=message.SerializeToString(),
            topic=topic,
        )

    @property
    def trace(self) -> TraceContext | None:
        return parse_traceparent(self.traceparent)

    @property
    def key_bytes(self) -> bytes | None:
        return None if self.key is None else self.key.encode("utf-8")

    def headers(self) -> list[tuple[str, bytes]]:
        """The Kafka headers of the CloudEvents Kafka binding, binary mode, plus ``traceparent``."""
        headers = [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.id.encode("utf-8")),
            ("ce_source", self.source.encode("utf-8")),
            ("ce_type", self.type.encode("utf-8")),
            ("ce_subject", self.subject.encode("utf-8")),
            ("ce_time", format_ce_time(self.time).encode()),
            ("content-type", CONTENT_TYPE_PROTOBUF.encode()),
        ]
        if self.traceparent:
            headers.append(("traceparent", self.traceparent.encode("ascii")))
        return headers

    def decode(self) -> Message:
        return decode_payload(self.type, self.payload)


def _header_text(headers: dict[str, bytes | None], name: str, *, required: bool = True) -> str | None:
    raw = headers.get(name)
    if raw is None:
        if required:
            raise EnvelopeError(f"header {name} is missing")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError(f"header {name} is not UTF-8") from None
    if required and not text:
        raise EnvelopeError(f"header {name} is empty")
    return text


_SPEC_VERSION_BYTES = SPEC_VERSION.encode()
_CONTENT_TYPE_BYTES = CONTENT_TYPE_PROTOBUF.encode()


def envelope_from_record(record: KafkaRecord) -> EventEnvelope:
    """Read the CloudEvent back from a consumed record; :class:`EnvelopeError` if it is not one."""
    # The binding allows repeated headers in principle; the last one wins, as in the Java SDK.
    headers = dict(record.headers or ())
    envelope = _usual_envelope(record, headers)
    return envelope if envelope is not None else _checked_envelope(record, headers)


def _usual_envelope(record: KafkaRecord, headers: dict[str, bytes | None]) -> EventEnvelope | None:
    """The envelope of a record exactly as CityHub's relays write it, read without the checks one at a
    time (a replay reads millions); None for anything else, which :func:`_checked_envelope` then reads or
    rejects with its reason."""
    spec = headers.get("ce_specversion")
    content_type = headers.get("content-type", _CONTENT_TYPE_BYTES)
    value, key = record.value, record.key
    if spec != _SPEC_VERSION_BYTES or content_type != _CONTENT_TYPE_BYTES or value is None:
        return None
    event_id, source, type_, ce_time = (
        headers.get("ce_id"),
        headers.get("ce_source"),
        headers.get("ce_type"),
        headers.get("ce_time"),
    )
    if not (event_id and source and type_ and ce_time):  # missing (None) or empty
        return None
    subject, traceparent = headers.get("ce_subject"), headers.get("traceparent")
    try:
        return EventEnvelope(  # by position, in field order: cheaper than by keyword, millions of times
            event_id.decode("utf-8"),  # id
            source.decode("utf-8"),
            type_.decode("utf-8"),
            subject.decode("utf-8") if subject is not None else "",
            parse_ce_time(ce_time.decode("utf-8")),
            traceparent.decode("utf-8") if traceparent is not None else None,
            key.decode("utf-8") if key is not None else None,
            bytes(value),  # payload
            record.topic,
            record.partition,
            record.offset,
        )
    except ValueError:  # UnicodeDecodeError, EnvelopeError: the checked reading says which
        return None


def _checked_envelope(record: KafkaRecord, headers: dict[str, bytes | None]) -> EventEnvelope:
    spec = _header_text(headers, "ce_specversion")
    if spec != SPEC_VERSION:
        raise EnvelopeError(f"ce_specversion {spec!r} is not supported (expected {SPEC_VERSION})")
    content_type = _header_text(headers, "content-type", required=False)
    # Only the media type matters; parameters such as "; proto=..." are tolerated.
    if content_type is not None and content_type.split(";")[0].strip().lower() != CONTENT_TYPE_PROTOBUF:
        raise EnvelopeError(f"content-type {content_type!r} is not {CONTENT_TYPE_PROTOBUF}")
    if record.value is None:
        raise EnvelopeError("record has no value (tombstone)")
    key: str | None = None
    if record.key is not None:
        try:
            key = record.key.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError("record key is not UTF-8") from None
    return EventEnvelope(
        id=cast(str, _header_text(headers, "ce_id")),
        source=cast(str, _header_text(headers, "ce_source")),
        type=cast(str, _header_text(headers, "ce_type")),
        subject=_header_text(headers, "ce_subject", required=False) or "",
        time=parse_ce_time(cast(str, _header_text(headers, "ce_time"))),
        traceparent=_header_text(headers, "traceparent", required=False),
        key=key,
        payload=bytes(record.value),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


_contracts_lock = threading.Lock()
_contracts_loaded: list[str] = []


def load_all_contracts() -> list[str]:
    """Import every generated ``cityhub.*_pb2`` module so that all message types are in the default pool.

    Idempotent and cheap after the first call; returns the module names imported."""
    with _contracts_lock:
        if _contracts_loaded:
            return list(_contracts_loaded)
        import cityhub

        for info in pkgutil.walk_packages(cityhub.__path__, prefix="cityhub."):
            # *_pb2_grpc modules register no types and would pull in grpc for nothing.
            if info.name.endswith("_pb2"):
                importlib.import_module(info.name)
                _contracts_loaded.append(info.name)
        return list(_contracts_loaded)


_classes: dict[str, type[Message]] = {}


def message_class(ce_type: str) -> type[Message]:
    cls = _classes.get(ce_type)
    if cls is not None:
        return cls
    load_all_contracts()
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(ce_type)
    except KeyError:
        raise UnknownEventTypeError(f"ce_type {ce_type!r} is not a message in any loaded contract") from None
    cls = message_factory.GetMessageClass(descriptor)
    _classes[ce_type] = cls
    return cls


def decode_payload(ce_type: str, payload: bytes) -> Message:
    """Parse ``payload`` as the protobuf message whose full name is ``ce_type``."""
    cls = message_class(ce_type)
    message = cls()
    try:
        message.ParseFromString(payload)
    except DecodeError as error:
        raise PayloadDecodeError(f"value is not a valid {ce_type}: {error}") from None
    return message


def to_json(message: Message) -> str:
    """Canonical proto3 JSON on one line (what ``cityhub events tail`` prints)."""
    return json_format.MessageToJson(message, indent=None, sort_keys=True)


# --- clients -----------------------------------------------------------------------------------------


def bootstrap_list(bootstrap: ServiceSettings | str | Sequence[str]) -> list[str]:
    if isinstance(bootstrap, ServiceSettings):
        servers = bootstrap.kafka_bootstrap_list
    elif isinstance(bootstrap, str):
        servers = [part.strip() for part in bootstrap.split(",") if part.strip()]
    else:
        servers = [part.strip() for part in bootstrap if part.strip()]
    if not servers:
        raise ValueError("no Kafka bootstrap server given")
    return servers


def _compression() -> str | None:
    # Compression needs an optional native library on both producer and consumer side; the project
    # does not depend on one, so it is used only where the environment already has it.
    from kafka import codec

    if codec.has_zstd():
        return "zstd"
    if codec.has_lz4():
        return "lz4"
    return None


def _recover_producer_id_after_expiry() -> None:
    """Work around kafka-python 3.0.12 (the latest release): when a batch that had been sent expires (a
    broker outage past the 20 s delivery timeout), ``reset_producer_id`` drops the idempotent producer's
    id but leaves its state READY, and the sender asks for a new id only in UNINITIALIZED. The producer
    then never sends again, and says nothing: the relay, telemetry ingest and dead-lettering of that
    process stall until it restarts (drill ``broker-crash-long``). Resetting the state as well makes the
    sender fetch a new producer id once the broker is back, which is what the Java client does.

    Applied once, only to the version it was written for; a newer kafka-python is left alone (the drill
    tells whether it still needs help)."""
    import kafka
    from kafka.producer import transaction_manager as tm

    manager: Any = tm.TransactionManager
    if kafka.__version__ != "3.0.12" or getattr(manager, "_cityhub_recovers", False):
        return
    reset = manager.reset_producer_id

    def reset_and_reinitialise(self: Any) -> None:
        reset(self)
        if not self.is_transactional():
            with self._lock:
                self._current_state = tm.TransactionState.UNINITIALIZED

    manager.reset_producer_id = reset_and_reinitialise
    manager._cityhub_recovers = True


def make_producer(bootstrap: ServiceSettings | str | Sequence[str], **overrides: Any) -> Producer:
    """A KafkaProducer tuned for throughput without giving up safety.

    acks=all plus idempotence means a retried batch is never duplicated or reordered within a partition
    (kafka-python caps in-flight requests at 5 for that); linger and a large batch let the relay's
    bursts go out as few requests; max_request_size matches the broker's 8 MiB message.max.bytes."""
    from kafka import KafkaProducer

    _recover_producer_id_after_expiry()
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_list(bootstrap),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": 8 * 1024 * 1024,
        "compression_type": _compression(),
        # Short on purpose. A batch in flight when the broker goes away can be held until its delivery
        # timeout even after the broker is back (seen in the broker-restart drill: the relay's backlog
        # took ~58 s instead of ~1 s, now and then). Every record comes from an outbox row that stays
        # unsent until acknowledged, so giving up early loses nothing: the relay sends the batch again.
        "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
        "request_timeout_ms": 15_000,
        "max_block_ms": 30_000,
        "bootstrap_timeout_ms": 30_000,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        "client_id": "cityhub-producer",
    }
    if isinstance(bootstrap, ServiceSettings):
        config["client_id"] = f"cityhub-{bootstrap.service_name}"
    config.update(overrides)
    return cast(Producer, KafkaProducer(**config))


def dlq_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def _check_topic(name: str) -> str:
    if not _TOPIC_NAME.match(name) or name in {".", ".."}:
        raise ValueError(f"{name!r} is not a legal Kafka topic name")
    return name


def _admin(bootstrap: ServiceSettings | str | Sequence[str], bootstrap_timeout_s: float = 30.0) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(
        bootstrap_servers=bootstrap_list(bootstrap),
        client_id="cityhub-admin",
        request_timeout_ms=30_000,
        bootstrap_timeout_ms=int(bootstrap_timeout_s * 1000),
    )


def list_topics(bootstrap: ServiceSettings | str | Sequence[str]) -> list[str]:
    """Every topic name in the cluster (internal ones included), sorted."""
    admin = _admin(bootstrap)
    try:
        return sorted(str(name) for name in admin.list_topics())
    finally:
        admin.close()


def ensure_topics(
    bootstrap: ServiceSettings | str | Sequence[str],
    names: Iterable[str],
    partitions: int,
    replication: int,
    *,
    with_dlq: bool = True,
    timeout_s: float = 30.0,
    bootstrap_timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics (and their ``<topic>.dlq`` companions) that do not exist yet.

    Safe to call from several processes at once: a topic someone else created first counts as done.
    Returns only when metadata shows every topic with a leader for each partition, so the first send
    right after never fails on an unknown topic. Returns the names this call created."""
    from kafka.errors import TopicAlreadyExistsError, for_code

    wanted: list[str] = []
    for name in names:
        _check_topic(name)
        wanted.append(name)
        if with_dlq and not name.endswith(DLQ_SUFFIX):
            wanted.append(_check_topic(dlq_topic(name)))
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        return []
    admin = _admin(bootstrap, bootstrap_timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        created: list[str] = []
        if missing:
            spec = {
                name: {"num_partitions": partitions, "replication_factor": replication} for name in missing
            }
            # raise_errors=False: an already-existing topic must not hide a real error on another one.
            result = admin.create_topics(spec, timeout_ms=int(timeout_s * 1000), raise_errors=False)
            for topic in result.get("topics", []):
                code = int(topic.get("error_code", 0))
                if code == 0:
                    created.append(str(topic["name"]))
                    continue
                error = for_code(code)
                if error is TopicAlreadyExistsError:
                    continue
                raise error(f"creating topic {topic['name']}: {topic.get('error_message')}")
        admin.wait_for_topics(wanted, timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()
    if created:
        log.info("kafka_topics_created", topics=created, partitions=partitions, replication=replication)
    return created
