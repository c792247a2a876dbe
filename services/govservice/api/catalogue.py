"""CrossRegionService methods of the catalogue family: regions (with their signing keys), items and
partnerships. The programme office keeps them (POLICY); every reader may list them."""

from __future__ import annotations

import grpc
from cityhub.govservice.v1 import govservice_pb2

from services.govservice.mapping import catalogue as mapping
from services.govservice.usecases.catalogue import Catalogue
from services.govservice.usecases.common import GovServiceContext

__all__ = ["CatalogueApi"]


class CatalogueApi:
    _catalogue: Catalogue

    def _init_catalogue(self, ctx: GovServiceContext) -> None:
        self._catalogue = Catalogue(ctx)

    def RegisterRegion(  # noqa: N802
        self,
        request: govservice_pb2.RegisterRegionRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.RegisterRegionResponse:
        region = self._catalogue.register_region(mapping.register_region(request))
        return govservice_pb2.RegisterRegionResponse(region=mapping.region_pb(region))

    def ListRegions(  # noqa: N802
        self,
        request: govservice_pb2.ListRegionsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.ListRegionsResponse:
        regions, token = self._catalogue.list_regions(request.page.page_size, request.page.page_token)
        return govservice_pb2.ListRegionsResponse(
            regions=[mapping.region_pb(r) for r in regions], page=mapping.page(token)
        )

    def GetRegionKeys(  # noqa: N802
        self,
        request: govservice_pb2.GetRegionKeysRequest,  # noqa: ARG002
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.GetRegionKeysResponse:
        keys = self._catalogue.region_keys()
        return govservice_pb2.GetRegionKeysResponse(keys=[mapping.region_key_pb(k) for k in keys])

    def DefineItem(  # noqa: N802
        self,
        request: govservice_pb2.DefineItemRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.DefineItemResponse:
        item = self._catalogue.define_item(mapping.define_item(request))
        return govservice_pb2.DefineItemResponse(item=mapping.item_pb(item))

    def ListItems(  # noqa: N802
        self,
        request: govservice_pb2.ListItemsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.ListItemsResponse:
        items, token = self._catalogue.list_items(request.page.page_size, request.page.page_token)
        return govservice_pb2.ListItemsResponse(
            items=[mapping.item_pb(i) for i in items], page=mapping.page(token)
        )

    def SetPartnership(  # noqa: N802
        self,
        request: govservice_pb2.SetPartnershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.SetPartnershipResponse:
        partnership = self._catalogue.set_partnership(mapping.set_partnership(request))
        return govservice_pb2.SetPartnershipResponse(partnership=mapping.partnership_pb(partnership))

    def ListPartnerships(  # noqa: N802
        self,
        request: govservice_pb2.ListPartnershipsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.ListPartnershipsResponse:
        found, token = self._catalogue.list_partnerships(
            request.division_code, request.page.page_size, request.page.page_token
        )
        return govservice_pb2.ListPartnershipsResponse(
            partnerships=[mapping.partnership_pb(p) for p in found], page=mapping.page(token)
        )
