"""A consumer gets its partitions as soon as its topic exists, however it started (issue #16, defect 6).

kafka-python assigns a group's partitions from its cached metadata and otherwise refreshes that cache
only every five minutes: a consumer whose cache does not hold its topic when it joins sat idle that long
(the hub started before a domain service, or a test's consumer on a busy machine)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from cityhub.testing.v1.events_pb2 import CounterIncremented
from google.protobuf.message import Message
from psycopg_pool import ConnectionPool

from services.platform.consumer import IdempotentConsumer
from services.platform.db import set_up_database
from services.platform.kafka import EventEnvelope, Producer, ensure_topics, make_producer
from tests.kafka_support import delete_topics, raw_producer, running
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

SOURCE = "/cityhub/newtopictest"


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    made = set_up_database(database_url, unique_name("newtopic"), max_size=2)
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


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = unique_name("test.newtopic").replace("_", "-") + ".events.v1"
    yield name
    delete_topics(kafka_bootstrap, [name, f"{name}.dlq"])


class Received:
    """The handler: remembers the ids of the records it was given."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, _conn: psycopg.Connection[Any], envelope: EventEnvelope, _message: Message) -> None:
        with self._lock:
            self.ids.append(envelope.id)


def _create_and_publish(kafka_bootstrap: str, topic: str) -> EventEnvelope:
    ensure_topics(kafka_bootstrap, [topic], partitions=2, replication=1)
    envelope = EventEnvelope.for_message(
        CounterIncremented(counter_id="n", amount=1, sequence=1),
        topic=topic,
        key="n",
        subject="counter/n",
        source=SOURCE,
    )
    raw = raw_producer(kafka_bootstrap)
    try:
        raw.send(topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers())
        raw.flush(timeout=10)
    finally:
        raw.close(timeout=5)
    return envelope


def _consumer(
    kafka_bootstrap: str,
    topic: str,
    pool: ConnectionPool,
    producer: Producer,
    received: Received,
    *,
    poll_timeout_ms: int = 100,
) -> IdempotentConsumer:
    return IdempotentConsumer(
        unique_name("newtopic"),
        [topic],
        kafka_bootstrap,
        pool,
        received,
        producer,
        poll_timeout_ms=poll_timeout_ms,
    )


def _joined(consumer: IdempotentConsumer) -> bool:
    """The consumer is a stable member of its group (with or without partitions)."""
    coordinator = consumer._consumer._coordinator
    return coordinator.generation_if_stable() is not None


@pytest.mark.parametrize(
    "poll_timeout_ms",
    [
        pytest.param(500, id="default-poll"),
        # The rebalance the topic's creation starts outlasts the poll that sees it start, as it does on a
        # busy machine: kafka-python then dropped the assignment it received.
        pytest.param(1, id="rebalance-outlasts-poll"),
    ],
)
def test_a_consumer_started_before_its_topic_exists_gets_the_first_record_once_it_is_created(
    kafka_bootstrap: str, pool: ConnectionPool, producer: Producer, topic: str, poll_timeout_ms: int
) -> None:
    received = Received()
    consumer = _consumer(kafka_bootstrap, topic, pool, producer, received, poll_timeout_ms=poll_timeout_ms)
    with running(consumer):
        wait_until(lambda: _joined(consumer), timeout_s=15, what="the consumer to join its group")
        envelope = _create_and_publish(kafka_bootstrap, topic)
        # Well under kafka-python's five-minute metadata refresh; the point is that it arrives.
        wait_until(lambda: received.ids, timeout_s=30, what="the first record on the new topic")
        wait_until(
            lambda: not consumer.topics_without_metadata, timeout_s=5, what="the consumer to note the topic"
        )
    assert received.ids == [envelope.id]


def test_a_consumer_whose_metadata_is_fresh_but_lacks_its_topic_still_gets_its_partitions(
    kafka_bootstrap: str, pool: ConnectionPool, producer: Producer, topic: str
) -> None:
    """The state the start-up race leaves behind, made on purpose: the consumer has joined its group with
    no partitions, and the last metadata response it applied (here: one for all topics, as
    ``KafkaConsumer.topics()`` asks for) did not name its topic, so kafka-python considers its metadata
    fresh for five minutes and does not look for the topic again by itself."""
    received = Received()
    consumer = _consumer(kafka_bootstrap, topic, pool, producer, received)
    client: Any = consumer._consumer

    def joined_with_fresh_metadata_without_topic() -> bool:
        from kafka.errors import UnknownTopicOrPartitionError

        client.poll(timeout_ms=1000)
        coordinator = client._coordinator
        task = coordinator._join_task
        if task is not None and task.is_done and not coordinator.need_rejoin():
            # kafka-python dropped a rebalance's result (see services/platform/consumer.py): rejoin, as
            # the consumer's loop does, so that the set-up cannot get stuck.
            coordinator.request_rejoin()
        if coordinator.generation_if_stable() is None or coordinator.need_rejoin():
            return False
        try:
            # Waits for a refresh in flight first, which fails while the topic is missing.
            listed = client.topics()
        except UnknownTopicOrPartitionError:
            return False
        # The response may itself start a rebalance (new metadata), whose assignment asks for a refresh
        # naming the topic, which kafka-python retries by itself while it fails: then round again.
        return topic not in listed and not coordinator.need_rejoin() and not client._cluster.need_update

    wait_until(
        joined_with_fresh_metadata_without_topic,
        timeout_s=15,
        what="the consumer to join its group without partitions, its metadata fresh and without the topic",
    )
    assert client.assignment() == set()

    with running(consumer):
        envelope = _create_and_publish(kafka_bootstrap, topic)
        wait_until(lambda: received.ids, timeout_s=30, what="the first record on the new topic")
    assert received.ids == [envelope.id]
