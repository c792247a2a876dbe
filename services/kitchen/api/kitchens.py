"""KitchenService methods of the kitchens family: RegisterKitchen, GetKitchen, ListKitchens."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import kitchen_pb
from services.kitchen.mapping.kitchens import page_pb, register_kitchen
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.kitchens import KitchenRegistry

__all__ = ["KitchensApi"]


class KitchensApi:
    _kitchen_registry: KitchenRegistry

    def _init_kitchens(self, ctx: KitchenContext) -> None:
        self._kitchen_registry = KitchenRegistry(ctx)

    def RegisterKitchen(  # noqa: N802
        self,
        request: kitchen_pb2.RegisterKitchenRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RegisterKitchenResponse:
        kitchen = self._kitchen_registry.register(register_kitchen(request))
        return kitchen_pb2.RegisterKitchenResponse(kitchen=kitchen_pb(kitchen))

    def GetKitchen(  # noqa: N802
        self,
        request: kitchen_pb2.GetKitchenRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.GetKitchenResponse:
        kitchen = self._kitchen_registry.get(request.kitchen_id, current_visibility())
        return kitchen_pb2.GetKitchenResponse(kitchen=kitchen_pb(kitchen))

    def ListKitchens(  # noqa: N802
        self,
        request: kitchen_pb2.ListKitchensRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListKitchensResponse:
        kitchens, token = self._kitchen_registry.list(
            current_visibility(),
            site_id=request.site_id,
            town=request.town,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return kitchen_pb2.ListKitchensResponse(
            kitchens=[kitchen_pb(k) for k in kitchens], page=page_pb(token)
        )
