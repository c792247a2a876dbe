"""The address options every `cityhub` command shares, defaulting the way `cityhub infra env` resolves them.

An explicit flag wins, then ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``, then the local stack on the
ports ``CITYHUB_KAFKA_PORT`` / ``CITYHUB_PG_PORT`` put it on (:func:`services.cli.infra.default_addresses`).
A fixed ``127.0.0.1:19092`` default would silently reach another stack on a machine running two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from services.cli.infra import Addresses, InfraSettings, default_addresses

__all__ = ["bootstrap_option", "database_url_option", "resolved_addresses"]

F = TypeVar("F", bound=Callable[..., Any])


def resolved_addresses() -> Addresses:
    """The default addresses from the current environment; a bad ``CITYHUB_*`` value is a usage error."""
    try:
        return default_addresses(InfraSettings())
    except ValidationError as error:
        raise click.ClickException(f"invalid CITYHUB_* infra settings:\n{error}") from error


def _default_bootstrap() -> str:
    return resolved_addresses().kafka_bootstrap


def _default_database_url() -> str:
    return resolved_addresses().database_url


def bootstrap_option(command: F) -> F:
    """``--bootstrap``: Kafka bootstrap servers."""
    return click.option(
        "--bootstrap",
        envvar="KAFKA_BOOTSTRAP_SERVERS",
        default=_default_bootstrap,
        show_default="KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:$CITYHUB_KAFKA_PORT (19092)",
        help="Kafka bootstrap servers",
    )(command)


def database_url_option(command: F) -> F:
    """``--database-url``: the PostgreSQL server (an administrative connection)."""
    return click.option(
        "--database-url",
        envvar="DATABASE_URL",
        default=_default_database_url,
        show_default="DATABASE_URL, else postgresql://postgres@127.0.0.1:$CITYHUB_PG_PORT (15432)/cityhub",
        help="PostgreSQL URL",
    )(command)
