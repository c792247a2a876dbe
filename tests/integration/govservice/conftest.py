"""The govservice service built in-process on the real PostgreSQL and Kafka, with a real commerce service
beside it (an enterprise applicant is looked up there over gRPC), one pair per test module.

Commerce's own peer (industry) is left unreachable: a membership is then kept pending, and the tests
approve the ones they need, as chamber staff would."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2_grpc
from cityhub.govservice.v1 import govservice_pb2_grpc

from services.commerce.bootstrap import build as build_commerce
from services.govservice.bootstrap import build
from services.govservice.settings import GovServiceSettings
from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.settings import load_settings
from tests.integration.commerce.conftest import commerce_settings
from tests.integration.govservice.govservice_support import CommercePeer, GovService
from tests.kafka_support import delete_topics
from tests.support import free_port


def govservice_settings(
    kafka_bootstrap: str, database_url: str, commerce_address: str, **overrides: Any
) -> GovServiceSettings:
    suffix = secrets.token_hex(4)
    values: dict[str, Any] = {
        "service_name": f"govservice_t{suffix}",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "warning",
        "topic_partitions": 3,
        "govservice_events_topic": f"cityhub.govservice.events.v1.t{suffix}",
        "outbox_poll_interval_s": 0.05,
        "govservice_person_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "commerce_grpc_address": commerce_address,
        # Short waits so an outage of commerce is answered quickly in tests.
        "peer_call_timeout_s": 2.0,
        "govservice_overdue_sweep_interval_s": 0.3,
        **overrides,
    }
    return load_settings(GovServiceSettings, **values)


@pytest.fixture(scope="module")
def govservice_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("govservice-keys"))


@pytest.fixture(scope="module")
def commerce_peer(
    kafka_bootstrap: str, database_url: str, govservice_security: SecuritySettings
) -> Iterator[CommercePeer]:
    settings = commerce_settings(kafka_bootstrap, database_url, f"127.0.0.1:{free_port()}")
    runtime = build_commerce(settings, configure_logs=False, security=govservice_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield CommercePeer(
            runtime,
            commerce_pb2_grpc.CommerceServiceStub(channel),
            TokenIssuer.from_settings(govservice_security),
        )
    finally:
        channel.close()
        runtime.close()
        topic = settings.commerce_events_topic
        delete_topics(kafka_bootstrap, [topic, f"{topic}.dlq"])


@pytest.fixture(scope="module")
def govservice(
    kafka_bootstrap: str,
    database_url: str,
    govservice_security: SecuritySettings,
    commerce_peer: CommercePeer,
) -> Iterator[GovService]:
    settings = govservice_settings(kafka_bootstrap, database_url, commerce_peer.runtime.address)
    runtime = build(settings, configure_logs=False, security=govservice_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield GovService(
            runtime,
            settings,
            govservice_pb2_grpc.CrossRegionServiceStub(channel),
            TokenIssuer.from_settings(govservice_security),
            kafka_bootstrap,
            database_url,
            commerce_peer,
        )
    finally:
        channel.close()
        runtime.close()
        topic = settings.govservice_events_topic
        delete_topics(kafka_bootstrap, [topic, f"{topic}.dlq"])
