"""The transactional outbox: event rows written with the state change, published to Kafka by a relay.

Writing side: :func:`add_event` inserts the event into ``outbox`` inside the caller's transaction, so the
event exists if and only if the state change committed.

Publishing side: :class:`OutboxRelay` reads unsent rows in id order, sends each to Kafka with its
CloudEvents headers and key, waits for every acknowledgement, then marks the rows sent and commits.
A crash before that commit leaves the rows unsent, so they are sent again: delivery is at-least-once and
consumers de-duplicate by ``ce_id``.

Order per key holds because of three things together:

* :func:`add_event` takes a transaction-scoped advisory lock on (schema, topic, key) before it takes an
  id, so a later transaction for the same key cannot take a lower id and commit after a higher one (ids
  come from a sequence at insert time, not at commit time; without the lock the relay could see and
  send id 11 while id 10 for the same key is still uncommitted).
* Only one relay per schema works at a time: each batch runs under ``pg_try_advisory_xact_lock`` keyed
  on the outbox table. ``FOR UPDATE SKIP LOCKED`` would let a second relay take the *next* rows while
  the first still sends earlier rows of the same key, breaking order; with the lock a second relay is a
  hot standby that takes over on the next batch after the first dies.
* The producer is idempotent with at most 5 requests in flight, so Kafka keeps send order within a
  partition even across retries, and all rows of one key go to one partition.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from google.protobuf.message import Message
from psycopg import pq
from psycopg_pool import ConnectionPool

from services.platform.db import dedicated_connection
from services.platform.kafka import EventEnvelope, Producer
from services.platform.logs import get_logger
from services.platform.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG
from services.platform.retry import Backoff
from services.platform.tracing import TraceContext, current_trace

__all__ = [
    "BackgroundRelay",
    "OutboxRelay",
    "OutboxWriter",
    "add_event",
    "notify_channel",
    "start_relay_thread",
]

log = get_logger()

# Two-int advisory lock keys live in a key space apart from the one-bigint form used elsewhere
# (provisioning, yoyo), so these cannot collide with them; the first int names the purpose.
_RELAY_LOCK_SQL = (
    "SELECT pg_try_advisory_xact_lock(hashtext('cityhub_outbox_relay'), 'outbox'::regclass::oid::int)"
)

_INSERT_SQL = """
INSERT INTO outbox
    (event_id, topic, record_key, ce_type, ce_source, ce_subject, ce_time, traceparent, payload)
SELECT %(event_id)s, %(topic)s, %(key)s, %(ce_type)s, %(source)s, %(subject)s, %(time)s, %(traceparent)s,
       %(payload)s
FROM (SELECT pg_advisory_xact_lock(
          hashtext('cityhub_outbox_key'),
          hashtext(current_schema() || '/' || %(topic)s || '/' || %(key)s))) AS per_key
"""

_SELECT_UNSENT_SQL = """
SELECT id, event_id, topic, record_key, ce_type, ce_source, ce_subject, ce_time, traceparent, payload
FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT %s
"""


def add_event(
    conn: psycopg.Connection[Any],
    *,
    topic: str,
    key: str,
    subject: str,
    message: Message,
    source: str,
    event_id: str | uuid.UUID | None = None,
    time: datetime | None = None,
) -> str:
    """Add ``message`` to the outbox in ``conn``'s current transaction; returns the event id (ce_id).

    ``key`` is the Kafka record key (the subject entity's id: it fixes the partition and so the order);
    ``subject`` becomes ``ce_subject``; ``source`` is the producing service (``/cityhub/<service>``).
    The traceparent continues the current trace if there is one, so the consumer's log lines join it.
    """
    if conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
        # In autocommit mode outside a transaction block the row would commit on its own, apart from
        # the state change it reports: exactly what the outbox exists to prevent.
        raise ValueError("add_event needs an open transaction (use conn.transaction())")
    for name, value in (("topic", topic), ("key", key), ("source", source)):
        if not value:
            raise ValueError(f"add_event: {name} must not be empty")
    moment = time or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("add_event: time must be timezone-aware")
    ident = uuid.UUID(str(event_id)) if event_id is not None else uuid.uuid4()
    trace = current_trace()
    traceparent = (trace.child() if trace else TraceContext.new()).traceparent
    conn.execute(
        _INSERT_SQL,
        {
            "event_id": ident,
            "topic": topic,
            "key": key,
            "ce_type": message.DESCRIPTOR.full_name,
            "source": source,
            "subject": subject,
            "time": moment,
            "traceparent": traceparent,
            "payload": message.SerializeToString(),
        },
    )
    return str(ident)


@dataclass(frozen=True, slots=True)
class OutboxWriter:
    """:func:`add_event` with the service's source (and optionally its usual topic) filled in."""

    source: str
    topic: str | None = None

    @classmethod
    def for_service(cls, service_name: str, topic: str | None = None) -> OutboxWriter:
        return cls(source=f"/cityhub/{service_name}", topic=topic)

    def add(
        self,
        conn: psycopg.Connection[Any],
        *,
        key: str,
        subject: str,
        message: Message,
        topic: str | None = None,
        event_id: str | uuid.UUID | None = None,
        time: datetime | None = None,
    ) -> str:
        target = topic or self.topic
        if not target:
            raise ValueError("OutboxWriter.add: no topic given and no default topic set")
        return add_event(
            conn,
            topic=target,
            key=key,
            subject=subject,
            message=message,
            source=self.source,
            event_id=event_id,
            time=time,
        )


def notify_channel(schema: str) -> str:
    """The LISTEN channel the outbox trigger notifies (see platform_0001)."""
    return f"cityhub_outbox_{schema}"[:63]


_LISTEN_RETRY_S = 30.0
_STOP_CHECK_S = 0.5
# Chunked so pruning a long backlog never holds row locks or bloats one transaction for long.
_PRUNE_CHUNK = 10_000
_TRANSIENT: tuple[type[BaseException], ...] = (psycopg.OperationalError, TimeoutError, ConnectionError)


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, _TRANSIENT):
        return True
    from kafka.errors import KafkaError

    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


class OutboxRelay:
    """Publishes one schema's outbox to Kafka. Many may run; one works at a time (see module doc)."""

    def __init__(
        self,
        pool: ConnectionPool,
        producer: Producer,
        service_name: str,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        *,
        retention: timedelta = timedelta(days=7),
        prune_every_s: float = 600.0,
        send_timeout_s: float = 30.0,
        backlog_every_s: float = 2.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._pool = pool
        self._producer = producer
        self._service = service_name
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._prune_every_s = prune_every_s
        self._send_timeout_s = send_timeout_s
        self._backlog_every_s = backlog_every_s
        self._last_prune = time.monotonic()
        self._last_backlog = 0.0
        self._schema: str | None = None

    @property
    def schema(self) -> str:
        if self._schema is None:
            with self._pool.connection() as conn:
                row = conn.execute("SELECT current_schema()").fetchone()
            if row is None or row[0] is None:
                raise RuntimeError("the pool's connections have no current schema")
            self._schema = str(row[0])
        return self._schema

    def run_once(self) -> int:
        """Publish up to one batch; returns how many rows it marked sent (0 if another relay holds the lock).

        Kafka is written before Postgres commits: if anything fails in between, the rows stay unsent
        and go out again next time, never the other way round."""
        with self._pool.connection() as conn, conn.transaction():
            locked = conn.execute(_RELAY_LOCK_SQL).fetchone()
            if not locked or not locked[0]:
                return 0
            rows = conn.execute(_SELECT_UNSENT_SQL, (self._batch_size,)).fetchall()
            if rows:
                self._publish(rows)
                ids = [row[0] for row in rows]
                conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)", (ids,))
            self._update_backlog(conn, force=not rows)
        if rows:
            per_topic = Counter(str(row[2]) for row in rows)
            for topic, count in per_topic.items():
                EVENTS_PUBLISHED.labels(self._service, topic).inc(count)
            log.info(
                "outbox_batch_published",
                count=len(rows),
                first_id=rows[0][0],
                last_id=rows[-1][0],
                topics=sorted(per_topic),
            )
        return len(rows)

    def _publish(self, rows: list[tuple[Any, ...]]) -> None:
        futures = []
        for _id, event_id, topic, key, ce_type, source, subject, ce_time, traceparent, payload in rows:
            envelope = EventEnvelope(
                id=str(event_id),
                source=source,
                type=ce_type,
                subject=subject,
                time=ce_time,
                traceparent=traceparent,
                key=key,
                payload=bytes(payload),
                topic=topic,
            )
            future = self._producer.send(
                topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers()
            )
            futures.append(future)
        self._producer.flush(timeout=self._send_timeout_s)
        for future in futures:
            # Raises the broker's error for any record that was not acknowledged; the transaction then
            # rolls back and the whole batch is sent again (duplicates are the consumers' business).
            future.get(timeout=self._send_timeout_s)

    def _update_backlog(self, conn: psycopg.Connection[Any], *, force: bool) -> None:
        now = time.monotonic()
        # Counting a large backlog after every batch would cost more than publishing it; the gauge is
        # refreshed every few seconds, and at once when the relay catches up.
        if not force and now - self._last_backlog < self._backlog_every_s:
            return
        row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        OUTBOX_BACKLOG.labels(self._service).set(int(row[0]) if row else 0)
        self._last_backlog = now

    def _count_backlog_while_failing(self) -> None:
        """Keep the backlog gauge true while nothing can be published: a failed batch rolls back before
        run_once counts, and a broker outage — when the backlog grows — would otherwise leave the gauge at
        its last value (0 for a relay that was keeping up). Best effort: PostgreSQL may be what failed."""
        if time.monotonic() - self._last_backlog < self._backlog_every_s:
            return
        try:
            with self._pool.connection(timeout=2.0) as conn:
                self._update_backlog(conn, force=True)
        except Exception as error:  # noqa: BLE001 - the relay's own failure is what gets reported
            log.debug("outbox_backlog_not_counted", error=str(error))

    def prune(self) -> int:
        """Delete rows sent longer ago than the retention, in bounded chunks; returns how many."""
        total = 0
        while True:
            with self._pool.connection() as conn, conn.transaction():
                cursor = conn.execute(
                    "DELETE FROM outbox WHERE id IN"
                    " (SELECT id FROM outbox WHERE sent_at < now() - %s LIMIT %s)",
                    (self._retention, _PRUNE_CHUNK),
                )
                deleted = cursor.rowcount
            total += deleted
            if deleted < _PRUNE_CHUNK:
                break
        if total:
            log.info("outbox_pruned", deleted=total, retention_s=self._retention.total_seconds())
        self._last_prune = time.monotonic()
        return total

    def run(self, stop_event: threading.Event) -> None:
        """Publish until ``stop_event`` is set; woken by NOTIFY on insert, polling as a fallback."""
        log.info("outbox_relay_started", service=self._service, batch_size=self._batch_size)
        listener: _Listener | None = None
        next_listen = 0.0
        backoff = Backoff()
        try:
            while not stop_event.is_set():
                try:
                    if listener is None and time.monotonic() >= next_listen:
                        # Throttled: without a listener the relay still works, by polling.
                        next_listen = time.monotonic() + _LISTEN_RETRY_S
                        listener = _Listener.open(self._pool, notify_channel(self.schema))
                    sent = self.run_once()
                    if time.monotonic() - self._last_prune >= self._prune_every_s:
                        self.prune()
                except Exception as error:
                    delay = backoff.next_delay()
                    log.warning(
                        "outbox_relay_failed",
                        error=str(error),
                        error_type=type(error).__name__,
                        transient=_is_transient(error),
                        retry_in_s=delay,
                        exc_info=not _is_transient(error),
                    )
                    if listener is not None and listener.broken:
                        listener.close()
                        listener = None
                    self._count_backlog_while_failing()
                    backoff.wait(stop_event, delay)
                    continue
                backoff.reset()
                if sent:
                    # More may be waiting (a full batch, or rows committed meanwhile): go again at once.
                    continue
                if listener is not None:
                    listener.wait(self._poll_interval, stop_event)
                    if listener.broken:
                        listener.close()
                        listener = None
                else:
                    stop_event.wait(self._poll_interval)
        finally:
            if listener is not None:
                listener.close()
            log.info("outbox_relay_stopped", service=self._service)


class _Listener:
    """A dedicated autocommit connection LISTENing on the outbox channel (a pooled one cannot: the pool
    hands out transactional connections and would hand this one to others)."""

    def __init__(self, conn: psycopg.Connection[Any] | None) -> None:
        self._conn = conn
        self.broken = conn is None

    @classmethod
    def open(cls, pool: ConnectionPool, channel: str) -> _Listener | None:
        try:
            conn = dedicated_connection(pool)
            conn.execute(f'LISTEN "{channel}"')
        except psycopg.Error as error:
            log.warning("outbox_listen_failed", error=str(error))
            return None
        return cls(conn)

    def wait(self, timeout: float, stop_event: threading.Event) -> None:
        """Return on a notification, after ``timeout``, or soon after ``stop_event`` is set."""
        if self._conn is None:
            return
        deadline = time.monotonic() + timeout
        try:
            while not stop_event.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                # Sliced so that a long poll interval never delays a shutdown by more than this. The
                # generator is drained, not abandoned: it holds the connection's lock until it ends.
                received = list(self._conn.notifies(timeout=min(remaining, _STOP_CHECK_S), stop_after=1))
                if received:
                    break
            # A burst of commits leaves many notifications queued; one run_once serves them all.
            list(self._conn.notifies(timeout=0))
        except psycopg.Error as error:
            log.warning("outbox_listen_lost", error=str(error))
            self.broken = True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class BackgroundRelay:
    """A relay running in a daemon thread of a service process; ``stop`` ends it and waits."""

    def __init__(self, relay: OutboxRelay, *, name: str = "outbox-relay") -> None:
        self.relay = relay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=relay.run, args=(self._stop,), name=name, daemon=True)

    def start(self) -> BackgroundRelay:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the relay to stop after its current batch; returns whether it stopped within ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def start_relay_thread(
    pool: ConnectionPool,
    producer: Producer,
    service_name: str,
    *,
    batch_size: int = 500,
    poll_interval: float = 0.2,
    retention: timedelta = timedelta(days=7),
) -> BackgroundRelay:
    """What a composition root calls: relay its own schema's outbox from a background thread."""
    relay = OutboxRelay(pool, producer, service_name, batch_size, poll_interval, retention=retention)
    return BackgroundRelay(relay, name=f"outbox-relay-{service_name}").start()
