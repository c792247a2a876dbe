"""The idempotent consumer: projection write and processed event id in one transaction, offsets after.

For each polled batch the consumer opens one PostgreSQL transaction and, per record, a savepoint in
which it records ``(consumer, ce_id)`` in ``processed_events`` (``ON CONFLICT DO NOTHING``: a row already
there means a duplicate, skipped) and calls the handler. The transaction commits, then the Kafka
offsets are committed. A crash between the two only replays records whose ids are already recorded.

One transaction per batch rather than per record spares a WAL flush per record, which is what bounds a
replay of a topic from the start; savepoints keep one failing record from undoing its neighbours.

Failure policy:

* transient (PostgreSQL connection/serialization errors, retriable Kafka errors): the batch's
  transaction is rolled back and retried with capped exponential backoff, forever, until stop: the
  record is fine, the world is not, and dead-lettering it would lose it from the projection.
* anything else (a record that does not decode, a handler that raises): the record goes to
  ``<topic>.dlq`` with the original key, value and headers plus ``dlq_*`` headers naming the error, and
  counts as done so the partition keeps moving. Its id is *not* recorded as processed, so replaying it
  from the DLQ after a fix is not mistaken for a duplicate.

Partitions as soon as a topic exists. kafka-python (3.0.12) computes a group's assignment from the
leader's cached metadata and rebalances when that metadata changes; two of its flaws can leave a member
without partitions, and the loop repairs both before and after every poll:

* *metadata that forgot the topic.* A metadata response to a request that did not name a subscribed
  topic (one in flight since before the subscription, or one for all topics) replaces the cache without
  the topic and marks it fresh: the next refresh is ``metadata_max_age_ms`` (five minutes) away. So while
  a subscribed topic has no partitions in the cache (not created yet, or forgotten so), the consumer asks
  for a refresh every second (``consumer_waiting_for_topics``); when the topic appears, the change starts
  a rebalance.
* *a rebalance whose result is dropped.* A rebalance started only by a metadata change (every first start
  does one: the first assignment is usually computed before the topic's metadata arrived) is forgotten
  when ``poll`` times out while it is in flight: by the time it completes, kafka-python no longer thinks a
  rejoin is needed, so it never applies the assignment it received, and the member keeps none until the
  group rebalances for another reason. The loop spots that state (a join completed but never applied)
  and asks for a rejoin (``consumer_rejoining_group``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from google.protobuf.message import Message
from psycopg_pool import ConnectionPool

from services.platform.kafka import (
    DLQ_SUFFIX,
    RECONNECT_BACKOFF_MAX_MS,
    EnvelopeError,
    EventEnvelope,
    KafkaRecord,
    Producer,
    bootstrap_list,
    decode_payload,
    dlq_topic,
    envelope_from_record,
    format_ce_time,
)
from services.platform.logs import bind_context, clear_context, get_logger
from services.platform.metrics import CONSUMER_RECORDS, DEAD_LETTERS
from services.platform.retry import Backoff
from services.platform.tracing import parse_traceparent, set_current_trace

__all__ = [
    "DLQ_HEADERS",
    "BatchHandler",
    "ConsumerFencedError",
    "Handler",
    "IdempotentConsumer",
    "is_transient",
]

Handler = Callable[[psycopg.Connection[Any], EventEnvelope, Message], None]
# Applies every new record of one poll in one go (in poll order); see IdempotentConsumer.
BatchHandler = Callable[[psycopg.Connection[Any], Sequence[tuple[EventEnvelope, Message]]], None]

DLQ_HEADERS = (
    "dlq_error",
    "dlq_error_type",
    "dlq_consumer",
    "dlq_original_topic",
    "dlq_original_partition",
    "dlq_original_offset",
    "dlq_time",
)
# Longer texts are cut: headers travel with every fetch of the DLQ and a traceback adds nothing there.
_DLQ_ERROR_MAX = 2000
_PRUNE_CHUNK = 10_000
# How long closing may spend leaving the group (see IdempotentConsumer.close).
_CLOSE_TIMEOUT_MS = 3000
_RECORD_CONTEXT = ("topic", "partition", "offset", "event_id", "trace_id")
# While a subscribed topic has no partitions in the client's metadata, a refresh is asked for this often.
_METADATA_RECHECK_S = 1.0
_METADATA_WAIT_LOGGED_AFTER_S = 3.0

log = get_logger()


class _ConsumerRecord(KafkaRecord, Protocol):
    @property
    def leader_epoch(self) -> int | None: ...


def is_transient(error: BaseException) -> bool:
    """Errors that say nothing about the record: retry the batch, never dead-letter it."""
    if isinstance(error, psycopg.OperationalError | TimeoutError | ConnectionError):
        return True
    from kafka.errors import KafkaError

    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


class ConsumerFencedError(RuntimeError):
    """Another process joined this consumer's group under the same ``group.instance.id``; Kafka gave the
    id to it, so this one must stop (two replicas configured with one id, not a fault of the broker)."""


@dataclass(slots=True)
class _DeadLetter:
    record: _ConsumerRecord
    error: BaseException


@dataclass(slots=True)
class _Outcome:
    topic: str
    outcome: str


class IdempotentConsumer:
    """Consumes ``topics`` in group ``group_id`` (default: ``name``) into a projection via ``handler``."""

    # Positional order is the interface the services were promised; everything optional is keyword-only.
    def __init__(  # noqa: PLR0917
        self,
        name: str,
        topics: Sequence[str],
        bootstrap: str | Sequence[str],
        pool: ConnectionPool,
        handler: Handler,
        dlq_producer: Producer,
        group_id: str | None = None,
        batch_handler: BatchHandler | None = None,
        *,
        poll_timeout_ms: int = 500,
        max_poll_records: int = 500,
        auto_offset_reset: str = "earliest",
        processed_retention: timedelta | None = timedelta(days=30),
        prune_every_s: float = 600.0,
        **consumer_overrides: Any,
    ) -> None:
        from kafka import KafkaConsumer

        if not topics:
            raise ValueError("IdempotentConsumer needs at least one topic")
        if any(topic.endswith(DLQ_SUFFIX) for topic in topics):
            # Dead-lettering a DLQ record would create <topic>.dlq.dlq; DLQs are read by the dlq tools.
            raise ValueError("an IdempotentConsumer does not consume dead-letter topics")
        self.name = name
        self.topics = list(topics)
        self._pool = pool
        self._handler = handler
        self._batch_handler = batch_handler
        self._dlq = dlq_producer
        self._poll_timeout_ms = poll_timeout_ms
        self.group_id = group_id or name
        # Set: a static member (see close); the same id in another process fences this one.
        self.group_instance_id: str | None = consumer_overrides.get("group_instance_id")
        self._fenced = False
        # Ids are remembered longer than any record can be redelivered (the broker keeps records 7 days by
        # default): a redelivery after the id is forgotten would be applied twice. None keeps them forever.
        self._processed_retention = processed_retention
        self._prune_every_s = prune_every_s
        self._last_prune = time.monotonic()
        self._next_offsets: dict[Any, int] = {}
        config: dict[str, Any] = {
            "bootstrap_servers": bootstrap_list(bootstrap),
            "group_id": self.group_id,
            "client_id": f"cityhub-{name}",
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "max_poll_records": max_poll_records,
            "isolation_level": "read_committed",
            "bootstrap_timeout_ms": 30_000,
            "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
        }
        config.update(consumer_overrides)
        self._consumer: Any = KafkaConsumer(**config)
        self._consumer.subscribe(self.topics)
        self._closed = False
        self._without_metadata: frozenset[str] = frozenset()
        self._missing_since = 0.0
        self._waiting_logged = False
        self._last_metadata_request = float("-inf")

    @property
    def topics_without_metadata(self) -> frozenset[str]:
        """Subscribed topics with no partitions in the client's metadata at the last check (see the
        module's docstring): not created yet, or not seen yet."""
        return self._without_metadata

    # --- loop ---------------------------------------------------------------------------------------

    def run(self, stop_event: threading.Event) -> None:
        """Poll, process and commit until ``stop_event`` is set; then close."""
        from kafka.errors import KafkaError

        log.info("consumer_started", consumer=self.name, topics=self.topics)
        backoff = Backoff()
        try:
            while not stop_event.is_set():
                self._check_topic_metadata()
                try:
                    batch = self._consumer.poll(timeout_ms=self._poll_timeout_ms)
                except KafkaError as error:
                    self._raise_if_fenced(error)
                    log.warning("consumer_poll_failed", consumer=self.name, error=str(error))
                    if not backoff.wait(stop_event):
                        break
                    continue
                backoff.reset()
                self._repair_dropped_rebalance()
                if batch:
                    records = [record for part in batch.values() for record in part]
                    self.process_batch(records, stop_event)
                if time.monotonic() - self._last_prune >= self._prune_every_s:
                    self.prune_processed()
        except ConsumerFencedError:
            raise  # said where it was found (consumer_fenced)
        except Exception:
            # Not transient and not the record's fault (the database schema is missing, say): stop
            # loudly rather than dead-letter everything; the composition root decides what follows.
            log.exception("consumer_failed", consumer=self.name)
            raise
        finally:
            self.close()
            log.info("consumer_stopped", consumer=self.name)

    def _raise_if_fenced(self, error: BaseException) -> None:
        """Stop for good when Kafka says our instance id now belongs to another process: retrying would
        only fence that one in turn, and both would consume the same partitions meanwhile."""
        from kafka.errors import FencedInstanceIdError

        if not isinstance(error, FencedInstanceIdError):
            return
        self._fenced = True
        log.error(
            "consumer_fenced",
            consumer=self.name,
            group_id=self.group_id,
            group_instance_id=self.group_instance_id,
        )
        raise ConsumerFencedError(
            f"consumer {self.name}: another process joined group {self.group_id} as"
            f" {self.group_instance_id!r} (KAFKA_GROUP_INSTANCE_ID must differ per replica)"
        ) from error

    def _check_topic_metadata(self) -> None:
        """Ask for a metadata refresh while a subscribed topic has no partitions in the cache."""
        # The cluster metadata cache is what the group's assignment is computed from; kafka-python offers
        # no public way to read it without a blocking fetch, nor to ask for a refresh without one.
        cluster = self._consumer._cluster
        missing = frozenset(topic for topic in self.topics if not cluster.partitions_for_topic(topic))
        now = time.monotonic()
        if not missing:
            if self._without_metadata and self._waiting_logged:
                log.info("consumer_topics_found", consumer=self.name, topics=sorted(self._without_metadata))
            self._without_metadata, self._waiting_logged = missing, False
            return
        if missing != self._without_metadata:
            self._without_metadata, self._missing_since, self._waiting_logged = missing, now, False
        # At start-up the first answer is usually still on its way: say something only if it takes a while.
        if not self._waiting_logged and now - self._missing_since >= _METADATA_WAIT_LOGGED_AFTER_S:
            log.warning("consumer_waiting_for_topics", consumer=self.name, topics=sorted(missing))
            self._waiting_logged = True
        if now - self._last_metadata_request >= _METADATA_RECHECK_S:
            self._last_metadata_request = now
            cluster.request_update()

    def _repair_dropped_rebalance(self) -> None:
        """Rejoin when kafka-python completed a join it will never apply (see the module's docstring)."""
        coordinator = self._consumer._coordinator
        task = coordinator._join_task
        if task is not None and task.is_done and not coordinator.need_rejoin():
            log.warning(
                "consumer_rejoining_group", consumer=self.name, reason="assignment received, not applied"
            )
            coordinator.request_rejoin()

    def process_batch(self, records: Sequence[_ConsumerRecord], stop_event: threading.Event) -> bool:
        """Apply, dead-letter and commit one polled batch; False if stop interrupted it (nothing committed
        to Kafka then: the records come again and the ones already applied are skipped as duplicates)."""
        if not records:
            return True
        backoff = Backoff()
        while True:
            try:
                outcomes, dead = self._apply(records)
                break
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning(
                    "consumer_transient_error",
                    consumer=self.name,
                    error=str(error),
                    error_type=type(error).__name__,
                    attempt=backoff.attempt + 1,
                )
                if not backoff.wait(stop_event):
                    return False
        for letter in dead:
            if not self._dead_letter(letter, stop_event):
                return False
        self._commit(records)
        for item in outcomes:
            CONSUMER_RECORDS.labels(self.name, item.topic, item.outcome).inc()
        return True

    # --- one batch ----------------------------------------------------------------------------------

    def _apply(self, records: Sequence[_ConsumerRecord]) -> tuple[list[_Outcome], list[_DeadLetter]]:
        if self._batch_handler is not None:
            try:
                return self._apply_poll(records, self._batch_handler)
            except Exception as error:
                if is_transient(error):
                    raise
                # Something in the poll is bad: find it record by record, so only it is dead-lettered.
                log.warning("consumer_poll_failed_applying_one_by_one", error=str(error))
        return self._apply_each(records)

    def _apply_poll(
        self, records: Sequence[_ConsumerRecord], batch_handler: BatchHandler
    ) -> tuple[list[_Outcome], list[_DeadLetter]]:
        """The whole poll in one transaction: its new ids into processed_events and its effect together.

        For streams where one record's effect rewrites the same rows as the next one's (rollups), a row
        is written once per poll instead of once per record."""
        outcomes: list[_Outcome] = []
        dead: list[_DeadLetter] = []
        decoded: list[tuple[_ConsumerRecord, EventEnvelope, Message]] = []
        for record in records:
            try:
                envelope = envelope_from_record(record)
                decoded.append((record, envelope, decode_payload(envelope.type, envelope.payload)))
            except EnvelopeError as error:
                dead.append(_DeadLetter(record, error))
                outcomes.append(_Outcome(record.topic, "dead_lettered"))
        with self._pool.connection() as conn, conn.transaction():
            ids = list(dict.fromkeys(envelope.id for _, envelope, _ in decoded))
            fresh_ids = {
                str(row[0])
                for row in conn.execute(
                    "INSERT INTO processed_events (consumer, event_id)"
                    " SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
                    (self.name, ids),
                ).fetchall()
            }
            fresh: list[tuple[EventEnvelope, Message]] = []
            for record, envelope, message in decoded:
                if envelope.id in fresh_ids:
                    fresh_ids.discard(envelope.id)  # a repeat within the poll counts once
                    fresh.append((envelope, message))
                    outcomes.append(_Outcome(record.topic, "processed"))
                else:
                    outcomes.append(_Outcome(record.topic, "duplicate"))
            if fresh:
                batch_handler(conn, fresh)
        return outcomes, dead

    def _apply_each(self, records: Sequence[_ConsumerRecord]) -> tuple[list[_Outcome], list[_DeadLetter]]:
        outcomes: list[_Outcome] = []
        dead: list[_DeadLetter] = []
        with self._pool.connection() as conn, conn.transaction():
            for record in records:
                outcome = self._apply_one(conn, record, dead)
                outcomes.append(_Outcome(record.topic, outcome))
        return outcomes, dead

    def _apply_one(
        self, conn: psycopg.Connection[Any], record: _ConsumerRecord, dead: list[_DeadLetter]
    ) -> str:
        bind_context(topic=record.topic, partition=record.partition, offset=record.offset)
        try:
            try:
                envelope = envelope_from_record(record)
                message = decode_payload(envelope.type, envelope.payload)
            except EnvelopeError as error:
                dead.append(_DeadLetter(record, error))
                return "dead_lettered"
            trace = parse_traceparent(envelope.traceparent)
            bind_context(event_id=envelope.id, trace_id=trace.trace_id if trace else None)
            # Events the handler adds to its own outbox continue this trace.
            set_current_trace(trace)
            failure: Exception | None = None
            with conn.transaction() as savepoint:
                # Outside the handler's try: a failure here is the platform's, not the record's, and
                # must not send every record to the DLQ.
                inserted = conn.execute(
                    "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING",
                    (self.name, envelope.id),
                ).rowcount
                if inserted == 0:
                    log.debug("consumer_record_duplicate")
                    return "duplicate"
                try:
                    self._handler(conn, envelope, message)
                except Exception as error:
                    if is_transient(error):
                        raise
                    failure = error
                    # Undo the handler's partial writes and the processed mark, keep the batch going.
                    raise psycopg.Rollback(savepoint) from None
            if failure is not None:
                dead.append(_DeadLetter(record, failure))
                return "dead_lettered"
            return "processed"
        finally:
            set_current_trace(None)
            clear_context(_RECORD_CONTEXT)

    def _dead_letter(self, letter: _DeadLetter, stop_event: threading.Event) -> bool:
        record, error = letter.record, letter.error
        text = str(error) or type(error).__name__
        headers = [(name, value) for name, value in (record.headers or ()) if not name.startswith("dlq_")]
        extra = {
            "dlq_error": text[:_DLQ_ERROR_MAX],
            "dlq_error_type": f"{type(error).__module__}.{type(error).__qualname__}",
            "dlq_consumer": self.name,
            "dlq_original_topic": record.topic,
            "dlq_original_partition": str(record.partition),
            "dlq_original_offset": str(record.offset),
            "dlq_time": format_ce_time(datetime.now(UTC)),
        }
        # An earlier consumer's dlq_* headers (a replayed dead letter) are replaced, not stacked.
        out: list[tuple[str, bytes]] = [(name, value or b"") for name, value in headers]
        out.extend((name, value.encode("utf-8")) for name, value in extra.items())
        target = dlq_topic(record.topic)
        backoff = Backoff()
        while True:
            try:
                self._dlq.send(target, value=record.value, key=record.key, headers=out).get(timeout=30)
                break
            except Exception as send_error:  # noqa: BLE001 - retried and logged, see below
                # Every failure to write the DLQ is retried: giving up would mean either losing the
                # record or stalling without saying why; the log line says why.
                log.warning(
                    "consumer_dead_letter_send_failed",
                    consumer=self.name,
                    dlq_topic=target,
                    error=str(send_error),
                    error_type=type(send_error).__name__,
                )
                if not backoff.wait(stop_event):
                    return False
        DEAD_LETTERS.labels(self.name, record.topic).inc()
        log.warning(
            "consumer_record_dead_lettered",
            consumer=self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            dlq_topic=target,
            error=text[:_DLQ_ERROR_MAX],
            error_type=type(error).__name__,
        )
        return True

    def _commit(self, records: Sequence[_ConsumerRecord]) -> None:
        from kafka import OffsetAndMetadata, TopicPartition
        from kafka.errors import KafkaError

        last: dict[Any, _ConsumerRecord] = {}
        for record in records:
            last[TopicPartition(record.topic, record.partition)] = record
        # kafka-python 3's OffsetAndMetadata is (offset, metadata, leader_epoch); -1 means unknown.
        offsets = {
            tp: OffsetAndMetadata(rec.offset + 1, "", _epoch(rec.leader_epoch)) for tp, rec in last.items()
        }
        try:
            self._consumer.commit(offsets)
        except KafkaError as error:
            self._raise_if_fenced(error)
            # Typically a rebalance moved the partition away; its new owner re-reads from the last
            # committed offset and skips what this batch already recorded as processed.
            log.warning("consumer_commit_failed", consumer=self.name, error=str(error))
            return
        for tp, record in last.items():
            self._next_offsets[tp] = record.offset + 1

    def prune_processed(self) -> int:
        """Forget this consumer's processed ids older than the retention, in bounded chunks."""
        self._last_prune = time.monotonic()
        if self._processed_retention is None:
            return 0
        total = 0
        while True:
            with self._pool.connection() as conn, conn.transaction():
                deleted = conn.execute(
                    "DELETE FROM processed_events WHERE (consumer, event_id) IN"
                    " (SELECT consumer, event_id FROM processed_events"
                    "  WHERE consumer = %s AND processed_at < now() - %s LIMIT %s)",
                    (self.name, self._processed_retention, _PRUNE_CHUNK),
                ).rowcount
            total += deleted
            if deleted < _PRUNE_CHUNK:
                break
        if total:
            log.info("consumer_processed_pruned", consumer=self.name, deleted=total)
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Bounded: kafka-python waits up to request_timeout_ms (30 s) to leave the group, and a member
        # that joined after a crashed one (a restarted replica) is held in its join until the dead
        # member's session times out, so an unbounded close kept a SIGTERMed service 15 s past its grace.
        # Not leaving in time only means the group evicts this member by session timeout.
        if self.group_instance_id is not None and not self._fenced:
            self._leave_as_static_member()
        self._consumer.close(autocommit=False, timeout_ms=_CLOSE_TIMEOUT_MS)

    def _leave_as_static_member(self) -> None:
        """Make the close below leave the group although this is a static member.

        Kafka clients never send LeaveGroup for a static member (KIP-345: a restart should not move its
        partitions), so a replica stopped for good (a rollout, a scale-down) would hold its partitions
        until its session expired. A LeaveGroup v3+ naming our member id and instance id removes the
        static member; kafka-python sends exactly that when it takes the member for a dynamic one. Done on
        the coordinator connection the consumer already holds, within the close's bound: an admin client
        made here would first have to bootstrap, which after a broker restart took the whole grace.
        kafka-python has no public switch for this, hence the instance attribute."""
        coordinator = self._consumer._coordinator
        coordinator.is_dynamic_member = lambda: True
        log.info(
            "consumer_leaving_group",
            consumer=self.name,
            group_id=self.group_id,
            group_instance_id=self.group_instance_id,
        )


def _epoch(leader_epoch: int | None) -> int:
    return -1 if leader_epoch is None else leader_epoch
