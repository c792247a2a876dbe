"""`cityhub events tail|replay`: read a topic's events filtered by type, subject and time; copy a range of
them to another topic."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click

from services.cli.defaults import bootstrap_option as _bootstrap_option
from services.cli.records import (
    MOMENT,
    PartitionRange,
    Selection,
    describe_record,
    last_records,
    open_reader,
    plan_ranges,
    scan,
)
from services.platform import kafka as bus

__all__ = ["REPLAYED_FROM_HEADER", "events"]

# Names the record a copy was made from: "<topic>:<partition>:<offset>" (':' is not legal in topic names).
REPLAYED_FROM_HEADER = "replayed_from"
# Acknowledgements are checked every this many sends, so a failure stops a long replay early and the
# pending futures stay few.
_CHECK_EVERY = 5000


class OffsetType(click.ParamType[tuple[int | None, int]]):
    """``N`` for every partition, or ``P:N`` for partition P (given again for other partitions)."""

    name = "[partition:]offset"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int | None, int]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        partition, _, offset = text.rpartition(":")
        try:
            parsed = (int(partition) if partition else None, int(offset))
        except ValueError:
            self.fail(f"{text!r} is not OFFSET or PARTITION:OFFSET", param, ctx)
        if parsed[1] < 0 or (parsed[0] is not None and parsed[0] < 0):
            self.fail(f"{text!r}: partitions and offsets are not negative", param, ctx)
        return parsed


OFFSET = OffsetType()

_type_option = click.option(
    "--type",
    "types",
    multiple=True,
    help="CloudEvents type (ce_type), exact or a pattern like 'cityhub.safety.*'; repeat for any of several",
)
_subject_option = click.option(
    "--subject",
    "subjects",
    multiple=True,
    help="ce_subject, exact or a pattern like 'S-00*'; repeat for any of several",
)
_since_option = click.option(
    "--since",
    type=MOMENT,
    default=None,
    help="Records written at or after: ISO-8601, or ago like 10m, 2h, 1d",
)
_until_option = click.option(
    "--until", type=MOMENT, default=None, help="Records written at or before: ISO-8601, or ago like 10m"
)


def _check_window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until < since:
        raise click.UsageError("--until is before --since")


@click.group()
def events() -> None:
    """Look at events on a topic; copy a range of them to another topic."""


@events.command("tail")
@_bootstrap_option
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record")
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many records (without a start or -f: the last N, default 10)",
)
@click.option("-f", "--follow", is_flag=True, help="Keep waiting for new records")
@_type_option
@_subject_option
@_since_option
@_until_option
@click.option("--raw", is_flag=True, help="Print each value's bytes in base64 instead of decoding it")
def events_tail(  # noqa: PLR0917 - click passes every option positionally
    bootstrap: str,
    topic: str,
    from_beginning: bool,
    limit: int | None,
    follow: bool,
    types: tuple[str, ...],
    subjects: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    raw: bool,
) -> None:
    """One JSON line per record of TOPIC: where it is, its time, key and headers, and its value decoded
    to JSON by its ce_type.

    With --since or --from-beginning: records from there on, oldest first (--since seeks by the broker's
    time index). With -f alone: new records as they come. Otherwise the last -n records (default 10).
    Filters combine with all of these; times are the record's Kafka timestamp."""
    _check_window(since, until)
    selection = Selection(types, subjects, since, until)
    consumer = open_reader(bootstrap)
    try:
        chosen: Iterable[Any]
        if since is None and not from_beginning and not follow:
            chosen = _last(consumer, topic, selection, limit or 10)
        else:
            chosen = _stream(consumer, topic, selection, from_beginning=from_beginning, follow=follow)
        for shown, record in enumerate(chosen, start=1):
            click.echo(json.dumps(describe_record(record, raw=raw), ensure_ascii=False, sort_keys=True))
            if limit is not None and shown >= limit:
                break
    finally:
        consumer.close()


def _last(consumer: Any, topic: str, selection: Selection, count: int) -> list[Any]:
    ranges = plan_ranges(consumer, topic, start_at="begin", until=selection.until)
    if not selection.by_content:
        # The latest `count` records overall are among the latest `count` of each partition; filtered,
        # they may be anywhere, and the whole range is read.
        ranges = [PartitionRange(r.partition, max(r.start, (r.stop or 0) - count), r.stop) for r in ranges]
    return last_records((r for r in scan(consumer, topic, ranges) if selection.keeps(r)), count)


def _stream(
    consumer: Any, topic: str, selection: Selection, *, from_beginning: bool, follow: bool
) -> Iterator[Any]:
    ranges = plan_ranges(
        consumer,
        topic,
        start_at="begin" if from_beginning else "end",
        since=selection.since,
        until=selection.until,
        follow=follow,
    )
    return (r for r in scan(consumer, topic, ranges, until=selection.until) if selection.keeps(r))


@dataclass
class _Tally:
    """What a replay did in one partition."""

    range: PartitionRange
    copied: int = 0
    skipped: int = 0


@dataclass
class _Copier:
    """Sends copies and checks their acknowledgements in bounded batches."""

    producer: bus.Producer
    target: str
    pending: list[bus.SendFuture] = field(default_factory=list)

    def send(self, record: Any) -> None:
        origin = f"{record.topic}:{record.partition}:{record.offset}".encode()
        headers = [(k, v) for k, v in record.headers or () if k != REPLAYED_FROM_HEADER]
        headers.append((REPLAYED_FROM_HEADER, origin))
        self.pending.append(
            self.producer.send(self.target, key=record.key, value=record.value, headers=headers)
        )
        if len(self.pending) >= _CHECK_EVERY:
            self.settle()

    def settle(self) -> None:
        self.producer.flush(timeout=60)
        for future in self.pending:
            future.get(timeout=60)
        self.pending.clear()


@events.command("replay")
@_bootstrap_option
@click.option("--topic", "source", required=True, help="Topic to copy from")
@click.option("--to", "target", required=True, help="Topic to copy to (must exist, must not be --topic)")
@_since_option
@_until_option
@click.option(
    "--from-offset",
    "from_offsets",
    type=OFFSET,
    multiple=True,
    help="First offset to copy: N for every partition or P:N for partition P (repeatable)",
)
@click.option(
    "--to-offset",
    "to_offsets",
    type=OFFSET,
    multiple=True,
    help="Offset to stop before (excluded): N or P:N (repeatable)",
)
@_type_option
@_subject_option
@click.option("--dry-run", is_flag=True, help="Only count what would be copied")
@click.option(
    "--timeout", "timeout_s", default=300.0, show_default=True, help="Give up after this many seconds"
)
def events_replay(  # noqa: PLR0917 - click passes every option positionally
    bootstrap: str,
    source: str,
    target: str,
    since: datetime | None,
    until: datetime | None,
    from_offsets: tuple[tuple[int | None, int], ...],
    to_offsets: tuple[tuple[int | None, int], ...],
    types: tuple[str, ...],
    subjects: tuple[str, ...],
    dry_run: bool,
    timeout_s: float,
) -> None:
    """Copy a range of --topic to --to: each record's key, value and headers, plus a `replayed_from`
    header naming the record it copies. The range defaults to everything on the topic now; times and
    offsets narrow it, --type/--subject filter it. Each partition is copied in offset order through an
    idempotent producer, so a key's records arrive in their order (the copy is partitioned by key)."""
    if source == target:
        raise click.UsageError("refusing to replay a topic onto itself (--topic and --to are the same)")
    _check_window(since, until)
    selection = Selection(types, subjects, since, until)
    consumer = open_reader(bootstrap)
    producer = None if dry_run else bus.make_producer(bootstrap, client_id="cityhub-events-replay")
    try:
        if not consumer.partitions_for_topic(target):
            raise click.ClickException(
                f"topic {target!r} does not exist (create it with `cityhub topics create`)"
            )
        ranges = plan_ranges(
            consumer,
            source,
            start_at="begin",
            since=since,
            until=until,
            from_offsets=dict(from_offsets),
            to_offsets=dict(to_offsets),
        )
        tallies = {r.partition: _Tally(r) for r in ranges}
        copier = None if producer is None else _Copier(producer, target)
        try:
            for record in scan(consumer, source, ranges, by_time=False, timeout_s=timeout_s):
                tally = tallies[record.partition]
                if not selection.keeps(record):
                    tally.skipped += 1
                    continue
                if copier is not None:
                    copier.send(record)
                tally.copied += 1
            if copier is not None:
                copier.settle()
        except TimeoutError as error:
            done = sum(t.copied for t in tallies.values())
            raise click.ClickException(f"{error}; {done} record(s) sent before giving up") from error
    finally:
        if producer is not None:
            producer.close(timeout=30)
        consumer.close()
    _report(source, target, tallies.values(), dry_run=dry_run)


def _report(source: str, target: str, tallies: Iterable[_Tally], *, dry_run: bool) -> None:
    verb = "would replay" if dry_run else "replayed"
    copied = skipped = 0
    for tally in tallies:
        r = tally.range
        if r.stop is None or not r.size:  # a replay's ranges are bounded; an empty one has nothing to say
            continue
        click.echo(
            f"{source} partition {r.partition}: offsets {r.start}..{r.stop - 1}: "
            f"{tally.copied} {verb}, {tally.skipped} filtered out"
        )
        copied += tally.copied
        skipped += tally.skipped
    click.echo(f"{verb} {copied} record(s) from {source} to {target} ({skipped} filtered out)")
