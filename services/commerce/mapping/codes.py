"""The one-code family: domain -> responses and events (never a code's text in an event)."""

from __future__ import annotations

from datetime import datetime

from cityhub.commerce.v1 import commerce_pb2, events_pb2

from services.commerce.domain.codes import CodeVerdict, IssuedCode, OnlineVerification, PublishedKey
from services.platform.protoconv import EnumMap, optional_timestamp, to_timestamp

__all__ = [
    "CODE_VERDICT",
    "member_code_issued",
    "member_code_pb",
    "verification_key_pb",
    "verify_response",
]

CODE_VERDICT = EnumMap(CodeVerdict, commerce_pb2.CodeVerdict, "CODE_VERDICT")


def member_code_pb(code: IssuedCode) -> commerce_pb2.MemberCode:
    return commerce_pb2.MemberCode(
        text=code.text,
        qr_png=code.qr_png,
        key_id=code.key_id,
        not_before=to_timestamp(code.not_before),
        expires_at=to_timestamp(code.expires_at),
    )


def member_code_issued(code: IssuedCode, at: datetime) -> events_pb2.MemberCodeIssued:
    # Deliberately no text and no QR: whoever reads the topic must not be able to present the code.
    return events_pb2.MemberCodeIssued(
        membership_id=code.membership_id,
        chamber_id=code.chamber_id,
        credit_code=code.credit_code,
        key_id=code.key_id,
        expires_at=to_timestamp(code.expires_at),
        at=to_timestamp(at),
    )


def verification_key_pb(key: PublishedKey) -> commerce_pb2.VerificationKey:
    return commerce_pb2.VerificationKey(
        key_id=key.key_id,
        federation_id=key.federation_id,
        algorithm=key.algorithm,
        public_key_pem=key.public_key_pem,
        created_at=to_timestamp(key.created_at),
        retires_at=optional_timestamp(key.retires_at),
    )


def verify_response(result: OnlineVerification) -> commerce_pb2.VerifyMemberCodeResponse:
    return commerce_pb2.VerifyMemberCodeResponse(
        verdict=CODE_VERDICT.to_proto(result.verdict),
        membership_id=result.membership_id,
        chamber_id=result.chamber_id,
        credit_code=result.credit_code,
        enterprise_name=result.enterprise_name,
    )
