"""One replica of a consumer, as its own process, for tests that kill and restart replicas
(tests/integration/test_consumer_static_membership.py).

``python -m tests.consumer_child BOOTSTRAP DATABASE_URL SCHEMA TOPIC GROUP TAG [INSTANCE_ID]``: runs an
IdempotentConsumer in GROUP on TOPIC that records each applied event in ``SCHEMA.seen`` (event id, the
counter id the test put there, and TAG, which replica applied it) in the consumer's own transaction, until
SIGTERM; then closes as a service does. Exits 3 when fenced by another replica under the same id."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import psycopg
from cityhub.testing.v1.events_pb2 import CounterIncremented
from google.protobuf.message import Message

from services.platform.consumer import ConsumerFencedError, IdempotentConsumer
from services.platform.db import set_up_database
from services.platform.kafka import EventEnvelope, make_producer

# Long enough that a test passing within it cannot have been helped by the dead member's session expiring.
SESSION_TIMEOUT_MS = 60_000
FENCED_EXIT = 3


def main(argv: list[str]) -> int:
    bootstrap, database_url, schema, topic, group, tag = argv[:6]
    instance_id = argv[6] if len(argv) > 6 else None
    pool = set_up_database(database_url, schema, max_size=2)
    producer = make_producer(bootstrap)

    def record(conn: psycopg.Connection[Any], envelope: EventEnvelope, message: Message) -> None:
        assert isinstance(message, CounterIncremented)
        conn.execute(
            "INSERT INTO seen (event_id, counter_id, tag) VALUES (%s, %s, %s)",
            (envelope.id, message.counter_id, tag),
        )

    overrides: dict[str, Any] = {"session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 1000}
    if instance_id is not None:
        overrides["group_instance_id"] = instance_id
    consumer = IdempotentConsumer(
        # One name for every replica, as a service's replicas share one: processed ids are kept per name.
        "child",
        [topic],
        bootstrap,
        pool,
        record,
        producer,
        group,
        poll_timeout_ms=200,
        **overrides,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("child_started", flush=True)
    try:
        consumer.run(stop)
    except ConsumerFencedError:
        return FENCED_EXIT
    finally:
        producer.close(timeout=5)
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
