"""`cityhub db migrate`: provision a service's schema and role and apply its migrations, apart from the
service itself.

`make run` and the tests keep the services doing this at start-up (``DB_MIGRATE_ON_START`` true). In the
cluster a Job runs this command with an administrative DATABASE_URL before the services start with
``DB_MIGRATE_ON_START=false`` and their own role's DATABASE_URL: they then need no DDL at run time.

The role ``cityhub_<schema>`` gets the password in ``<SCHEMA>_DB_PASSWORD`` when that variable is set
(e.g. ``SAFETY_DB_PASSWORD``), so the services can log in over the network as their role.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from services.cli.defaults import database_url_option

__all__ = ["SERVICES", "db", "migrations_of"]

# Every service with a schema; each one's migrations are services/<name>/migrations/.
SERVICES = ("safety", "industry", "kitchen", "commerce", "govservice", "hub")
_SERVICES_DIR = Path(__file__).resolve().parents[1]
_SCHEMA = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def migrations_of(service: str) -> Path:
    return _SERVICES_DIR / service / "migrations"


@click.group()
def db() -> None:
    """PostgreSQL schemas of the services."""


@db.command()
@click.argument("services", nargs=-1, type=click.Choice(SERVICES))
@click.option("--all", "all_services", is_flag=True, help="Every service")
@click.option(
    "--schema",
    default=None,
    help="Schema (and role cityhub_<schema>) to migrate, when it is not the service's name; one service only",
)
@click.option(
    "--connect-timeout",
    default=10,
    show_default=True,
    type=click.IntRange(2, 300),
    help="Seconds per connection attempt",
)
@database_url_option
def migrate(
    services: tuple[str, ...],
    all_services: bool,
    schema: str | None,
    connect_timeout: int,
    database_url: str,
) -> None:
    """Create each service's role and schema if missing and apply its pending migrations.

    DATABASE_URL's user must be allowed to create roles and schemas. Safe to run again and from several
    places at once: provisioning and migrations take locks and skip what is done."""
    import psycopg

    from services.platform.db import migrate_schema

    chosen = SERVICES if all_services else services
    if not chosen or (all_services and services):
        raise click.UsageError("name the services to migrate, or --all")
    if schema is not None and (len(chosen) != 1 or not _SCHEMA.match(schema)):
        raise click.UsageError("--schema takes one lower-case SQL name and exactly one service")
    for service in chosen:
        target = schema or service
        password = os.environ.get(f"{target.upper()}_DB_PASSWORD") or None
        try:
            migrate_schema(
                database_url,
                target,
                migrations_of(service),
                password=password,
                connect_timeout_s=connect_timeout,
            )
        except psycopg.OperationalError as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise click.ClickException(f"DATABASE_URL: cannot migrate {target}: {first}") from error
        click.echo(f"{target}: migrated (role cityhub_{target}{', password set' if password else ''})")
