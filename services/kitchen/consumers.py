"""Kafka consumers of the kitchen service: the readings topic feeds the equipment rules.

The readings consumer is the platform's IdempotentConsumer: each record's id (uuid5 of the ingest request
id and the kitchen id) is recorded in the transaction that applies it, so a retried IngestReadings is
applied once. The batch handler applies a whole poll at once (each unit's row locked and rewritten once
per poll, its readings of every record in read_at order); the record handler is what the platform falls
back to, record by record, when a poll fails, so that only a bad record is dead-lettered. A record that is
not a ReadingBatch is poison (dead-lettered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from google.protobuf.message import Message

from services.kitchen.mapping.equipment import READING_BATCH_TYPE
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.readings import ReadingsRules
from services.platform.consumer import BatchHandler, Handler
from services.platform.kafka import EventEnvelope

__all__ = ["readings_batch_handler", "readings_handler"]


def _batch_of(envelope: EventEnvelope, message: Message) -> Message:
    if message.DESCRIPTOR.full_name != READING_BATCH_TYPE:
        raise TypeError(f"{envelope.type} is not a {READING_BATCH_TYPE}")
    return message


def readings_handler(ctx: KitchenContext) -> Handler:
    """One record at a time (the platform's fallback when a poll fails)."""
    rules = ReadingsRules(ctx)

    def handle(conn: psycopg.Connection[Any], envelope: EventEnvelope, message: Message) -> None:
        rules.apply(conn, [_batch_of(envelope, message)])

    return handle


def readings_batch_handler(ctx: KitchenContext) -> BatchHandler | None:
    """A whole poll at once: one lock and one update per unit, one upsert of its days."""
    rules = ReadingsRules(ctx)

    def handle(conn: psycopg.Connection[Any], records: Sequence[tuple[EventEnvelope, Message]]) -> None:
        rules.apply(conn, [_batch_of(envelope, message) for envelope, message in records])

    return handle
