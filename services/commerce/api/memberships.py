"""CommerceService methods of the memberships family (one-click join, the lifecycle) and the member map."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2

from services.commerce.api import current_visibility
from services.commerce.domain.memberships import Transition
from services.commerce.mapping import memberships as mapping
from services.commerce.mapping.federations import page_response
from services.commerce.usecases.common import CommerceContext
from services.commerce.usecases.map import MemberMap
from services.commerce.usecases.memberships import Memberships

__all__ = ["MembershipsApi"]


class MembershipsApi:
    _memberships: Memberships
    _member_map: MemberMap

    def _init_memberships(self, ctx: CommerceContext) -> None:
        self._memberships = Memberships(ctx)
        self._member_map = MemberMap(ctx)

    def _step(self, membership_id: str, step: Transition, reason: str = "") -> commerce_pb2.Membership:
        command = mapping.transition_command(membership_id, step, reason)
        return mapping.membership_pb(self._memberships.step(command, current_visibility()))

    def ApplyForMembership(  # noqa: N802
        self,
        request: commerce_pb2.ApplyForMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ApplyForMembershipResponse:
        membership = self._memberships.apply(mapping.apply_for_membership(request))
        return commerce_pb2.ApplyForMembershipResponse(membership=mapping.membership_pb(membership))

    def ApproveMembership(  # noqa: N802
        self,
        request: commerce_pb2.ApproveMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ApproveMembershipResponse:
        return commerce_pb2.ApproveMembershipResponse(
            membership=self._step(request.membership_id, Transition.APPROVE)
        )

    def RejectMembership(  # noqa: N802
        self,
        request: commerce_pb2.RejectMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.RejectMembershipResponse:
        return commerce_pb2.RejectMembershipResponse(
            membership=self._step(request.membership_id, Transition.REJECT, request.reason)
        )

    def SuspendMembership(  # noqa: N802
        self,
        request: commerce_pb2.SuspendMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.SuspendMembershipResponse:
        return commerce_pb2.SuspendMembershipResponse(
            membership=self._step(request.membership_id, Transition.SUSPEND, request.reason)
        )

    def ReinstateMembership(  # noqa: N802
        self,
        request: commerce_pb2.ReinstateMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ReinstateMembershipResponse:
        return commerce_pb2.ReinstateMembershipResponse(
            membership=self._step(request.membership_id, Transition.REINSTATE)
        )

    def EndMembership(  # noqa: N802
        self,
        request: commerce_pb2.EndMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.EndMembershipResponse:
        return commerce_pb2.EndMembershipResponse(
            membership=self._step(request.membership_id, Transition.END, request.reason)
        )

    def GetMembership(  # noqa: N802
        self,
        request: commerce_pb2.GetMembershipRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.GetMembershipResponse:
        membership = self._memberships.get(request.membership_id, current_visibility())
        return commerce_pb2.GetMembershipResponse(membership=mapping.membership_pb(membership))

    def ListMemberships(  # noqa: N802
        self,
        request: commerce_pb2.ListMembershipsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListMembershipsResponse:
        items, token = self._memberships.list(
            mapping.list_memberships(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return commerce_pb2.ListMembershipsResponse(
            memberships=[mapping.membership_pb(m) for m in items], page=page_response(token)
        )

    def SearchMemberMap(  # noqa: N802
        self,
        request: commerce_pb2.SearchMemberMapRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.SearchMemberMapResponse:
        result = self._member_map.search(
            mapping.map_query(request), current_visibility(), request.page.page_size, request.page.page_token
        )
        return commerce_pb2.SearchMemberMapResponse(
            members=[mapping.map_member_pb(m) for m in result.members],
            towns=[mapping.town_count_pb(town, count) for town, count in result.towns],
            page=page_response(result.next_token),
        )
