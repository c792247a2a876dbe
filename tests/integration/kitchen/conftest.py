"""The kitchen service built in-process on the real PostgreSQL and Kafka, with a real safety service
beside it (a kitchen's site is checked there over gRPC), one pair per test module.

Each module gets its own schemas (SERVICE_NAME=kitchen_t<hex>, safety_t<hex>), its own topics (deleted
afterwards), its own person keys and one JWT key pair both services trust."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from cityhub.kitchen.v1 import kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2_grpc

from services.kitchen.bootstrap import build
from services.kitchen.settings import KitchenSettings
from services.kitchen.usecases.common import Clock, utc_now
from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.settings import load_settings
from services.safety.bootstrap import build as build_safety
from tests.integration.kitchen.kitchen_support import Kitchen, SafetyPeer
from tests.integration.safety.conftest import safety_settings
from tests.kafka_support import delete_topics


def kitchen_settings(
    kafka_bootstrap: str, database_url: str, safety_address: str, **overrides: Any
) -> KitchenSettings:
    suffix = secrets.token_hex(4)
    values: dict[str, Any] = {
        "service_name": f"kitchen_t{suffix}",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "warning",
        "topic_partitions": 3,
        "kitchen_events_topic": f"cityhub.kitchen.events.v1.t{suffix}",
        "kitchen_readings_topic": f"cityhub.kitchen.readings.v1.t{suffix}",
        "outbox_poll_interval_s": 0.05,
        "kitchen_person_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "safety_grpc_address": safety_address,
        # Short waits so an outage of safety is answered quickly in tests.
        "peer_call_timeout_s": 2.0,
        "kitchen_check_sweep_interval_s": 0.3,
        "kitchen_monitor_interval_s": 0.3,
        # Four days of late readings, so a test can lay a whole finished day out whatever the hour.
        "kitchen_readings_max_age_s": 4 * 86400.0,
        **overrides,
    }
    return load_settings(KitchenSettings, **values)


@pytest.fixture(scope="module")
def kitchen_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("kitchen-keys"))


@pytest.fixture(scope="module")
def safety_peer(
    kafka_bootstrap: str, database_url: str, kitchen_security: SecuritySettings
) -> Iterator[SafetyPeer]:
    settings = safety_settings(kafka_bootstrap, database_url)
    runtime = build_safety(settings, configure_logs=False, security=kitchen_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield SafetyPeer(
            runtime, safety_pb2_grpc.SafetyServiceStub(channel), TokenIssuer.from_settings(kitchen_security)
        )
    finally:
        channel.close()
        runtime.close()
        delete_topics(kafka_bootstrap, [settings.safety_events_topic, f"{settings.safety_events_topic}.dlq"])


@contextmanager
def running_kitchen(
    kafka_bootstrap: str,
    database_url: str,
    security: SecuritySettings,
    safety_peer: SafetyPeer,
    *,
    clock: Clock = utc_now,
) -> Iterator[Kitchen]:
    """A kitchen service on its own schema and topics (removed afterwards), on ``clock``."""
    settings = kitchen_settings(kafka_bootstrap, database_url, safety_peer.runtime.address)
    runtime = build(settings, configure_logs=False, security=security, clock=clock)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Kitchen(
            runtime,
            settings,
            kitchen_pb2_grpc.KitchenServiceStub(channel),
            TokenIssuer.from_settings(security),
            kafka_bootstrap,
            database_url,
            safety_peer,
        )
    finally:
        channel.close()
        runtime.close()
        topics = [settings.kitchen_events_topic, settings.kitchen_readings_topic]
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])


@pytest.fixture(scope="module")
def kitchen(
    kafka_bootstrap: str, database_url: str, kitchen_security: SecuritySettings, safety_peer: SafetyPeer
) -> Iterator[Kitchen]:
    with running_kitchen(kafka_bootstrap, database_url, kitchen_security, safety_peer) as running:
        yield running
