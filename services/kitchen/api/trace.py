"""KitchenService methods of traceability: deliveries, meals, and the traces of a lot and a meal. Thin:
a command from the request (mapping), a use case, the answer (mapping)."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import trace as mapping
from services.kitchen.mapping.violations import page_pb
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.trace import Traceability

__all__ = ["TraceApi"]


class TraceApi:
    _traceability: Traceability

    def _init_trace(self, ctx: KitchenContext) -> None:
        self._traceability = Traceability(ctx)

    def ReceiveDelivery(  # noqa: N802
        self,
        request: kitchen_pb2.ReceiveDeliveryRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ReceiveDeliveryResponse:
        delivery = self._traceability.receive(mapping.receive_delivery(request), current_visibility())
        return kitchen_pb2.ReceiveDeliveryResponse(delivery=mapping.delivery_pb(delivery))

    def ListDeliveries(  # noqa: N802
        self,
        request: kitchen_pb2.ListDeliveriesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListDeliveriesResponse:
        deliveries, token = self._traceability.list_deliveries(
            mapping.list_deliveries(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return kitchen_pb2.ListDeliveriesResponse(
            deliveries=[mapping.delivery_pb(d) for d in deliveries], page=page_pb(token)
        )

    def RecordMeal(  # noqa: N802
        self,
        request: kitchen_pb2.RecordMealRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RecordMealResponse:
        meal = self._traceability.record_meal(mapping.record_meal(request), current_visibility())
        return kitchen_pb2.RecordMealResponse(meal=mapping.meal_pb(meal))

    def GetMeal(  # noqa: N802
        self,
        request: kitchen_pb2.GetMealRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.GetMealResponse:
        meal = self._traceability.get_meal(request.meal_id, current_visibility())
        return kitchen_pb2.GetMealResponse(meal=mapping.meal_pb(meal))

    def ListMeals(  # noqa: N802
        self,
        request: kitchen_pb2.ListMealsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListMealsResponse:
        meals, token = self._traceability.list_meals(
            mapping.list_meals(request), current_visibility(), request.page.page_size, request.page.page_token
        )
        return kitchen_pb2.ListMealsResponse(meals=[mapping.meal_pb(m) for m in meals], page=page_pb(token))

    def TraceLot(  # noqa: N802
        self,
        request: kitchen_pb2.TraceLotRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.TraceLotResponse:
        trace = self._traceability.trace_lot(mapping.trace_lot(request), current_visibility())
        return mapping.lot_trace_pb(trace)

    def TraceMeal(  # noqa: N802
        self,
        request: kitchen_pb2.TraceMealRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.TraceMealResponse:
        trace = self._traceability.trace_meal(request.meal_id, current_visibility())
        return mapping.meal_trace_pb(trace)
