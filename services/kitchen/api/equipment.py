"""KitchenService methods of the equipment family: units, readings, days."""

from __future__ import annotations

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.domain.equipment import ListEquipment, ListEquipmentDays, RegisterEquipment
from services.kitchen.mapping.equipment import (
    EQUIPMENT_KIND,
    equipment_day_pb,
    equipment_pb,
    overrides_of,
)
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.equipment import EquipmentRegistry
from services.kitchen.usecases.readings import ReadingsIngest

__all__ = ["EquipmentApi"]


class EquipmentApi:
    _equipment_registry: EquipmentRegistry
    _readings_ingest: ReadingsIngest

    def _init_equipment(self, ctx: KitchenContext) -> None:
        self._equipment_registry = EquipmentRegistry(ctx)
        self._readings_ingest = ReadingsIngest(ctx)

    def RegisterEquipment(  # noqa: N802
        self,
        request: kitchen_pb2.RegisterEquipmentRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RegisterEquipmentResponse:
        command = RegisterEquipment(
            request_id=request.request_id,
            kitchen_id=request.kitchen_id,
            kind=EQUIPMENT_KIND.from_proto(request.kind),
            name=request.name,
            limits=overrides_of(request),
        )
        equipment = self._equipment_registry.register(command, current_visibility())
        return kitchen_pb2.RegisterEquipmentResponse(equipment=equipment_pb(equipment))

    def ListEquipment(  # noqa: N802
        self,
        request: kitchen_pb2.ListEquipmentRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListEquipmentResponse:
        query = ListEquipment(request.kitchen_id, EQUIPMENT_KIND.from_proto(request.kind))
        units, token = self._equipment_registry.list_units(
            query, current_visibility(), request.page.page_size, request.page.page_token
        )
        return kitchen_pb2.ListEquipmentResponse(
            equipment=[equipment_pb(e) for e in units],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )

    def IngestReadings(  # noqa: N802
        self,
        request: kitchen_pb2.IngestReadingsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.IngestReadingsResponse:
        result = self._readings_ingest.ingest(
            request.request_id, list(request.readings), current_visibility()
        )
        return kitchen_pb2.IngestReadingsResponse(
            accepted=result.accepted,
            rejections=[
                kitchen_pb2.ReadingRejection(index=r.index, field=r.field, reason=r.reason)
                for r in result.rejections
            ],
        )

    def ListEquipmentDays(  # noqa: N802
        self,
        request: kitchen_pb2.ListEquipmentDaysRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListEquipmentDaysResponse:
        query = ListEquipmentDays(
            request.kitchen_id, request.equipment_id, request.from_date, request.to_date
        )
        days, token = self._equipment_registry.list_days(
            query, current_visibility(), request.page.page_size, request.page.page_token
        )
        return kitchen_pb2.ListEquipmentDaysResponse(
            days=[equipment_day_pb(d) for d in days],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )
