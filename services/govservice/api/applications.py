"""CrossRegionService methods of the applications family: filing, the lifecycle steps, the reads."""

from __future__ import annotations

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2

from services.govservice.api import current_visibility
from services.govservice.domain.applications import ApplicationView, Step
from services.govservice.mapping import applications as convert
from services.govservice.usecases.applications import Applications
from services.govservice.usecases.common import GovServiceContext
from services.platform.security import current_caller

__all__ = ["ApplicationsApi"]


class ApplicationsApi:
    _applications: Applications

    def _init_applications(self, ctx: GovServiceContext) -> None:
        self._applications = Applications(ctx)

    def _step(self, application_no: str, step: Step, text: str = "") -> govservice_pb2.Application:
        found: ApplicationView = self._applications.step(
            convert.step_command(application_no, step, text), current_visibility(), current_caller().sub
        )
        return convert.application_pb(found)

    def FileApplication(  # noqa: N802
        self,
        request: govservice_pb2.FileApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.FileApplicationResponse:
        found = self._applications.file(
            convert.file_application(request), current_visibility(), current_caller().sub
        )
        return govservice_pb2.FileApplicationResponse(application=convert.application_pb(found))

    def ReceiveApplication(  # noqa: N802
        self,
        request: govservice_pb2.ReceiveApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.ReceiveApplicationResponse:
        return govservice_pb2.ReceiveApplicationResponse(
            application=self._step(request.application_no, Step.RECEIVE)
        )

    def ForwardApplication(  # noqa: N802
        self,
        request: govservice_pb2.ForwardApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.ForwardApplicationResponse:
        return govservice_pb2.ForwardApplicationResponse(
            application=self._step(request.application_no, Step.FORWARD)
        )

    def AcceptApplication(  # noqa: N802
        self,
        request: govservice_pb2.AcceptApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.AcceptApplicationResponse:
        return govservice_pb2.AcceptApplicationResponse(
            application=self._step(request.application_no, Step.ACCEPT)
        )

    def RequestSupplement(  # noqa: N802
        self,
        request: govservice_pb2.RequestSupplementRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.RequestSupplementResponse:
        return govservice_pb2.RequestSupplementResponse(
            application=self._step(request.application_no, Step.REQUEST_SUPPLEMENT, request.note)
        )

    def SubmitSupplement(  # noqa: N802
        self,
        request: govservice_pb2.SubmitSupplementRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.SubmitSupplementResponse:
        return govservice_pb2.SubmitSupplementResponse(
            application=self._step(request.application_no, Step.SUBMIT_SUPPLEMENT, request.note)
        )

    def CompleteApplication(  # noqa: N802
        self,
        request: govservice_pb2.CompleteApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.CompleteApplicationResponse:
        return govservice_pb2.CompleteApplicationResponse(
            application=self._step(request.application_no, Step.COMPLETE, request.result_ref)
        )

    def RejectApplication(  # noqa: N802
        self,
        request: govservice_pb2.RejectApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.RejectApplicationResponse:
        return govservice_pb2.RejectApplicationResponse(
            application=self._step(request.application_no, Step.REJECT, request.reason)
        )

    def GetApplication(  # noqa: N802
        self,
        request: govservice_pb2.GetApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.GetApplicationResponse:
        found = self._applications.get(request.application_no, current_visibility())
        return govservice_pb2.GetApplicationResponse(application=convert.application_pb(found))

    def ListApplications(  # noqa: N802
        self,
        request: govservice_pb2.ListApplicationsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.ListApplicationsResponse:
        found, token = self._applications.list(
            convert.list_applications(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return govservice_pb2.ListApplicationsResponse(
            applications=[convert.application_pb(a) for a in found],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )
