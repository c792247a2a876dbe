"""`cityhub events tail` filters, `cityhub events replay` and `cityhub topics describe`, against the real
broker: what must not appear does not, a replay copies exactly its range, the lag shown is the lag a group
really has."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.testing.v1 import events_pb2
from click.testing import CliRunner, Result
from google.protobuf.message import Message

from services.cli.__main__ import cli
from services.cli.records import open_reader, plan_ranges
from services.platform import kafka as bus
from services.platform.lag import ConsumerGroup, LagProbe
from tests.kafka_support import delete_topics, read_records
from tests.support import unique_name

COUNTER = "cityhub.testing.v1.CounterIncremented"
SITE = "cityhub.safety.v1.SiteRegistered"
ALERT = "cityhub.safety.v1.AlertRaised"
NOW = datetime.now(UTC)
# A topic and the ce_id of each event on it, by name.
Mixed = tuple[str, dict[str, str]]


def _run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def _lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.strip().splitlines() if line]


def _ids(result: Result) -> list[str]:
    return [line["headers"]["ce_id"] for line in _lines(result)]


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[bus.Producer]:
    made = bus.make_producer(kafka_bootstrap)
    yield made
    made.close(10)


def _publish(
    producer: bus.Producer,
    topic: str,
    message: Message,
    *,
    key: str,
    subject: str,
    partition: int | None = None,
    at: datetime | None = None,
) -> bus.EventEnvelope:
    """One event; ``at`` sets the record's Kafka timestamp (what --since/--until compare)."""
    envelope = bus.EventEnvelope.for_message(
        message, topic=topic, key=key, subject=subject, source="/cityhub/tests", time=at
    )
    producer.send(
        topic,
        key=envelope.key_bytes,
        value=envelope.payload,
        headers=envelope.headers(),
        partition=partition,
        timestamp_ms=None if at is None else int(at.timestamp() * 1000),
    ).get(30)
    return envelope


def _topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    topic = unique_name(prefix)
    bus.ensure_topics(bootstrap, [topic], partitions=partitions, replication=1, with_dlq=False)
    return topic


@pytest.fixture
def mixed(kafka_bootstrap: str, producer: bus.Producer) -> Iterator[Mixed]:
    """A topic of two partitions with three types, several subjects and timestamps hours apart."""
    topic = _topic(kafka_bootstrap, "cli.events.mixed", partitions=2)
    sent = {
        "old_counter": _publish(
            producer,
            topic,
            events_pb2.CounterIncremented(counter_id="c-1", amount=1),
            key="c-1",
            subject="C-1",
            partition=0,
            at=NOW - timedelta(hours=3),
        ),
        "site": _publish(
            producer,
            topic,
            safety_events.SiteRegistered(site_id="S-001", name="No. 1 School"),
            key="S-001",
            subject="S-001",
            partition=1,
            at=NOW - timedelta(hours=2),
        ),
        "alert_s1": _publish(
            producer,
            topic,
            safety_events.AlertRaised(alert_id="A-1", site_id="S-001"),
            key="A-1",
            subject="S-001",
            partition=0,
            at=NOW - timedelta(hours=1),
        ),
        "alert_s2": _publish(
            producer,
            topic,
            safety_events.AlertRaised(alert_id="A-2", site_id="S-002"),
            key="A-2",
            subject="S-002",
            partition=1,
            at=NOW - timedelta(minutes=30),
        ),
        "new_counter": _publish(
            producer,
            topic,
            events_pb2.CounterIncremented(counter_id="c-2", amount=2),
            key="c-2",
            subject="C-2",
            partition=0,
        ),
    }
    yield topic, {name: envelope.id for name, envelope in sent.items()}
    delete_topics(kafka_bootstrap, [topic])


def test_tail_filters_by_type_subject_and_time(
    kafka_bootstrap: str, mixed: tuple[str, dict[str, str]]
) -> None:
    topic, ids = mixed
    tail = ("events", "tail", topic, "--bootstrap", kafka_bootstrap)

    alerts = _run(*tail, "--from-beginning", "--type", ALERT)
    assert sorted(_ids(alerts)) == sorted([ids["alert_s1"], ids["alert_s2"]])
    assert {line["value"]["alertId"] for line in _lines(alerts)} == {"A-1", "A-2"}

    safety = _run(*tail, "--from-beginning", "--type", "cityhub.safety.*")
    assert sorted(_ids(safety)) == sorted([ids["site"], ids["alert_s1"], ids["alert_s2"]])
    assert all(line["headers"]["ce_type"].startswith("cityhub.safety.") for line in _lines(safety))

    either = _run(*tail, "--type", COUNTER, "--type", SITE)  # the last 10 by default
    assert _ids(either) == [ids["old_counter"], ids["site"], ids["new_counter"]]

    # From a start point each partition is read in order; across partitions only roughly by time.
    school = _run(*tail, "--from-beginning", "--subject", "S-001")
    assert sorted(_ids(school)) == sorted([ids["site"], ids["alert_s1"]])
    assert _ids(_run(*tail, "--subject", "S-00*", "--type", ALERT)) == [ids["alert_s1"], ids["alert_s2"]]

    # Relative and absolute times, each end included.
    recent = _run(*tail, "--since", "90m")
    assert sorted(_ids(recent)) == sorted([ids["alert_s1"], ids["alert_s2"], ids["new_counter"]])
    window = _run(
        *tail,
        "--since",
        (NOW - timedelta(hours=2)).isoformat(),
        "--until",
        (NOW - timedelta(minutes=30)).isoformat(),
    )
    assert sorted(_ids(window)) == sorted([ids["site"], ids["alert_s1"], ids["alert_s2"]])
    assert _ids(_run(*tail, "--until", "100m", "--subject", "S-001")) == [ids["site"]]
    assert "neither an ISO-8601 time nor a time ago" in _run(*tail, "--since", "2h30m", code=2).output

    # The last N overall (the newest by timestamp across partitions), and --raw's undecoded value.
    last_two = _run(*tail, "-n", "2", "--raw")
    assert _ids(last_two) == [ids["alert_s2"], ids["new_counter"]]
    raw = _lines(last_two)[1]
    assert "value" not in raw
    decoded = events_pb2.CounterIncremented.FromString(base64.b64decode(raw["value_base64"]))
    assert decoded == events_pb2.CounterIncremented(counter_id="c-2", amount=2)


def test_since_seeks_by_the_time_index(kafka_bootstrap: str, mixed: Mixed) -> None:
    topic, _ = mixed
    consumer = open_reader(kafka_bootstrap)
    try:
        ranges = plan_ranges(consumer, topic, start_at="begin", since=NOW - timedelta(minutes=90))
    finally:
        consumer.close()
    # Partition 0 holds old_counter (3 h), alert_s1 (1 h), new_counter; partition 1 site (2 h), alert_s2.
    assert [(r.partition, r.start, r.stop) for r in ranges] == [(0, 1, 3), (1, 1, 2)]


def test_follow_prints_new_matching_events_only(kafka_bootstrap: str, producer: bus.Producer) -> None:
    topic = _topic(kafka_bootstrap, "cli.events.follow")
    start = datetime.now(UTC) - timedelta(seconds=1)
    results: list[Result] = []
    runner = threading.Thread(
        target=lambda: results.append(
            _run(
                "events",
                "tail",
                topic,
                "-f",
                "--since",
                start.isoformat(),
                "--type",
                ALERT,
                "-n",
                "1",
                "--bootstrap",
                kafka_bootstrap,
            )
        ),
        daemon=True,
    )
    runner.start()
    try:
        _publish(producer, topic, events_pb2.CounterIncremented(counter_id="c"), key="c", subject="c")
        wanted = _publish(
            producer, topic, safety_events.AlertRaised(alert_id="A-9"), key="A-9", subject="S-9"
        )
        runner.join(timeout=60)
        assert not runner.is_alive(), "events tail -f -n 1 did not stop after the matching event"
        assert _ids(results[0]) == [wanted.id]
    finally:
        delete_topics(kafka_bootstrap, [topic])


def _copied(bootstrap: str, topic: str) -> list[Any]:
    consumer = open_reader(bootstrap)
    try:
        total = sum(r.size or 0 for r in plan_ranges(consumer, topic, start_at="begin"))
    finally:
        consumer.close()
    return read_records(bootstrap, topic, total) if total else []


def test_replay_copies_exactly_the_offset_range(kafka_bootstrap: str, producer: bus.Producer) -> None:
    source = _topic(kafka_bootstrap, "cli.replay.src", partitions=2)
    target = _topic(kafka_bootstrap, "cli.replay.dst", partitions=3)
    sent = {
        (p, n): _publish(
            producer,
            source,
            events_pb2.CounterIncremented(counter_id=f"c-{p}", amount=n, sequence=n),
            key=f"c-{p}",
            subject=f"C-{p}",
            partition=p,
        )
        for p in (0, 1)
        for n in range(6)
    }
    try:
        replay = ("events", "replay", "--topic", source, "--to", target, "--bootstrap", kafka_bootstrap)
        range_args = ("--from-offset", "2", "--to-offset", "0:5", "--to-offset", "1:4")

        dry = _run(*replay, *range_args, "--dry-run").stdout
        assert f"would replay 5 record(s) from {source} to {target}" in dry
        assert _copied(kafka_bootstrap, target) == []

        done = _run(*replay, *range_args).stdout
        assert f"{source} partition 0: offsets 2..4: 3 replayed" in done
        assert f"{source} partition 1: offsets 2..3: 2 replayed" in done
        copies = _copied(kafka_bootstrap, target)
        assert len(copies) == 5
        by_origin = {dict(r.headers)["replayed_from"].decode(): r for r in copies}
        expected = {(0, 2), (0, 3), (0, 4), (1, 2), (1, 3)}
        assert set(by_origin) == {f"{source}:{p}:{n}" for p, n in expected}
        for p, n in expected:
            copy, original = by_origin[f"{source}:{p}:{n}"], sent[(p, n)]
            assert copy.key == original.key_bytes
            assert copy.value == original.payload
            assert [h for h in copy.headers if h[0] != "replayed_from"] == original.headers()
        # One key's copies land on one partition of the target, in their original order.
        for key, sequences in ((b"c-0", [2, 3, 4]), (b"c-1", [2, 3])):
            mine = [r for r in copies if r.key == key]
            assert len({r.partition for r in mine}) == 1
            assert [r.offset for r in mine] == sorted(r.offset for r in mine)
            assert [events_pb2.CounterIncremented.FromString(r.value).sequence for r in mine] == sequences
    finally:
        delete_topics(kafka_bootstrap, [source, target])


def test_replay_by_time_and_type_and_never_onto_itself(
    kafka_bootstrap: str, mixed: tuple[str, dict[str, str]]
) -> None:
    topic, ids = mixed
    target = _topic(kafka_bootstrap, "cli.replay.time")
    try:
        refused = _run(
            "events", "replay", "--topic", topic, "--to", topic, "--bootstrap", kafka_bootstrap, code=2
        )
        assert "onto itself" in refused.output

        out = _run(
            "events",
            "replay",
            "--topic",
            topic,
            "--to",
            target,
            "--since",
            "150m",
            "--until",
            "45m",
            "--type",
            ALERT,
            "--bootstrap",
            kafka_bootstrap,
        ).stdout
        # In the window: site (2 h) and alert_s1 (1 h); the site is filtered out by type.
        assert f"replayed 1 record(s) from {topic} to {target} (1 filtered out)" in out
        copies = _copied(kafka_bootstrap, target)
        assert [dict(r.headers)["ce_id"].decode() for r in copies] == [ids["alert_s1"]]
    finally:
        delete_topics(kafka_bootstrap, [target])


def test_topics_describe_shows_offsets_and_the_lag_a_group_has(
    kafka_bootstrap: str, producer: bus.Producer
) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    topic = _topic(kafka_bootstrap, "cli.describe", partitions=2)
    group = unique_name("cli.describe.group")
    try:
        for p, count in ((0, 5), (1, 3)):
            for n in range(count):
                _publish(
                    producer,
                    topic,
                    events_pb2.CounterIncremented(amount=n),
                    key="k",
                    subject="s",
                    partition=p,
                )
        consumer = KafkaConsumer(
            bootstrap_servers=kafka_bootstrap.split(","), group_id=group, enable_auto_commit=False
        )
        try:
            consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
        finally:
            consumer.close(autocommit=False)

        report = json.loads(
            _run("topics", "describe", topic, "--json", "--bootstrap", kafka_bootstrap).stdout
        )
        assert report["messages"] == 8
        assert [(p["partition"], p["begin"], p["end"], p["messages"]) for p in report["partitions"]] == [
            (0, 0, 5, 5),
            (1, 0, 3, 3),
        ]
        assert all(p["leader"] >= 0 and p["isr"] == p["replicas"] for p in report["partitions"])
        (mine,) = [g for g in report["groups"] if g["group"] == group]
        # Partition 1 was never committed: it counts from its first offset, as the lag gauge does.
        assert [(p["partition"], p["committed"], p["lag"]) for p in mine["partitions"]] == [
            (0, 2, 3),
            (1, None, 3),
        ]
        assert mine["lag"] == 6
        # The same figures as the cityhub_consumer_lag gauge's probe.
        probe = LagProbe([kafka_bootstrap], [ConsumerGroup(group, group, [topic])])
        try:
            assert probe.measure() == {(group, topic, 0): 3, (group, topic, 1): 3}
        finally:
            stopped = threading.Event()
            stopped.set()
            probe.run(stopped)  # returns at once, closing the probe's clients

        table = _run("topics", "describe", topic, "--bootstrap", kafka_bootstrap).stdout
        assert f"topic {topic}: 2 partition(s), 8 message(s)" in table
        assert any(line.split() == [group, "Empty", "total", "-", "-", "6"] for line in table.splitlines())
    finally:
        delete_topics(kafka_bootstrap, [topic])


def test_tail_and_describe_name_a_missing_topic(kafka_bootstrap: str) -> None:
    missing = unique_name("cli.missing")
    assert "does not exist" in _run("events", "tail", missing, "--bootstrap", kafka_bootstrap, code=1).output
    assert (
        "does not exist" in _run("topics", "describe", missing, "--bootstrap", kafka_bootstrap, code=1).output
    )
