"""What every commerce use case shares: the context bootstrap builds once (unit of work, configuration,
clock, vault, the industry enterprise directory), the caller's visibility, and the lookups that answer
NOT_FOUND the same way everywhere."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Protocol
from zoneinfo import ZoneInfo

from services.commerce.domain.access import Visibility
from services.commerce.domain.model import Chamber, Membership, PointSource
from services.commerce.repository import CommerceRepository
from services.platform.errors import NotFoundError
from services.platform.uow import Transaction, UnitOfWork
from services.platform.vault import Vault

__all__ = [
    "DEFAULT_POINTS",
    "DEFAULT_SERVICE_DAYS",
    "Clock",
    "CommerceConfig",
    "CommerceContext",
    "CommerceTx",
    "CommerceUnitOfWork",
    "EnterpriseDirectory",
    "EnterpriseInfo",
    "new_id",
    "require_chamber",
    "require_membership",
    "utc_now",
]

Clock = Callable[[], datetime]
CommerceUnitOfWork = UnitOfWork[CommerceRepository]
CommerceTx = Transaction[CommerceRepository]

# Points per thing done (docs/services/commerce.md, "Excellence"). SERVICE_RATING is per satisfaction
# point given (a 5 earns 5 x 2); AWARD points are the award's own.
DEFAULT_POINTS: Mapping[PointSource, int] = MappingProxyType(
    {
        PointSource.ACTIVITY_ATTENDANCE: 10,
        PointSource.MATCH_COMPLETED: 30,
        PointSource.COURSE_COMPLETED: 20,
        PointSource.SERVICE_RATING: 2,
        PointSource.AWARD: 0,
    }
)
# Promised working time per service type, in calendar days from submission.
DEFAULT_SERVICE_DAYS: Mapping[str, int] = MappingProxyType(
    {"FINANCING": 10, "LEGAL": 7, "POLICY_CONSULTATION": 3, "TALENT": 14}
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A server-assigned id, e.g. ``mem_3f2a...`` (the prefix says what it names)."""
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class CommerceConfig:
    """The domain knobs the use cases read (bootstrap fills them from CommerceSettings)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    code_validity_s: int = 300
    code_leeway_s: int = 30
    key_retire_after_s: int = 86400
    points: Mapping[PointSource, int] = field(default_factory=lambda: DEFAULT_POINTS)
    service_days: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SERVICE_DAYS)


@dataclass(frozen=True, slots=True)
class EnterpriseInfo:
    """What the industry service says about an enterprise (only what a membership needs)."""

    credit_code: str
    name: str
    park_id: str
    # The industry Sector name without its prefix, e.g. "MACHINERY".
    sector: str


class EnterpriseDirectory(Protocol):
    """The industry service's enterprises. ``get_enterprise`` returns None for an unknown credit code and
    raises UnavailableError when industry cannot be reached within the retry budget."""

    def get_enterprise(self, credit_code: str) -> EnterpriseInfo | None: ...


@dataclass(slots=True)
class CommerceContext:
    """Everything a use case may need, built once by bootstrap (tests build their own)."""

    uow: CommerceUnitOfWork
    config: CommerceConfig
    # Seals the federations' private signing keys at rest.
    vault: Vault
    enterprises: EnterpriseDirectory
    clock: Clock = utc_now


def require_chamber(tx: CommerceTx, chamber_id: str, visibility: Visibility) -> Chamber:
    """The chamber, or NOT_FOUND when it does not exist or the caller may not act on it (the same answer)."""
    chamber = tx.repo.get_chamber(chamber_id) if chamber_id else None
    if chamber is None or not visibility.sees_chamber(chamber.chamber_id):
        raise NotFoundError(f"no chamber {chamber_id!r}")
    return chamber


def require_membership(
    tx: CommerceTx, membership_id: str, visibility: Visibility, *, for_update: bool = False
) -> Membership:
    """The membership, or NOT_FOUND when it does not exist or the caller may not see it."""
    found = tx.repo.get_membership(membership_id, for_update=for_update) if membership_id else None
    if found is None or not visibility.sees_member(found.chamber_id, found.credit_code):
        raise NotFoundError(f"no membership {membership_id!r}")
    return found
