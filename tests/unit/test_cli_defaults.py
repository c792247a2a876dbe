"""Every `cityhub` command defaults to the addresses `cityhub infra env` resolves: CITYHUB_PG_PORT and
CITYHUB_KAFKA_PORT move them, DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS and explicit flags still win. No
sockets: the commands' connections are replaced by recorders of the address they were given."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from services.cli import audit_commands
from services.cli.__main__ import cli
from services.cli.infra import InfraSettings, default_addresses
from services.platform import kafka
from services.platform.security import TokenIssuer, load_security_settings


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def moved(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """A second stack's ports, with no address variable set."""
    pg_port, kafka_port = _free_port(), _free_port()
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("CITYHUB_PG_PORT", str(pg_port))
    monkeypatch.setenv("CITYHUB_KAFKA_PORT", str(kafka_port))
    return pg_port, kafka_port


@pytest.fixture
def databases(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The database URL each `cityhub audit` invocation tried to connect to."""
    tried: list[str] = []

    def recording_pool(database_url: str) -> AbstractContextManager[object]:
        tried.append(database_url)
        raise click.ClickException(f"cannot connect to the database at {database_url}: (test)")

    monkeypatch.setattr(audit_commands, "_pool", recording_pool)
    return tried


@pytest.fixture
def brokers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The bootstrap servers each `cityhub topics list` invocation was given."""
    given: list[str] = []

    def recording_list(bootstrap: str) -> Iterator[str]:
        given.append(bootstrap)
        return iter(())

    monkeypatch.setattr(kafka, "list_topics", recording_list)
    return given


def test_the_resolved_defaults_follow_the_moved_ports(moved: tuple[int, int]) -> None:
    pg_port, kafka_port = moved
    addresses = default_addresses(InfraSettings())
    assert addresses.kafka_bootstrap == f"127.0.0.1:{kafka_port}"
    assert addresses.database_url == f"postgresql://postgres@127.0.0.1:{pg_port}/cityhub"


def test_audit_verify_connects_to_the_moved_postgres_and_names_it(
    moved: tuple[int, int], databases: list[str]
) -> None:
    pg_port, _ = moved
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert databases == [f"postgresql://postgres@127.0.0.1:{pg_port}/cityhub"]
    assert f"127.0.0.1:{pg_port}" in result.output


def test_audit_search_connects_to_the_moved_postgres(
    moved: tuple[int, int], databases: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pg_port, _ = moved
    # An auditor's token signed by a throwaway development key the command then verifies with.
    monkeypatch.setenv("CITYHUB_DEV_KEYS", "true")
    monkeypatch.setenv("CITYHUB_DEV_SECRETS_DIR", str(tmp_path))
    security = load_security_settings()
    token = TokenIssuer.from_settings(security).issue(sub="auditor-1", roles=["auditor"], ttl_s=60)
    CliRunner().invoke(cli, ["audit", "search", "--token", token])
    assert databases == [f"postgresql://postgres@127.0.0.1:{pg_port}/cityhub"]


def test_kafka_commands_use_the_moved_broker(moved: tuple[int, int], brokers: list[str]) -> None:
    _, kafka_port = moved
    result = CliRunner().invoke(cli, ["topics", "list"])
    assert result.exit_code == 0, result.output
    assert brokers == [f"127.0.0.1:{kafka_port}"]


def test_address_variables_and_flags_still_win(
    moved: tuple[int, int], monkeypatch: pytest.MonkeyPatch, databases: list[str], brokers: list[str]
) -> None:
    del moved
    monkeypatch.setenv("DATABASE_URL", "postgresql://auditor@db.example:5432/cityhub")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1.example:9092")
    CliRunner().invoke(cli, ["audit", "verify"])
    CliRunner().invoke(cli, ["topics", "list"])
    CliRunner().invoke(cli, ["audit", "verify", "--database-url", "postgresql://u@flag.example/cityhub"])
    CliRunner().invoke(cli, ["topics", "list", "--bootstrap", "flag.example:9092"])
    assert databases == [
        "postgresql://auditor@db.example:5432/cityhub",
        "postgresql://u@flag.example/cityhub",
    ]
    assert brokers == ["kafka-1.example:9092", "flag.example:9092"]


def test_a_bad_port_variable_is_a_usage_error_naming_the_settings(
    monkeypatch: pytest.MonkeyPatch, databases: list[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CITYHUB_PG_PORT", "not-a-port")
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code != 0
    assert "CITYHUB_* infra settings" in result.output
    assert databases == []
