"""Helpers for the kitchen service's integration tests: clients over real gRPC channels with tokens
signed by the module's key pair, a school registered in the real safety service, events read back from
Kafka, bounded waits."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import kitchen_pb2, kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from google.protobuf.message import Message

from services.kitchen.settings import KitchenSettings
from services.platform.kafka import decode_payload, envelope_from_record
from services.platform.runtime import ServiceRuntime
from services.platform.security import TokenIssuer
from tests.integration.industry.industry_support import credit_code, read_to_end

__all__ = ["INSPECTOR", "Kitchen", "SafetyPeer", "credit_code", "rid"]

INSPECTOR = ("food_inspector",)
MANAGER = ("kitchen_manager",)
SERVICE = ("service",)


def rid() -> str:
    """A fresh client request id."""
    return f"r-{secrets.token_hex(8)}"


def _bearer(issuer: TokenIssuer, roles: tuple[str, ...], scopes: tuple[str, ...]) -> list[tuple[str, str]]:
    token = issuer.issue(sub=f"tester-{secrets.token_hex(3)}", roles=roles, scopes=scopes, ttl_s=3600)
    return [("authorization", f"Bearer {token}")]


@dataclass
class SafetyPeer:
    runtime: ServiceRuntime
    stub: safety_pb2_grpc.SafetyServiceStub
    issuer: TokenIssuer

    def register_site(
        self, kind: safety_pb2.SiteKind.ValueType = safety_pb2.SITE_KIND_SCHOOL, *, name: str = ""
    ) -> safety_pb2.Site:
        """A school (or another kind of site) registered in the real safety service."""
        request = safety_pb2.RegisterSiteRequest(
            request_id=rid(),
            name=name or f"Site {secrets.token_hex(3)}",
            kind=kind,
            address="1 School Road",
            division_code="331004",
            town="Xiachen Street",
            location=common_pb2.GeoPoint(latitude=28.66, longitude=121.42),
            duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-88000000"),
        )
        stub: Any = self.stub
        reply = stub.RegisterSite(
            request, metadata=_bearer(self.issuer, ("district_operator", "service"), ()), timeout=30
        )
        site: safety_pb2.Site = reply.site
        return site


@dataclass
class Kitchen:
    runtime: ServiceRuntime
    settings: KitchenSettings
    stub: kitchen_pb2_grpc.KitchenServiceStub
    issuer: TokenIssuer
    kafka_bootstrap: str
    database_url: str
    safety: SafetyPeer

    def call(
        self,
        rpc: str,
        request: Message,
        *,
        roles: tuple[str, ...] = SERVICE,
        scopes: tuple[str, ...] = (),
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> Any:
        """``rpc(request)`` with a fresh token of ``roles`` and ``scopes``; raises grpc.RpcError."""
        method = getattr(self.stub, rpc)
        return method(request, metadata=[*_bearer(self.issuer, roles, scopes), *metadata], timeout=30)

    def call_with_trailers(
        self,
        rpc: str,
        request: Message,
        *,
        roles: tuple[str, ...],
        scopes: tuple[str, ...] = (),
        purpose: str = "",
    ) -> tuple[Any, dict[str, str]]:
        """The response and its trailing metadata (x-masked-fields says what was masked)."""
        method = getattr(self.stub, rpc)
        metadata = _bearer(self.issuer, roles, scopes)
        if purpose:
            metadata.append(("x-purpose", purpose))
        response, call = method.with_call(request, metadata=metadata, timeout=30)
        return response, dict(call.trailing_metadata() or ())

    def register_kitchen(
        self,
        site_id: str | None = None,
        *,
        shifts: tuple[tuple[str, str, str], ...] = (("lunch", "09:00", "13:30"),),
        contractor: str = "",
    ) -> kitchen_pb2.Kitchen:
        """A kitchen for a fresh school in the real safety service (or for ``site_id``)."""
        site = site_id or self.safety.register_site().site_id
        operator = (
            kitchen_pb2.KitchenOperator(
                kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR, name="Fresh Catering Co.", credit_code=contractor
            )
            if contractor
            else kitchen_pb2.KitchenOperator(kind=kitchen_pb2.OPERATOR_KIND_SCHOOL_RUN, name="The school")
        )
        reply = self.call(
            "RegisterKitchen",
            kitchen_pb2.RegisterKitchenRequest(
                request_id=rid(),
                site_id=site,
                name=f"Kitchen {secrets.token_hex(3)}",
                operator=operator,
                meals_per_day=600,
                shifts=[kitchen_pb2.Shift(name=n, start_time=s, end_time=e) for n, s, e in shifts],
                commitment="We promise safe food for every pupil.",
            ),
            roles=INSPECTOR,
        )
        kitchen: kitchen_pb2.Kitchen = reply.kitchen
        return kitchen

    def events(self, subjects: set[str] | None = None) -> list[tuple[str, Message]]:
        """Every event on the events topic so far (optionally of these subjects): (ce_type, message)."""
        found: list[tuple[str, Message]] = []
        for record in read_to_end(self.kafka_bootstrap, self.settings.kitchen_events_topic):
            envelope = envelope_from_record(record)
            if subjects is None or envelope.subject in subjects:
                found.append((envelope.type, decode_payload(envelope.type, envelope.payload)))
        return found
