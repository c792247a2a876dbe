"""CommerceService methods of the one-code family: issue a member code, publish and rotate the
verification keys, verify a code online."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import codes as mapping
from services.commerce.usecases.codes import MemberCodes
from services.commerce.usecases.common import CommerceContext

__all__ = ["CodesApi"]


class CodesApi:
    _member_codes: MemberCodes

    def _init_codes(self, ctx: CommerceContext) -> None:
        self._member_codes = MemberCodes(ctx)

    def IssueMemberCode(  # noqa: N802
        self,
        request: commerce_pb2.IssueMemberCodeRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.IssueMemberCodeResponse:
        code = self._member_codes.issue(request.membership_id, current_visibility())
        return commerce_pb2.IssueMemberCodeResponse(code=mapping.member_code_pb(code))

    def GetVerificationKeys(  # noqa: N802
        self,
        request: commerce_pb2.GetVerificationKeysRequest,  # noqa: ARG002
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.GetVerificationKeysResponse:
        keys = self._member_codes.verification_keys()
        return commerce_pb2.GetVerificationKeysResponse(keys=[mapping.verification_key_pb(k) for k in keys])

    def RotateFederationKey(  # noqa: N802
        self,
        request: commerce_pb2.RotateFederationKeyRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.RotateFederationKeyResponse:
        key = self._member_codes.rotate(request.federation_id, current_visibility())
        return commerce_pb2.RotateFederationKeyResponse(key=mapping.verification_key_pb(key))

    def VerifyMemberCode(  # noqa: N802
        self,
        request: commerce_pb2.VerifyMemberCodeRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.VerifyMemberCodeResponse:
        return mapping.verify_response(self._member_codes.verify(request.text))
