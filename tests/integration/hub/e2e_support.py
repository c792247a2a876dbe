"""The end-to-end world: the five real domain services and the hub, in-process, each on a schema and topics
of its own, trusting one JWT key pair, with their peers wired as `make run` wires them (kitchen → safety,
commerce → industry, govservice → commerce) and the hub consuming THEIR events topics and reading THEIR
gRPC APIs for the live detail. Everything the tests do goes through the services' gRPC APIs; nothing is
published by hand (except the deliberate redelivery of records read back from a topic)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
from cityhub.commerce.v1 import commerce_pb2_grpc
from cityhub.govservice.v1 import govservice_pb2_grpc
from cityhub.hub.v1 import hub_pb2_grpc
from cityhub.industry.v1 import industry_pb2_grpc
from cityhub.kitchen.v1 import kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2_grpc
from google.protobuf.message import Message

from services.commerce.bootstrap import build as build_commerce
from services.govservice.bootstrap import build as build_govservice
from services.hub.bootstrap import PROJECTION_CONSUMER
from services.hub.bootstrap import build as build_hub
from services.hub.rebuild import projection_tables
from services.industry.bootstrap import build as build_industry
from services.industry.settings import IndustrySettings
from services.kitchen.bootstrap import build as build_kitchen
from services.platform.kafka import decode_payload, envelope_from_record, make_producer
from services.platform.runtime import ServiceRuntime
from services.platform.security import SecuritySettings, TokenIssuer
from services.platform.settings import load_settings
from services.safety.bootstrap import build as build_safety
from tests.integration.commerce.conftest import commerce_settings
from tests.integration.govservice.conftest import govservice_settings
from tests.integration.hub.conftest import hub_settings
from tests.integration.hub.hub_support import Hub
from tests.integration.industry.industry_support import read_to_end
from tests.integration.kitchen.conftest import kitchen_settings
from tests.integration.safety.conftest import safety_settings
from tests.kafka_support import delete_topics
from tests.support import wait_until

__all__ = ["SEED_FILE", "Domain", "World", "start_world"]

REPO = Path(__file__).resolve().parents[3]
SEED_FILE = REPO / "deploy" / "local" / "govservice-seed.toml"
ORDER = ("safety", "industry", "kitchen", "commerce", "govservice")
_STUBS: dict[str, Any] = {
    "safety": safety_pb2_grpc.SafetyServiceStub,
    "industry": industry_pb2_grpc.IndustryServiceStub,
    "kitchen": kitchen_pb2_grpc.KitchenServiceStub,
    "commerce": commerce_pb2_grpc.CommerceServiceStub,
    "govservice": govservice_pb2_grpc.CrossRegionServiceStub,
}


@dataclass
class Domain:
    """One real domain service running in-process."""

    name: str
    runtime: ServiceRuntime
    settings: Any
    stub: Any
    issuer: TokenIssuer
    channel: grpc.Channel
    stopped: bool = False

    @property
    def events_topic(self) -> str:
        return str(getattr(self.settings, f"{self.name}_events_topic"))

    def call(
        self,
        rpc: str,
        request: Message,
        *,
        roles: tuple[str, ...] = ("service",),
        scopes: tuple[str, ...] = (),
        purpose: str = "",
    ) -> Any:
        token = self.issuer.issue(sub=f"e2e-{secrets.token_hex(3)}", roles=roles, scopes=scopes, ttl_s=3600)
        metadata = [("authorization", f"Bearer {token}")]
        if purpose:
            metadata.append(("x-purpose", purpose))
        return getattr(self.stub, rpc)(request, metadata=tuple(metadata), timeout=30)

    def outbox_drained(self) -> bool:
        if self.stopped:
            return True
        with self.runtime.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        return bool(row and row[0] == 0)

    def stop(self) -> None:
        """Take the service away as an outage would: its server stops answering."""
        self.stopped = True
        self.channel.close()
        self.runtime.close()


@dataclass
class World:
    domains: dict[str, Domain]
    hub: Hub
    kafka_bootstrap: str
    database_url: str
    security: SecuritySettings
    _admin: Any = field(default=None, repr=False)

    def __getitem__(self, name: str) -> Domain:
        return self.domains[name]

    # --- what the hub consumes -----------------------------------------------------------------------

    @property
    def hub_group(self) -> str:
        return f"{self.hub.settings.service_name}.{PROJECTION_CONSUMER}"

    @property
    def hub_inputs(self) -> list[str]:
        return [*self.hub.settings.domain_topics, self.hub.settings.hub_events_topic]

    def _end_offsets(self, topics: list[str]) -> dict[tuple[str, int], int]:
        from kafka import KafkaConsumer, TopicPartition

        probe: Any = KafkaConsumer(bootstrap_servers=self.kafka_bootstrap.split(","), group_id=None)
        try:
            partitions = [
                TopicPartition(t, p) for t in topics for p in sorted(probe.partitions_for_topic(t) or ())
            ]
            ends = probe.end_offsets(partitions)
        finally:
            probe.close(autocommit=False)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}

    def _committed(self) -> dict[tuple[str, int], int]:
        from kafka import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap.split(","))
        offsets = self._admin.list_group_offsets({self.hub_group: None}).get(self.hub_group, {})
        return {(tp.topic, tp.partition): int(meta.offset) for tp, meta in offsets.items()}

    def hub_outbox_drained(self) -> bool:
        with self.hub.runtime.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
        return bool(row and row[0] == 0)

    def settle(self, *, timeout_s: float = 30.0) -> None:
        """Wait until every event the domains have committed so far has been relayed and consumed by the
        hub, and the hub's own events from that (opened items, incidents) too: twice round, since what the
        hub publishes from the first pass it consumes in the second."""
        for _round in range(2):
            for domain in self.domains.values():
                wait_until(
                    domain.outbox_drained, timeout_s=timeout_s, what=f"{domain.name}'s outbox to drain"
                )
            wait_until(self.hub_outbox_drained, timeout_s=timeout_s, what="the hub's outbox to drain")
            ends = self._end_offsets(self.hub_inputs)

            def caught_up(ends: dict[tuple[str, int], int] = ends) -> bool:
                committed = self._committed()
                return all(end == 0 or committed.get(tp, 0) >= end for tp, end in ends.items())

            wait_until(caught_up, timeout_s=timeout_s, what="the hub to consume everything", interval_s=0.1)

    def dead_letters(self) -> dict[str, int]:
        """Records the hub's consumer dead-lettered, by input topic (none expected)."""
        ends = self._end_offsets([f"{t}.dlq" for t in self.hub_inputs])
        found: dict[str, int] = {}
        for (topic, _partition), end in ends.items():
            if end:
                found[topic] = found.get(topic, 0) + end
        return found

    def records(self, topic: str) -> list[Any]:
        """Every record on ``topic`` so far (all partitions)."""
        return read_to_end(self.kafka_bootstrap, topic)

    def hub_events(self) -> list[tuple[str, str, Message]]:
        """The hub's own events so far: (ce_type, key, message)."""
        found = []
        for record in self.records(self.hub.settings.hub_events_topic):
            envelope = envelope_from_record(record)
            found.append((envelope.type, envelope.key or "", decode_payload(envelope.type, envelope.payload)))
        return found

    def redeliver(self, topic: str) -> int:
        """Put every record of ``topic`` on it once more, byte for byte (key, value, headers): the at-least-
        once delivery a relay retry or a producer timeout makes. Returns how many."""
        records = self.records(topic)
        producer = make_producer(self.kafka_bootstrap)
        try:
            for record in records:
                producer.send(topic, value=record.value, key=record.key, headers=list(record.headers or ()))
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=5)
        return len(records)

    def hub_tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection table of the hub's schema (those the rebuild compares), row for row in a stable
        order."""
        schema = self.hub.settings.service_name
        found: dict[str, list[tuple[Any, ...]]] = {}
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for table in projection_tables(conn, schema):
                rows = conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
                found[table] = sorted((tuple(r) for r in rows), key=repr)
        return found

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()


def _industry_settings(kafka_bootstrap: str, database_url: str) -> IndustrySettings:
    suffix = secrets.token_hex(4)
    return load_settings(
        IndustrySettings,
        service_name=f"industry_t{suffix}",
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        log_level="warning",
        topic_partitions=3,
        industry_events_topic=f"cityhub.industry.events.v1.t{suffix}",
        industry_telemetry_topic=f"cityhub.industry.telemetry.v1.t{suffix}",
        # A fault alert once a device has been in fault a minute of sample time; the health monitor off,
        # so no silence alert depends on how long the test takes.
        industry_fault_alert_after_s=60.0,
        industry_health_monitor_enabled=False,
        industry_rollup_publish_delay_s=0.0,
        outbox_poll_interval_s=0.05,
    )


@contextmanager
def start_world(
    kafka_bootstrap: str,
    database_url: str,
    security: SecuritySettings,
    *,
    hub_overrides: dict[str, Any] | None = None,
) -> Iterator[World]:
    """Build and start the five domains and the hub; stop them and delete their topics at the end."""
    issuer = TokenIssuer.from_settings(security)
    topics: list[str] = []
    with ExitStack() as stack:
        domains: dict[str, Domain] = {}

        def start(name: str, settings: Any, build: Callable[..., ServiceRuntime]) -> Domain:
            runtime = build(settings, configure_logs=False, security=security)
            stack.callback(runtime.close)
            runtime.start()
            channel = grpc.insecure_channel(runtime.address)
            stack.callback(channel.close)
            domain = Domain(name, runtime, settings, _STUBS[name](channel), issuer, channel)
            domains[name] = domain
            topics.append(domain.events_topic)
            return domain

        safety = start("safety", safety_settings(kafka_bootstrap, database_url), build_safety)
        industry_settings = _industry_settings(kafka_bootstrap, database_url)
        topics.append(industry_settings.industry_telemetry_topic)
        industry = start("industry", industry_settings, build_industry)
        kitchen = kitchen_settings(kafka_bootstrap, database_url, safety.runtime.address)
        topics.append(kitchen.kitchen_readings_topic)
        start("kitchen", kitchen, build_kitchen)
        commerce = start(
            "commerce",
            commerce_settings(kafka_bootstrap, database_url, industry.runtime.address),
            build_commerce,
        )
        start(
            "govservice",
            govservice_settings(
                kafka_bootstrap, database_url, commerce.runtime.address, govservice_seed_file=SEED_FILE
            ),
            build_govservice,
        )
        stack.callback(delete_topics, kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])

        suffix = secrets.token_hex(4)
        values: dict[str, Any] = {
            **{f"hub_{name}_events_topic": d.events_topic for name, d in domains.items()},
            **{f"{name}_grpc_address": d.runtime.address for name, d in domains.items()},
            "peer_call_timeout_s": 2.0,
            **(hub_overrides or {}),
        }
        settings = hub_settings(kafka_bootstrap, database_url, suffix, **values)
        hub_topic = settings.hub_events_topic
        stack.callback(delete_topics, kafka_bootstrap, [hub_topic, f"{hub_topic}.dlq"])
        runtime = build_hub(settings, configure_logs=False, security=security)
        stack.callback(runtime.close)
        runtime.start()
        channel = grpc.insecure_channel(runtime.address)
        stack.callback(channel.close)
        producer = make_producer(kafka_bootstrap)
        stack.callback(producer.close, 5)
        hub = Hub(
            runtime,
            settings,
            hub_pb2_grpc.HubServiceStub(channel),
            issuer,
            kafka_bootstrap,
            database_url,
            producer,
        )
        world = World(domains, hub, kafka_bootstrap, database_url, security)
        stack.callback(world.close)
        yield world
