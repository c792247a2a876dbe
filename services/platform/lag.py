"""Consumer lag as the broker sees it: for each consumer group of the service, every partition's end
offset minus the group's committed offset, published as ``cityhub_consumer_lag``.

Measured apart from the consumers, on a thread and connections of its own, so the figure is right even
while a consumer is stuck inside a slow poll — exactly when an operator looks at it. (It used to be
computed by the consumer itself, between polls, from the high-water mark its last fetch carried: a rollup
hundreds of records behind read 0, because the loop that should report the lag was the one that was
behind.) The definition is the one Kafka's own tools use (``kafka-consumer-groups --describe``: log end
offset minus committed offset); a partition the group never committed counts from its earliest offset,
where a new group starts reading.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.platform.kafka import RECONNECT_BACKOFF_MAX_MS
from services.platform.logs import get_logger
from services.platform.metrics import CONSUMER_LAG

__all__ = ["ConsumerGroup", "LagProbe"]

log = get_logger()


@dataclass(frozen=True, slots=True)
class ConsumerGroup:
    """One consumer of the service: its metric name, its Kafka group and the topics it reads."""

    name: str
    group_id: str
    topics: Sequence[str]


class LagProbe:
    def __init__(self, bootstrap: Sequence[str], groups: Sequence[ConsumerGroup], *, interval_s: float = 5.0):
        self._bootstrap = list(bootstrap)
        self._groups = list(groups)
        self._interval = interval_s
        self._admin: Any = None
        self._probe: Any = None

    def measure(self) -> dict[tuple[str, str, int], int]:
        """One round: {(consumer name, topic, partition): lag}, also set on the gauge."""
        from kafka import TopicPartition

        admin, probe = self._clients()
        found: dict[tuple[str, str, int], int] = {}
        for group in self._groups:
            partitions = [
                TopicPartition(topic, partition)
                for topic in group.topics
                for partition in sorted(probe.partitions_for_topic(topic) or ())
            ]
            if not partitions:
                continue
            committed: Mapping[Any, Any] = admin.list_group_offsets(group.group_id).get(group.group_id, {})
            ends = probe.end_offsets(partitions)
            starts: Mapping[Any, int] | None = None
            for tp in partitions:
                mark = committed.get(tp)
                offset = mark.offset if mark is not None and mark.offset >= 0 else None
                if offset is None:
                    starts = starts if starts is not None else probe.beginning_offsets(partitions)
                    offset = starts[tp]
                lag = max(int(ends[tp]) - int(offset), 0)
                found[(group.name, tp.topic, tp.partition)] = lag
                CONSUMER_LAG.labels(group.name, tp.topic, str(tp.partition)).set(lag)
        return found

    def run(self, stop: threading.Event) -> None:
        """Measure every ``interval_s`` until ``stop`` is set (a broker outage is logged and waited out)."""
        try:
            while not stop.wait(self._interval):
                try:
                    self.measure()
                except Exception as exc:  # noqa: BLE001 - a metric must never take the service down
                    log.warning("consumer_lag_probe_failed", error=str(exc))
                    self._close_clients()
        finally:
            self._close_clients()

    def _clients(self) -> tuple[Any, Any]:
        from kafka import KafkaAdminClient, KafkaConsumer

        if self._admin is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id="cityhub-lag-probe",
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            )
        if self._probe is None:
            self._probe = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=None,
                client_id="cityhub-lag-probe",
                enable_auto_commit=False,
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            )
        return self._admin, self._probe

    def _close_clients(self) -> None:
        for client in (self._admin, self._probe):
            if client is not None:
                try:
                    client.close()
                except Exception as exc:  # noqa: BLE001 - closing is best effort
                    log.warning("consumer_lag_probe_close_failed", error=str(exc))
        self._admin = self._probe = None
