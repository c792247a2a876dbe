"""The commerce domain's shared types: federations, chambers, memberships and the points weights every
family feeds the excellence ledger with. Each family's own types live beside its rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Chamber",
    "ChamberKind",
    "EnterpriseLookup",
    "Federation",
    "FederationLevel",
    "GeoPoint",
    "JoinRule",
    "Membership",
    "MembershipStatus",
    "PointSource",
]


class FederationLevel(StrEnum):
    PROVINCE = "PROVINCE"
    CITY = "CITY"
    COUNTY = "COUNTY"


class ChamberKind(StrEnum):
    TRADE = "TRADE"
    REGIONAL = "REGIONAL"


class JoinRule(StrEnum):
    AUTO_APPROVE_KNOWN = "AUTO_APPROVE_KNOWN"
    STAFF_REVIEW = "STAFF_REVIEW"


class MembershipStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    REJECTED = "REJECTED"
    SUSPENDED = "SUSPENDED"
    ENDED = "ENDED"


class EnterpriseLookup(StrEnum):
    FOUND = "FOUND"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"


class PointSource(StrEnum):
    ACTIVITY_ATTENDANCE = "ACTIVITY_ATTENDANCE"
    MATCH_COMPLETED = "MATCH_COMPLETED"
    COURSE_COMPLETED = "COURSE_COMPLETED"
    SERVICE_RATING = "SERVICE_RATING"
    AWARD = "AWARD"


@dataclass(frozen=True, slots=True)
class GeoPoint:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Federation:
    federation_id: str
    name: str
    level: FederationLevel
    division_code: str
    parent_id: str
    current_key_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Chamber:
    chamber_id: str
    federation_id: str
    name: str
    kind: ChamberKind
    sector: str
    division_code: str
    join_rule: JoinRule
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Membership:
    membership_id: str
    chamber_id: str
    credit_code: str
    enterprise_name: str
    park_id: str
    sector: str
    location: GeoPoint | None
    town: str
    lookup: EnterpriseLookup
    status: MembershipStatus
    reason: str
    applied_at: datetime
    decided_at: datetime | None
    auto_approved: bool
