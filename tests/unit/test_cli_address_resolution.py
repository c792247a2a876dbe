"""The addresses `cityhub infra env` resolves, and which every command defaults to: CITYHUB_PG_PORT and
CITYHUB_KAFKA_PORT move them. Pure settings resolution: nothing here opens a socket or talks to Kafka or
PostgreSQL (a bad port is refused before any connection); the commands themselves are checked against
the real servers in tests/integration/test_cli_defaults.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from services.cli.__main__ import cli
from services.cli.infra import InfraSettings, default_addresses


@pytest.fixture
def moved(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """A second stack's ports, with no address variable set (only resolved, never connected to)."""
    pg_port, kafka_port = 25433, 29094
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("CITYHUB_PG_PORT", str(pg_port))
    monkeypatch.setenv("CITYHUB_KAFKA_PORT", str(kafka_port))
    return pg_port, kafka_port


def test_the_resolved_defaults_follow_the_moved_ports(moved: tuple[int, int]) -> None:
    pg_port, kafka_port = moved
    addresses = default_addresses(InfraSettings())
    assert addresses.kafka_bootstrap == f"127.0.0.1:{kafka_port}"
    assert addresses.database_url == f"postgresql://postgres@127.0.0.1:{pg_port}/cityhub"


def test_a_bad_port_variable_is_a_usage_error_naming_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CITYHUB_PG_PORT", "not-a-port")
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code != 0
    assert "CITYHUB_* infra settings" in result.output
