"""The hub's one consumer: every domain's events topic and the hub's own, through the platform's
idempotent consumer, into the projections (projections/__init__.py) — a poll per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from google.protobuf.message import Message

from services.hub.projections import projector
from services.hub.repository import HubRepository
from services.hub.usecases.common import HubContext
from services.platform.consumer import BatchHandler, Handler
from services.platform.kafka import EventEnvelope

__all__ = ["projection_batch_handler", "projection_handler"]


def projection_handler(ctx: HubContext) -> Handler:
    """One event at a time (the platform's fallback when a poll fails, to isolate a poison event)."""
    project = projector(ctx)

    def handle(conn: psycopg.Connection[Any], envelope: EventEnvelope, message: Message) -> None:
        project(HubRepository(conn), envelope, message)

    return handle


def projection_batch_handler(ctx: HubContext) -> BatchHandler:
    """A whole poll in one transaction, event by event in partition order."""
    project = projector(ctx)

    def handle(conn: psycopg.Connection[Any], records: Sequence[tuple[EventEnvelope, Message]]) -> None:
        repo = HubRepository(conn)
        for envelope, message in records:
            project(repo, envelope, message)

    return handle
