"""CommerceService methods of the federations family: federations, chambers and chamber staff."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import federations as mapping
from services.commerce.usecases.common import CommerceContext
from services.commerce.usecases.federations import Federations

__all__ = ["FederationsApi"]


class FederationsApi:
    _federations: Federations

    def _init_federations(self, ctx: CommerceContext) -> None:
        self._federations = Federations(ctx)

    def CreateFederation(  # noqa: N802
        self,
        request: commerce_pb2.CreateFederationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CreateFederationResponse:
        federation = self._federations.create_federation(mapping.create_federation(request))
        return commerce_pb2.CreateFederationResponse(federation=mapping.federation_pb(federation))

    def ListFederations(  # noqa: N802
        self,
        request: commerce_pb2.ListFederationsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListFederationsResponse:
        items, token = self._federations.list_federations(
            request.parent_id, request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListFederationsResponse(
            federations=[mapping.federation_pb(f) for f in items], page=mapping.page_response(token)
        )

    def CreateChamber(  # noqa: N802
        self,
        request: commerce_pb2.CreateChamberRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CreateChamberResponse:
        chamber = self._federations.create_chamber(mapping.create_chamber(request))
        return commerce_pb2.CreateChamberResponse(chamber=mapping.chamber_pb(chamber))

    def GetChamber(  # noqa: N802
        self,
        request: commerce_pb2.GetChamberRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.GetChamberResponse:
        chamber = self._federations.get_chamber(request.chamber_id)
        return commerce_pb2.GetChamberResponse(chamber=mapping.chamber_pb(chamber))

    def ListChambers(  # noqa: N802
        self,
        request: commerce_pb2.ListChambersRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListChambersResponse:
        items, token = self._federations.list_chambers(
            request.federation_id, request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListChambersResponse(
            chambers=[mapping.chamber_pb(c) for c in items], page=mapping.page_response(token)
        )

    def AddChamberStaff(  # noqa: N802
        self,
        request: commerce_pb2.AddChamberStaffRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.AddChamberStaffResponse:
        staff = self._federations.add_staff(mapping.add_chamber_staff(request), current_visibility())
        return commerce_pb2.AddChamberStaffResponse(staff=mapping.staff_pb(staff))

    def ListChamberStaff(  # noqa: N802
        self,
        request: commerce_pb2.ListChamberStaffRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListChamberStaffResponse:
        items, token = self._federations.list_staff(
            request.chamber_id, current_visibility(), request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListChamberStaffResponse(
            staff=[mapping.staff_pb(s) for s in items], page=mapping.page_response(token)
        )
