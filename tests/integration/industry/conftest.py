"""The industry service built in-process on the real PostgreSQL and Kafka, one per test module.

Each module gets its own schema (SERVICE_NAME=industry_t<hex>) and its own events and telemetry topics
(deleted afterwards), and short health thresholds."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import grpc
import pytest
from cityhub.industry.v1 import industry_pb2_grpc

from services.industry.bootstrap import build
from services.industry.settings import IndustrySettings
from services.platform.settings import load_settings
from tests.integration.industry.industry_support import Industry
from tests.kafka_support import delete_topics
from tests.security_support import make_keys


@pytest.fixture(scope="module")
def industry(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Industry]:
    suffix = secrets.token_hex(4)
    settings = load_settings(
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
        industry_health_check_interval_s=0.3,
        industry_silence_alert_after_s=2.0,
        industry_fault_alert_after_s=600.0,
        industry_rollup_publish_delay_s=0.0,
        outbox_poll_interval_s=0.05,
    )
    keys = make_keys(tmp_path_factory.mktemp("industry-keys"))
    runtime = build(settings, configure_logs=False, security=keys.settings)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Industry(
            runtime,
            settings,
            industry_pb2_grpc.IndustryServiceStub(channel),
            keys.issuer,
            kafka_bootstrap,
        )
    finally:
        channel.close()
        runtime.close()
        topics = [settings.industry_events_topic, settings.industry_telemetry_topic]
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])
