"""Events end to end on the real broker and database: outbox -> relay -> Kafka -> idempotent consumer.

Each test owns its topics, schema and consumer group (unique names), so tests neither clean up after
each other nor depend on order. The projection is a counter table: every CounterIncremented adds its
amount once, and a sequence that does not increase per counter is counted as out of order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cityhub.testing.v1.events_pb2 import CounterIncremented
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from services.platform.consumer import IdempotentConsumer
from services.platform.db import set_up_database
from services.platform.kafka import (
    EventEnvelope,
    Producer,
    dlq_topic,
    ensure_topics,
    list_topics,
    make_producer,
    parse_ce_time,
)
from services.platform.outbox import (
    BackgroundRelay,
    OutboxRelay,
    add_event,
    notify_channel,
    start_relay_thread,
)
from services.platform.tracing import TraceContext, parse_traceparent, set_current_trace
from tests.kafka_support import TopicReader, committed_offset, raw_producer, read_records, running
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CE_TYPE = "cityhub.testing.v1.CounterIncremented"
SOURCE = "/cityhub/eventflowtest"
CE_HEADERS = {
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_subject",
    "ce_time",
    "ce_specversion",
    "content-type",
    "traceparent",
}


# --- the test projection --------------------------------------------------------------------------


def create_projection(pool: ConnectionPool) -> None:
    with pool.connection() as conn:
        conn.execute(
            """CREATE TABLE counters (
                   counter_id    TEXT PRIMARY KEY,
                   total         BIGINT NOT NULL,
                   events        INT    NOT NULL,
                   last_sequence BIGINT NOT NULL,
                   out_of_order  INT    NOT NULL
               )"""
        )
        conn.commit()


def apply_counter(conn: psycopg.Connection[Any], envelope: EventEnvelope, message: Message) -> None:
    assert isinstance(message, CounterIncremented)
    assert envelope.key == message.counter_id
    conn.execute(
        """INSERT INTO counters (counter_id, total, events, last_sequence, out_of_order)
           VALUES (%(id)s, %(amount)s, 1, %(seq)s, 0)
           ON CONFLICT (counter_id) DO UPDATE SET
               total = counters.total + EXCLUDED.total,
               events = counters.events + 1,
               out_of_order = counters.out_of_order + (EXCLUDED.last_sequence <= counters.last_sequence)::int,
               last_sequence = greatest(counters.last_sequence, EXCLUDED.last_sequence)""",
        {"id": message.counter_id, "amount": message.amount, "seq": message.sequence},
    )
    if message.amount < 0:
        # After a write, so the test can see that the savepoint undid it.
        raise ValueError(f"negative amount {message.amount} for counter {message.counter_id}")


def projection(pool: ConnectionPool) -> dict[str, tuple[int, int, int]]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT counter_id, total, events, out_of_order FROM counters").fetchall()
        conn.rollback()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def projection_total(pool: ConnectionPool) -> tuple[int, int]:
    values = projection(pool).values()
    return sum(v[0] for v in values), sum(v[1] for v in values)


def scalar(pool: ConnectionPool, query: str, *params: object) -> Any:
    with pool.connection() as conn:
        row = conn.execute(query, params).fetchone()
        conn.rollback()
    assert row is not None
    return row[0]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def outcomes(consumer: IdempotentConsumer, topic: str, outcome: str) -> float:
    return sample("cityhub_consumer_records_total", consumer=consumer.name, topic=topic, outcome=outcome)


def headers_of(record: Any) -> dict[str, bytes]:
    return dict(record.headers)


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def schema_pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = set_up_database(database_url, unique_name("evt"), max_size=4)
    create_projection(pool)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[Producer]:
    made = make_producer(kafka_bootstrap)
    try:
        yield made
    finally:
        made.close(timeout=5)


def new_topic(kafka_bootstrap: str, partitions: int = 3) -> str:
    topic = unique_name("test.eventflow").replace("_", "-") + ".events.v1"
    ensure_topics(kafka_bootstrap, [topic], partitions=partitions, replication=1)
    return topic


def make_consumer(
    kafka_bootstrap: str, topic: str, pool: ConnectionPool, producer: Producer
) -> IdempotentConsumer:
    name = unique_name("counters")
    return IdempotentConsumer(
        name, [topic], kafka_bootstrap, pool, apply_counter, producer, poll_timeout_ms=100
    )


def write_events(
    pool: ConnectionPool, topic: str, counters: int, per_counter: int, *, per_transaction: int
) -> dict[str, int]:
    """Commit ``counters * per_counter`` increments (interleaved across counters, sequence 1.. per
    counter, amount = sequence); returns the expected total per counter."""
    expected: dict[str, int] = defaultdict(int)
    events = [(f"c{c:03d}", seq) for seq in range(1, per_counter + 1) for c in range(counters)]
    for start in range(0, len(events), per_transaction):
        with pool.connection() as conn, conn.transaction(), conn.pipeline():
            for counter_id, seq in events[start : start + per_transaction]:
                add_event(
                    conn,
                    topic=topic,
                    key=counter_id,
                    subject=f"counter/{counter_id}",
                    message=CounterIncremented(counter_id=counter_id, amount=seq, sequence=seq),
                    source=SOURCE,
                )
                expected[counter_id] += seq
    return dict(expected)


def assert_order_per_key(records: list[Any]) -> None:
    """In first-occurrence order on the wire, each counter's sequence only increases."""
    seen: set[bytes] = set()
    last: dict[str, int] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event_id = headers_of(record)["ce_id"]
        if event_id in seen:
            continue
        seen.add(event_id)
        message = CounterIncremented.FromString(record.value)
        assert message.sequence > last.get(message.counter_id, 0), f"out of order at {record}"
        last[message.counter_id] = message.sequence


def assert_cloudevents_headers(records: list[Any], trace: TraceContext) -> None:
    for record in records:
        headers = headers_of(record)
        assert set(headers) == CE_HEADERS, headers
        assert headers["ce_type"] == CE_TYPE.encode()
        assert headers["ce_specversion"] == b"1.0"
        assert headers["content-type"] == b"application/protobuf"
        assert headers["ce_source"] == SOURCE.encode()
        message = CounterIncremented.FromString(record.value)
        assert record.key == message.counter_id.encode()
        assert headers["ce_subject"] == f"counter/{message.counter_id}".encode()
        moment = parse_ce_time(headers["ce_time"].decode())
        assert abs((datetime.now(UTC) - moment).total_seconds()) < 120
        parent = parse_traceparent(headers["traceparent"].decode())
        assert parent is not None
        # Written under `trace`: the event continues it as a child span.
        assert parent.trace_id == trace.trace_id
        assert parent.span_id != trace.span_id


# --- 1. the whole path --------------------------------------------------------------------------------


def test_outbox_to_projection_end_to_end(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    topic = new_topic(kafka_bootstrap)
    assert {topic, dlq_topic(topic)} <= set(list_topics(kafka_bootstrap))
    trace = TraceContext.new()
    set_current_trace(trace)
    try:
        expected = write_events(schema_pool, topic, counters=5, per_counter=40, per_transaction=7)
    finally:
        set_current_trace(None)
    published_before = sample("cityhub_events_published_total", service="eventflowtest", topic=topic)

    # Two relays with their own producers, as two service replicas would run: they must take turns.
    second_producer = make_producer(kafka_bootstrap)
    relays = [
        start_relay_thread(schema_pool, producer, "eventflowtest", batch_size=20, poll_interval=0.05),
        start_relay_thread(schema_pool, second_producer, "eventflowtest", batch_size=20, poll_interval=0.05),
    ]
    consumer = make_consumer(kafka_bootstrap, topic, schema_pool, producer)
    try:
        with running(consumer):
            wait_until(
                lambda: projection_total(schema_pool) == (sum(expected.values()), 200),
                timeout_s=20,
                what="the projection to count all 200 events",
            )
    finally:
        stopped = [relay.stop() for relay in relays]
        assert all(stopped), "a relay thread did not stop"
        second_producer.close(timeout=5)

    rows = projection(schema_pool)
    assert {cid: total for cid, (total, _events, _ooo) in rows.items()} == expected
    assert all(ooo == 0 for _total, _events, ooo in rows.values()), rows
    assert scalar(schema_pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    published = sample("cityhub_events_published_total", service="eventflowtest", topic=topic)
    assert published - published_before == 200
    assert sample("cityhub_outbox_backlog", service="eventflowtest") == 0
    assert outcomes(consumer, topic, "processed") == 200

    records = read_records(kafka_bootstrap, topic, 200)
    assert len(records) == 200
    outbox_ids = {str(r[0]) for r in _outbox_ids(schema_pool)}
    assert {headers_of(r)["ce_id"].decode() for r in records} == outbox_ids
    assert_cloudevents_headers(records, trace)
    assert_order_per_key(records)
    # One key, one partition: the partitioner must never split a counter.
    partitions_per_key = defaultdict(set)
    for record in records:
        partitions_per_key[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions_per_key.values())


def _outbox_ids(pool: ConnectionPool) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT event_id FROM outbox ORDER BY id").fetchall()
        conn.rollback()
    return rows


# --- 2. the relay killed between publishing and marking sent -------------------------------------------


class RelayProcesses:
    """Starts ``python -m services.platform.relay`` processes for one schema and ends them all at the end,
    whatever the test did; their output goes to a file the failure message can point at."""

    def __init__(self, kafka_bootstrap: str, database_url: str, schema: str, log_path: Path) -> None:
        self._env = {
            **os.environ,
            "SERVICE_NAME": "relaytest",
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": database_url,
            "RELAY_SCHEMA": schema,
            "OUTBOX_BATCH_SIZE": "100",
            "OUTBOX_POLL_INTERVAL_S": "0.05",
            "LOG_FORMAT": "json",
            "METRICS_PORT": "0",
        }
        self.log_path = log_path
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.platform.relay"],
                cwd=REPO_ROOT,
                env=self._env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self._started.append(process)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        if process.poll() is None:
            process.send_signal(sig)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(timeout=5)

    def stop_all(self) -> None:
        for process in self._started:
            self.stop(process, signal.SIGKILL)


def test_relay_killed_after_publishing_loses_nothing_and_counts_once(
    kafka_bootstrap: str, database_url: str, producer: Producer, tmp_path: Path
) -> None:
    schema = unique_name("relaykill")
    pool = set_up_database(database_url, schema, max_size=4)
    create_projection(pool)
    topic = new_topic(kafka_bootstrap)
    expected = write_events(pool, topic, counters=30, per_counter=100, per_transaction=1000)
    ids = [str(r[0]) for r in _outbox_ids(pool)]
    assert len(ids) == 3000
    relays = RelayProcesses(kafka_bootstrap, database_url, schema, tmp_path / "relay.log")
    # The relay publishes the batch holding this row (rows 1501-1600) and then blocks marking it sent
    # on our row lock: the crash window, held open for as long as the test needs it.
    held_id = ids[1550]
    blocker = pool.getconn()
    try:
        blocker.execute("SELECT 1 FROM outbox WHERE event_id = %s FOR UPDATE", (held_id,))
        with TopicReader(kafka_bootstrap, [topic]) as reader:
            _kill_in_crash_window(pool, relays, reader, blocker, held_id, total=len(ids))
            relay = relays.start()
            wait_until(
                lambda: scalar(pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0,
                timeout_s=20,
                what=f"the restarted relay to send the rest (log: {relays.log_path})",
            )
            records = reader.read_until(
                lambda rs: {headers_of(r)["ce_id"].decode() for r in rs} >= set(ids),
                timeout_s=20,
                what="every outbox event on the wire",
            )
        # SIGTERM stops a relay cleanly (after its current batch), as Kubernetes will.
        assert relays.stop(relay, signal.SIGTERM) == 0
        assert "outbox_relay_stopped" in relays.log_path.read_text()

        wire_ids = Counter(headers_of(r)["ce_id"].decode() for r in records)
        assert set(wire_ids) == set(ids)
        duplicates = sum(n - 1 for n in wire_ids.values())
        assert duplicates >= 100, "the batch published before the kill should have gone out twice"
        assert_order_per_key(records)

        consumer = make_consumer(kafka_bootstrap, topic, pool, producer)
        with running(consumer):
            wait_until(
                lambda: projection_total(pool) == (sum(expected.values()), len(ids)),
                timeout_s=20,
                what="the projection to count every event once",
            )
            wait_until(
                lambda: outcomes(consumer, topic, "duplicate") == duplicates,
                timeout_s=10,
                what="every duplicate to be skipped",
            )
        rows = projection(pool)
        assert {cid: total for cid, (total, _events, _ooo) in rows.items()} == expected
        assert all(ooo == 0 for _total, _events, ooo in rows.values())
        assert scalar(pool, "SELECT count(*) FROM processed_events") == len(ids)
    finally:
        relays.stop_all()
        blocker.rollback()
        pool.putconn(blocker)
        pool.close()


def _kill_in_crash_window(
    pool: ConnectionPool,
    relays: RelayProcesses,
    reader: TopicReader,
    blocker: psycopg.Connection[Any],
    held_id: str,
    *,
    total: int,
) -> None:
    """Start a relay, SIGKILL it once the held row is on the wire while still unsent, and check that
    the database still shows rows that are both published and unsent."""
    relay = relays.start()
    reader.read_until(
        lambda rs: any(headers_of(r)["ce_id"].decode() == held_id for r in rs),
        timeout_s=20,
        what=f"the held row's event (relay log: {relays.log_path})",
    )
    assert scalar(pool, "SELECT sent_at IS NULL FROM outbox WHERE event_id = %s", held_id) is True
    relays.stop(relay, signal.SIGKILL)
    # Only now may the dead relay's server session finish its UPDATE; it then finds its client gone
    # and rolls back instead of committing.
    blocker.rollback()

    unsent = {str(r[0]) for r in _rows(pool, "SELECT event_id FROM outbox WHERE sent_at IS NULL")}
    on_wire = {headers_of(r)["ce_id"].decode() for r in reader.records}
    assert held_id in unsent
    assert len(unsent & on_wire) >= 1, "no row was both published and unsent at the crash"
    assert 0 < len(unsent) < total


def _rows(pool: ConnectionPool, query: str) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        rows = conn.execute(query).fetchall()
        conn.rollback()
    return rows


# --- 3. the same record twice ----------------------------------------------------------------------


def test_same_record_delivered_twice_changes_projection_once(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    topic = new_topic(kafka_bootstrap)
    first = EventEnvelope.for_message(
        CounterIncremented(counter_id="dup", amount=5, sequence=1),
        topic=topic,
        key="dup",
        subject="counter/dup",
        source=SOURCE,
    )
    # Same key, so the same partition: processed after both copies.
    sentinel = EventEnvelope.for_message(
        CounterIncremented(counter_id="dup", amount=100, sequence=2),
        topic=topic,
        key="dup",
        subject="counter/dup",
        source=SOURCE,
    )
    raw = raw_producer(kafka_bootstrap)
    try:
        for envelope in (first, first, sentinel):
            raw.send(topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers())
        raw.flush(timeout=10)
    finally:
        raw.close(timeout=5)

    consumer = make_consumer(kafka_bootstrap, topic, schema_pool, producer)
    with running(consumer):
        wait_until(
            lambda: "dup" in projection(schema_pool) and projection(schema_pool)["dup"][1] == 2,
            timeout_s=20,
            what="the sentinel behind the duplicates",
        )
    assert projection(schema_pool)["dup"] == (105, 2, 0)
    assert outcomes(consumer, topic, "duplicate") == 1
    assert outcomes(consumer, topic, "processed") == 2


# --- 4. records that cannot be handled ---------------------------------------------------------------


def test_unhandleable_records_go_to_dlq_and_the_partition_moves_on(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    topic = new_topic(kafka_bootstrap, partitions=1)

    def envelope(amount: int, seq: int) -> EventEnvelope:
        return EventEnvelope.for_message(
            CounterIncremented(counter_id="k", amount=amount, sequence=seq),
            topic=topic,
            key="k",
            subject="counter/k",
            source=SOURCE,
        )

    garbage = envelope(1, 1)
    unknown = envelope(1, 2)
    negative = envelope(-7, 3)
    good = envelope(42, 4)
    unknown_headers = [
        (name, b"cityhub.testing.v1.NoSuchEvent" if name == "ce_type" else value)
        for name, value in unknown.headers()
    ]
    bad = [
        # 0xff: field 31 with wire type 7, which does not exist: no parser accepts it.
        (b"\xff\xff\xff\xff", garbage.headers(), "PayloadDecodeError"),
        (unknown.payload, unknown_headers, "UnknownEventTypeError"),
        (negative.payload, negative.headers(), "ValueError"),
    ]
    raw = raw_producer(kafka_bootstrap)
    try:
        for value, headers, _error in bad:
            raw.send(topic, value=value, key=b"k", headers=headers)
        raw.send(topic, value=good.payload, key=b"k", headers=good.headers())
        raw.flush(timeout=10)
    finally:
        raw.close(timeout=5)

    consumer = make_consumer(kafka_bootstrap, topic, schema_pool, producer)
    with running(consumer):
        wait_until(lambda: "k" in projection(schema_pool), timeout_s=20, what="the good record")
        wait_until(
            lambda: committed_offset(kafka_bootstrap, consumer.name, topic, 0) == 4,
            timeout_s=10,
            what="the offset to move past all four records",
        )
    # The negative increment's write was undone with its savepoint; only the good one counts.
    assert projection(schema_pool)["k"] == (42, 1, 0)
    assert scalar(schema_pool, "SELECT count(*) FROM processed_events") == 1
    assert sample("cityhub_dead_letters_total", consumer=consumer.name, topic=topic) == 3
    assert outcomes(consumer, topic, "dead_lettered") == 3

    dead = read_records(kafka_bootstrap, dlq_topic(topic), 3)
    assert len(dead) == 3
    for offset, (record, (value, headers, error_type)) in enumerate(zip(dead, bad, strict=True)):
        got = headers_of(record)
        assert record.key == b"k"
        assert record.value == value
        for name, original in headers:
            assert got[name] == original
        assert got["dlq_error_type"].decode().endswith(error_type), got["dlq_error_type"]
        assert got["dlq_error"]
        assert got["dlq_consumer"] == consumer.name.encode()
        assert got["dlq_original_topic"] == topic.encode()
        assert got["dlq_original_partition"] == b"0"
        assert got["dlq_original_offset"] == str(offset).encode()
        parse_ce_time(got["dlq_time"].decode())
    assert b"negative amount -7" in headers_of(dead[2])["dlq_error"]


def test_batch_handler_applies_a_poll_at_once_and_isolates_a_poison_record(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    topic = new_topic(kafka_bootstrap, partitions=1)
    polls: list[int] = []

    def apply_poll(conn: psycopg.Connection[Any], records: Sequence[tuple[EventEnvelope, Message]]) -> None:
        polls.append(len(records))
        for envelope, message in records:
            apply_counter(conn, envelope, message)

    def envelope(amount: int, seq: int) -> EventEnvelope:
        return EventEnvelope.for_message(
            CounterIncremented(counter_id="b", amount=amount, sequence=seq),
            topic=topic,
            key="b",
            subject="counter/b",
            source=SOURCE,
        )

    first, second, poison, last = envelope(1, 1), envelope(2, 2), envelope(-5, 3), envelope(10, 4)
    raw = raw_producer(kafka_bootstrap)
    try:
        # The first record twice: the poll counts it once. The poison makes the poll fail as a whole.
        for item in (first, first, second, poison, last):
            raw.send(topic, value=item.payload, key=b"b", headers=item.headers())
        raw.flush(timeout=10)
    finally:
        raw.close(timeout=5)

    consumer = IdempotentConsumer(
        unique_name("batched"),
        [topic],
        kafka_bootstrap,
        schema_pool,
        apply_counter,
        producer,
        batch_handler=apply_poll,
        poll_timeout_ms=100,
        # The whole backlog in one poll, so the poison is in the same poll as the good records.
        fetch_min_bytes=1,
        fetch_max_wait_ms=1000,
    )
    with running(consumer):
        wait_until(
            lambda: committed_offset(kafka_bootstrap, consumer.name, topic, 0) == 5,
            timeout_s=20,
            what="the offset to move past all five records",
        )
    # The good records count once each; the poison's write was undone and it went to the DLQ.
    assert projection(schema_pool)["b"] == (13, 3, 0)
    assert outcomes(consumer, topic, "dead_lettered") == 1
    assert outcomes(consumer, topic, "duplicate") == 1
    dead = read_records(kafka_bootstrap, dlq_topic(topic), 1)
    assert headers_of(dead[0])["ce_id"] == poison.id.encode()
    # The batch handler was tried (and the poll rolled back) before the record-by-record fallback.
    assert polls
    assert max(polls) >= 2


# --- the relay's other duties ---------------------------------------------------------------------------


def test_notify_wakes_the_relay_long_before_its_poll_interval(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    topic = new_topic(kafka_bootstrap, partitions=1)
    relay = start_relay_thread(schema_pool, producer, "eventflowtest", poll_interval=60)
    try:
        channel = notify_channel(scalar(schema_pool, "SELECT current_schema()"))
        # Only once the relay listens can a missed notification not be blamed on start-up order.
        wait_until(
            lambda: scalar(
                schema_pool, "SELECT count(*) FROM pg_stat_activity WHERE query = %s", f'LISTEN "{channel}"'
            ),
            timeout_s=10,
            what="the relay to LISTEN",
        )
        write_events(schema_pool, topic, counters=1, per_counter=1, per_transaction=1)
        wait_until(
            lambda: scalar(schema_pool, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == 1,
            timeout_s=10,
            what="the event to be sent (a 60 s poll interval cannot explain it)",
        )
    finally:
        # The relay is now waiting out its 60 s interval; stopping must not wait for it.
        assert relay.stop(timeout=5), "relay did not stop promptly"
    assert len(read_records(kafka_bootstrap, topic, 1)) == 1


def test_prune_deletes_only_sent_rows_past_the_retention(
    schema_pool: ConnectionPool, producer: Producer
) -> None:
    write_events(schema_pool, "test.prune.events.v1", counters=4, per_counter=1, per_transaction=4)
    with schema_pool.connection() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM outbox ORDER BY id").fetchall()]
        conn.execute("UPDATE outbox SET sent_at = now() - interval '8 days' WHERE id = ANY(%s)", (ids[:2],))
        conn.execute("UPDATE outbox SET sent_at = now() - interval '1 day' WHERE id = %s", (ids[2],))
        conn.commit()
    relay = OutboxRelay(schema_pool, producer, "eventflowtest", retention=timedelta(days=7))
    assert relay.prune() == 2
    assert [r[0] for r in _rows(schema_pool, "SELECT id FROM outbox ORDER BY id")] == ids[2:]


def test_add_event_refuses_to_commit_on_its_own(database_url: str, schema_pool: ConnectionPool) -> None:
    conninfo = schema_pool.conninfo if isinstance(schema_pool.conninfo, str) else database_url
    with psycopg.connect(conninfo, autocommit=True, **_options(schema_pool)) as conn:
        with pytest.raises(ValueError, match="open transaction"):
            add_event(
                conn,
                topic="test.refuse.events.v1",
                key="k",
                subject="counter/k",
                message=CounterIncremented(counter_id="k", amount=1, sequence=1),
                source=SOURCE,
            )
        with conn.transaction():
            event_id = add_event(
                conn,
                topic="test.refuse.events.v1",
                key="k",
                subject="counter/k",
                message=CounterIncremented(counter_id="k", amount=1, sequence=1),
                source=SOURCE,
            )
    assert scalar(schema_pool, "SELECT ce_type FROM outbox WHERE event_id = %s", event_id) == CE_TYPE


def _options(pool: ConnectionPool) -> dict[str, Any]:
    kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
    return {"options": kwargs["options"]} if "options" in kwargs else {}


def test_consumer_forgets_only_its_own_processed_ids_past_the_retention(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    topic = new_topic(kafka_bootstrap)
    consumer = make_consumer(kafka_bootstrap, topic, schema_pool, producer)
    try:
        with schema_pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES"
                " (%(me)s, 'old', now() - interval '40 days'),"
                " (%(me)s, 'recent', now() - interval '1 day'),"
                " ('someone-else', 'old', now() - interval '40 days')",
                {"me": consumer.name},
            )
        assert consumer.prune_processed() == 1
        with schema_pool.connection() as conn:
            left = conn.execute("SELECT consumer, event_id FROM processed_events ORDER BY 1, 2").fetchall()
            conn.rollback()
    finally:
        consumer.close()
    assert sorted(left) == sorted([(consumer.name, "recent"), ("someone-else", "old")])


def test_the_backlog_gauge_counts_what_waits_while_nothing_can_be_published(
    kafka_bootstrap: str, schema_pool: ConnectionPool, producer: Producer
) -> None:
    """A relay that cannot publish (here: its producer closed, as after a fatal client error) keeps
    retrying, and the gauge shows the rows piling up — not the 0 it last read while it kept up."""
    topic = new_topic(kafka_bootstrap, partitions=1)
    service = unique_name("backlogtest")
    relay = OutboxRelay(schema_pool, producer, service, poll_interval=0.05, backlog_every_s=0.1)
    assert relay.run_once() == 0  # nothing waits: the gauge reads 0, as a relay keeping up leaves it
    assert sample("cityhub_outbox_backlog", service=service) == 0
    producer.close(timeout=5)
    write_events(schema_pool, topic, counters=3, per_counter=4, per_transaction=6)
    background = BackgroundRelay(relay, name="backlog-test-relay").start()
    try:
        wait_until(
            lambda: sample("cityhub_outbox_backlog", service=service) == 12 or None,
            timeout_s=20,
            what="the backlog gauge to count the 12 unsent rows",
        )
    finally:
        assert background.stop(), "the relay thread did not stop"
    assert scalar(schema_pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 12
