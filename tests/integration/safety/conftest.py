"""The safety service built in-process on the real PostgreSQL and Kafka, one per test module.

Each module gets its own schema (SERVICE_NAME=safety_t<hex>), its own events topic (deleted afterwards),
its own person key and its own JWT key pair."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cityhub.safety.v1 import safety_pb2_grpc

from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.settings import load_settings
from services.safety.bootstrap import build
from services.safety.settings import SafetySettings
from tests.integration.safety.safety_support import Safety
from tests.kafka_support import delete_topics


def safety_settings(kafka_bootstrap: str, database_url: str, **overrides: Any) -> SafetySettings:
    suffix = secrets.token_hex(4)
    values: dict[str, Any] = {
        "service_name": f"safety_t{suffix}",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "warning",
        "topic_partitions": 3,
        "safety_events_topic": f"cityhub.safety.events.v1.t{suffix}",
        "outbox_poll_interval_s": 0.05,
        "safety_person_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        **overrides,
    }
    return load_settings(SafetySettings, **values)


@pytest.fixture(scope="module")
def security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("safety-keys"))


@pytest.fixture(scope="module")
def safety(kafka_bootstrap: str, database_url: str, security: SecuritySettings) -> Iterator[Safety]:
    settings = safety_settings(kafka_bootstrap, database_url)
    runtime = build(settings, configure_logs=False, security=security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Safety(
            runtime,
            settings,
            safety_pb2_grpc.SafetyServiceStub(channel),
            TokenIssuer.from_settings(security),
            kafka_bootstrap,
            database_url,
        )
    finally:
        channel.close()
        runtime.close()
        delete_topics(kafka_bootstrap, [settings.safety_events_topic, f"{settings.safety_events_topic}.dlq"])
