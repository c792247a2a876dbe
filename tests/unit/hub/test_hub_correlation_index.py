"""A busy correlation window is indexed (projections/inbox.py, ``_Window``): the incidents and their reasons
must be exactly those that trying every pair of the window gives. The same events are folded into the
rebuild's in-memory tables twice — with the index, and with every window tried whole — and every table is
compared."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen
from cityhub.safety.v1 import events_pb2 as safety
from google.protobuf.message import Message
from psycopg.types.json import Jsonb

from services.hub.projections import inbox as inbox_projection
from services.hub.projections import projector
from services.hub.rebuild import fold_context
from services.hub.repository.memory import MemoryHub
from services.hub.usecases.common import HubConfig
from services.platform.kafka import EventEnvelope

# A correlation window's start (windows are counted from the epoch: 30 min).
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SITES = 100


def _envelope(message: Message, key: str, event_id: str, at: datetime, domain: str) -> EventEnvelope:
    return EventEnvelope.for_message(
        message,
        topic=f"cityhub.{domain}.events.v1",
        key=key,
        subject=key,
        source=domain,
        event_id=event_id,
        time=at,
    )


def _events(seed: int) -> list[tuple[EventEnvelope, Message]]:
    """Schools scattered over a few kilometres (some without a location), a kitchen at some of them, and
    alerts at random schools and kitchens inside one window: same subjects, links and distances all
    give reasons."""
    rng = random.Random(seed)
    events: list[tuple[EventEnvelope, Message]] = []

    def add(message: Message, key: str, event_id: str, at: datetime, domain: str) -> None:
        events.append((_envelope(message, key, event_id, at, domain), message))

    for n in range(SITES):
        site = f"site-{n:03d}"
        location = (
            None
            if n % 10 == 0
            else common_pb2.GeoPoint(
                latitude=26.5 + rng.uniform(0, 0.04), longitude=107.9 + rng.uniform(0, 0.02)
            )
        )
        registered = safety.SiteRegistered(site_id=site, name=f"School {n}", town="T", location=location)
        add(registered, site, f"reg-{n}", T0 - timedelta(days=1), "safety")
    for n in range(0, SITES, 7):
        kit = f"kit-{n:03d}"
        add(
            kitchen.KitchenRegistered(kitchen_id=kit, site_id=f"site-{n:03d}", name=f"Kitchen {n}"),
            kit,
            f"kreg-{n}",
            T0 - timedelta(days=1),
            "kitchen",
        )
    for n in range(220):
        at = T0 + timedelta(seconds=rng.uniform(0, 1790))
        if n % 9 == 0:
            kit = f"kit-{rng.randrange(0, SITES, 7):03d}"
            alert = kitchen.ColdChainAlertRaised(alert_id=f"cc-{n}", kitchen_id=kit)
            add(alert, kit, f"ev-{n}", at, "kitchen")
        else:
            site = f"site-{rng.randrange(SITES):03d}"
            raised = safety.AlertRaised(alert_id=f"al-{n}", site_id=site, severity=common_pb2.SEVERITY_HIGH)
            add(raised, site, f"ev-{n}", at, "safety")
    return events


def _fold(events: list[tuple[EventEnvelope, Message]]) -> dict[str, list[tuple[Any, ...]]]:
    project = projector(fold_context(HubConfig()))
    store = MemoryHub()
    for envelope, message in events:
        project(store, envelope, message)
    return {
        table: sorted((tuple(_plain(value) for value in row) for row in rows), key=repr)
        for table, (_, rows) in store.tables().items()
    }


def _plain(value: Any) -> Any:
    # psycopg's Jsonb wrapper compares by identity: compare what it wraps.
    return repr(value.obj) if isinstance(value, Jsonb) else value


@pytest.mark.parametrize("seed", [1, 2])
def test_the_indexed_window_forms_the_incidents_trying_every_pair_forms(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _events(seed)
    # Indexed from a few items on, whatever the default.
    monkeypatch.setattr(inbox_projection, "_INDEX_FROM", 16)
    indexed = _fold(events)
    monkeypatch.setattr(inbox_projection, "_INDEX_FROM", 10**9)
    whole = _fold(events)
    assert indexed == whole
    # Not a comparison of empty tables: the window was busy enough to be indexed, and incidents formed
    # for each kind of reason.
    assert len(indexed["inbox_items"]) > 16
    reasons = " ".join(str(row) for row in indexed["inbox_incidents"])
    assert "within" in reasons
    assert "kitchen" in reasons.lower()
