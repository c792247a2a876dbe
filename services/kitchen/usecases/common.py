"""What every kitchen use case shares: the context bootstrap builds once (unit of work, configuration,
clock, vault, the safety site directory, the readings outlet), the caller's visibility, and the lookups
that answer NOT_FOUND the same way everywhere."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.model import AlertKind, Kitchen, KitchenAlert, Severity
from services.kitchen.repository import KitchenRepository
from services.platform.breaker import Breaker
from services.platform.errors import NotFoundError
from services.platform.outbox import OutboxWriter
from services.platform.uow import Transaction, UnitOfWork
from services.platform.vault import Vault

__all__ = [
    "Clock",
    "KitchenConfig",
    "KitchenContext",
    "KitchenTx",
    "KitchenUnitOfWork",
    "SiteDirectory",
    "SiteInfo",
    "new_id",
    "raise_alert",
    "require_kitchen",
    "utc_now",
]

Clock = Callable[[], datetime]
KitchenUnitOfWork = UnitOfWork[KitchenRepository]
KitchenTx = Transaction[KitchenRepository]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A server-assigned id, e.g. ``kit_3f2a...`` (the prefix says what it names)."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class KitchenConfig:
    """The domain knobs the use cases read (bootstrap fills them from KitchenSettings)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    fever_threshold_c: float = 37.3
    face_match_threshold: float = 0.8
    readings_max_per_request: int = 5000
    readings_max_future_s: float = 300.0
    readings_max_age_s: float = 2 * 86400.0
    readings_ack_timeout_s: float = 5.0
    violation_join_window_s: float = 600.0
    sample_min_grams: float = 125.0
    sample_keep_hours: int = 48


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What the safety service says about a site (only what a kitchen needs)."""

    site_id: str
    name: str
    # "SCHOOL", "KINDERGARTEN", "HOSPITAL", "RELIGIOUS_VENUE"
    kind: str
    town: str
    division_code: str
    latitude: float | None
    longitude: float | None


class SiteDirectory(Protocol):
    """The safety service's sites. ``get_site`` returns None for an unknown site and raises
    UnavailableError when safety cannot be reached within the retry budget."""

    def get_site(self, site_id: str) -> SiteInfo | None: ...


@dataclass(slots=True)
class KitchenContext:
    """Everything a use case may need, built once by bootstrap (tests build their own)."""

    uow: KitchenUnitOfWork
    config: KitchenConfig
    vault: Vault
    sites: SiteDirectory
    clock: Clock = utc_now
    # The readings outlet (IngestReadings): the producer writing straight to the readings topic.
    producer: Any = None
    readings_topic: str = "cityhub.kitchen.readings.v1"
    readings_partitions: int = 1
    source: str = "/cityhub/kitchen"
    kafka_breaker: Breaker | None = None
    # The outbox writer, for consumers that publish events on their own connection (readings rules).
    outbox: OutboxWriter | None = None


def require_kitchen(tx: KitchenTx, kitchen_id: str, visibility: Visibility) -> Kitchen:
    """The kitchen, or NOT_FOUND when it does not exist or the caller may not see it (the same answer)."""
    kitchen = tx.repo.get_kitchen(kitchen_id) if kitchen_id else None
    if kitchen is None or not visibility.sees(kitchen.kitchen_id, kitchen.site_id):
        raise NotFoundError(f"no kitchen {kitchen_id!r}")
    return kitchen


def raise_alert(
    tx: KitchenTx,
    *,
    kitchen_id: str,
    kind: AlertKind,
    severity: Severity,
    subject_id: str,
    message: str,
    at: datetime,
) -> KitchenAlert:
    """Store an alert to the kitchen's manager and return it (the caller publishes its own event)."""
    alert = KitchenAlert(new_id("kal"), kitchen_id, kind, severity, subject_id, message, at)
    tx.repo.add_alert(alert)
    return alert
