"""The govservice domain's shared types: regions, items, partnerships and the application's states.
Each family's own types and rules live beside them (domain/<family>.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

__all__ = [
    "ApplicantKind",
    "ApplicationStatus",
    "AuthorityLevel",
    "Direction",
    "Item",
    "Material",
    "Partnership",
    "PartnershipItem",
    "Region",
    "Verification",
]


class AuthorityLevel(StrEnum):
    COUNTY = "COUNTY"
    CITY = "CITY"
    PROVINCE = "PROVINCE"


class ApplicantKind(StrEnum):
    PERSON = "PERSON"
    ENTERPRISE = "ENTERPRISE"


class Direction(StrEnum):
    A_TO_B = "A_TO_B"
    B_TO_A = "B_TO_A"
    BOTH = "BOTH"


class Verification(StrEnum):
    VERIFIED = "VERIFIED"
    UNKNOWN = "UNKNOWN"
    NOT_VERIFIED = "NOT_VERIFIED"


class ApplicationStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    RECEIVED = "RECEIVED"
    FORWARDED = "FORWARDED"
    ACCEPTED = "ACCEPTED"
    SUPPLEMENT_REQUESTED = "SUPPLEMENT_REQUESTED"
    SUPPLEMENTED = "SUPPLEMENTED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class Region:
    division_code: str
    name: str
    province: str
    home: bool
    key_id: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class Material:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    name: str
    materials: tuple[Material, ...]
    authority_level: AuthorityLevel
    promised_working_days: int
    applicant_kinds: frozenset[ApplicantKind]
    defined_at: datetime


@dataclass(frozen=True, slots=True)
class PartnershipItem:
    item_code: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class Partnership:
    region_a: str
    region_b: str
    items: tuple[PartnershipItem, ...]
    start_date: date
    updated_at: datetime

    def offers(self, item_code: str, filing: str, handling: str) -> bool:
        """Whether an application for ``item_code`` may be filed in ``filing`` for ``handling``."""
        wanted = {
            (self.region_a, self.region_b): Direction.A_TO_B,
            (self.region_b, self.region_a): Direction.B_TO_A,
        }
        direction = wanted.get((filing, handling))
        if direction is None:
            return False
        return any(
            i.item_code == item_code and i.direction in (direction, Direction.BOTH) for i in self.items
        )
