"""Reading a range of a topic for the `cityhub` Kafka commands: where to start and stop in each partition
(by offset or by time), which records to keep (CloudEvents type, subject, time) and how a record prints.

Reads without a consumer group, so looking at a topic never moves anyone's offsets.
"""

from __future__ import annotations

import base64
import heapq
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

import click

from services.platform import kafka as bus

__all__ = [
    "MOMENT",
    "PartitionRange",
    "Selection",
    "describe_record",
    "last_records",
    "open_reader",
    "plan_ranges",
    "scan",
]

_RELATIVE = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class MomentType(click.ParamType[datetime]):
    """An ISO-8601 moment (``2026-03-01``, ``2026-03-01T08:00+08:00``, ``…Z``) or a time ago (``30s``,
    ``10m``, ``2h``, ``1d``, ``1w``). Without a zone it is UTC, as `cityhub audit search` reads it."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        relative = _RELATIVE.match(text)
        if relative:
            amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
            return datetime.now(UTC) - timedelta(**{unit: amount})
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is neither an ISO-8601 time nor a time ago like 10m or 2h", param, ctx)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


MOMENT = MomentType()


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _header(record: Any, name: str) -> str | None:
    # The last header of a name wins, as in envelope_from_record.
    found: bytes | None = None
    for key, value in record.headers or ():
        if key == name:
            found = value
    return None if found is None else found.decode("utf-8", "replace")


def _matches(value: str | None, patterns: Sequence[str]) -> bool:
    return value is not None and any(fnmatchcase(value, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records to keep. Types and subjects are exact or shell-style patterns (``cityhub.safety.*``);
    several of one kind mean any of them. Times compare the record's Kafka timestamp, both ends included."""

    types: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def by_content(self) -> bool:
        return bool(self.types or self.subjects)

    def keeps(self, record: Any) -> bool:
        if self.since is not None and record.timestamp < _millis(self.since):
            return False
        if self.until is not None and record.timestamp > _millis(self.until):
            return False
        if self.types and not _matches(_header(record, "ce_type"), self.types):
            return False
        return not (self.subjects and not _matches(_header(record, "ce_subject"), self.subjects))


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets ``start`` (included) to ``stop`` (excluded) of one partition; ``stop=None`` follows on."""

    partition: int
    start: int
    stop: int | None

    @property
    def size(self) -> int | None:
        return None if self.stop is None else max(self.stop - self.start, 0)


def open_reader(bootstrap: str) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=bus.bootstrap_list(bootstrap), enable_auto_commit=False, group_id=None
    )


def _partitions(consumer: Any, topic: str) -> list[Any]:
    from kafka import TopicPartition

    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise click.ClickException(f"topic {topic!r} does not exist")
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def _offsets_at(
    consumer: Any, partitions: list[Any], moment: datetime, ends: Mapping[Any, int]
) -> dict[Any, int]:
    """The first offset at or after ``moment`` in each partition, from the broker's time index; the end
    offset where nothing is that recent yet."""
    found = consumer.offsets_for_times({tp: _millis(moment) for tp in partitions}, timeout_ms=30_000)
    return {tp: (ends[tp] if found.get(tp) is None else int(found[tp].offset)) for tp in partitions}


def plan_ranges(
    consumer: Any,
    topic: str,
    *,
    start_at: Literal["begin", "end"],
    since: datetime | None = None,
    until: datetime | None = None,
    from_offsets: Mapping[int | None, int] | None = None,
    to_offsets: Mapping[int | None, int] | None = None,
    follow: bool = False,
) -> list[PartitionRange]:
    """Each partition's range. ``start_at`` is ``"begin"`` or ``"end"`` where neither ``since`` nor
    ``from_offsets`` says more; ``until`` and ``to_offsets`` (excluded) bound the end, else the end offset
    at this moment, or nothing with ``follow``. Offsets maps give a partition's own value under its
    number and the one for every other partition under ``None``. Offsets and times together: the
    narrower of the two."""
    partitions = _partitions(consumer, topic)
    begins = consumer.beginning_offsets(partitions)
    ends = consumer.end_offsets(partitions)
    starts = dict(begins if start_at == "begin" else ends)
    stops: dict[Any, int | None] = {tp: (None if follow else ends[tp]) for tp in partitions}
    if since is not None:
        starts = _offsets_at(consumer, partitions, since, ends)
    if until is not None:
        # The first offset after ``until``: records that far and beyond are outside the range.
        after = _offsets_at(consumer, partitions, until + timedelta(milliseconds=1), ends)
        # With follow, a partition that has nothing after ``until`` yet may still receive in-range
        # records; it stays open and the selection's time check closes it.
        stops = {tp: (None if follow and after[tp] >= ends[tp] else after[tp]) for tp in partitions}
    for tp in partitions:
        if from_offsets:
            wanted = from_offsets.get(tp.partition, from_offsets.get(None))
            if wanted is not None:
                starts[tp] = max(starts[tp], wanted)
        if to_offsets:
            wanted = to_offsets.get(tp.partition, to_offsets.get(None))
            if wanted is not None:
                stop = stops[tp]
                stops[tp] = wanted if stop is None else min(stop, wanted)
        starts[tp] = max(starts[tp], begins[tp])
    return [PartitionRange(tp.partition, starts[tp], stops[tp]) for tp in partitions]


def scan(
    consumer: Any,
    topic: str,
    ranges: Sequence[PartitionRange],
    *,
    until: datetime | None = None,
    by_time: bool = True,
    timeout_s: float | None = None,
) -> Iterator[Any]:
    """Every record in the ranges: each poll's batch by timestamp (``by_time``, for people), or each
    partition in offset order (for copies, where a key's records must keep their order: producer clocks
    can make timestamps go backwards within a partition).

    Returns once every bounded partition reached its stop; an open one (``stop=None``) ends only when a
    record later than ``until`` arrives on it, so without ``until`` it follows for ever. ``timeout_s``
    bounds the whole read (TimeoutError), for a broker that stops answering half way."""
    from kafka import TopicPartition

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    order = (
        (lambda r: (r.timestamp, r.partition, r.offset)) if by_time else (lambda r: (r.partition, r.offset))
    )

    live = {r.partition: r for r in ranges if r.stop is None or r.start < r.stop}
    if not live:
        return
    assignment = [TopicPartition(topic, p) for p in sorted(live)]
    consumer.assign(assignment)
    for tp in assignment:
        consumer.seek(tp, live[tp.partition].start)
    limit_ms = None if until is None else _millis(until)
    while live:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"read of {topic} did not finish within {timeout_s}s")
        batch = consumer.poll(timeout_ms=500)
        records = sorted((r for rs in batch.values() for r in rs), key=order)
        for record in records:
            bound = live.get(record.partition)
            if bound is None:
                continue
            if bound.stop is not None and record.offset >= bound.stop:
                continue
            if bound.stop is None and limit_ms is not None and record.timestamp > limit_ms:
                _close(consumer, live, topic, record.partition)
                continue
            yield record
        for partition, bound in list(live.items()):
            if bound.stop is not None and consumer.position(TopicPartition(topic, partition)) >= bound.stop:
                _close(consumer, live, topic, partition)


def _close(consumer: Any, live: dict[int, PartitionRange], topic: str, partition: int) -> None:
    from kafka import TopicPartition

    live.pop(partition, None)
    consumer.pause(TopicPartition(topic, partition))


def last_records(records: Iterator[Any], count: int) -> list[Any]:
    """The ``count`` latest of ``records`` by timestamp, oldest first, holding no more than that."""
    newest: list[tuple[int, int, int, Any]] = []
    for record in records:
        entry = (record.timestamp, record.partition, record.offset, record)
        if len(newest) < count:
            heapq.heappush(newest, entry)
        elif entry[:3] > newest[0][:3]:
            heapq.heapreplace(newest, entry)
    return [entry[3] for entry in sorted(newest, key=lambda e: e[:3])]


def describe_record(record: Any, *, raw: bool = False) -> dict[str, Any]:
    """A record as JSON-ready data: where it is, when it was written, its headers, and its value decoded
    by ``ce_type`` (or, ``raw``, its bytes in base64 as they are on the topic)."""
    headers = {
        name: (value.decode("utf-8", "replace") if value is not None else None)
        for name, value in record.headers or ()
    }
    described: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(timespec="milliseconds"),
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "headers": headers,
    }
    if raw:
        described["value_base64"] = base64.b64encode(record.value or b"").decode("ascii")
        return described
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
