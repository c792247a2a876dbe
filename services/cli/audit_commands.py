"""`cityhub audit verify` and `cityhub audit search`: the tamper-evident audit log from the command line.

Both connect to ``--database-url`` (default: DATABASE_URL, else the local stack on CITYHUB_PG_PORT, as
`cityhub infra env` resolves it; an administrative connection: the log of every service schema is read)
and work on every schema that has an ``audit_log`` table unless ``--schema`` names some. ``verify`` also
reads the chain heads the services anchored on Kafka (``--bootstrap``, ``--anchor-topic``) and checks each
still matches the recomputed chain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from psycopg_pool import ConnectionPool

from services.cli.defaults import bootstrap_option, database_url_option
from services.cli.infra import redact_url

if TYPE_CHECKING:
    from services.platform.security.audit import Anchor

__all__ = ["audit"]


class _Moment(click.ParamType[datetime]):
    """An ISO 8601 date or time; without a zone it is taken as UTC."""

    name = "time"

    def convert(
        self,
        value: object,
        param: click.Parameter | None,  # noqa: ARG002 - click's signature
        ctx: click.Context | None,  # noqa: ARG002 - click's signature
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time (2026-03-01 or 2026-03-01T08:00+08:00)")
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = ConnectionPool(database_url, min_size=1, max_size=1, kwargs={"autocommit": False}, open=False)
    try:
        pool.open(wait=True, timeout=15)
    except Exception as exc:
        raise click.ClickException(
            f"cannot connect to the database at {redact_url(database_url)}: {exc}"
        ) from exc
    try:
        yield pool
    finally:
        pool.close()


def _schemas(pool: ConnectionPool, wanted: tuple[str, ...]) -> list[str]:
    with pool.connection() as conn:
        found = [
            str(row[0])
            for row in conn.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'audit_log' ORDER BY 1"
            ).fetchall()
        ]
    if not wanted:
        return found
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise click.ClickException(f"no audit_log table in schema(s): {', '.join(missing)}")
    return list(wanted)


@click.group()
def audit() -> None:
    """The tamper-evident audit log of sensitive reads and access changes."""


def _read_anchors(bootstrap: str, topic: str, names: list[str]) -> dict[str, list[Anchor]] | None:
    from services.platform.security.anchors import AnchorReadError, read_anchors

    try:
        return read_anchors(bootstrap, topic, names)
    except AnchorReadError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:
        raise click.ClickException(
            f"cannot read the anchors on {topic} from {bootstrap}: {exc} "
            "(--no-anchors checks the chain alone, which a recomputed chain passes)"
        ) from exc


@audit.command()
@database_url_option
@bootstrap_option
@click.option("--schema", "schemas", multiple=True, help="Schema to check (repeatable); default: all")
@click.option(
    "--anchor-topic",
    envvar="AUDIT_ANCHOR_TOPIC",
    default="cityhub.audit.anchors.v1",  # anchors.ANCHOR_TOPIC, spelt out: the CLI imports lazily
    show_default=True,
    help="Where the services anchor their chain heads [AUDIT_ANCHOR_TOPIC]",
)
@click.option("--no-anchors", is_flag=True, help="Check the chain alone (no broker at hand)")
def verify(
    database_url: str, bootstrap: str, schemas: tuple[str, ...], anchor_topic: str, no_anchors: bool
) -> None:
    """Check every row's hash chain and every anchored head; exit 1 naming the first broken row or anchor.

    Each service publishes its chain head (last id and hash) to the anchor topic, out of the database's
    reach. A history rewritten with the chain recomputed after it (what a database superuser could do), or
    rows cut off the end, no longer match an anchor published before.
    """
    from services.platform.security.audit import AuditLog

    broken = False
    with _pool(database_url) as pool:
        names = _schemas(pool, schemas)
        if not names:
            raise click.ClickException("no schema has an audit_log table")
        anchors = None if no_anchors else _read_anchors(bootstrap, anchor_topic, names)
        for name in names:
            own = (anchors or {}).get(name, [])
            report = AuditLog(pool, schema=name).check(own)
            if not report.ok:
                broken = True
                where = (
                    report.broken_anchor.describe()
                    if report.broken_anchor is not None
                    else f"row {report.first_broken_id}"
                )
                click.echo(f"{name}: BROKEN at {where}: {report.reason}")
                continue
            line = f"{name}: ok, {report.rows} rows, head {report.head_id} {report.head_hash}"
            if own:
                line += f", {report.anchors_checked} anchors checked"
                line += f", newest anchored row {report.newest_anchor_id}"
            elif no_anchors:
                line += " (chain only: anchors not read)"
            else:
                line += (
                    f" (no anchor on {anchor_topic} yet: only the chain itself was checked,"
                    " which a recomputed chain passes)"
                )
            click.echo(line)
    if broken:
        raise SystemExit(1)


@audit.command()
@database_url_option
@click.option("--schema", "schemas", multiple=True, help="Schema to search (repeatable); default: all")
@click.option("--subject", default=None, help="Rows about this subject")
@click.option("--caller", default=None, help="Rows by this caller (the token's sub)")
@click.option("--since", type=_Moment(), default=None, help="From this time (inclusive)")
@click.option("--until", type=_Moment(), default=None, help="Up to this time (exclusive)")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option(
    "--token", "bearer", envvar="CITYHUB_TOKEN", required=True, help="An auditor's token [CITYHUB_TOKEN]"
)
def search(
    *,
    database_url: str,
    schemas: tuple[str, ...],
    subject: str | None,
    caller: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    bearer: str,
) -> None:
    """Print matching rows as JSON lines (needs a token with the auditor role)."""
    from services.platform.security.audit import AuditLog
    from services.platform.security.roles import Role
    from services.platform.security.settings import SecurityConfigError, load_security_settings
    from services.platform.security.tokens import TokenError, TokenVerifier

    settings = load_security_settings()
    if settings.jwt_public_key is None and settings.jwt_public_key_file is None and not settings.dev_keys:
        click.echo(f"note: verifying with the local development key in {settings.dev_secrets_dir}", err=True)
        settings = settings.model_copy(update={"dev_keys": True})
    try:
        who = TokenVerifier.from_settings(settings).verify(bearer.strip())
    except (TokenError, SecurityConfigError) as exc:
        raise click.ClickException(f"token refused: {exc}") from None
    if Role.AUDITOR not in who.roles:
        raise click.ClickException("searching the audit log needs the auditor role")
    with _pool(database_url) as pool:
        for name in _schemas(pool, schemas):
            rows = AuditLog(pool, schema=name).search(
                subject=subject, caller=caller, since=since, until=until, limit=limit
            )
            for row in rows:
                click.echo(json.dumps({"schema": name, **row.as_dict()}, ensure_ascii=False))
