"""Helpers for the commerce service's integration tests: clients over real gRPC channels with tokens
signed by the module's key pair, enterprises onboarded in the real industry service, events read back
from Kafka."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, cast

import grpc
from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
from google.protobuf.message import Message

from services.commerce.settings import CommerceSettings
from services.platform.kafka import decode_payload, envelope_from_record
from services.platform.runtime import ServiceRuntime
from services.platform.security import TokenIssuer
from tests.integration.industry.industry_support import credit_code, read_to_end

__all__ = ["FEDERATION", "Commerce", "IndustryPeer", "credit_code", "fresh_code", "rid"]

FEDERATION = ("district_operator",)


def rid() -> str:
    """A fresh client request id."""
    return f"r-{secrets.token_hex(8)}"


def fresh_code() -> str:
    """A well-formed credit code no other test uses."""
    return credit_code(secrets.randbelow(31**9))


def _bearer(issuer: TokenIssuer, roles: tuple[str, ...], scopes: tuple[str, ...]) -> list[tuple[str, str]]:
    token = issuer.issue(sub=f"tester-{secrets.token_hex(3)}", roles=roles, scopes=scopes, ttl_s=3600)
    return [("authorization", f"Bearer {token}")]


@dataclass
class IndustryPeer:
    runtime: ServiceRuntime
    stub: industry_pb2_grpc.IndustryServiceStub
    issuer: TokenIssuer

    def onboard(self, code: str | None = None, *, name: str = "") -> str:
        """An enterprise onboarded in the real industry service (machinery, no park); its credit code."""
        code = code or fresh_code()
        self.stub.OnboardEnterprise(
            industry_pb2.OnboardEnterpriseRequest(
                request_id=rid(),
                credit_code=code,
                name=name or f"Enterprise {code[-6:]}",
                sector=industry_pb2.SECTOR_MACHINERY,
                address="Luqiao",
            ),
            metadata=tuple(_bearer(self.issuer, ("industry_operator",), ())),
            timeout=30,
        )
        return code


@dataclass
class Commerce:
    runtime: ServiceRuntime
    settings: CommerceSettings
    stub: commerce_pb2_grpc.CommerceServiceStub
    issuer: TokenIssuer
    kafka_bootstrap: str
    database_url: str
    industry: IndustryPeer

    def call(
        self, rpc: str, request: Message, *, roles: tuple[str, ...] = FEDERATION, scopes: tuple[str, ...] = ()
    ) -> Any:
        """``rpc(request)`` with a fresh token of ``roles`` and ``scopes``; raises grpc.RpcError."""
        return getattr(self.stub, rpc)(request, metadata=_bearer(self.issuer, roles, scopes), timeout=30)

    def federation_and_chamber(
        self, rule: int = commerce_pb2.JOIN_RULE_AUTO_APPROVE_KNOWN
    ) -> tuple[commerce_pb2.Federation, commerce_pb2.Chamber]:
        """A county federation (with a unique made-up division code, under a made-up city and province)
        and a trade chamber under it."""
        province = self._federation_at(
            commerce_pb2.FEDERATION_LEVEL_PROVINCE, f"9{secrets.randbelow(10)}0000"
        )
        city = self._federation_at(
            commerce_pb2.FEDERATION_LEVEL_CITY,
            f"{province.division_code[:2]}{1 + secrets.randbelow(9)}{secrets.randbelow(10)}00",
            province.federation_id,
        )
        while True:
            division = f"{city.division_code[:4]}{1 + secrets.randbelow(99):02d}"
            try:
                federation = self.call(
                    "CreateFederation",
                    commerce_pb2.CreateFederationRequest(
                        request_id=rid(),
                        name=f"Federation {division}",
                        level=commerce_pb2.FEDERATION_LEVEL_COUNTY,
                        division_code=division,
                        parent_id=city.federation_id,
                    ),
                ).federation
                break
            except grpc.RpcError as error:
                # Another call of this module drew the same county code: draw again (each call's county
                # is its own, so rankings across it hold only its chambers).
                if error.code() is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
        chamber = self.call(
            "CreateChamber",
            commerce_pb2.CreateChamberRequest(
                request_id=rid(),
                federation_id=federation.federation_id,
                name=f"Machinery chamber {division}",
                kind=commerce_pb2.CHAMBER_KIND_TRADE,
                sector="MACHINERY",
                division_code=division,
                join_rule=cast("commerce_pb2.JoinRule.ValueType", rule),
            ),
        ).chamber
        return federation, chamber

    def _federation_at(
        self, level: commerce_pb2.FederationLevel.ValueType, division: str, parent_id: str = ""
    ) -> commerce_pb2.Federation:
        """The federation with ``division`` (made now, or found if an earlier call of the module made it)."""
        try:
            made: commerce_pb2.Federation = self.call(
                "CreateFederation",
                commerce_pb2.CreateFederationRequest(
                    request_id=rid(),
                    name=f"Federation {division}",
                    level=level,
                    division_code=division,
                    parent_id=parent_id,
                ),
            ).federation
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.ALREADY_EXISTS:
                raise
        else:
            return made
        token = ""
        while True:
            page = self.call(
                "ListFederations",
                commerce_pb2.ListFederationsRequest(
                    parent_id=parent_id, page=common_pb2.PageRequest(page_size=500, page_token=token)
                ),
            )
            for listed in page.federations:
                if listed.division_code == division:
                    found: commerce_pb2.Federation = listed
                    return found
            token = page.page.next_page_token
            if not token:
                raise LookupError(f"federation {division} exists but is not listed")

    def events(self, subjects: set[str] | None = None) -> list[tuple[str, Message]]:
        """Every event on the events topic so far (optionally of these subjects): (ce_type, message)."""
        found: list[tuple[str, Message]] = []
        for record in read_to_end(self.kafka_bootstrap, self.settings.commerce_events_topic):
            envelope = envelope_from_record(record)
            if subjects is None or envelope.subject in subjects:
                found.append((envelope.type, decode_payload(envelope.type, envelope.payload)))
        return found
