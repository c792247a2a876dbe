"""Helpers for the industry service's integration tests: a client over a real gRPC channel with tokens
signed by a throwaway key pair, reading events back from Kafka, made-up credit codes, bounded waits."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
from google.protobuf.message import Message

from services.industry.settings import IndustrySettings
from services.platform.identifiers import credit_code_check_char
from services.platform.kafka import decode_payload, envelope_from_record
from services.platform.runtime import ServiceRuntime
from services.platform.security import TokenIssuer
from tests.support import wait_until

T = TypeVar("T")
OPERATOR = ("industry_operator",)


def credit_code(seed: int, *, division: str = "331004") -> str:
    """A made-up but well-formed unified social credit code (valid check character)."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "".join(alphabet[(seed // 31**i + i * 7) % 31] for i in range(9))
    first17 = f"91{division}{body}"
    return first17 + credit_code_check_char(first17)


@dataclass
class Industry:
    runtime: ServiceRuntime
    settings: IndustrySettings
    stub: industry_pb2_grpc.IndustryServiceStub
    issuer: TokenIssuer
    kafka_bootstrap: str

    def token(self, roles: tuple[str, ...] = OPERATOR, scopes: tuple[str, ...] = ()) -> str:
        return self.issuer.issue(sub=f"tester-{secrets.token_hex(3)}", roles=roles, scopes=scopes, ttl_s=3600)

    def call(
        self,
        rpc: str,
        request: Message,
        *,
        roles: tuple[str, ...] = OPERATOR,
        scopes: tuple[str, ...] = (),
    ) -> Any:
        method = getattr(self.stub, rpc)
        return method(
            request, metadata=[("authorization", f"Bearer {self.token(roles, scopes)}")], timeout=30
        )

    def events(self, subjects: set[str], *, topic: str | None = None) -> list[tuple[str, Message]]:
        """Every event on the events topic so far whose subject is one of ``subjects``: (ce_type, message)."""
        from kafka import KafkaConsumer, TopicPartition

        name = topic or self.settings.events_topic
        consumer: Any = KafkaConsumer(
            bootstrap_servers=self.kafka_bootstrap.split(","), group_id=None, enable_auto_commit=False
        )
        try:
            partitions = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            ends = consumer.end_offsets(partitions)
            found: list[tuple[str, Message]] = []
            deadline = time.monotonic() + 15
            while any(consumer.position(tp) < ends[tp] for tp in partitions):
                assert time.monotonic() < deadline, f"reading {name} took too long"
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        envelope = envelope_from_record(record)
                        if envelope.subject in subjects:
                            found.append((envelope.type, decode_payload(envelope.type, envelope.payload)))
            return found
        finally:
            consumer.close(autocommit=False)

    def wait_for_events(
        self, subjects: set[str], done: Callable[[list[tuple[str, Message]]], bool], *, what: str
    ) -> list[tuple[str, Message]]:
        def check() -> list[tuple[str, Message]] | None:
            found = self.events(subjects)
            return found if done(found) else None

        return wait_until(check, timeout_s=30, what=what, interval_s=0.3)

    # --- shortcuts used by every module -----------------------------------------------------------

    def park(self, name: str = "Luqiao small-and-micro park") -> industry_pb2.Park:
        response = self.call(
            "RegisterPark",
            industry_pb2.RegisterParkRequest(
                request_id=secrets.token_hex(8), name=name, division_code="331004", address="Luqiao"
            ),
        )
        return response.park  # type: ignore[no-any-return]

    def enterprise(
        self, code: str, park_id: str, name: str = "Taizhou Precision Co."
    ) -> industry_pb2.Enterprise:
        response = self.call(
            "OnboardEnterprise",
            industry_pb2.OnboardEnterpriseRequest(
                request_id=secrets.token_hex(8),
                credit_code=code,
                name=name,
                sector=industry_pb2.SECTOR_MACHINERY,
                park_id=park_id,
                address="Luqiao",
            ),
        )
        return response.enterprise  # type: ignore[no-any-return]

    def device(
        self,
        enterprise_id: str,
        *,
        workshop: str = "W1",
        machine_type: int = industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
        rated_power_kw: float = 15.0,
        ideal_cycle_seconds: float = 30.0,
        sample_interval_ms: int = 60_000,
    ) -> industry_pb2.Device:
        response = self.call(
            "RegisterDevice",
            industry_pb2.RegisterDeviceRequest(
                request_id=secrets.token_hex(8),
                serial_number=f"BOX-{secrets.token_hex(6)}",
                enterprise_id=enterprise_id,
                workshop=workshop,
                machine_type=machine_type,  # type: ignore[arg-type]
                rated_power_kw=rated_power_kw,
                ideal_cycle_seconds=ideal_cycle_seconds,
                sample_interval_ms=sample_interval_ms,
            ),
        )
        return response.device  # type: ignore[no-any-return]
