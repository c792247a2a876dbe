"""`cityhub topics describe`: a topic's partitions and offsets and the lag of every consumer group on it.

Lag is defined as ``services/platform/lag.py`` (the ``cityhub_consumer_lag`` gauge) and Kafka's own
``kafka-consumer-groups --describe`` define it: end offset minus committed offset. A partition a group
has committed on other partitions of the topic but not on this one counts from its first offset, where
that group would start reading it. Read through one admin client: every group's offsets on the topic
come back in one OffsetFetch request, not one per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from services.platform import kafka as bus

__all__ = ["describe_topic", "render_topic"]

# Groups of these protocol types commit consumer offsets; "" is a group that only stores offsets (as
# `cityhub dlq replay` and the tests' manual assignments do). Share and Connect groups have none.
_OFFSET_GROUP_TYPES = {"consumer", ""}


def describe_topic(bootstrap: str, topic: str) -> dict[str, Any]:
    """The report as JSON-ready data (what ``--json`` prints)."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    admin: Any = KafkaAdminClient(bootstrap_servers=bus.bootstrap_list(bootstrap), client_id="cityhub-cli")
    try:
        described = admin.describe_topics([topic])
        if not described or described[0].get("error_code", 0) != 0 or not described[0]["partitions"]:
            raise click.ClickException(f"topic {topic!r} does not exist")
        partitions = sorted(described[0]["partitions"], key=lambda p: p["partition_index"])
        tps = [TopicPartition(topic, p["partition_index"]) for p in partitions]
        begins = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.EARLIEST))
        ends = admin.list_partition_offsets(dict.fromkeys(tps, OffsetSpec.LATEST))
        begin = {tp.partition: int(begins[tp].offset) for tp in tps}
        end = {tp.partition: int(ends[tp].offset) for tp in tps}
        groups = [g for g in admin.list_groups() if g.get("protocol_type", "") in _OFFSET_GROUP_TYPES]
        committed: dict[str, Any] = (
            admin.list_group_offsets({g["group_id"]: tps for g in groups}) if groups else {}
        )
    finally:
        admin.close()
    rows = [
        {
            "partition": p["partition_index"],
            "leader": p["leader_id"],
            "replicas": list(p["replica_nodes"]),
            "isr": list(p["isr_nodes"]),
            "begin": begin[p["partition_index"]],
            "end": end[p["partition_index"]],
            # Exact for a plain topic; compaction and transaction markers make it an upper bound.
            "messages": end[p["partition_index"]] - begin[p["partition_index"]],
        }
        for p in partitions
    ]
    lags = []
    for group in sorted(groups, key=lambda g: g["group_id"]):
        offsets = {
            tp.partition: int(mark.offset)
            for tp, mark in committed.get(group["group_id"], {}).items()
            if mark is not None and mark.offset >= 0
        }
        if not offsets:
            continue
        per_partition = [
            {
                "partition": p,
                "committed": offsets.get(p),
                "end": end[p],
                "lag": max(end[p] - offsets.get(p, begin[p]), 0),
            }
            for p in sorted(end)
        ]
        lags.append(
            {
                "group": group["group_id"],
                "state": group.get("group_state") or "",
                "partitions": per_partition,
                "lag": sum(row["lag"] for row in per_partition),
            }
        )
    return {
        "topic": topic,
        "partitions": rows,
        "messages": sum(row["messages"] for row in rows),
        "groups": lags,
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header], *[[("-" if c is None else str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def _nodes(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)


def render_topic(report: dict[str, Any]) -> str:
    """The report as tables for a terminal."""
    lines = [
        f"topic {report['topic']}: {len(report['partitions'])} partition(s), {report['messages']} message(s)",
        "",
    ]
    lines += _table(
        ["PARTITION", "LEADER", "REPLICAS", "ISR", "BEGIN", "END", "MESSAGES"],
        [
            [
                p["partition"],
                p["leader"],
                _nodes(p["replicas"]),
                _nodes(p["isr"]),
                p["begin"],
                p["end"],
                p["messages"],
            ]
            for p in report["partitions"]
        ],
    )
    lines.append("")
    if not report["groups"]:
        lines.append("no consumer group has committed offsets on this topic")
        return "\n".join(lines)
    rows: list[list[object]] = []
    for group in report["groups"]:
        name, state = group["group"], group["state"]
        rows.extend(
            [name, state, p["partition"], p["committed"], p["end"], p["lag"]] for p in group["partitions"]
        )
        rows.append([name, state, "total", None, None, group["lag"]])
    lines += _table(["GROUP", "STATE", "PARTITION", "COMMITTED", "END", "LAG"], rows)
    return "\n".join(lines)
