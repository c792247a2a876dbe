"""KitchenService methods of AI captures and violations: report a capture, rectify, verify, reopen, get,
list. Thin: a command from the request (mapping), a use case, the answer (mapping)."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import violations as mapping
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.violations import ViolationBook
from services.platform.security import current_caller

__all__ = ["ViolationsApi"]


class ViolationsApi:
    _violation_book: ViolationBook

    def _init_violations(self, ctx: KitchenContext) -> None:
        self._violation_book = ViolationBook(ctx)

    def ReportCapture(  # noqa: N802
        self,
        request: kitchen_pb2.ReportCaptureRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ReportCaptureResponse:
        violation, joined = self._violation_book.report(
            mapping.report_capture(request), current_visibility(), current_caller().sub
        )
        return kitchen_pb2.ReportCaptureResponse(violation=mapping.violation_pb(violation), joined=joined)

    def RectifyViolation(  # noqa: N802
        self,
        request: kitchen_pb2.RectifyViolationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RectifyViolationResponse:
        violation = self._violation_book.rectify(
            mapping.rectify_violation(request), current_visibility(), current_caller().sub
        )
        return kitchen_pb2.RectifyViolationResponse(violation=mapping.violation_pb(violation))

    def VerifyViolation(  # noqa: N802
        self,
        request: kitchen_pb2.VerifyViolationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.VerifyViolationResponse:
        violation = self._violation_book.verify(
            mapping.verify_violation(request), current_visibility(), current_caller().sub
        )
        return kitchen_pb2.VerifyViolationResponse(violation=mapping.violation_pb(violation))

    def ReopenViolation(  # noqa: N802
        self,
        request: kitchen_pb2.ReopenViolationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ReopenViolationResponse:
        violation = self._violation_book.reopen(
            mapping.reopen_violation(request), current_visibility(), current_caller().sub
        )
        return kitchen_pb2.ReopenViolationResponse(violation=mapping.violation_pb(violation))

    def GetViolation(  # noqa: N802
        self,
        request: kitchen_pb2.GetViolationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.GetViolationResponse:
        violation = self._violation_book.get(request.violation_id, current_visibility())
        return kitchen_pb2.GetViolationResponse(violation=mapping.violation_pb(violation))

    def ListViolations(  # noqa: N802
        self,
        request: kitchen_pb2.ListViolationsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListViolationsResponse:
        violations, token = self._violation_book.list(
            mapping.list_violations(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return kitchen_pb2.ListViolationsResponse(
            violations=[mapping.violation_pb(v) for v in violations], page=mapping.page_pb(token)
        )
