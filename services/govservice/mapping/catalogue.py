"""Proto <-> domain for the catalogue family: regions and their keys, items, partnerships."""

from __future__ import annotations

from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2

from services.govservice.domain.catalogue import (
    DefineItem,
    ItemSpec,
    MaterialSpec,
    PartnershipItemSpec,
    RegionKey,
    RegisterRegion,
    SetPartnership,
)
from services.govservice.domain.model import ApplicantKind, Item, Partnership, Region
from services.govservice.mapping import APPLICANT_KIND, AUTHORITY_LEVEL, DIRECTION
from services.platform.protoconv import to_timestamp

__all__ = [
    "define_item",
    "item_pb",
    "page",
    "partnership_pb",
    "region_key_pb",
    "region_pb",
    "register_region",
    "set_partnership",
]


def page(next_token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


# --- requests -> commands ---------------------------------------------------------------------------


def register_region(request: govservice_pb2.RegisterRegionRequest) -> RegisterRegion:
    return RegisterRegion(
        request_id=request.request_id,
        division_code=request.division_code,
        name=request.name,
        province=request.province,
        home=request.home,
    )


def define_item(request: govservice_pb2.DefineItemRequest) -> DefineItem:
    item = request.item
    return DefineItem(
        request_id=request.request_id,
        item=ItemSpec(
            code=item.code,
            name=item.name,
            materials=tuple(MaterialSpec(m.code, m.name) for m in item.materials),
            authority_level=AUTHORITY_LEVEL.from_proto(item.authority_level),
            promised_working_days=item.promised_working_days,
            applicant_kinds=tuple(APPLICANT_KIND.from_proto(k) for k in item.applicant_kinds),
        ),
    )


def set_partnership(request: govservice_pb2.SetPartnershipRequest) -> SetPartnership:
    p = request.partnership
    return SetPartnership(
        request_id=request.request_id,
        region_a=p.region_a,
        region_b=p.region_b,
        items=tuple(PartnershipItemSpec(i.item_code, DIRECTION.from_proto(i.direction)) for i in p.items),
        start_date=p.start_date,
    )


# --- domain -> responses ----------------------------------------------------------------------------


def region_pb(region: Region) -> govservice_pb2.Region:
    return govservice_pb2.Region(
        division_code=region.division_code,
        name=region.name,
        province=region.province,
        home=region.home,
        key_id=region.key_id,
        registered_at=to_timestamp(region.registered_at),
    )


def region_key_pb(key: RegionKey) -> govservice_pb2.RegionKey:
    return govservice_pb2.RegionKey(
        key_id=key.key_id,
        division_code=key.division_code,
        algorithm=key.algorithm,
        public_key_pem=key.public_key_pem,
        created_at=to_timestamp(key.created_at),
    )


def item_pb(item: Item) -> govservice_pb2.Item:
    return govservice_pb2.Item(
        code=item.code,
        name=item.name,
        materials=[govservice_pb2.Material(code=m.code, name=m.name) for m in item.materials],
        authority_level=AUTHORITY_LEVEL.to_proto(item.authority_level),
        promised_working_days=item.promised_working_days,
        # In the enum's order, whatever order they were given in (a set in the domain).
        applicant_kinds=[APPLICANT_KIND.to_proto(k) for k in ApplicantKind if k in item.applicant_kinds],
        defined_at=to_timestamp(item.defined_at),
    )


def partnership_pb(partnership: Partnership) -> govservice_pb2.Partnership:
    return govservice_pb2.Partnership(
        region_a=partnership.region_a,
        region_b=partnership.region_b,
        items=[
            govservice_pb2.PartnershipItem(item_code=i.item_code, direction=DIRECTION.to_proto(i.direction))
            for i in partnership.items
        ],
        start_date=partnership.start_date.isoformat(),
        updated_at=to_timestamp(partnership.updated_at),
    )
