"""``cityhub_consumer_lag`` agrees with the broker's own committed-offset lag, also while the consumer is
held back inside a poll (issue 17: the gauge read 0 while the broker showed the rollup hundreds of records
behind). Real broker, real database; the consumer is held by a handler that waits on an event."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cityhub.testing.v1.events_pb2 import CounterIncremented
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from services.platform.consumer import IdempotentConsumer
from services.platform.db import set_up_database
from services.platform.kafka import EventEnvelope, Producer, ensure_topics, make_producer
from services.platform.lag import ConsumerGroup, LagProbe
from services.platform.outbox import OutboxRelay, add_event
from tests.kafka_support import running
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

RECORDS = 40


def broker_lag(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    """Per partition: log end offset minus the group's committed offset (from the earliest offset when
    the group committed nothing), read with Kafka's own admin API as `kafka-consumer-groups` does."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin: Any = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    probe: Any = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or ())]
        ends = probe.end_offsets(partitions)
        starts = probe.beginning_offsets(partitions)
        committed = admin.list_group_offsets(group_id).get(group_id, {})
        out = {}
        for tp in partitions:
            mark = committed.get(tp)
            offset = mark.offset if mark is not None and mark.offset >= 0 else starts[tp]
            out[tp.partition] = ends[tp] - offset
        return out
    finally:
        probe.close()
        admin.close()


def gauge(name: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "cityhub_consumer_lag", {"consumer": name, "topic": topic, "partition": str(partition)}
    )


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    made = set_up_database(database_url, unique_name("lag"), max_size=4)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[Producer]:
    made = make_producer(kafka_bootstrap)
    try:
        yield made
    finally:
        made.close(timeout=5)


def test_the_lag_gauge_agrees_with_the_broker_while_the_consumer_is_held_back(
    kafka_bootstrap: str, pool: ConnectionPool, producer: Producer
) -> None:
    topic = unique_name("test.lag").replace("_", "-") + ".events.v1"
    ensure_topics(kafka_bootstrap, [topic], partitions=2, replication=1)
    with pool.connection() as conn, conn.transaction():
        for n in range(RECORDS):
            add_event(
                conn,
                topic=topic,
                key=f"c{n % 5}",
                subject=f"counter/{n}",
                message=CounterIncremented(counter_id=f"c{n % 5}", amount=1, sequence=n + 1),
                source="/cityhub/lagtest",
            )
    relay = OutboxRelay(pool, producer, "lagtest")
    while relay.run_once():
        pass

    handled = 0
    release = threading.Event()
    holding = threading.Event()

    def slow(conn: psycopg.Connection[Any], envelope: EventEnvelope, message: Message) -> None:
        # Ten records go through (and are committed after their poll), then the consumer is stuck.
        nonlocal handled
        handled += 1
        if handled > 10:
            holding.set()
            release.wait(60)

    name = unique_name("lagged")
    consumer = IdempotentConsumer(
        name, [topic], kafka_bootstrap, pool, slow, producer, poll_timeout_ms=100, max_poll_records=5
    )
    probe = LagProbe(kafka_bootstrap.split(","), [ConsumerGroup(name, consumer.group_id, [topic])])
    with running(consumer):
        try:
            held_back(probe, name, topic, consumer.group_id, kafka_bootstrap=kafka_bootstrap, holding=holding)
        finally:
            release.set()

        def caught_up() -> bool | None:
            return sum(broker_lag(kafka_bootstrap, consumer.group_id, topic).values()) == 0 or None

        wait_until(caught_up, timeout_s=30, what="the consumer to catch up")
        measured = probe.measure()
        assert measured
        assert all(lag == 0 for lag in measured.values())
        assert all(gauge(name, topic, p) == 0.0 for _n, _t, p in measured)


def held_back(
    probe: LagProbe, name: str, topic: str, group_id: str, *, kafka_bootstrap: str, holding: threading.Event
) -> None:
    """While the consumer is stuck: the probe, the gauge and the broker say the same, and it is not 0."""
    wait_until(lambda: holding.is_set() or None, timeout_s=30, what="the consumer to be held back")
    # Held inside a poll: whatever was committed stays put, so both readings are of the same state.
    measured = probe.measure()
    expected = broker_lag(kafka_bootstrap, group_id, topic)
    assert {p: measured[(name, topic, p)] for p in expected} == expected
    assert 0 < sum(expected.values()) < RECORDS  # some committed, most still behind
    assert {p: gauge(name, topic, p) for p in expected} == {p: float(v) for p, v in expected.items()}
