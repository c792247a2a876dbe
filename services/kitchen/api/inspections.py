"""KitchenService methods of the inspections family: RecordInspection, ListInspections."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import inspections as mapping
from services.kitchen.mapping.kitchens import page_pb
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.inspections import InspectionBook

__all__ = ["InspectionsApi"]


class InspectionsApi:
    _inspection_book: InspectionBook

    def _init_inspections(self, ctx: KitchenContext) -> None:
        self._inspection_book = InspectionBook(ctx)

    def RecordInspection(  # noqa: N802
        self,
        request: kitchen_pb2.RecordInspectionRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RecordInspectionResponse:
        inspection = self._inspection_book.record(mapping.record_inspection(request), current_visibility())
        return kitchen_pb2.RecordInspectionResponse(inspection=mapping.inspection_pb(inspection))

    def ListInspections(  # noqa: N802
        self,
        request: kitchen_pb2.ListInspectionsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListInspectionsResponse:
        found, token = self._inspection_book.list(
            request.kitchen_id, current_visibility(), request.page.page_size, request.page.page_token
        )
        return kitchen_pb2.ListInspectionsResponse(
            inspections=[mapping.inspection_pb(i) for i in found], page=page_pb(token)
        )
