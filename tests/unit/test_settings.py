"""Settings are validated at start-up: a missing or malformed value stops the process naming it."""

from __future__ import annotations

import pytest

from services.platform.settings import ServiceSettings, SettingsError, load_settings

GOOD = {
    "SERVICE_NAME": "safety",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092,127.0.0.1:29092",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:15432/cityhub",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*GOOD, "GRPC_PORT", "LOG_LEVEL", "TOPIC_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_valid_environment_loads(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(ServiceSettings)
    assert settings.service_name == "safety"
    assert settings.kafka_bootstrap_list == ["127.0.0.1:19092", "127.0.0.1:29092"]
    assert settings.dsn.startswith("postgresql://")


def test_missing_setting_is_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("KAFKA_BOOTSTRAP_SERVERS")
    with pytest.raises(SettingsError) as caught:
        load_settings(ServiceSettings)
    assert "KAFKA_BOOTSTRAP_SERVERS: is required but not set" in str(caught.value)
    assert caught.value.code != 0


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL"),
        ("GRPC_PORT", "seventy", "GRPC_PORT"),
        ("GRPC_PORT", "70000", "GRPC_PORT"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("TOPIC_PARTITIONS", "0", "TOPIC_PARTITIONS"),
        # A space would reach the broker as part of the id; Kafka takes anything, so we refuse it here.
        ("KAFKA_GROUP_INSTANCE_ID", "pod 1", "KAFKA_GROUP_INSTANCE_ID"),
    ],
)
def test_malformed_setting_is_named(env: pytest.MonkeyPatch, name: str, value: str, complaint: str) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(ServiceSettings)
    assert complaint in str(caught.value)
    # Only the bad one is named: an operator fixes what is wrong, not everything.
    assert sum(line.strip().startswith(tuple(GOOD)) for line in str(caught.value).splitlines()) <= 1
