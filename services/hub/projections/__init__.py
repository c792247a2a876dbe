"""The hub's projections: each family turns the events it cares about into rows of its own tables, in
the consumer's transaction. Order matters — entities first (the inbox and the dashboard look up the
entity an event is about), then the inbox, then the dashboard.

A projection may use only the event (its payload, type, subject, id and ``ce_time``) and rows earlier
events made: never the wall clock, a random id or the order events of different partitions arrived in
beyond what the rows record, so a rebuild by replay comes out identical (``cityhub hub rebuild``)."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from services.hub.domain.entities import resolve
from services.hub.mapping.entities import domain_event
from services.hub.projections import dashboard, entities, inbox
from services.hub.repository.store import ProjectionStore
from services.hub.usecases.common import HubContext
from services.platform.kafka import EventEnvelope

__all__ = ["Projector", "projector"]

Projector = Callable[[ProjectionStore, EventEnvelope, Message], None]


def projector(ctx: HubContext) -> Projector:
    """Every family's projection of one event, in the order they run; the event is read for the rules
    (domain_event, resolve) once, for the entities and the inbox alike."""
    inbox_step = inbox.projector(ctx)
    dashboard_step = dashboard.projector(ctx)

    def project(repo: ProjectionStore, envelope: EventEnvelope, message: Message) -> None:
        event = domain_event(envelope, message)
        found = None if event is None else resolve(event)
        entities.project_event(repo, event, found)
        inbox_step(repo, envelope, message, found)
        dashboard_step(repo, envelope, message)

    return project
