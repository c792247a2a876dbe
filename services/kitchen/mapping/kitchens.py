"""Proto <-> domain for kitchens: the RegisterKitchen command, the KitchenRegistered event, paging."""

from __future__ import annotations

from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.kitchen.domain.kitchens import RegisterKitchen
from services.kitchen.domain.model import Kitchen, Shift
from services.kitchen.mapping import OPERATOR_KIND, geo_of, geo_pb
from services.platform.protoconv import to_timestamp

__all__ = ["kitchen_registered", "page_pb", "register_kitchen"]


def page_pb(next_token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


def register_kitchen(request: kitchen_pb2.RegisterKitchenRequest) -> RegisterKitchen:
    return RegisterKitchen(
        request_id=request.request_id,
        site_id=request.site_id,
        name=request.name,
        operator_kind=OPERATOR_KIND.from_proto(request.operator.kind),
        operator_name=request.operator.name,
        operator_credit_code=request.operator.credit_code,
        meals_per_day=request.meals_per_day,
        location=geo_of(request.location, request.HasField("location")),
        shifts=tuple(Shift(s.name, s.start_time, s.end_time) for s in request.shifts),
        commitment=request.commitment,
    )


def kitchen_registered(kitchen: Kitchen) -> events_pb2.KitchenRegistered:
    return events_pb2.KitchenRegistered(
        kitchen_id=kitchen.kitchen_id,
        site_id=kitchen.site_id,
        name=kitchen.name,
        operator_kind=OPERATOR_KIND.to_proto(kitchen.operator.kind),
        operator_name=kitchen.operator.name,
        operator_credit_code=kitchen.operator.credit_code,
        meals_per_day=kitchen.meals_per_day,
        location=geo_pb(kitchen.location),
        town=kitchen.town,
        division_code=kitchen.division_code,
        registered_at=to_timestamp(kitchen.registered_at),
    )
