"""`cityhub infra`: start, stop and inspect the local Kafka broker and PostgreSQL server.

The work is done by :mod:`services.cli.infra`; this module only turns its results and errors into
terminal output and exit codes.
"""

from __future__ import annotations

import shlex

import click
from pydantic import ValidationError

from services.cli.infra import (
    InfraError,
    InfraSettings,
    PartStatus,
    default_addresses,
    down,
    ensure_up,
    redact_url,
    status,
)

__all__ = ["infra"]


def _settings() -> InfraSettings:
    try:
        return InfraSettings()
    except ValidationError as error:
        raise click.ClickException(f"invalid CITYHUB_* infra settings:\n{error}") from error


def _describe(part: PartStatus) -> str:
    pid = f"pid {part.pid}" if part.pid is not None else "no pid"
    reachable = "yes" if part.reachable else f"no ({part.detail})" if part.detail else "no"
    return f"{part.name:<9} {part.mode.value:<14} {part.address}  {pid}  reachable: {reachable}"


@click.group(name="infra")
def infra() -> None:
    """Local Kafka 4 (KRaft) and PostgreSQL 18 for development and tests, state under .local/."""


@infra.command(name="up")
def up_command() -> None:
    """Start the local stack (or reuse it) and wait until both parts answer."""
    settings = _settings()
    try:
        endpoints = ensure_up(settings)
    except InfraError as error:
        raise click.ClickException(str(error)) from error

    def how(started: bool, external: bool) -> str:
        if external:
            return "external, only checked"
        return "started now" if started else "already running, reused"

    kafka_external = settings.external_kafka is not None
    pg_external = settings.external_database is not None
    controller = "" if kafka_external else f"; controller on 127.0.0.1:{settings.kafka_controller_port}"
    click.echo("CityHub local infrastructure is up.")
    click.echo(
        f"  Kafka listens on {endpoints.kafka_bootstrap}{controller} "
        f"({how(endpoints.started_kafka, kafka_external)})"
    )
    click.echo(
        f"  PostgreSQL listens on {redact_url(endpoints.database_url)} "
        f"({how(endpoints.started_postgres, pg_external)})"
    )
    click.echo('Point services and tests at it with: eval "$(cityhub infra env)"')


@infra.command(name="down")
def down_command() -> None:
    """Stop the parts this launcher started; external ones are never touched."""
    settings = _settings()
    try:
        report = down(settings)
    except InfraError as error:
        raise click.ClickException(str(error)) from error
    kafka = "stopped" if report.stopped_kafka else "was not running (or is external)"
    postgres = "stopped" if report.stopped_postgres else "was not running (or is external)"
    click.echo(f"Kafka {kafka}; PostgreSQL {postgres}.")


@infra.command(name="status")
def status_command() -> None:
    """Show where each part listens, who manages it, its pid and whether it answers; exit 1 unless both do."""
    report = status(_settings())
    for part in report.parts:
        click.echo(_describe(part))
    if not report.all_reachable:
        raise SystemExit(1)


@infra.command(name="env")
def env_command() -> None:
    """Print `export` lines for the running stack, for `eval "$(cityhub infra env)"`."""
    settings = _settings()
    report = status(settings)
    if not report.all_reachable:
        down_parts = ", ".join(part.name for part in report.parts if not part.reachable)
        # Nothing on stdout: an eval of partial output would half-configure the shell.
        raise click.ClickException(f"not reachable: {down_parts}; run `cityhub infra up` first")
    # The same resolution every other command defaults to (services/cli/defaults.py).
    addresses = default_addresses(settings)
    kafka = addresses.kafka_bootstrap
    # An external URL as configured (status() redacts its password, the export needs it); the local server
    # where it actually runs (status() finds a server started earlier on another port).
    database = addresses.database_url if settings.external_database else report.postgres.address
    click.echo(f"export KAFKA_BOOTSTRAP_SERVERS={shlex.quote(kafka)}")
    click.echo(f"export DATABASE_URL={shlex.quote(database)}")
