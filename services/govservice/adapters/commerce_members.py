"""Commerce's member data, asked over gRPC through the platform's peer client (deadline, retries on
UNAVAILABLE, the service's own token): the govservice :class:`MemberDirectory`."""

from __future__ import annotations

from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc

from services.govservice.usecases.common import MemberInfo
from services.platform.grpc_client import PeerClient

__all__ = ["CommerceMembers"]


class CommerceMembers:
    def __init__(self, client: PeerClient[commerce_pb2_grpc.CommerceServiceStub]) -> None:
        self._client = client

    def get_member(self, credit_code: str) -> MemberInfo | None:
        """The enterprise's details from its first ACTIVE membership (None when it has none)."""
        reply = self._client.call(
            self._client.stub.ListMemberships,
            commerce_pb2.ListMembershipsRequest(
                credit_code=credit_code, statuses=[commerce_pb2.MEMBERSHIP_STATUS_ACTIVE]
            ),
        )
        for membership in reply.memberships:
            return MemberInfo(
                membership.credit_code, membership.enterprise_name, membership.sector, membership.town
            )
        return None
