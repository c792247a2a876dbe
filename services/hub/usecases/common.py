"""What every hub use case shares: the context bootstrap builds once (unit of work, configuration, clock,
the domains' peer clients for live detail and safety acknowledgements)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.hub.repository import HubRepository
from services.platform.grpc_client import PeerClient
from services.platform.outbox import OutboxWriter
from services.platform.uow import Transaction, UnitOfWork

__all__ = [
    "DOMAINS",
    "HUB_EVENTS_TOPIC",
    "Clock",
    "HubConfig",
    "HubContext",
    "HubTx",
    "HubUnitOfWork",
    "derived_id",
    "utc_now",
]

Clock = Callable[[], datetime]
HubUnitOfWork = UnitOfWork[HubRepository]
HubTx = Transaction[HubRepository]
# The domains, in the fixed order of a 360 view's parts.
DOMAINS = ("safety", "industry", "kitchen", "commerce", "govservice")
# The hub topic by default (HubSettings.hub_events_topic has the same default; a deployment may rename it).
HUB_EVENTS_TOPIC = "cityhub.hub.events.v1"
_NAMESPACE = uuid.UUID("6f1c2a8e-0b7d-4c1e-9a53-5b2f0f1d7c11")


def utc_now() -> datetime:
    return datetime.now(UTC)


def derived_id(prefix: str, *parts: str) -> str:
    """An id derived from what made the thing (event ids, keys) — never random, never from the clock — so
    a rebuild by replay makes the same ids."""
    return f"{prefix}_{uuid.uuid5(_NAMESPACE, '|'.join(parts)).hex}"


@dataclass(frozen=True, slots=True)
class HubConfig:
    """The hub's knobs the use cases read (bootstrap fills them from HubSettings)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    detail_timeout: timedelta = timedelta(seconds=1)
    dedup_window: timedelta = timedelta(hours=1)
    escalate_after: Mapping[str, timedelta] = field(
        default_factory=lambda: {
            "CRITICAL": timedelta(minutes=5),
            "HIGH": timedelta(minutes=15),
            "MEDIUM": timedelta(hours=1),
            "LOW": timedelta(hours=4),
            "INFO": timedelta(hours=4),
        }
    )
    reminder_interval: timedelta = timedelta(minutes=10)
    correlation_window: timedelta = timedelta(minutes=30)
    correlation_distance_m: float = 1000.0
    watch_queue_size: int = 1000


@dataclass(slots=True)
class HubContext:
    """Everything a use case may need, built once by bootstrap (tests build their own)."""

    uow: HubUnitOfWork
    config: HubConfig
    # The domains' clients by domain name ("safety", ...); a domain without a configured address is absent
    # (its live detail is then marked unavailable).
    peers: Mapping[str, PeerClient[Any]]
    # For projections that publish on the hub's topic from the consumer's connection.
    outbox: OutboxWriter | None = None
    events_topic: str = HUB_EVENTS_TOPIC
    clock: Clock = utc_now
    # A dedicated autocommit connection for LISTEN (the inbox's watch feed: one per process); None: the
    # feed takes changes only from in-process publishes (unit tests).
    listen: Callable[[], Any] | None = None
    # Registers a hook run when the gRPC server begins to stop (open watch streams end at once).
    on_stop: Callable[[Callable[[], None]], None] | None = None
