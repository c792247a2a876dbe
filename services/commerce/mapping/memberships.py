"""Memberships and the member map: requests -> commands, domain -> responses and events."""

from __future__ import annotations

from datetime import datetime

from cityhub.commerce.v1 import commerce_pb2, events_pb2

from services.commerce.domain.memberships import (
    ApplyForMembership,
    BoundingBox,
    ListMemberships,
    MapQuery,
    Radius,
    Transition,
    TransitionCommand,
)
from services.commerce.domain.model import GeoPoint, Membership
from services.commerce.mapping import ENTERPRISE_LOOKUP, MEMBERSHIP_STATUS, geo_of, geo_pb
from services.commerce.mapping.federations import SECTOR_NAMES
from services.platform.protoconv import optional_timestamp, to_timestamp

__all__ = [
    "apply_for_membership",
    "list_memberships",
    "map_member_pb",
    "map_query",
    "membership_applied",
    "membership_event",
    "membership_pb",
    "town_count_pb",
    "transition_command",
]


def apply_for_membership(request: commerce_pb2.ApplyForMembershipRequest) -> ApplyForMembership:
    return ApplyForMembership(
        request_id=request.request_id,
        chamber_id=request.chamber_id,
        credit_code=request.credit_code,
        enterprise_name=request.enterprise_name,
        location=geo_of(request.location, request.HasField("location")),
        town=request.town,
    )


def transition_command(membership_id: str, step: Transition, reason: str = "") -> TransitionCommand:
    return TransitionCommand(membership_id, step, reason)


def list_memberships(request: commerce_pb2.ListMembershipsRequest) -> ListMemberships:
    statuses = [MEMBERSHIP_STATUS.from_proto(s) for s in request.statuses]
    return ListMemberships(
        chamber_id=request.chamber_id,
        credit_code=request.credit_code,
        statuses=tuple(dict.fromkeys(s for s in statuses if s is not None)),
        bad_status=any(s is None for s in statuses),
    )


def map_query(request: commerce_pb2.SearchMemberMapRequest) -> MapQuery:
    box = None
    if request.HasField("box"):
        box = BoundingBox(
            GeoPoint(request.box.south_west.latitude, request.box.south_west.longitude),
            GeoPoint(request.box.north_east.latitude, request.box.north_east.longitude),
        )
    radius = None
    if request.HasField("radius"):
        center = request.radius.center
        radius = Radius(GeoPoint(center.latitude, center.longitude), request.radius.meters)
    return MapQuery(
        box=box,
        radius=radius,
        sector=request.sector,
        sector_known=request.sector in SECTOR_NAMES,
        chamber_id=request.chamber_id,
    )


def membership_pb(membership: Membership) -> commerce_pb2.Membership:
    return commerce_pb2.Membership(
        membership_id=membership.membership_id,
        chamber_id=membership.chamber_id,
        credit_code=membership.credit_code,
        enterprise_name=membership.enterprise_name,
        park_id=membership.park_id,
        sector=membership.sector,
        location=geo_pb(membership.location),
        town=membership.town,
        lookup=ENTERPRISE_LOOKUP.to_proto(membership.lookup),
        status=MEMBERSHIP_STATUS.to_proto(membership.status),
        reason=membership.reason,
        applied_at=to_timestamp(membership.applied_at),
        decided_at=optional_timestamp(membership.decided_at),
        auto_approved=membership.auto_approved,
    )


def map_member_pb(membership: Membership) -> commerce_pb2.MapMember:
    return commerce_pb2.MapMember(
        membership_id=membership.membership_id,
        chamber_id=membership.chamber_id,
        credit_code=membership.credit_code,
        enterprise_name=membership.enterprise_name,
        sector=membership.sector,
        town=membership.town,
        location=geo_pb(membership.location),
    )


def town_count_pb(town: str, members: int) -> commerce_pb2.TownCount:
    return commerce_pb2.TownCount(town=town, members=members)


def membership_applied(membership: Membership) -> events_pb2.MembershipApplied:
    return events_pb2.MembershipApplied(
        membership_id=membership.membership_id,
        chamber_id=membership.chamber_id,
        credit_code=membership.credit_code,
        lookup=ENTERPRISE_LOOKUP.to_proto(membership.lookup),
        applied_at=to_timestamp(membership.applied_at),
    )


def membership_event(
    membership: Membership, step: Transition, at: datetime
) -> (
    events_pb2.MembershipApproved
    | events_pb2.MembershipRejected
    | events_pb2.MembershipSuspended
    | events_pb2.MembershipReinstated
    | events_pb2.MembershipEnded
):
    """The event of a lifecycle step (approval by staff or by the chamber's rule)."""
    m, stamp = membership, to_timestamp(at)
    if step is Transition.APPROVE:
        return events_pb2.MembershipApproved(
            membership_id=m.membership_id,
            chamber_id=m.chamber_id,
            credit_code=m.credit_code,
            enterprise_name=m.enterprise_name,
            sector=m.sector,
            town=m.town,
            auto_approved=m.auto_approved,
            at=stamp,
        )
    if step is Transition.REJECT:
        return events_pb2.MembershipRejected(
            membership_id=m.membership_id,
            chamber_id=m.chamber_id,
            credit_code=m.credit_code,
            reason=m.reason,
            at=stamp,
        )
    if step is Transition.SUSPEND:
        return events_pb2.MembershipSuspended(
            membership_id=m.membership_id,
            chamber_id=m.chamber_id,
            credit_code=m.credit_code,
            reason=m.reason,
            at=stamp,
        )
    if step is Transition.REINSTATE:
        return events_pb2.MembershipReinstated(
            membership_id=m.membership_id, chamber_id=m.chamber_id, credit_code=m.credit_code, at=stamp
        )
    return events_pb2.MembershipEnded(
        membership_id=m.membership_id,
        chamber_id=m.chamber_id,
        credit_code=m.credit_code,
        reason=m.reason,
        at=stamp,
    )
