"""CrossRegionService methods of the trail family: VerifyTrail (the steps themselves travel with
GetApplication, mapped by mapping/trail.py)."""

from __future__ import annotations

import grpc
from cityhub.govservice.v1 import govservice_pb2

from services.govservice.api import current_visibility
from services.govservice.mapping import trail as mapping
from services.govservice.usecases.common import GovServiceContext
from services.govservice.usecases.trail import TrailVerifier

__all__ = ["TrailApi"]


class TrailApi:
    _trail_verifier: TrailVerifier

    def _init_trail(self, ctx: GovServiceContext) -> None:
        self._trail_verifier = TrailVerifier(ctx)

    def VerifyTrail(  # noqa: N802
        self,
        request: govservice_pb2.VerifyTrailRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.VerifyTrailResponse:
        verdict = self._trail_verifier.verify(request.application_no, current_visibility())
        return mapping.verify_trail_response(verdict)
