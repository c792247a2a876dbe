"""What every govservice use case shares: the context bootstrap builds once (unit of work, configuration,
clock, vault, the commerce member directory, the working-day calendar), and the lookups that answer
NOT_FOUND the same way everywhere."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from services.govservice.repository import GovServiceRepository
from services.platform.uow import Transaction, UnitOfWork
from services.platform.vault import Vault

__all__ = [
    "Clock",
    "GovServiceConfig",
    "GovServiceContext",
    "GovServiceTx",
    "GovServiceUnitOfWork",
    "MemberDirectory",
    "MemberInfo",
    "WorkingCalendar",
    "new_id",
    "utc_now",
]

Clock = Callable[[], datetime]
GovServiceUnitOfWork = UnitOfWork[GovServiceRepository]
GovServiceTx = Transaction[GovServiceRepository]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True, slots=True)
class GovServiceConfig:
    """The domain knobs the use cases read (bootstrap fills them from GovServiceSettings)."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    track_free_failures: int = 5
    track_window_s: float = 600.0
    track_max_wait_s: float = 900.0


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What commerce says about an enterprise that is a member of a chamber."""

    credit_code: str
    name: str
    sector: str
    town: str


class MemberDirectory(Protocol):
    """Commerce's member data. ``get_member`` returns None when commerce knows no active membership of the
    credit code, and raises UnavailableError when commerce cannot be reached within the retry budget."""

    def get_member(self, credit_code: str) -> MemberInfo | None: ...


class WorkingCalendar(Protocol):
    """Which local dates are working days (public holidays off, adjusted working weekends on)."""

    def is_working_day(self, day: date) -> bool: ...


@dataclass(slots=True)
class GovServiceContext:
    """Everything a use case may need, built once by bootstrap (tests build their own)."""

    uow: GovServiceUnitOfWork
    config: GovServiceConfig
    # Seals person applicants and the regions' private keys; keys applicant tokens and suffix digests.
    vault: Vault
    members: MemberDirectory
    calendar: WorkingCalendar
    clock: Clock = utc_now
