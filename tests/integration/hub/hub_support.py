"""Helpers for the hub's integration tests: a client over a real gRPC channel with tokens signed by the
module's key pair; domain events put on the hub's input topics as a domain's relay writes them; a wait
until the hub has applied everything published so far."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from cityhub.hub.v1 import hub_pb2_grpc
from google.protobuf.message import Message

from services.hub.bootstrap import PROJECTION_CONSUMER
from services.hub.settings import HubSettings
from services.platform.kafka import EventEnvelope, Producer
from services.platform.runtime import ServiceRuntime
from services.platform.security import TokenIssuer
from tests.support import wait_until

__all__ = ["OPERATOR", "Hub"]

OPERATOR = ("district_operator",)


@dataclass
class Hub:
    runtime: ServiceRuntime
    settings: HubSettings
    stub: hub_pb2_grpc.HubServiceStub
    issuer: TokenIssuer
    kafka_bootstrap: str
    database_url: str
    producer: Producer

    def token(self, roles: tuple[str, ...] = OPERATOR, scopes: tuple[str, ...] = ()) -> str:
        return self.issuer.issue(sub=f"tester-{secrets.token_hex(3)}", roles=roles, scopes=scopes, ttl_s=3600)

    def call(
        self, rpc: str, request: Message, *, roles: tuple[str, ...] = OPERATOR, scopes: tuple[str, ...] = ()
    ) -> Any:
        """``rpc(request)`` with a fresh token of ``roles`` and ``scopes``; raises grpc.RpcError."""
        metadata = (("authorization", f"Bearer {self.token(roles, scopes)}"),)
        return getattr(self.stub, rpc)(request, metadata=metadata, timeout=30)

    def topic_of(self, message: Message) -> str:
        """The hub input topic a domain event goes to (by its package: cityhub.<domain>.v1)."""
        domain = message.DESCRIPTOR.full_name.split(".")[1]
        return str(getattr(self.settings, f"hub_{domain}_events_topic"))

    def publish(
        self,
        message: Message,
        *,
        key: str,
        subject: str,
        time: datetime | None = None,
        event_id: str | None = None,
    ) -> EventEnvelope:
        """Put one domain event on the hub's input topic, exactly as the domain's relay would."""
        domain = message.DESCRIPTOR.full_name.split(".")[1]
        envelope = EventEnvelope.for_message(
            message,
            topic=self.topic_of(message),
            key=key,
            subject=subject,
            source=f"/cityhub/{domain}",
            event_id=event_id or str(uuid.uuid4()),
            time=time or datetime.now(UTC),
        )
        self.producer.send(
            envelope.topic, value=envelope.payload, key=envelope.key_bytes, headers=envelope.headers()
        ).get(timeout=30)
        return envelope

    def applied(self) -> int:
        """Events the projection consumer has applied (processed_events rows in the hub's schema)."""
        schema = self.settings.service_name
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{schema}".processed_events WHERE consumer = %s',
                (PROJECTION_CONSUMER,),
            ).fetchone()
        return int(row[0]) if row else 0

    def has_applied(self, event_id: str) -> bool:
        """Whether the projection consumer has applied the event with this id."""
        schema = self.settings.service_name
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT 1 FROM "{schema}".processed_events WHERE consumer = %s AND event_id = %s',
                (PROJECTION_CONSUMER, event_id),
            ).fetchone()
        return row is not None

    def wait_event_applied(self, event_id: str, *, timeout_s: float = 30.0) -> None:
        """Wait until the hub has applied this very event (the hub's own events count in applied() too,
        so a count can be reached by something else)."""
        wait_until(lambda: self.has_applied(event_id) or None, timeout_s=timeout_s, what=f"event {event_id}")

    def wait_applied(self, count: int, *, timeout_s: float = 30.0) -> None:
        """Wait until at least ``count`` events in all have been applied by the hub."""
        wait_until(
            lambda: self.applied() >= count or None, timeout_s=timeout_s, what=f"{count} events applied"
        )
