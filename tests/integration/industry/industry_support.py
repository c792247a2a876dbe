"""Helpers for the industry service's integration tests: a client over a real gRPC channel with tokens
signed by a throwaway key pair, reading events back from Kafka, made-up credit codes, bounded waits."""

from __future__ import annotations

import secrets
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
from tests.kafka_support import TopicReader, committed_offset
from tests.support import wait_until

T = TypeVar("T")
OPERATOR = ("industry_operator",)


def credit_code(seed: int, *, division: str = "331004") -> str:
    """A made-up but well-formed unified social credit code (valid check character)."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "".join(alphabet[(seed // 31**i + i * 7) % 31] for i in range(9))
    first17 = f"91{division}{body}"
    return first17 + credit_code_check_char(first17)


def read_to_end(bootstrap: str, topic: str, *, timeout_s: float = 15.0) -> list[Any]:
    """Every record on ``topic`` up to its end offsets as of now (all partitions), via TopicReader."""
    from kafka import KafkaConsumer, TopicPartition

    probe: Any = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or ())]
        ends = probe.end_offsets(partitions)
    finally:
        probe.close(autocommit=False)
    wanted = sum(ends.values())
    with TopicReader(bootstrap, [topic]) as reader:
        return list(reader.read_until(lambda rs: len(rs) >= wanted, timeout_s=timeout_s, what=topic))


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
        name = topic or self.settings.industry_events_topic
        found: list[tuple[str, Message]] = []
        for record in read_to_end(self.kafka_bootstrap, name):
            envelope = envelope_from_record(record)
            if envelope.subject in subjects:
                found.append((envelope.type, decode_payload(envelope.type, envelope.payload)))
        return found

    def outbox_drained(self) -> None:
        """Wait until every event committed so far has been relayed to Kafka (no unsent outbox row)."""

        def drained() -> bool:
            with self.runtime.pool.connection() as conn:
                row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
            return bool(row and row[0] == 0)

        wait_until(drained, timeout_s=30, what="the outbox to drain")

    def telemetry_consumed(self) -> None:
        """Wait until the rollup consumer has committed every record on the telemetry topic so far."""
        from kafka import KafkaConsumer, TopicPartition

        from services.industry.bootstrap import ROLLUP_CONSUMER

        topic = self.settings.industry_telemetry_topic
        group = f"{self.settings.service_name}.{ROLLUP_CONSUMER}"
        consumer: Any = KafkaConsumer(bootstrap_servers=self.kafka_bootstrap.split(","), group_id=None)
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            ends = consumer.end_offsets(partitions)
        finally:
            consumer.close(autocommit=False)

        def caught_up() -> bool:
            return all(
                ends[tp] == 0
                or (committed_offset(self.kafka_bootstrap, group, topic, tp.partition) or 0) >= ends[tp]
                for tp in partitions
            )

        wait_until(caught_up, timeout_s=30, what="the rollup consumer to catch up", interval_s=0.2)

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
        code: str,
        *,
        workshop: str = "W1",
        machine_type: industry_pb2.MachineType.ValueType = industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
        rated_power_kw: float = 15.0,
        ideal_cycle_seconds: float = 30.0,
        sample_interval_ms: int = 60_000,
    ) -> industry_pb2.Device:
        response = self.call(
            "RegisterDevice",
            industry_pb2.RegisterDeviceRequest(
                request_id=secrets.token_hex(8),
                serial_number=f"BOX-{secrets.token_hex(6)}",
                credit_code=code,
                workshop=workshop,
                machine_type=machine_type,
                rated_power_kw=rated_power_kw,
                ideal_cycle_seconds=ideal_cycle_seconds,
                sample_interval_ms=sample_interval_ms,
            ),
        )
        return response.device  # type: ignore[no-any-return]
