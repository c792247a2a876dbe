"""`cityhub web login-link`: a one-time link that signs a person in to the web one-screen."""

from __future__ import annotations

import click

from services.cli.token_commands import scopes_callback, ttl_callback
from services.platform.security.roles import Role

__all__ = ["web"]


@click.group()
def web() -> None:
    """The web one-screen."""


@web.command("login-link")
@click.option(
    "--base-url", default="http://127.0.0.1:8080", show_default=True, help="Where the web one-screen listens"
)
@click.option(
    "--role",
    default=Role.DISTRICT_OPERATOR.value,
    show_default=True,
    type=click.Choice([role.value for role in Role if role != Role.SERVICE]),
    help="The role the session acts with",
)
@click.option(
    "--scope", "scopes", multiple=True, callback=scopes_callback, help="kind:id, e.g. site:S-001 (repeatable)"
)
@click.option("--sub", default=None, help="Who the session names (default: a generated web user id)")
@click.option(
    "--ttl", default="8h", show_default=True, callback=ttl_callback, help="How long the session lasts"
)
def login_link_command(base_url: str, role: str, scopes: tuple[str, ...], sub: str | None, ttl: int) -> None:
    """Print a login link, alone on its line. It works once, and only for a few minutes (the web's
    WEB_LOGIN_LINK_MAX_AGE_S); the session it opens lasts --ttl."""
    from services.platform.security.settings import SecurityConfigError
    from services.web.links import login_link

    try:
        click.echo(login_link(base_url, role=role, scopes=scopes, sub=sub, ttl_s=ttl))
    except (ValueError, SecurityConfigError) as exc:
        raise click.ClickException(str(exc)) from None
