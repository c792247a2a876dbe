"""Helpers for the tests that talk to the real Kafka broker: reading topics with deadlines,
producing raw records, running a consumer in a thread.

Plain kafka-python clients are used on purpose where a test checks what is on the wire, so the platform
code under test is not also the code doing the checking."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from services.platform.consumer import IdempotentConsumer
from tests.support import wait_until

T = TypeVar("T")


class TopicReader:
    """Reads every partition of some topics from the beginning, without a consumer group, accumulating
    records in ``records`` (in partition order) across calls."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self._consumer: Any = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        partitions: list[Any] = []
        for topic in topics:
            ids = wait_until(partial(self._partitions, topic), timeout_s=10, what=f"partitions of {topic}")
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self.records: list[Any] = []

    def _partitions(self, topic: str) -> set[int] | None:
        found = self._consumer.partitions_for_topic(topic)
        return None if not found else {int(p) for p in found}

    def poll(self, timeout_ms: int = 100) -> list[Any]:
        batch = self._consumer.poll(timeout_ms=timeout_ms)
        new = [record for part in batch.values() for record in part]
        self.records.extend(new)
        return new

    def read_until(self, done: Callable[[list[Any]], bool], *, timeout_s: float, what: str) -> list[Any]:
        """Poll until ``done(self.records)``; AssertionError naming ``what`` at the deadline."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() >= deadline:
                got = len(self.records)
                raise AssertionError(f"timed out after {timeout_s}s reading {what}: {got} records")
            self.poll()
        return self.records

    def close(self) -> None:
        self._consumer.close(autocommit=False)

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_records(bootstrap: str, topic: str, count: int, *, timeout_s: float = 15.0) -> list[Any]:
    """The first ``count`` records (at least) of ``topic``, all partitions."""
    with TopicReader(bootstrap, [topic]) as reader:
        return list(reader.read_until(lambda rs: len(rs) >= count, timeout_s=timeout_s, what=topic))


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Remove a test's own topics at its end (best effort)."""
    from kafka import KafkaAdminClient

    admin: Any = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.delete_topics(topics)
    except Exception:  # noqa: BLE001 - tidying up only; a leftover test topic harms nobody
        pass
    finally:
        admin.close()


def raw_producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=0)


def committed_offset(bootstrap: str, group_id: str, topic: str, partition: int) -> int | None:
    """The group's committed offset, read without joining the group."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), group_id=group_id, enable_auto_commit=False
    )
    try:
        value = consumer.committed(TopicPartition(topic, partition))
        return None if value is None else int(value)
    finally:
        consumer.close(autocommit=False)


@contextmanager
def running(consumer: IdempotentConsumer) -> Iterator[IdempotentConsumer]:
    """Run ``consumer`` in a thread for the duration of the block; re-raise anything it died of."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run(stop)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread below
            failures.append(error)

    thread = threading.Thread(target=target, name=f"test-consumer-{consumer.name}", daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "consumer did not stop within 15 s"
    if failures:
        raise failures[0]
