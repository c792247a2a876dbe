"""The hub built in-process on the real PostgreSQL and Kafka, one per test module, consuming topics of
its own (named after the module) into its own schema. Tests put domain events on those topics exactly as
the domains' relays would (CloudEvents records), so projections are tested fast and exactly; the
end-to-end test runs the real domain services beside it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cityhub.hub.v1 import hub_pb2_grpc

from services.hub.bootstrap import build
from services.hub.settings import HubSettings
from services.platform.kafka import ensure_topics, make_producer
from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.settings import load_settings
from tests.integration.hub.hub_support import Hub
from tests.kafka_support import delete_topics

DOMAINS = ("safety", "industry", "kitchen", "commerce", "govservice")


def hub_settings(kafka_bootstrap: str, database_url: str, suffix: str, **overrides: Any) -> HubSettings:
    values: dict[str, Any] = {
        "service_name": f"hub_t{suffix}",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "warning",
        "topic_partitions": 3,
        "hub_events_topic": f"cityhub.hub.events.v1.t{suffix}",
        **{f"hub_{d}_events_topic": f"cityhub.{d}.events.v1.t{suffix}" for d in DOMAINS},
        "outbox_poll_interval_s": 0.05,
        "hub_escalation_check_interval_s": 0.3,
        **overrides,
    }
    return load_settings(HubSettings, **values)


@pytest.fixture(scope="module")
def hub_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("hub-keys"))


@pytest.fixture(scope="module")
def hub(kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings) -> Iterator[Hub]:
    suffix = secrets.token_hex(4)
    settings = hub_settings(kafka_bootstrap, database_url, suffix)
    topics = [*settings.domain_topics, settings.hub_events_topic]
    ensure_topics(kafka_bootstrap, topics, partitions=3, replication=1)
    runtime = build(settings, configure_logs=False, security=hub_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    producer = make_producer(kafka_bootstrap)
    try:
        yield Hub(
            runtime,
            settings,
            hub_pb2_grpc.HubServiceStub(channel),
            TokenIssuer.from_settings(hub_security),
            kafka_bootstrap,
            database_url,
            producer,
        )
    finally:
        producer.close(timeout=5)
        channel.close()
        runtime.close()
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])
