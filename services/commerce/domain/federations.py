"""Federations, chambers and chamber staff: the commands and the division-code rules.

A federation's GB/T 2260 division code says its level: a province ends ``0000`` (``330000``), a city
ends ``00`` but is not province-shaped (``331000``), a county does not end ``00`` (``331004``). A city or
a county sits under a federation one level up whose code contains it: a city's province shares its first
two digits, a county's city its first four.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.commerce.domain.model import ChamberKind, FederationLevel, JoinRule
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_division_code
from services.platform.validation import text_problem

__all__ = [
    "AddChamberStaff",
    "ChamberStaff",
    "CreateChamber",
    "CreateFederation",
    "StaffRole",
    "check_name",
    "division_level_problem",
    "parent_problem",
]

MAX_NAME = 200
# The level one up, and how many leading digits of the division code a parent shares with its child.
_PARENT_LEVEL = {FederationLevel.CITY: FederationLevel.PROVINCE, FederationLevel.COUNTY: FederationLevel.CITY}
_SHARED_DIGITS = {FederationLevel.CITY: 2, FederationLevel.COUNTY: 4}


class StaffRole(StrEnum):
    SECRETARY_GENERAL = "SECRETARY_GENERAL"
    OFFICER = "OFFICER"
    VOLUNTEER = "VOLUNTEER"


@dataclass(frozen=True, slots=True)
class ChamberStaff:
    staff_id: str
    chamber_id: str
    subject: str
    name: str
    role: StaffRole
    added_at: datetime


def check_name(violations: Violations, field: str, value: str, *, required: bool = True) -> None:
    if required and not value:
        violations.add(field, "is required")
    else:
        violations.add_if(text_problem(value, max_chars=MAX_NAME), field)


def division_level_problem(level: FederationLevel, code: str) -> str | None:
    """Why ``code`` is not a division code of ``level``, or None."""
    problem = invalid_division_code(code)
    if problem is not None:
        return problem
    if level is FederationLevel.PROVINCE and not code.endswith("0000"):
        return "a province's division code ends in 0000 (e.g. 330000)"
    if level is FederationLevel.CITY and (not code.endswith("00") or code.endswith("0000")):
        return "a city's division code ends in 00 but not 0000 (e.g. 331000)"
    if level is FederationLevel.COUNTY and code.endswith("00"):
        return "a county's division code does not end in 00 (e.g. 331004)"
    return None


def parent_problem(
    level: FederationLevel, code: str, parent_level: FederationLevel, parent_code: str
) -> str | None:
    """Why a federation of ``level``/``code`` may not sit under that parent, or None."""
    wanted = _PARENT_LEVEL.get(level)
    if wanted is None:
        return "a province has no parent federation"
    if parent_level is not wanted:
        return f"must be a {wanted.value.lower()} federation (a {level.value.lower()} sits under one)"
    shared = _SHARED_DIGITS[level]
    if code[:shared] != parent_code[:shared]:
        return f"must be the federation whose division contains {code} (its code starts {code[:shared]})"
    return None


@dataclass(frozen=True, slots=True)
class CreateFederation:
    request_id: str
    name: str
    level: FederationLevel | None
    division_code: str
    parent_id: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        check_name(v, "name", self.name)
        if self.level is None:
            v.add("level", "must be one of PROVINCE, CITY or COUNTY")
            v.add_if(invalid_division_code(self.division_code), "division_code")
        else:
            v.add_if(division_level_problem(self.level, self.division_code), "division_code")
            if self.level is FederationLevel.PROVINCE and self.parent_id:
                v.add("parent_id", "must be empty for a province")
            elif self.level is not FederationLevel.PROVINCE and not self.parent_id:
                v.add("parent_id", f"is required for a {self.level.value.lower()} federation")
        v.check()


@dataclass(frozen=True, slots=True)
class CreateChamber:
    request_id: str
    federation_id: str
    name: str
    kind: ChamberKind | None
    sector: str
    # Whether ``sector`` is one of the industry service's Sector names (mapping knows the contract).
    sector_known: bool
    division_code: str
    join_rule: JoinRule | None

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.federation_id:
            v.add("federation_id", "is required")
        check_name(v, "name", self.name)
        if self.kind is None:
            v.add("kind", "must be TRADE or REGIONAL")
        if self.join_rule is None:
            v.add("join_rule", "must be AUTO_APPROVE_KNOWN or STAFF_REVIEW")
        if self.sector and not self.sector_known:
            v.add("sector", "must be an industry Sector name such as MACHINERY")
        elif self.kind is ChamberKind.TRADE and not self.sector:
            v.add("sector", "is required for a trade chamber (an industry Sector name such as MACHINERY)")
        if self.division_code:
            v.add_if(invalid_division_code(self.division_code), "division_code")
        elif self.kind is ChamberKind.REGIONAL:
            v.add("division_code", "is required for a regional chamber")
        v.check()


@dataclass(frozen=True, slots=True)
class AddChamberStaff:
    request_id: str
    chamber_id: str
    subject: str
    name: str
    role: StaffRole | None

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.chamber_id:
            v.add("chamber_id", "is required")
        check_name(v, "subject", self.subject)
        check_name(v, "name", self.name)
        if self.role is None:
            v.add("role", "must be SECRETARY_GENERAL, OFFICER or VOLUNTEER")
        v.check()
