"""Kafka consumers of the industry service: the telemetry topic feeds the hourly rollup and device status.

The rollup consumer is the platform's IdempotentConsumer with a batch handler: each poll's new records
are applied at once. Each telemetry record packs hundreds of samples of hundreds of devices; applied one
by one, every record rewrote each of its devices' status row and hourly row, about one row update per
sample, and the rollup managed ~5,000 samples/s on this machine, less than the district's 7,000 devices at
one sample a second. Applied per poll, a device's rows are written once per poll however many of its
samples it holds (see docs/services/industry.md, Benchmark). The record handler is what the platform
falls back to, record by record, when a poll fails, so that only a bad record is dead-lettered.

Poison, besides what the platform already catches (undecodable values, unknown types): a record that is
not a TelemetryBatch, and one with a sample naming a device the registry does not have or a state code
no device sends (:class:`UnusableTelemetryError`, raised by the rollup). Such a record goes to the DLQ as a
whole, with the reason in ``dlq_error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from google.protobuf.message import Message

from services.industry import mapping
from services.industry.usecases.telemetry import TelemetryRollup
from services.platform.consumer import BatchHandler, Handler
from services.platform.kafka import EventEnvelope

__all__ = ["telemetry_batch_handler", "telemetry_handler"]


def _batch_of(envelope: EventEnvelope, message: Message) -> Message:
    if mapping.telemetry_batch(message) is None:
        # Dead-lettered by the consumer: something else was published on the telemetry topic.
        raise TypeError(f"{envelope.type} is not a {mapping.TELEMETRY_BATCH_TYPE}")
    return message


def telemetry_handler(rollup: TelemetryRollup) -> Handler:
    """One record at a time (the platform's fallback when a poll fails)."""

    def handle(conn: psycopg.Connection[Any], envelope: EventEnvelope, message: Message) -> None:
        rollup.apply_many(conn, [(_batch_of(envelope, message), envelope.time)])

    return handle


def telemetry_batch_handler(rollup: TelemetryRollup) -> BatchHandler:
    """A whole poll at once: one upsert of hourly sums and one status update per device."""

    def handle(conn: psycopg.Connection[Any], records: Sequence[tuple[EventEnvelope, Message]]) -> None:
        rollup.apply_many(
            conn, [(_batch_of(envelope, message), envelope.time) for envelope, message in records]
        )

    return handle
