"""The hub's projections: each family turns the events it cares about into rows of its own tables, in
the consumer's transaction. Order matters — entities first (the inbox and the dashboard look up the
entity an event is about), then the inbox, then the dashboard.

A projection may use only the event (its payload, type, subject, id and ``ce_time``) and rows earlier
events made: never the wall clock, a random id or the order events of different partitions arrived in
beyond what the rows record, so a rebuild by replay comes out identical (``cityhub hub rebuild``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from services.hub.projections import dashboard, entities, inbox
from services.hub.repository.store import ProjectionStore
from services.hub.usecases.common import HubContext
from services.platform.kafka import EventEnvelope

__all__ = ["Projector", "projectors"]

Projector = Callable[[ProjectionStore, EventEnvelope, Message], None]


def projectors(ctx: HubContext) -> Sequence[Projector]:
    """Every family's projector, in the order they run for each event."""
    return (entities.projector(ctx), inbox.projector(ctx), dashboard.projector(ctx))
