"""What the store hands back besides the domain's own records: sealed person data (opened only by the
vault in a use case) and the sums and counts statistics are made of. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["PersonRow", "PurchaseRow", "StatisticsRow", "VehicleRow"]


@dataclass(frozen=True, slots=True)
class PersonRow:
    person_token: str
    # AES-GCM sealed profile (identity number, name, flags); see services/safety/vault.py.
    sealed: bytes
    recorded_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PurchaseRow:
    purchase_id: str
    person_token: str
    purchased_at: datetime
    sealed: bytes


@dataclass(frozen=True, slots=True)
class VehicleRow:
    vehicle_token: str
    person_token: str
    # AES-GCM sealed plate; see services/safety/vault.py.
    sealed: bytes
    recorded_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StatisticsRow:
    site_id: str
    bucket_start: datetime | None
    bucket_end: datetime | None
    warnings: int
    critical: int
    joint: int
    false_alarms: int
    ack_seconds: float
    ack_count: int
    dispatch_seconds: float
    dispatch_count: int
    arrive_seconds: float
    arrive_count: int
