"""`cityhub topics list|create|describe` and `cityhub dlq list|replay`: Kafka as an operator sees it
(`cityhub events` is in events_commands)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from services.cli.defaults import bootstrap_option as _bootstrap_option
from services.cli.records import describe_record, open_reader, plan_ranges, scan
from services.cli.topic_report import describe_topic, render_topic
from services.platform import kafka as bus

__all__ = ["dlq", "topics"]

DLQ_HEADER_PREFIX = "dlq_"


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


@topics.command("describe")
@_bootstrap_option
@click.argument("topic")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables")
def topics_describe(bootstrap: str, topic: str, as_json: bool) -> None:
    """Partitions of TOPIC (leader, replicas, in-sync replicas, first and end offsets, messages) and
    every consumer group that committed offsets on it, with each partition's lag and the group's total."""
    report = describe_topic(bootstrap, topic)
    click.echo(json.dumps(report, sort_keys=True) if as_json else render_topic(report))


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
    source = _dead_letter_topic(topic)
    consumer = open_reader(bootstrap)
    try:
        ranges = plan_ranges(consumer, source, start_at="begin")
        for shown, record in enumerate(scan(consumer, source, ranges), start=1):
            click.echo(json.dumps(describe_record(record), ensure_ascii=False, sort_keys=True))
            if limit is not None and shown >= limit:
                break
    finally:
        consumer.close()


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
