"""The cluster's way of preparing a schema: `cityhub db migrate` (the migrations Job) provisions and
migrates, and a service started with DB_MIGRATE_ON_START=false under its own role then changes nothing in
the database; started before the Job ran, it refuses to start naming the setting and the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cli.__main__ import cli
from services.cli.db_commands import migrations_of
from services.platform.db import provision_schema, role_dsn
from services.platform.probe import POLICY, PROBE_SERVICE
from services.platform.runtime import ServiceRuntime, ServiceSpec, StartupError
from services.platform.settings import ServiceSettings
from tests.security_support import make_keys
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

SPEC = ServiceSpec(
    label="migrate_job_test", grpc_services=[PROBE_SERVICE], policy=POLICY, migrations=migrations_of("safety")
)


def _settings(schema: str, dsn: str, kafka: str) -> ServiceSettings:
    return ServiceSettings(
        service_name=schema,
        kafka_bootstrap_servers=kafka,
        database_url=dsn,  # type: ignore[arg-type]  # pydantic parses the str
        db_migrate_on_start=False,
        db_connect_timeout_s=2,
        kafka_connect_timeout_s=5.0,
    )


def _objects(admin_dsn: str, schema: str) -> list[tuple[str, str]]:
    """Every relation in the schema with its owner: what DDL would change."""
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s ORDER BY 1",
            (schema,),
        ).fetchall()
    return [(str(name), str(owner)) for name, owner in rows]


def test_service_refuses_to_start_before_the_migrations_job(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    schema = unique_name("t_mig")
    # The role and schema exist (as a half-done Job would leave them) but no migration was applied.
    provision_schema(database_url, schema, f"cityhub_{schema}", "pw-before")
    dsn = role_dsn(database_url, f"cityhub_{schema}", "pw-before")
    keys = make_keys(tmp_path)
    with pytest.raises(StartupError) as caught:
        ServiceRuntime(
            _settings(schema, dsn, kafka_bootstrap), SPEC, security=keys.settings, configure_logs=False
        )
    assert caught.value.setting == "DB_MIGRATE_ON_START"
    assert f"cityhub db migrate {schema}" in str(caught.value)
    assert _objects(database_url, schema) == [], "the refused start created something"


def test_migrate_command_then_a_service_without_ddl_serves(
    database_url: str, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = unique_name("t_mig")
    monkeypatch.setenv(f"{schema.upper()}_DB_PASSWORD", "s3cret-pw")
    runner = CliRunner()
    args: list[str] = ["db", "migrate", "safety", "--schema", schema, "--database-url", database_url]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert f"{schema}: migrated (role cityhub_{schema}, password set)" in first.output
    # Running the Job again (a rollout, a retry) is harmless.
    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output

    prepared = _objects(database_url, schema)
    assert ("audit_log", f"cityhub_{schema}_owner") in prepared
    assert any(name == "outbox" for name, _ in prepared)

    dsn = role_dsn(database_url, f"cityhub_{schema}", "s3cret-pw")
    keys = make_keys(tmp_path)
    runtime = ServiceRuntime(
        _settings(schema, dsn, kafka_bootstrap), SPEC, security=keys.settings, configure_logs=False
    )
    try:
        runtime.start()
        with grpc.insecure_channel(runtime.address) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)
            wait_until(
                lambda: (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                    == health_pb2.HealthCheckResponse.SERVING
                ),
                timeout_s=30,
                what="the service to report SERVING",
            )
    finally:
        runtime.close()
    assert _objects(database_url, schema) == prepared, "the service changed its schema at start-up"


def test_migrate_command_needs_services_or_all() -> None:
    result = CliRunner().invoke(cli, ["db", "migrate", "--database-url", "postgresql://x@127.0.0.1:1/x"])
    assert result.exit_code == 2
    assert "--all" in result.output
