"""`cityhub topics`, `cityhub events tail` and `cityhub dlq list|replay`: Kafka as an operator sees it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import click

from services.cli.defaults import bootstrap_option as _bootstrap_option
from services.platform import kafka as bus

__all__ = ["describe_record", "dlq", "events", "read_records", "topics"]

DLQ_HEADER_PREFIX = "dlq_"


def read_records(
    bootstrap: str, topic: str, *, from_beginning: bool, limit: int | None, follow: bool, idle_s: float = 2.0
) -> Iterator[Any]:
    """Records of every partition of ``topic``: the last ``limit`` (or all) and, with ``follow``, new ones.

    Reads without a consumer group, so looking at a topic never moves anyone's offsets."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bus.bootstrap_list(bootstrap), enable_auto_commit=False, group_id=None
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise click.ClickException(f"topic {topic!r} does not exist")
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        ends = consumer.end_offsets(assignment)
        begins = consumer.beginning_offsets(assignment)
        for tp in assignment:
            if from_beginning or limit is None:
                consumer.seek(tp, begins[tp] if from_beginning else ends[tp])
            else:
                consumer.seek(tp, max(begins[tp], ends[tp] - limit))
        emitted = 0
        last_record = time.monotonic()
        while True:
            batch = consumer.poll(timeout_ms=500)
            records = sorted((r for rs in batch.values() for r in rs), key=lambda r: (r.timestamp, r.offset))
            for record in records:
                yield record
                emitted += 1
                last_record = time.monotonic()
                if limit is not None and emitted >= limit:
                    return
            caught_up = all(consumer.position(tp) >= ends[tp] for tp in assignment)
            if not follow and caught_up and time.monotonic() - last_record > min(idle_s, 0.5):
                return
    finally:
        consumer.close()


def describe_record(record: Any) -> dict[str, Any]:
    """A record as JSON-ready data: where it is, its headers, and its value decoded by ``ce_type``."""
    headers = {
        name: (value.decode("utf-8", "replace") if value is not None else None)
        for name, value in record.headers
    }
    described: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "headers": headers,
    }
    ce_type = headers.get("ce_type")
    problem = "no ce_type header"
    if ce_type:
        try:
            described["value"] = json.loads(bus.to_json(bus.decode_payload(ce_type, record.value or b"")))
        except bus.EnvelopeError as exc:
            problem = str(exc)
        else:
            return described
    described["value_error"] = problem
    described["value_hex"] = (record.value or b"")[:256].hex()
    return described


@click.group()
def topics() -> None:
    """List and create topics."""


@topics.command("list")
@_bootstrap_option
@click.option("--all", "show_all", is_flag=True, help="Include Kafka's internal topics")
def topics_list(bootstrap: str, show_all: bool) -> None:
    """List topics."""
    for name in bus.list_topics(bootstrap):
        if show_all or not name.startswith("__"):
            click.echo(name)


@topics.command("create")
@_bootstrap_option
@click.argument("names", nargs=-1, required=True)
@click.option("--partitions", default=6, show_default=True, type=click.IntRange(1, 1024))
@click.option("--replication", default=1, show_default=True, type=click.IntRange(1, 16))
@click.option("--no-dlq", is_flag=True, help="Do not create the <topic>.dlq companions")
def topics_create(
    bootstrap: str, names: tuple[str, ...], partitions: int, replication: int, no_dlq: bool
) -> None:
    """Create topics (and their .dlq companions) that do not exist yet."""
    try:
        created = bus.ensure_topics(bootstrap, names, partitions, replication, with_dlq=not no_dlq)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAMES") from exc
    for name in created:
        click.echo(f"created {name}")
    if not created:
        click.echo("all topics already exist")


@click.group()
def events() -> None:
    """Look at events on a topic."""


@events.command("tail")
@_bootstrap_option
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record instead of the newest")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=None, help="Stop after this many records")
@click.option("-f", "--follow", is_flag=True, help="Keep waiting for new records")
def events_tail(bootstrap: str, topic: str, from_beginning: bool, limit: int | None, follow: bool) -> None:
    """Print each record's headers and its value decoded as JSON by its ce_type, one JSON line each."""
    if limit is None and not from_beginning and not follow:
        limit = 10
    for record in read_records(bootstrap, topic, from_beginning=from_beginning, limit=limit, follow=follow):
        click.echo(json.dumps(describe_record(record), ensure_ascii=False, sort_keys=True))


@click.group()
def dlq() -> None:
    """Dead letters: list them with their errors, replay them to their original topic."""


def _dead_letter_topic(topic: str) -> str:
    return topic if topic.endswith(bus.DLQ_SUFFIX) else bus.dlq_topic(topic)


@dlq.command("list")
@_bootstrap_option
@click.argument("topic")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=None)
def dlq_list(bootstrap: str, topic: str, limit: int | None) -> None:
    """Dead letters of TOPIC (or of TOPIC.dlq), oldest first, with the error that put them there."""
    for record in read_records(
        bootstrap, _dead_letter_topic(topic), from_beginning=True, limit=limit, follow=False
    ):
        click.echo(json.dumps(describe_record(record), ensure_ascii=False, sort_keys=True))


@dlq.command("replay")
@_bootstrap_option
@click.argument("topic")
@click.option(
    "--group",
    default="cityhub-dlq-replay",
    show_default=True,
    help="Consumer group remembering what was replayed",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be replayed")
@click.option(
    "--timeout", "timeout_s", default=60.0, show_default=True, help="Give up after this many seconds"
)
def dlq_replay(bootstrap: str, topic: str, group: str, dry_run: bool, timeout_s: float) -> None:
    """Send dead letters back to their original topic, once each (the group's offsets remember)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    source = _dead_letter_topic(topic)
    # Assigned by hand (the group only stores offsets): no rebalance to wait for, and "done" is exact —
    # every partition read up to the end offset it had when the command started.
    consumer = KafkaConsumer(
        bootstrap_servers=bus.bootstrap_list(bootstrap),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = bus.make_producer(bootstrap)
    replayed = 0
    try:
        partitions = consumer.partitions_for_topic(source)
        if not partitions:
            raise click.ClickException(f"topic {source!r} does not exist")
        assignment = [TopicPartition(source, p) for p in sorted(partitions)]
        consumer.assign(assignment)
        ends = consumer.end_offsets(assignment)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in assignment):
            if time.monotonic() > deadline:
                raise click.ClickException(f"timed out after {timeout_s}s with {replayed} record(s) replayed")
            offsets: dict[Any, Any] = {}
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue  # arrived after we started: the next replay takes it
                    headers = list(record.headers or ())
                    original = dict(headers).get("dlq_original_topic")
                    target = original.decode() if original else source.removesuffix(bus.DLQ_SUFFIX)
                    clean = [(k, v) for k, v in headers if not k.startswith(DLQ_HEADER_PREFIX)]
                    verb = "would replay" if dry_run else "replay"
                    click.echo(f"{verb} {source}@{record.partition}:{record.offset} -> {target}")
                    if not dry_run:
                        producer.send(target, key=record.key, value=record.value, headers=clean).get(
                            timeout=30
                        )
                    replayed += 1
                    offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
            if offsets and not dry_run:
                consumer.commit(offsets)
    finally:
        producer.close()
        consumer.close()
    click.echo(f"{'would replay' if dry_run else 'replayed'} {replayed} record(s)")
