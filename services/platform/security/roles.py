"""Roles, scope kinds and which roles are limited to a scope: the vocabulary tokens and policies share."""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = ["ALL_ROLES", "ROLE_SCOPE_KIND", "SCOPE_KINDS", "Role", "parse_scope", "region_covers"]


class Role(StrEnum):
    """Who a caller is, as far as authorisation cares. Tokens carry the string values."""

    DISTRICT_OPERATOR = "district_operator"
    DUTY_ROOM = "duty_room"
    POLICE = "police"
    SAFETY_INVESTIGATOR = "safety_investigator"
    KITCHEN_MANAGER = "kitchen_manager"
    FOOD_INSPECTOR = "food_inspector"
    INDUSTRY_OPERATOR = "industry_operator"
    ENTERPRISE_USER = "enterprise_user"
    CHAMBER_STAFF = "chamber_staff"
    GOV_CLERK = "gov_clerk"
    AUDITOR = "auditor"
    PUBLIC = "public"
    SERVICE = "service"


ALL_ROLES: frozenset[Role] = frozenset(Role)

SCOPE_KINDS = frozenset({"site", "region", "chamber", "enterprise", "kitchen", "park"})

# A scoped role acts only where the caller holds a scope of that kind; the other roles act district-wide.
ROLE_SCOPE_KIND: dict[Role, str] = {
    Role.DUTY_ROOM: "site",
    Role.KITCHEN_MANAGER: "kitchen",
    Role.ENTERPRISE_USER: "enterprise",
    Role.CHAMBER_STAFF: "chamber",
    Role.GOV_CLERK: "region",
}

# Whole values of ASCII characters (``$`` would let a trailing line break through, ``\d`` other digits).
_SCOPE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_REGION = re.compile(r"[0-9]{6}\Z")


def parse_scope(value: str) -> tuple[str, str]:
    """Split ``kind:id`` and check both parts; raises ValueError naming the problem."""
    kind, sep, ident = value.partition(":")
    if not sep or kind not in SCOPE_KINDS:
        raise ValueError(f"scope {value!r} must be <kind>:<id> with kind one of {sorted(SCOPE_KINDS)}")
    if not _SCOPE_ID.match(ident):
        raise ValueError(f"scope {value!r} has a malformed id")
    if kind == "region" and not _REGION.match(ident):
        raise ValueError(f"scope {value!r}: a region is a six-digit GB/T 2260 division code")
    return kind, ident


def region_covers(held: str, wanted: str) -> bool:
    """GB/T 2260 codes nest: 330000 (a province) covers 331004 (a district in it); 331000 (a city) too."""
    if held == wanted:
        return True
    if not (_REGION.match(held) and _REGION.match(wanted)):
        return False
    if held.endswith("0000"):
        return wanted.startswith(held[:2])
    if held.endswith("00"):
        return wanted.startswith(held[:4])
    return False
