"""Static group membership (KAFKA_GROUP_INSTANCE_ID, docs/adr/0018): a replica restarted after a crash takes
its partitions back at once, a replica stopped cleanly hands them over at once, and a second process under
the same id stops the first rather than both consuming.

Each replica is a process of its own (tests/consumer_child.py) in one group on a two-partition topic, with
60 s sessions: every hand-over checked here must happen well inside that, which a dynamic member (or a
static one that never leaves) cannot do — it waits out the dead or departed member's session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cityhub.testing.v1.events_pb2 import CounterIncremented
from psycopg_pool import ConnectionPool

from services.platform.db import set_up_database
from services.platform.kafka import EventEnvelope, ensure_topics
from tests.consumer_child import FENCED_EXIT, SESSION_TIMEOUT_MS
from tests.kafka_support import delete_topics, raw_producer
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Far inside the 60 s session: only a member that takes over without waiting for it gets there in time.
HANDOVER_BOUND_S = 25.0
assert HANDOVER_BOUND_S < SESSION_TIMEOUT_MS / 1000 / 2


class Group:
    """Replicas of one consumer group, the topic they read and the table they record into."""

    def __init__(self, bootstrap: str, database_url: str, tmp: Path) -> None:
        self.bootstrap, self.database_url, self.tmp = bootstrap, database_url, tmp
        self.schema = unique_name("static")
        self.topic = unique_name("test.static").replace("_", "-") + ".events.v1"
        self.group = unique_name("static-group")
        ensure_topics(bootstrap, [self.topic], partitions=2, replication=1)
        self.pool: ConnectionPool = set_up_database(database_url, self.schema, max_size=2)
        with self.pool.connection() as conn:
            conn.execute(
                "CREATE TABLE seen (event_id text NOT NULL, counter_id text NOT NULL, tag text NOT NULL)"
            )
        self.producer = raw_producer(bootstrap)
        self.replicas: dict[str, subprocess.Popen[bytes]] = {}
        self._sent = 0

    def start(self, tag: str, instance_id: str | None) -> subprocess.Popen[bytes]:
        args = [self.bootstrap, self.database_url, self.schema, self.topic, self.group, tag]
        log = (self.tmp / f"{tag}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.consumer_child", *args, *([instance_id] if instance_id else [])],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.replicas[tag] = process
        return process

    def log_of(self, tag: str) -> str:
        return (self.tmp / f"{tag}.log").read_text(errors="replace")[-4000:]

    def send(self, partition: int) -> str:
        """One event onto ``partition``; its id."""
        self._sent += 1
        envelope = EventEnvelope.for_message(
            CounterIncremented(counter_id=f"p{partition}", amount=1, sequence=self._sent),
            topic=self.topic,
            key=f"p{partition}",
            subject=f"counter/p{partition}",
            source="/cityhub/statictest",
        )
        self.producer.send(
            self.topic,
            value=envelope.payload,
            key=envelope.key_bytes,
            headers=envelope.headers(),
            partition=partition,
        )
        self.producer.flush(timeout=10)
        return envelope.id

    def applied_by(self, event_id: str) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT tag FROM seen WHERE event_id = %s", (event_id,)).fetchone()
        return None if row is None else str(row[0])

    def wait_applied(self, event_id: str, timeout_s: float, what: str) -> str:
        return wait_until(lambda: self.applied_by(event_id), timeout_s=timeout_s, what=what, interval_s=0.1)

    def owners(self, tags: set[str], timeout_s: float = 90.0) -> dict[int, str]:
        """Which replica applies each partition's records, once ``tags`` share the partitions between them
        (a rebalance after the last one joined can take a few seconds)."""
        deadline = time.monotonic() + timeout_s
        while True:
            ids = {p: self.send(p) for p in (0, 1)}
            owners = {
                p: self.wait_applied(event_id, 60.0, f"a probe on partition {p}")
                for p, event_id in ids.items()
            }
            if set(owners.values()) == tags or time.monotonic() > deadline:
                assert set(owners.values()) == tags, f"partitions not shared by {tags}: {owners}"
                return owners
            time.sleep(0.5)

    def two_replicas(self) -> int:
        """Replicas "a" and "b" (static members), sharing the partitions; the partition "a" applies."""
        self.start("a", "replica-a")
        self.start("b", "replica-b")
        owners = self.owners({"a", "b"})
        return next(p for p, tag in owners.items() if tag == "a")

    def each_applied_once(self) -> None:
        with self.pool.connection() as conn:
            repeated = conn.execute(
                "SELECT event_id, count(*) FROM seen GROUP BY 1 HAVING count(*) > 1"
            ).fetchall()
            rows = conn.execute("SELECT event_id, counter_id, tag FROM seen").fetchall()
        assert not repeated, f"applied more than once: {repeated}"
        assert len(rows) == self._sent, f"{len(rows)} applied of {self._sent} sent: {rows}"

    def close(self) -> None:
        for process in self.replicas.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.producer.close(timeout=5)
        self.pool.close()
        delete_topics(self.bootstrap, [self.topic, f"{self.topic}.dlq"])


@pytest.fixture
def group(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> Iterator[Group]:
    made = Group(kafka_bootstrap, database_url, tmp_path)
    try:
        yield made
    finally:
        made.close()


def test_a_replica_restarted_after_a_crash_takes_its_partitions_back_at_once(group: Group) -> None:
    mine = group.two_replicas()

    group.replicas["a"].send_signal(signal.SIGKILL)
    group.replicas["a"].wait(timeout=10)
    started = time.monotonic()
    group.start("a-restarted", "replica-a")
    event_id = group.send(mine)
    other = group.send(1 - mine)

    # Without static membership the group waits for the killed member's session (60 s) to expire.
    applier = group.wait_applied(event_id, HANDOVER_BOUND_S, "the restarted replica applying its partition")
    took = time.monotonic() - started
    print(f"the restarted replica applied its partition's record {took:.1f} s after it started")
    assert applier == "a-restarted", group.log_of("a-restarted")
    assert group.wait_applied(other, HANDOVER_BOUND_S, "the other partition's record") == "b"
    # It continued from the committed offsets: the probes the killed replica applied are not applied again.
    group.each_applied_once()


def test_a_replica_stopped_cleanly_hands_its_partitions_over_at_once(group: Group) -> None:
    mine = group.two_replicas()

    group.replicas["a"].send_signal(signal.SIGTERM)
    assert group.replicas["a"].wait(timeout=20) == 0, group.log_of("a")
    assert "consumer_leaving_group" in group.log_of("a")
    event_id = group.send(mine)

    # A static member that only closed would keep the partition until its session expired (60 s).
    applier = group.wait_applied(
        event_id, HANDOVER_BOUND_S, "the remaining replica applying the stopped one's partition"
    )
    assert applier == "b"
    group.each_applied_once()


def test_a_second_process_under_the_same_id_stops_the_first(group: Group) -> None:
    group.start("first", "replica-a")
    group.owners({"first"})

    group.start("second", "replica-a")
    # The first learns it was fenced from the broker's answer to its next commit or heartbeat-driven rejoin;
    # records keep coming meanwhile, as they would in a district.
    sent: list[str] = []

    def first_exited() -> tuple[int] | None:
        sent.append(group.send(len(sent) % 2))
        code = group.replicas["first"].poll()
        return None if code is None else (code,)

    (code,) = wait_until(first_exited, timeout_s=60.0, what="the fenced replica stopping", interval_s=0.5)
    assert code == FENCED_EXIT, group.log_of("first")
    assert "consumer_fenced" in group.log_of("first")
    assert "consumer_leaving_group" not in group.log_of("first")

    later = [group.send(p) for p in (0, 1)]
    for event_id in later:
        assert group.wait_applied(event_id, 60.0, "the second replica carrying on") == "second"
    assert group.replicas["second"].poll() is None, group.log_of("second")
    group.each_applied_once()
