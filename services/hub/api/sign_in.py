"""HubService methods of the sign-in family: RedeemLoginLink (every role: whoever a link was made for)."""

from __future__ import annotations

import grpc
from cityhub.hub.v1 import hub_pb2

from services.hub.usecases.common import HubContext
from services.hub.usecases.sign_in import LoginLinks
from services.platform.protoconv import to_timestamp
from services.platform.security import current_caller

__all__ = ["SignInApi"]


class SignInApi:
    _login_links: LoginLinks

    def _init_sign_in(self, ctx: HubContext) -> None:
        self._login_links = LoginLinks(ctx)

    def RedeemLoginLink(  # noqa: N802
        self,
        request: hub_pb2.RedeemLoginLinkRequest,  # noqa: ARG002 - the link is the call's own token
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.RedeemLoginLinkResponse:
        redeemed_at = self._login_links.redeem(current_caller())
        return hub_pb2.RedeemLoginLinkResponse(redeemed_at=to_timestamp(redeemed_at))
