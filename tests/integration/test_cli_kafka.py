"""The `cityhub` Kafka commands against the real broker: topics, events tail, dlq list and replay."""

from __future__ import annotations

import json
from typing import Any

from cityhub.testing.v1 import events_pb2
from click.testing import CliRunner

from services.cli.__main__ import cli
from services.platform import kafka as bus
from tests.support import unique_name


def _run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _publish(bootstrap: str, topic: str, counter_id: str, amount: int) -> bus.EventEnvelope:
    envelope = bus.EventEnvelope.for_message(
        events_pb2.CounterIncremented(counter_id=counter_id, amount=amount, sequence=1),
        topic=topic,
        key=counter_id,
        subject=f"counter/{counter_id}",
        source="/cityhub/tests",
    )
    producer = bus.make_producer(bootstrap)
    try:
        producer.send(topic, key=envelope.key_bytes, value=envelope.payload, headers=envelope.headers()).get(
            30
        )
    finally:
        producer.close(10)
    return envelope


def test_topics_create_and_list(kafka_bootstrap: str) -> None:
    topic = unique_name("cli.topics")
    created = _run("topics", "create", topic, "--partitions", "2", "--bootstrap", kafka_bootstrap)
    assert f"created {topic}" in created.stdout
    assert f"created {topic}.dlq" in created.stdout
    listed = _run("topics", "list", "--bootstrap", kafka_bootstrap).stdout.split()
    assert topic in listed
    assert f"{topic}.dlq" in listed
    again = _run("topics", "create", topic, "--bootstrap", kafka_bootstrap)
    assert "all topics already exist" in again.stdout


def test_events_tail_decodes_values_by_ce_type(kafka_bootstrap: str) -> None:
    topic = unique_name("cli.tail")
    bus.ensure_topics(kafka_bootstrap, [topic], partitions=1, replication=1)
    sent = _publish(kafka_bootstrap, topic, "c-1", 42)
    out = _run(
        "events", "tail", topic, "--from-beginning", "--limit", "1", "--bootstrap", kafka_bootstrap
    ).stdout
    line = json.loads(out.strip().splitlines()[-1])
    assert line["headers"]["ce_type"] == "cityhub.testing.v1.CounterIncremented"
    assert line["headers"]["ce_id"] == sent.id
    assert line["key"] == "c-1"
    assert line["value"] == {"counterId": "c-1", "amount": "42", "sequence": "1"}


def test_dlq_list_shows_the_error_and_replay_sends_the_record_back_once(kafka_bootstrap: str) -> None:
    topic = unique_name("cli.dlq")
    bus.ensure_topics(kafka_bootstrap, [topic], partitions=1, replication=1)
    envelope = bus.EventEnvelope.for_message(
        events_pb2.CounterIncremented(counter_id="c-9", amount=1, sequence=1),
        topic=topic,
        key="c-9",
        subject="counter/c-9",
        source="/cityhub/tests",
    )
    producer = bus.make_producer(kafka_bootstrap)
    try:
        headers = [
            *envelope.headers(),
            ("dlq_error", b"handler refused it"),
            ("dlq_original_topic", topic.encode()),
        ]
        producer.send(bus.dlq_topic(topic), key=b"c-9", value=envelope.payload, headers=headers).get(30)
    finally:
        producer.close(10)

    listed = _run("dlq", "list", topic, "--bootstrap", kafka_bootstrap).stdout.strip().splitlines()
    assert len(listed) == 1
    assert json.loads(listed[0])["headers"]["dlq_error"] == "handler refused it"

    group = unique_name("replay")
    replayed = _run("dlq", "replay", topic, "--group", group, "--bootstrap", kafka_bootstrap).stdout
    assert "replayed 1 record(s)" in replayed
    back = _run("events", "tail", topic, "--from-beginning", "--bootstrap", kafka_bootstrap).stdout
    records = [json.loads(line) for line in back.strip().splitlines()]
    assert len(records) == 1
    assert records[0]["headers"]["ce_id"] == envelope.id
    assert not any(name.startswith("dlq_") for name in records[0]["headers"])
    # The group remembers: a second replay sends nothing again.
    assert (
        "replayed 0 record(s)"
        in _run("dlq", "replay", topic, "--group", group, "--bootstrap", kafka_bootstrap).stdout
    )
