"""`cityhub token issue`: a bearer token for a person or a tool, for local use and tests.

In production tokens come from the district's identity provider; this command signs with the key in
CITYHUB_JWT_PRIVATE_KEY(_FILE), or with the local development key under .local/secrets/ when none is
configured. Issuing a token changes who may see what, so the issue is recorded in the audit log (schema
``security``) whenever a database is reachable through DATABASE_URL.
"""

from __future__ import annotations

import getpass
import re
from datetime import UTC, datetime
from typing import Any

import click

from services.platform.security.roles import Role, parse_scope

__all__ = ["parse_ttl", "scopes_callback", "token", "ttl_callback"]

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(value: str) -> int:
    """``90``, ``90s``, ``30m``, ``8h``, ``7d`` → seconds."""
    match = _TTL.match(value.strip().lower())
    if match is None:
        raise ValueError(f"ttl {value!r} must look like 3600, 30m, 8h or 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def ttl_callback(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_ttl(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def scopes_callback(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            parse_scope(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


@click.group()
def token() -> None:
    """Bearer tokens for people and tools."""


@token.command("issue")
@click.option("--sub", required=True, help="Who the token names (a user id, or service:<name>)")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([role.value for role in Role]),
    help="A role (repeat for several)",
)
@click.option(
    "--scope", "scopes", multiple=True, callback=scopes_callback, help="kind:id, e.g. site:S-001 (repeatable)"
)
@click.option(
    "--ttl", default="1h", show_default=True, callback=ttl_callback, help="Lifetime: 3600, 30m, 8h, 7d"
)
@click.option(
    "--database-url", envvar="DATABASE_URL", default=None, help="Where to record the issue [DATABASE_URL]"
)
@click.option(
    "--audit-schema", default="security", show_default=True, help="Schema whose audit log records it"
)
@click.option("--no-audit", is_flag=True, help="Do not record the issue (tests, offline use)")
def issue(
    *,
    sub: str,
    roles: tuple[str, ...],
    scopes: tuple[str, ...],
    ttl: int,
    database_url: str | None,
    audit_schema: str,
    no_audit: bool,
) -> None:
    """Print a signed token to stdout, alone on its line: TOKEN=$(cityhub token issue ...)."""
    from services.platform.security.settings import SecurityConfigError, load_security_settings
    from services.platform.security.tokens import TokenIssuer

    settings = load_security_settings()
    if settings.jwt_private_key is None and settings.jwt_private_key_file is None and not settings.dev_keys:
        click.echo(f"note: signing with the local development key in {settings.dev_secrets_dir}", err=True)
        settings = settings.model_copy(update={"dev_keys": True})
    try:
        issuer = TokenIssuer.from_settings(settings)
        bearer, claims = issuer.issue_with_claims(sub=sub, roles=roles, scopes=scopes, ttl_s=ttl)
    except (ValueError, SecurityConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    if no_audit:
        pass
    elif database_url:
        _record_issue(database_url, audit_schema, claims, issuer.key_id)
    else:
        click.echo(
            "note: not recorded in the audit log (no DATABASE_URL; --no-audit silences this)", err=True
        )
    click.echo(bearer)


def _record_issue(database_url: str, schema: str, claims: dict[str, Any], kid: str) -> None:
    from services.platform.db import set_up_database
    from services.platform.security.audit import AuditEntry, AuditLog

    try:
        pool = set_up_database(database_url, schema, min_size=1, max_size=1)
    except Exception as exc:
        # A token that changes who may see what must not be handed out unrecorded.
        raise click.ClickException(f"cannot record the issue in {schema}.audit_log: {exc}") from exc
    try:
        expires = datetime.fromtimestamp(float(claims["exp"]), UTC).isoformat()
        AuditLog(pool).append(
            AuditEntry(
                actor=f"cli:{getpass.getuser()}",
                actor_roles=(),
                action="access_change",
                rpc="cityhub token issue",
                subject=str(claims["sub"]),
                fields=(),
                purpose="token issued",
                outcome="token_issued",
                details={
                    "roles": [str(r) for r in claims["roles"]],
                    "scopes": [str(s) for s in claims["scopes"]],
                    "token_id": str(claims["jti"]),
                    "expires_at": expires,
                    "key_id": kid,
                },
            )
        )
    finally:
        pool.close()
