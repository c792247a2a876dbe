"""The commerce service built in-process on the real PostgreSQL and Kafka, with a real industry service
beside it (a joining enterprise is looked up there over gRPC), one pair per test module.

Each module gets its own schemas and topics (deleted afterwards), its own seal key and one JWT key pair
both services trust."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2_grpc
from cityhub.industry.v1 import industry_pb2_grpc

from services.commerce.bootstrap import build
from services.commerce.settings import CommerceSettings
from services.industry.bootstrap import build as build_industry
from services.industry.settings import IndustrySettings
from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.settings import load_settings
from tests.integration.commerce.commerce_support import Commerce, IndustryPeer
from tests.kafka_support import delete_topics


def commerce_settings(
    kafka_bootstrap: str, database_url: str, industry_address: str, **overrides: Any
) -> CommerceSettings:
    suffix = secrets.token_hex(4)
    values: dict[str, Any] = {
        "service_name": f"commerce_t{suffix}",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "warning",
        "topic_partitions": 3,
        "commerce_events_topic": f"cityhub.commerce.events.v1.t{suffix}",
        "outbox_poll_interval_s": 0.05,
        "commerce_seal_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "industry_grpc_address": industry_address,
        # Short waits so an outage of industry is answered quickly in tests.
        "peer_call_timeout_s": 2.0,
        "commerce_overdue_sweep_interval_s": 0.3,
        **overrides,
    }
    return load_settings(CommerceSettings, **values)


@pytest.fixture(scope="module")
def commerce_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("commerce-keys"))


@pytest.fixture(scope="module")
def industry_peer(
    kafka_bootstrap: str, database_url: str, commerce_security: SecuritySettings
) -> Iterator[IndustryPeer]:
    suffix = secrets.token_hex(4)
    settings = load_settings(
        IndustrySettings,
        service_name=f"industry_t{suffix}",
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        log_level="warning",
        topic_partitions=1,
        industry_events_topic=f"cityhub.industry.events.v1.t{suffix}",
        industry_telemetry_topic=f"cityhub.industry.telemetry.v1.t{suffix}",
        industry_rollup_consumer_enabled=False,
        industry_health_monitor_enabled=False,
        outbox_poll_interval_s=0.05,
    )
    runtime = build_industry(settings, configure_logs=False, security=commerce_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield IndustryPeer(
            runtime,
            industry_pb2_grpc.IndustryServiceStub(channel),
            TokenIssuer.from_settings(commerce_security),
        )
    finally:
        channel.close()
        runtime.close()
        topics = [settings.industry_events_topic, settings.industry_telemetry_topic]
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])


@pytest.fixture(scope="module")
def commerce(
    kafka_bootstrap: str, database_url: str, commerce_security: SecuritySettings, industry_peer: IndustryPeer
) -> Iterator[Commerce]:
    settings = commerce_settings(kafka_bootstrap, database_url, industry_peer.runtime.address)
    runtime = build(settings, configure_logs=False, security=commerce_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Commerce(
            runtime,
            settings,
            commerce_pb2_grpc.CommerceServiceStub(channel),
            TokenIssuer.from_settings(commerce_security),
            kafka_bootstrap,
            database_url,
            industry_peer,
        )
    finally:
        channel.close()
        runtime.close()
        topic = settings.commerce_events_topic
        delete_topics(kafka_bootstrap, [topic, f"{topic}.dlq"])
