"""CommerceService methods of service requests: submit, assign, resolve, rate, list."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import requests as convert
from services.commerce.usecases.common import CommerceContext
from services.commerce.usecases.requests import ServiceRequests

__all__ = ["RequestsApi"]


class RequestsApi:
    _service_requests: ServiceRequests

    def _init_requests(self, ctx: CommerceContext) -> None:
        self._service_requests = ServiceRequests(ctx)

    def SubmitServiceRequest(  # noqa: N802
        self,
        request: commerce_pb2.SubmitServiceRequestRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.SubmitServiceRequestResponse:
        found = self._service_requests.submit(convert.submit_service_request(request), current_visibility())
        return commerce_pb2.SubmitServiceRequestResponse(service_request=convert.service_request_pb(found))

    def AssignServiceRequest(  # noqa: N802
        self,
        request: commerce_pb2.AssignServiceRequestRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.AssignServiceRequestResponse:
        found = self._service_requests.assign(convert.assign_service_request(request), current_visibility())
        return commerce_pb2.AssignServiceRequestResponse(service_request=convert.service_request_pb(found))

    def ResolveServiceRequest(  # noqa: N802
        self,
        request: commerce_pb2.ResolveServiceRequestRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ResolveServiceRequestResponse:
        found = self._service_requests.resolve(convert.resolve_service_request(request), current_visibility())
        return commerce_pb2.ResolveServiceRequestResponse(service_request=convert.service_request_pb(found))

    def RateServiceRequest(  # noqa: N802
        self,
        request: commerce_pb2.RateServiceRequestRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.RateServiceRequestResponse:
        found = self._service_requests.rate(convert.rate_service_request(request), current_visibility())
        return commerce_pb2.RateServiceRequestResponse(service_request=convert.service_request_pb(found))

    def ListServiceRequests(  # noqa: N802
        self,
        request: commerce_pb2.ListServiceRequestsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListServiceRequestsResponse:
        found, token = self._service_requests.list(
            convert.list_service_requests(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return commerce_pb2.ListServiceRequestsResponse(
            service_requests=[convert.service_request_pb(r) for r in found],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )
