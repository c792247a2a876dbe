"""The audit log's chain head, anchored outside the database on the Kafka topic ``cityhub.audit.anchors.v1``.

The hash chain in ``audit_log`` shows a row changed behind the service's back, but whoever can rewrite the
table *and* recompute every hash after the change (a database superuser) leaves a chain that holds. So the
service publishes its chain head (last id and row_hash) every ``AUDIT_ANCHOR_INTERVAL_S`` when it moved,
and once more on shutdown, as a ``cityhub.audit.v1.AuditChainAnchored`` record keyed by the service, with
the CloudEvents headers every CityHub event carries. ``cityhub audit verify`` reads them back
(:func:`read_anchors`) and checks each anchored row still has the anchored hash
(:func:`services.platform.security.audit.verify_rows`): a rewrite is found as long as the topic is out of the
rewriter's reach (in production: the service may only write to it; nobody it trusts may delete from it).

The topic is created with one partition and no retention limit (records are small and few: at most one per
service per interval); any anchor ever published keeps vouching for the history up to its row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from cityhub.audit.v1.events_pb2 import AuditChainAnchored
from google.protobuf.message import DecodeError

from services.platform.kafka import (
    EnvelopeError,
    EventEnvelope,
    Producer,
    bootstrap_list,
    envelope_from_record,
)
from services.platform.logs import get_logger
from services.platform.security.audit import Anchor, AuditLog

__all__ = [
    "ANCHOR_TOPIC",
    "ANCHOR_TOPIC_CONFIGS",
    "AnchorReadError",
    "AuditAnchorPublisher",
    "anchor_envelope",
    "ensure_anchor_topic",
    "read_anchors",
]

ANCHOR_TOPIC = "cityhub.audit.anchors.v1"
# Kept for ever: an anchor vouches for the history up to its row as long as it exists.
ANCHOR_TOPIC_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
_ANCHOR_TYPE = AuditChainAnchored.DESCRIPTOR.full_name
_HASH_LENGTH = 64  # hex SHA-256
log = get_logger()


class AnchorReadError(RuntimeError):
    """A record on the anchor topic keyed by a service is not a readable anchor of that service."""


def anchor_envelope(
    service: str, head_id: int, head_hash: str, *, topic: str = ANCHOR_TOPIC, at: datetime | None = None
) -> EventEnvelope:
    """The record for one anchor: key and subject the service, source ``/cityhub/<service>``."""
    moment = at or datetime.now(UTC)
    message = AuditChainAnchored(service=service, head_id=head_id, head_hash=head_hash)
    message.anchored_at.FromDatetime(moment.astimezone(UTC))
    return EventEnvelope.for_message(
        message, topic=topic, key=service, subject=service, source=f"/cityhub/{service}", time=moment
    )


def ensure_anchor_topic(
    bootstrap: str | Sequence[str],
    topic: str = ANCHOR_TOPIC,
    *,
    replication: int = 1,
    timeout_s: float = 10.0,
) -> bool:
    """Create the anchor topic (one partition, kept for ever) unless it exists; True if this call made it."""
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError, for_code

    admin: Any = KafkaAdminClient(
        bootstrap_servers=bootstrap_list(bootstrap),
        client_id="cityhub-audit-anchor",
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
    )
    try:
        if topic in set(admin.list_topics()):
            return False
        spec = {
            topic: {"num_partitions": 1, "replication_factor": replication, "configs": ANCHOR_TOPIC_CONFIGS}
        }
        result = admin.create_topics(spec, timeout_ms=int(timeout_s * 1000), raise_errors=False)
        created = False
        for outcome in result.get("topics", []):
            code = int(outcome.get("error_code", 0))
            if code == 0:
                created = True
            elif for_code(code) is not TopicAlreadyExistsError:  # another service made it first: fine
                raise for_code(code)(f"creating topic {topic}: {outcome.get('error_message')}")
        admin.wait_for_topics([topic], timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()
    if created:
        log.info("audit_anchor_topic_created", topic=topic, replication=replication)
    return created


class AuditAnchorPublisher:
    """Publishes one service's chain head to the anchor topic when it moved: every ``interval_s`` while
    running and once more when stopped. A failed publish is logged and tried again at the next tick; it never
    stops the service (the rows themselves are safe in the database, only their anchor is late)."""

    def __init__(
        self,
        audit: AuditLog,
        producer: Producer,
        service: str,
        *,
        bootstrap: str | Sequence[str],
        topic: str = ANCHOR_TOPIC,
        interval_s: float = 60.0,
        replication: int = 1,
        send_timeout_s: float = 10.0,
    ) -> None:
        self._audit = audit
        self._producer = producer
        self._service = service
        self._bootstrap = bootstrap_list(bootstrap)
        self._topic = topic
        self._interval_s = interval_s
        self._replication = replication
        self._send_timeout_s = send_timeout_s
        self._topic_ready = False
        self._published: tuple[int, str] | None = None

    def run(self, stop: threading.Event) -> None:
        """Anchor every interval until ``stop`` is set, then once more (the head at shutdown)."""
        while not stop.wait(self._interval_s):
            self.publish_if_moved()
        self.publish_if_moved()

    def publish_if_moved(self) -> Anchor | None:
        """Publish the current head unless it is empty or already published; the anchor sent, if any."""
        try:
            head = self._audit.head()
            if head is None or head == self._published:
                return None
            if not self._topic_ready:
                ensure_anchor_topic(self._bootstrap, self._topic, replication=self._replication)
                self._topic_ready = True
            at = datetime.now(UTC)
            envelope = anchor_envelope(self._service, head[0], head[1], topic=self._topic, at=at)
            self._producer.send(
                self._topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers()
            ).get(timeout=self._send_timeout_s)
        except Exception as error:  # noqa: BLE001 - the next tick tries again; serving must go on
            log.warning(
                "audit_anchor_failed", topic=self._topic, error=str(error), error_type=type(error).__name__
            )
            return None
        self._published = head
        log.info("audit_anchor_published", topic=self._topic, head_id=head[0])
        return Anchor(head[0], head[1], at)


def read_anchors(
    bootstrap: str | Sequence[str],
    topic: str = ANCHOR_TOPIC,
    services: Collection[str] | None = None,
    *,
    timeout_s: float = 60.0,
) -> dict[str, list[Anchor]] | None:
    """Every anchor on ``topic`` up to its current end (of ``services`` only, when given), by service in
    publishing order; None when the topic does not exist. Reads without a consumer group."""
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(
        bootstrap_servers=bootstrap_list(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return None
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        consumer.seek_to_beginning(*assignment)
        ends = consumer.end_offsets(assignment)
        found: dict[str, list[Anchor]] = {name: [] for name in services or ()}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in assignment):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} took longer than {timeout_s:.0f}s")
            for tp, records in consumer.poll(timeout_ms=200).items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue  # published after this read began
                    service = _service_of(record)
                    if service is None or (services is not None and service not in services):
                        continue
                    found.setdefault(service, []).append(_anchor_of(record, service))
        return found
    finally:
        consumer.close()


def _service_of(record: Any) -> str | None:
    if record.key is None:
        return None
    try:
        return str(record.key.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def _anchor_of(record: Any, service: str) -> Anchor:
    where = f"{record.topic} partition {record.partition} offset {record.offset}"
    try:
        envelope = envelope_from_record(record)
        message = AuditChainAnchored.FromString(envelope.payload)
    except (EnvelopeError, DecodeError) as error:
        raise AnchorReadError(f"the record at {where} keyed {service!r} is not an anchor: {error}") from None
    if envelope.type != _ANCHOR_TYPE:
        raise AnchorReadError(f"the record at {where} keyed {service!r} is a {envelope.type}, not an anchor")
    if message.service != service or message.head_id <= 0 or len(message.head_hash) != _HASH_LENGTH:
        raise AnchorReadError(
            f"the anchor at {where} keyed {service!r} is malformed "
            f"(service {message.service!r}, head_id {message.head_id}, head_hash {message.head_hash!r})"
        )
    anchored_at = message.anchored_at.ToDatetime(tzinfo=UTC) if message.HasField("anchored_at") else None
    return Anchor(int(message.head_id), message.head_hash, anchored_at, where)
