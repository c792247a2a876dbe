"""Memberships (one-click join) and the member map: the commands, the join decision, the lifecycle and the
map's geometry.

Lifecycle::

    PENDING --approve--> ACTIVE --suspend--> SUSPENDED --reinstate--> ACTIVE
    PENDING --reject--> REJECTED          ACTIVE / SUSPENDED --end--> ENDED

Any other step is FAILED_PRECONDITION. A chamber's rule ``AUTO_APPROVE_KNOWN`` approves an enterprise the
industry service knows at once; an unknown one, one applying while industry cannot be reached, and every
application to a ``STAFF_REVIEW`` chamber wait for staff as PENDING.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.commerce.domain.federations import check_name
from services.commerce.domain.model import (
    EnterpriseLookup,
    GeoPoint,
    JoinRule,
    Membership,
    MembershipStatus,
)
from services.platform.errors import FailedPreconditionError, Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code
from services.platform.validation import text_problem

__all__ = [
    "EARTH_RADIUS_M",
    "MAX_RADIUS_M",
    "ApplyForMembership",
    "BoundingBox",
    "ListMemberships",
    "MapQuery",
    "Radius",
    "Transition",
    "TransitionCommand",
    "check_point",
    "decide",
    "haversine_m",
    "transition",
]

# The mean earth radius (IUGG), the one the haversine distance uses here and in SQL.
EARTH_RADIUS_M = 6_371_008.8
# A district's map layer; a wider circle is a whole province and belongs to a bounding box.
MAX_RADIUS_M = 200_000.0
MAX_REASON = 500
LIVE = frozenset({MembershipStatus.PENDING, MembershipStatus.ACTIVE, MembershipStatus.SUSPENDED})


def check_point(violations: Violations, field: str, point: GeoPoint) -> None:
    if not -90.0 <= point.latitude <= 90.0:
        violations.add(f"{field}.latitude", "must be between -90 and 90 degrees")
    if not -180.0 <= point.longitude <= 180.0:
        violations.add(f"{field}.longitude", "must be between -180 and 180 degrees")


@dataclass(frozen=True, slots=True)
class ApplyForMembership:
    request_id: str
    chamber_id: str
    credit_code: str
    enterprise_name: str
    location: GeoPoint | None
    town: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.chamber_id:
            v.add("chamber_id", "is required")
        v.add_if(invalid_credit_code(self.credit_code), "credit_code")
        check_name(v, "enterprise_name", self.enterprise_name, required=False)
        if self.location is not None:
            check_point(v, "location", self.location)
        check_name(v, "town", self.town, required=False)
        v.check()


def decide(rule: JoinRule, lookup: EnterpriseLookup) -> MembershipStatus:
    """Where a new application stands: ACTIVE only for a known enterprise under AUTO_APPROVE_KNOWN."""
    if rule is JoinRule.AUTO_APPROVE_KNOWN and lookup is EnterpriseLookup.FOUND:
        return MembershipStatus.ACTIVE
    return MembershipStatus.PENDING


class Transition(StrEnum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    SUSPEND = "SUSPEND"
    REINSTATE = "REINSTATE"
    END = "END"


# From which statuses each step may be taken, and where it leads.
_STEPS: dict[Transition, tuple[frozenset[MembershipStatus], MembershipStatus]] = {
    Transition.APPROVE: (frozenset({MembershipStatus.PENDING}), MembershipStatus.ACTIVE),
    Transition.REJECT: (frozenset({MembershipStatus.PENDING}), MembershipStatus.REJECTED),
    Transition.SUSPEND: (frozenset({MembershipStatus.ACTIVE}), MembershipStatus.SUSPENDED),
    Transition.REINSTATE: (frozenset({MembershipStatus.SUSPENDED}), MembershipStatus.ACTIVE),
    Transition.END: (
        frozenset({MembershipStatus.ACTIVE, MembershipStatus.SUSPENDED}),
        MembershipStatus.ENDED,
    ),
}
# Steps whose reason the caller must give (a rejection and a suspension are explained to the member).
_REASON_REQUIRED = frozenset({Transition.REJECT, Transition.SUSPEND})


@dataclass(frozen=True, slots=True)
class TransitionCommand:
    membership_id: str
    step: Transition
    reason: str = ""

    def check(self) -> None:
        v = Violations()
        if not self.membership_id:
            v.add("membership_id", "is required")
        if self.step in _REASON_REQUIRED and not self.reason:
            v.add("reason", f"is required to {self.step.value.lower()} a membership")
        else:
            v.add_if(text_problem(self.reason, max_chars=MAX_REASON, free_text=True), "reason")
        v.check()


def transition(membership: Membership, step: Transition, reason: str, at: datetime) -> Membership:
    """The membership after ``step`` taken at ``at``, or FAILED_PRECONDITION naming its status."""
    allowed, target = _STEPS[step]
    if membership.status not in allowed:
        raise FailedPreconditionError(
            f"membership_id: cannot {step.value.lower()} a {membership.status.value} membership"
            f" (only {', '.join(sorted(s.value for s in allowed))})"
        )
    decided_at = at if step in {Transition.APPROVE, Transition.REJECT} else membership.decided_at
    # A reinstated member's suspension reason no longer applies; every other step records its own.
    kept_reason = "" if step in {Transition.APPROVE, Transition.REINSTATE} else reason
    return replace(membership, status=target, reason=kept_reason, decided_at=decided_at)


@dataclass(frozen=True, slots=True)
class ListMemberships:
    chamber_id: str
    credit_code: str
    statuses: tuple[MembershipStatus, ...]
    # Statuses the request gave that this build does not know (named in the answer).
    bad_status: bool = False

    def check(self) -> None:
        v = Violations()
        if not self.chamber_id and not self.credit_code:
            v.add("chamber_id", "is required unless credit_code is given (one of the two)")
        if self.bad_status:
            v.add("statuses", "must be MembershipStatus values other than UNSPECIFIED")
        v.check()


# --- the map --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoundingBox:
    south_west: GeoPoint
    north_east: GeoPoint

    def check(self, v: Violations) -> None:
        check_point(v, "box.south_west", self.south_west)
        check_point(v, "box.north_east", self.north_east)
        if self.south_west.latitude > self.north_east.latitude:
            v.add("box.south_west.latitude", "must be south of (at most) box.north_east.latitude")

    @property
    def crosses_antimeridian(self) -> bool:
        """A box whose west edge is east of its east edge spans the 180th meridian (Fiji, Chukotka)."""
        return self.south_west.longitude > self.north_east.longitude

    def contains(self, point: GeoPoint) -> bool:
        if not self.south_west.latitude <= point.latitude <= self.north_east.latitude:
            return False
        west, east = self.south_west.longitude, self.north_east.longitude
        if self.crosses_antimeridian:
            return point.longitude >= west or point.longitude <= east
        return west <= point.longitude <= east


@dataclass(frozen=True, slots=True)
class Radius:
    center: GeoPoint
    meters: float

    def check(self, v: Violations) -> None:
        check_point(v, "radius.center", self.center)
        if not 1.0 <= self.meters <= MAX_RADIUS_M:
            v.add("radius.meters", f"must be between 1 and {MAX_RADIUS_M:,.0f} metres")

    @property
    def latitude_span(self) -> float:
        """Degrees of latitude within reach of the centre: a cheap prefilter before the exact distance."""
        return math.degrees(self.meters / EARTH_RADIUS_M)

    def contains(self, point: GeoPoint) -> bool:
        return haversine_m(self.center, point) <= self.meters


@dataclass(frozen=True, slots=True)
class MapQuery:
    box: BoundingBox | None
    radius: Radius | None
    sector: str
    sector_known: bool
    chamber_id: str

    def check(self) -> None:
        v = Violations()
        if self.box is not None and self.radius is not None:
            v.add("radius", "give a bounding box or a radius, not both")
        if self.box is not None:
            self.box.check(v)
        if self.radius is not None:
            self.radius.check(v)
        if self.sector and not self.sector_known:
            v.add("sector", "must be an industry Sector name such as MACHINERY")
        v.check()

    def contains(self, point: GeoPoint) -> bool:
        if self.box is not None:
            return self.box.contains(point)
        if self.radius is not None:
            return self.radius.contains(point)
        return True


def haversine_m(a: GeoPoint, b: GeoPoint) -> float:
    """The great-circle distance in metres (repository/memberships.py computes the same in SQL)."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
