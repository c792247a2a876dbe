"""The catalogue's commands and rules: regions (with their signing keys), items and partnerships.

Each command's ``check()`` names every bad field by its path in the request, all at once; the checks that
need stored state (is the region registered? is the item defined?) live in the use case, which names the
same paths. The gRPC layer translates leniently (an unspecified enum becomes ``None``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from services.govservice.domain.model import ApplicantKind, AuthorityLevel, Direction
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_division_code
from services.platform.validation import parse_date, text_problem

__all__ = [
    "CODE_PATTERN",
    "MAX_PROMISED_DAYS",
    "DefineItem",
    "ItemSpec",
    "MaterialSpec",
    "PartnershipItemSpec",
    "RegionKey",
    "RegisterRegion",
    "SetPartnership",
    "check_division_filter",
]

# Item and material codes: short, lower-case, stable identifiers an operator types into the seed file.
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,63}")
# No promise of more than a working year is a promise; 0 would make every application overdue at once.
MAX_PROMISED_DAYS = 365
_MAX_NAME = 200
# A partnership covering more items than any catalogue holds is a mistake (and bounds the JSON stored).
_MAX_PARTNERSHIP_ITEMS = 200
_MAX_MATERIALS = 50


@dataclass(frozen=True, slots=True)
class RegionKey:
    """A region's public key, as GetRegionKeys lists it (old keys stay: old steps still verify)."""

    key_id: str
    division_code: str
    algorithm: str
    public_key_pem: str
    created_at: datetime


def _text(v: Violations, field: str, value: str, *, required: bool = True) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    else:
        v.add_if(text_problem(value, max_chars=_MAX_NAME), field)


def _code(v: Violations, field: str, value: str) -> None:
    if not value:
        v.add(field, "is required")
    elif not CODE_PATTERN.fullmatch(value):
        v.add(field, "must be 2-64 lower-case letters, digits or _ starting with a letter")


def check_division_filter(value: str, field: str = "division_code") -> None:
    """An optional division-code filter of a list: empty, or a valid code."""
    if value:
        v = Violations()
        v.add_if(invalid_division_code(value), field)
        v.check()


@dataclass(frozen=True, slots=True)
class RegisterRegion:
    request_id: str
    division_code: str
    name: str
    province: str
    home: bool

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        v.add_if(invalid_division_code(self.division_code), "division_code")
        _text(v, "name", self.name)
        _text(v, "province", self.province)
        v.check()


@dataclass(frozen=True, slots=True)
class MaterialSpec:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """An item as the caller defines it (tuples, not sets: a command's fingerprint must not depend on
    hash order, or a seed replay in another process would look like a different request)."""

    code: str
    name: str
    materials: tuple[MaterialSpec, ...]
    authority_level: AuthorityLevel | None
    promised_working_days: int
    applicant_kinds: tuple[ApplicantKind | None, ...]


@dataclass(frozen=True, slots=True)
class DefineItem:
    request_id: str
    item: ItemSpec

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        item = self.item
        _code(v, "item.code", item.code)
        _text(v, "item.name", item.name)
        if not item.materials:
            v.add("item.materials", "at least one material is required")
        elif len(item.materials) > _MAX_MATERIALS:
            v.add("item.materials", f"at most {_MAX_MATERIALS} materials")
        else:
            seen: set[str] = set()
            for i, material in enumerate(item.materials):
                _code(v, f"item.materials[{i}].code", material.code)
                if material.code in seen:
                    v.add(f"item.materials[{i}].code", "is repeated: material codes are unique in an item")
                seen.add(material.code)
                _text(v, f"item.materials[{i}].name", material.name)
        if item.authority_level is None:
            v.add("item.authority_level", "is required (COUNTY, CITY or PROVINCE)")
        if not 1 <= item.promised_working_days <= MAX_PROMISED_DAYS:
            v.add("item.promised_working_days", f"must be 1-{MAX_PROMISED_DAYS} working days")
        if not item.applicant_kinds:
            v.add("item.applicant_kinds", "at least one applicant kind is required")
        kinds: set[ApplicantKind] = set()
        for i, kind in enumerate(item.applicant_kinds):
            if kind is None:
                v.add(f"item.applicant_kinds[{i}]", "is required (PERSON or ENTERPRISE)")
            elif kind in kinds:
                v.add(f"item.applicant_kinds[{i}]", "is repeated")
            else:
                kinds.add(kind)
        v.check()


@dataclass(frozen=True, slots=True)
class PartnershipItemSpec:
    item_code: str
    direction: Direction | None


@dataclass(frozen=True, slots=True)
class SetPartnership:
    request_id: str
    region_a: str
    region_b: str
    items: tuple[PartnershipItemSpec, ...]
    start_date: str

    def check(self) -> date:
        """The start date, once every field checks out."""
        v = Violations()
        check_request_id(v, self.request_id)
        v.add_if(invalid_division_code(self.region_a), "partnership.region_a")
        v.add_if(invalid_division_code(self.region_b), "partnership.region_b")
        if self.region_a and self.region_a == self.region_b:
            v.add("partnership.region_b", "must differ from region_a (a partnership joins two regions)")
        if not self.items:
            v.add("partnership.items", "at least one item is required")
        elif len(self.items) > _MAX_PARTNERSHIP_ITEMS:
            v.add("partnership.items", f"at most {_MAX_PARTNERSHIP_ITEMS} items")
        else:
            seen: set[str] = set()
            for i, item in enumerate(self.items):
                _code(v, f"partnership.items[{i}].item_code", item.item_code)
                if item.item_code in seen:
                    v.add(f"partnership.items[{i}].item_code", "is repeated: one direction per item")
                seen.add(item.item_code)
                if item.direction is None:
                    v.add(f"partnership.items[{i}].direction", "is required (A_TO_B, B_TO_A or BOTH)")
        start = parse_date(self.start_date) if self.start_date else None
        if not self.start_date:
            v.add("partnership.start_date", "is required (YYYY-MM-DD)")
        elif start is None:
            v.add("partnership.start_date", "must be a date written YYYY-MM-DD")
        v.check()
        assert start is not None, "checked"
        return start
