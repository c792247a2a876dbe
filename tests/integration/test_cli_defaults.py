"""Every `cityhub` command talks to the stack CITYHUB_PG_PORT / CITYHUB_KAFKA_PORT point at, against the
real servers: pointed at the test run's PostgreSQL and broker it works, pointed at a port where nothing
listens it fails naming that address, and DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS and flags still win."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from click.testing import CliRunner

from services.cli.__main__ import cli
from services.platform.db import set_up_database
from tests.kafka_support import delete_topics
from tests.support import free_port, unique_name


@pytest.fixture(scope="module")
def audited_schema(database_url: str) -> Iterator[str]:
    """A schema with an (empty) audit log, as a service leaves it."""
    schema = unique_name("cli_defaults")
    set_up_database(database_url, schema).close()
    yield schema
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for role in (f"cityhub_{schema}", f"cityhub_{schema}_owner"):
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def no_address_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return monkeypatch


def _verify(schema: str, *flags: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", "--schema", schema, "--no-anchors", *flags])
    return result.exit_code, result.output


def test_audit_verify_follows_the_pg_port_to_the_server_there(
    database_url: str, audited_schema: str, no_address_variables: pytest.MonkeyPatch
) -> None:
    no_address_variables.setenv("CITYHUB_PG_PORT", str(urlsplit(database_url).port))
    code, output = _verify(audited_schema)
    assert code == 0, output

    dead = free_port()
    no_address_variables.setenv("CITYHUB_PG_PORT", str(dead))
    code, output = _verify(audited_schema)
    assert code == 1
    assert f"127.0.0.1:{dead}" in output


def test_database_url_and_the_flag_win_over_the_port(
    database_url: str, audited_schema: str, no_address_variables: pytest.MonkeyPatch
) -> None:
    no_address_variables.setenv("CITYHUB_PG_PORT", str(free_port()))
    no_address_variables.setenv("DATABASE_URL", database_url)
    code, output = _verify(audited_schema)
    assert code == 0, output

    no_address_variables.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/cityhub")
    code, output = _verify(audited_schema, "--database-url", database_url)
    assert code == 0, output


def test_kafka_commands_follow_the_kafka_port_and_the_flag_wins(
    kafka_bootstrap: str, no_address_variables: pytest.MonkeyPatch
) -> None:
    topic = unique_name("cli.defaults")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["topics", "create", topic, "--partitions", "1", "--bootstrap", kafka_bootstrap]
    )
    assert created.exit_code == 0, created.output
    try:
        no_address_variables.setenv("CITYHUB_KAFKA_PORT", kafka_bootstrap.rsplit(":", 1)[1])
        listed = runner.invoke(cli, ["topics", "list"])
        assert listed.exit_code == 0, listed.output
        assert topic in listed.output.split()

        no_address_variables.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
        flagged = runner.invoke(cli, ["topics", "list", "--bootstrap", kafka_bootstrap])
        assert flagged.exit_code == 0, flagged.output
        assert topic in flagged.output.split()
    finally:
        delete_topics(kafka_bootstrap, [topic])
