"""Helpers for the govservice service's integration tests: clients over real gRPC channels with tokens
signed by the module's key pair, a real commerce service to make members in, events read back from Kafka,
made-up identity numbers with valid check digits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc
from cityhub.govservice.v1 import govservice_pb2_grpc
from google.protobuf.message import Message

from services.govservice.settings import GovServiceSettings
from services.platform.identifiers import identity_check_char
from services.platform.kafka import decode_payload, envelope_from_record
from services.platform.runtime import ServiceRuntime
from services.platform.security import TokenIssuer
from tests.integration.industry.industry_support import credit_code, read_to_end

__all__ = ["OFFICE", "CommercePeer", "GovService", "clerk", "credit_code", "identity_number", "rid"]

OFFICE = ("district_operator",)


def rid() -> str:
    """A fresh client request id."""
    return f"r-{secrets.token_hex(8)}"


def identity_number(division: str = "522632", born: str = "19900101") -> str:
    """A made-up resident identity number registered in ``division`` (valid check digit)."""
    first17 = f"{division}{born}{secrets.randbelow(1000):03d}"
    return first17 + identity_check_char(first17)


def clerk(region: str) -> dict[str, Any]:
    """Keyword arguments for GovService.call acting as a clerk of ``region``."""
    return {"roles": ("gov_clerk",), "scopes": (f"region:{region}",)}


def _bearer(
    issuer: TokenIssuer, roles: tuple[str, ...], scopes: tuple[str, ...], sub: str
) -> list[tuple[str, str]]:
    token = issuer.issue(sub=sub, roles=roles, scopes=scopes, ttl_s=3600)
    return [("authorization", f"Bearer {token}")]


@dataclass
class CommercePeer:
    runtime: ServiceRuntime
    stub: commerce_pb2_grpc.CommerceServiceStub
    issuer: TokenIssuer

    def member(self, name: str = "Taizhou Precision Co.", town: str = "Luqiao Street") -> str:
        """An enterprise made an ACTIVE member of a chamber in the real commerce service; its credit code."""
        code = credit_code(secrets.randbelow(31**9))
        metadata = tuple(_bearer(self.issuer, ("district_operator",), (), "tester"))
        stub: Any = self.stub
        chamber = stub.ListChambers(
            commerce_pb2.ListChambersRequest(), metadata=metadata, timeout=30
        ).chambers
        chamber_id = chamber[0].chamber_id if chamber else self._chamber(stub, metadata)
        membership = stub.ApplyForMembership(
            commerce_pb2.ApplyForMembershipRequest(
                request_id=rid(), chamber_id=chamber_id, credit_code=code, enterprise_name=name, town=town
            ),
            metadata=metadata,
            timeout=30,
        ).membership
        stub.ApproveMembership(
            commerce_pb2.ApproveMembershipRequest(membership_id=membership.membership_id),
            metadata=metadata,
            timeout=30,
        )
        return code

    def _chamber(self, stub: Any, metadata: Any) -> str:
        federation = stub.CreateFederation(
            commerce_pb2.CreateFederationRequest(
                request_id=rid(),
                name="Zhejiang Federation",
                level=commerce_pb2.FEDERATION_LEVEL_PROVINCE,
                division_code="330000",
            ),
            metadata=metadata,
            timeout=30,
        ).federation
        chamber = stub.CreateChamber(
            commerce_pb2.CreateChamberRequest(
                request_id=rid(),
                federation_id=federation.federation_id,
                name="Zhejiang Machinery Chamber",
                kind=commerce_pb2.CHAMBER_KIND_TRADE,
                sector="MACHINERY",
                join_rule=commerce_pb2.JOIN_RULE_STAFF_REVIEW,
            ),
            metadata=metadata,
            timeout=30,
        ).chamber
        return str(chamber.chamber_id)


@dataclass
class GovService:
    runtime: ServiceRuntime
    settings: GovServiceSettings
    stub: govservice_pb2_grpc.CrossRegionServiceStub
    issuer: TokenIssuer
    kafka_bootstrap: str
    database_url: str
    commerce: CommercePeer

    def call(
        self,
        rpc: str,
        request: Message,
        *,
        roles: tuple[str, ...] = OFFICE,
        scopes: tuple[str, ...] = (),
        sub: str = "",
        purpose: str = "",
    ) -> Any:
        """``rpc(request)`` with a fresh token of ``roles`` and ``scopes``; raises grpc.RpcError."""
        metadata = _bearer(self.issuer, roles, scopes, sub or f"tester-{secrets.token_hex(3)}")
        if purpose:
            metadata.append(("x-purpose", purpose))
        return getattr(self.stub, rpc)(request, metadata=tuple(metadata), timeout=30)

    def events(self, subjects: set[str] | None = None) -> list[tuple[str, Message]]:
        """Every event on the events topic so far (optionally of these subjects): (ce_type, message)."""
        found: list[tuple[str, Message]] = []
        for record in read_to_end(self.kafka_bootstrap, self.settings.govservice_events_topic):
            envelope = envelope_from_record(record)
            if subjects is None or envelope.subject in subjects:
                found.append((envelope.type, decode_payload(envelope.type, envelope.payload)))
        return found
