"""Federations, chambers and chamber staff: requests -> commands, domain -> responses and events."""

from __future__ import annotations

from cityhub.commerce.v1 import commerce_pb2, events_pb2
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2

from services.commerce.domain.federations import (
    AddChamberStaff,
    ChamberStaff,
    CreateChamber,
    CreateFederation,
    StaffRole,
)
from services.commerce.domain.model import Chamber, Federation
from services.commerce.mapping import CHAMBER_KIND, FEDERATION_LEVEL, JOIN_RULE
from services.platform.protoconv import EnumMap, to_timestamp

__all__ = [
    "SECTOR_NAMES",
    "STAFF_ROLE",
    "add_chamber_staff",
    "chamber_created",
    "chamber_pb",
    "create_chamber",
    "create_federation",
    "federation_created",
    "federation_pb",
    "page_response",
    "staff_pb",
]

STAFF_ROLE = EnumMap(StaffRole, commerce_pb2.StaffRole, "STAFF_ROLE")
# The industry service's Sector names without their prefix ("MACHINERY"): what a trade chamber, a
# membership and the map's filter name a sector by.
SECTOR_NAMES = frozenset(
    name.removeprefix("SECTOR_")
    for name in industry_pb2.Sector.DESCRIPTOR.values_by_name
    if name != "SECTOR_UNSPECIFIED"
)


def create_federation(request: commerce_pb2.CreateFederationRequest) -> CreateFederation:
    return CreateFederation(
        request_id=request.request_id,
        name=request.name,
        level=FEDERATION_LEVEL.from_proto(request.level),
        division_code=request.division_code,
        parent_id=request.parent_id,
    )


def create_chamber(request: commerce_pb2.CreateChamberRequest) -> CreateChamber:
    return CreateChamber(
        request_id=request.request_id,
        federation_id=request.federation_id,
        name=request.name,
        kind=CHAMBER_KIND.from_proto(request.kind),
        sector=request.sector,
        sector_known=request.sector in SECTOR_NAMES,
        division_code=request.division_code,
        join_rule=JOIN_RULE.from_proto(request.join_rule),
    )


def add_chamber_staff(request: commerce_pb2.AddChamberStaffRequest) -> AddChamberStaff:
    return AddChamberStaff(
        request_id=request.request_id,
        chamber_id=request.chamber_id,
        subject=request.subject,
        name=request.name,
        role=STAFF_ROLE.from_proto(request.role),
    )


def federation_pb(federation: Federation) -> commerce_pb2.Federation:
    return commerce_pb2.Federation(
        federation_id=federation.federation_id,
        name=federation.name,
        level=FEDERATION_LEVEL.to_proto(federation.level),
        division_code=federation.division_code,
        parent_id=federation.parent_id,
        current_key_id=federation.current_key_id,
        created_at=to_timestamp(federation.created_at),
    )


def chamber_pb(chamber: Chamber) -> commerce_pb2.Chamber:
    return commerce_pb2.Chamber(
        chamber_id=chamber.chamber_id,
        federation_id=chamber.federation_id,
        name=chamber.name,
        kind=CHAMBER_KIND.to_proto(chamber.kind),
        sector=chamber.sector,
        division_code=chamber.division_code,
        join_rule=JOIN_RULE.to_proto(chamber.join_rule),
        created_at=to_timestamp(chamber.created_at),
    )


def staff_pb(staff: ChamberStaff) -> commerce_pb2.ChamberStaff:
    return commerce_pb2.ChamberStaff(
        staff_id=staff.staff_id,
        chamber_id=staff.chamber_id,
        subject=staff.subject,
        name=staff.name,
        role=STAFF_ROLE.to_proto(staff.role),
        added_at=to_timestamp(staff.added_at),
    )


def federation_created(federation: Federation) -> events_pb2.FederationCreated:
    return events_pb2.FederationCreated(
        federation_id=federation.federation_id,
        name=federation.name,
        level=FEDERATION_LEVEL.to_proto(federation.level),
        division_code=federation.division_code,
        parent_id=federation.parent_id,
        created_at=to_timestamp(federation.created_at),
    )


def chamber_created(chamber: Chamber) -> events_pb2.ChamberCreated:
    return events_pb2.ChamberCreated(
        chamber_id=chamber.chamber_id,
        federation_id=chamber.federation_id,
        name=chamber.name,
        kind=CHAMBER_KIND.to_proto(chamber.kind),
        sector=chamber.sector,
        division_code=chamber.division_code,
        created_at=to_timestamp(chamber.created_at),
    )


def page_response(next_token: str) -> common_pb2.PageResponse:
    """A list's page answer; total_size -1: counting every row of a long list is not worth its cost."""
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)
