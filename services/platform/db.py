"""PostgreSQL: one schema and one role per service, SQL migrations at start-up, a connection pool.

The server address comes from DATABASE_URL. Its user provisions the service's role and schema
(idempotently) and the service then connects *as its own role*, whose search_path is its own schema, so
no service can read another's tables by accident. Migrations are plain SQL files applied with yoyo, run as
the service's role: the platform's own tables (outbox, processed events, audit log) first, then the
service's.

The schema and its ``audit_log`` belong to a third role, ``cityhub_<schema>_owner`` (NOLOGIN, held by
nobody): the service's role creates and owns its other tables, but may only read and append to the audit
log, never alter, disable the triggers of, rewrite or drop it. The audit log is handed to that owner by
the administrative connection right after the migrations (:func:`secure_audit_log`), which also moves
databases provisioned before this rule to it.
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool
from yoyo import get_backend, read_migrations

from services.platform.logs import get_logger

__all__ = [
    "PLATFORM_MIGRATIONS",
    "apply_migrations",
    "create_pool",
    "dedicated_connection",
    "migrate_schema",
    "migration_directories",
    "owner_role",
    "pending_migrations",
    "provision_schema",
    "role_dsn",
    "secure_audit_log",
    "set_up_database",
]

PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
log = get_logger()


def _check_identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} must be a lower-case SQL identifier")
    return name


def owner_role(schema: str) -> str:
    """The NOLOGIN role that owns ``schema`` and its audit log: one the service's role is never made a
    member of, so the service cannot act as the owner of its own history."""
    return _check_identifier(f"cityhub_{_check_identifier(schema, 'schema')}_owner", "owner role")


def provision_schema(
    admin_dsn: str,
    schema: str,
    role: str,
    password: str | None = None,
    *,
    connect_timeout_s: int | None = None,
) -> None:
    """Create the service's role, the schema's owner role and the schema if missing. Safe to run from many
    processes at once.

    The schema belongs to the owner role, not to the service's role: a schema's owner may drop every table
    in it, the audit log included. The service's role may use the schema and create its own tables there."""
    _check_identifier(schema, "schema")
    _check_identifier(role, "role")
    owner = owner_role(schema)
    # Two services starting together race on CREATE ROLE; a transaction-scoped advisory lock
    # serialises provisioning across the whole server.
    with (
        psycopg.connect(admin_dsn, autocommit=True, **_timeout_kwargs(connect_timeout_s)) as conn,
        conn.transaction(),
    ):
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cityhub_provision'))")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        if password is not None:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
        current = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
        if current is None or current[0] != owner:
            # Provisioned before the owner role existed: the schema belonged to the service's role.
            conn.execute(
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(owner))
            )
        conn.execute(
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        conn.execute(
            sql.SQL("ALTER ROLE {} SET search_path = {}").format(sql.Identifier(role), sql.Identifier(schema))
        )
        # Nobody but the owner may create objects in public: keeps every table in a service schema.
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    log.info("db_schema_provisioned", schema=schema, role=role, owner=owner)


# What the audit log's ownership and the service role's rights on it look like; one row, or none when the
# table does not exist.
_AUDIT_STATE = """
SELECT pg_get_userbyid(t.relowner),
       pg_get_userbyid(s.relowner),
       (SELECT pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.oid = to_regprocedure(%(function)s)),
       has_table_privilege(%(role)s, t.oid, 'SELECT') AND has_table_privilege(%(role)s, t.oid, 'INSERT'),
       has_table_privilege(%(role)s, t.oid, 'UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),
       has_sequence_privilege(%(role)s, s.oid, 'USAGE'),
       pg_has_role(%(role)s, %(owner)s, 'MEMBER')
FROM pg_class t, pg_class s
WHERE t.oid = to_regclass(%(table)s) AND s.oid = to_regclass(%(sequence)s)
"""


def secure_audit_log(admin_dsn: str, schema: str, role: str, *, connect_timeout_s: int | None = None) -> bool:
    """Hand ``schema``'s audit log (table, id sequence, trigger function) to the schema's owner role and
    leave the service's ``role`` only SELECT and INSERT on it and USAGE on the sequence.

    Runs with the administrative connection after the migrations (which run as ``role`` and so create the
    table as ``role``); also moves a log created before this rule. Does nothing when all is already so
    (returns False), so starting a replica does not lock the table its peers append to."""
    _check_identifier(schema, "schema")
    _check_identifier(role, "role")
    owner = owner_role(schema)
    names = {
        "table": f'"{schema}".audit_log',
        "sequence": f'"{schema}".audit_log_id_seq',
        "function": f'"{schema}".audit_log_refuse_change()',
        "role": role,
        "owner": owner,
    }
    table = sql.Identifier(schema, "audit_log")
    sequence = sql.Identifier(schema, "audit_log_id_seq")
    owner_id, role_id = sql.Identifier(owner), sql.Identifier(role)
    with (
        psycopg.connect(admin_dsn, autocommit=True, **_timeout_kwargs(connect_timeout_s)) as conn,
        conn.transaction(),
    ):
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('cityhub_provision'))")
        state = conn.execute(_AUDIT_STATE, names).fetchone()
        if state is None:
            raise RuntimeError(f"{schema}.audit_log does not exist: the platform migrations did not run")
        table_owner, sequence_owner, function_owner, can_append, can_rewrite, can_draw, is_member = state
        if (
            (table_owner, sequence_owner, function_owner) == (owner, owner, owner)
            and can_append
            and can_draw
            and not can_rewrite
            and not is_member
        ):
            return False
        if is_member:
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(owner_id, role_id))
        # The sequence is OWNED BY the table's id column and follows the table to its new owner.
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, owner_id))
        conn.execute(
            sql.SQL("ALTER FUNCTION {}() OWNER TO {}").format(
                sql.Identifier(schema, "audit_log_refuse_change"), owner_id
            )
        )
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(table, role_id))
        conn.execute(sql.SQL("GRANT SELECT, INSERT ON TABLE {} TO {}").format(table, role_id))
        conn.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(sequence, role_id))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sequence, role_id))
    log.info("db_audit_log_secured", schema=schema, role=role, owner=owner, previous_owner=table_owner)
    return True


def role_dsn(admin_dsn: str, role: str, password: str | None = None) -> str:
    """The same server and database as ``admin_dsn``, reached as ``role``."""
    parts = urlsplit(admin_dsn)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    auth = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit((parts.scheme, f"{auth}@{host}{port}", parts.path, parts.query, parts.fragment))


def apply_migrations(
    dsn: str, schema: str, directories: Sequence[Path], *, connect_timeout_s: int | None = None
) -> int:
    """Apply pending SQL migrations from ``directories`` (in order) inside ``schema``; returns the count."""
    _check_identifier(schema, "schema")
    parts = urlsplit(dsn)
    extra = f"schema={schema}"
    if connect_timeout_s is not None:
        # yoyo passes the URL's query parameters on to psycopg.connect.
        extra += f"&connect_timeout={int(connect_timeout_s)}"
    query = f"{parts.query}&{extra}" if parts.query else extra
    yoyo_url = urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, query, ""))
    backend = get_backend(yoyo_url)
    migrations = read_migrations(*(str(d) for d in directories if d.is_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    count = len(pending)
    log.info("db_migrations_applied", schema=schema, applied=count, known=len(migrations))
    return count


def create_pool(
    dsn: str,
    schema: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "",
    connect_timeout_s: int | None = None,
    open_timeout_s: float = 30.0,
    statement_timeout_s: float | None = None,
    checkout_timeout_s: float = 30.0,
) -> ConnectionPool:
    """A pool whose connections see ``schema`` first; opened and checked before it is returned (closed
    again, its workers stopped, when it cannot open within ``open_timeout_s``). ``statement_timeout_s``
    is every statement's default ceiling. A connection is checked as it is handed out (unless it was handed
    back within the last second), so after a PostgreSQL restart callers get fresh connections instead of the
    dead ones."""
    _check_identifier(schema, "schema")
    options = f"-c search_path={schema}"
    if statement_timeout_s is not None:
        options += f" -c statement_timeout={int(statement_timeout_s * 1000)}"
    pool = _Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name or schema,
        check=_check_unless_just_used,
        # Every borrower (the audit log, the relay, readiness) waits at most this for a connection.
        timeout=checkout_timeout_s,
        # psycopg_pool retries a failed connection with doubling delays until this timeout, so after a
        # long outage the next attempt could be half a minute away. Giving up early makes the next
        # request start a fresh attempt at once: back within a second or two of PostgreSQL returning.
        reconnect_timeout=_RECONNECT_TIMEOUT_S,
        kwargs={
            "options": options,
            "autocommit": False,
            **_timeout_kwargs(connect_timeout_s),
        },
        open=False,
    )
    try:
        pool.open(wait=True, timeout=open_timeout_s)
    except BaseException:
        pool.close()
        raise
    return pool


_RECONNECT_TIMEOUT_S = 4.0

# A connection handed back less than this ago is handed out again without the check's round trip: it
# answered a moment ago. The check is for connections that sat idle through a PostgreSQL restart; one
# returned within the last second and broken by a restart since costs its one caller an UNAVAILABLE (the
# pool then drops it), as any call racing the restart would. On a hot read path — the hub's 360, two round
# trips in all — the check was half of them.
_JUST_USED_S = 1.0
_returned_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()


class _Pool(ConnectionPool[psycopg.Connection[Any]]):
    """The pool, noting when each connection came back (what the check skips on).

    Noted here rather than in a ``reset`` callback: with ``reset`` set, psycopg_pool hands every returned
    connection to its worker thread, so each call paid a queue hop and a thread wake-up (taking the GIL
    the next call waits for), and the connection stayed unavailable until the worker ran — a tail on the
    hub's 360 under load. Without it the pool returns the connection inline, after its own rollback."""

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        _returned_at[conn] = time.monotonic()
        super().putconn(conn)


def _check_unless_just_used(conn: psycopg.Connection[Any]) -> None:
    returned = _returned_at.get(conn)
    if returned is not None and time.monotonic() - returned < _JUST_USED_S:
        return
    ConnectionPool.check_connection(conn)


def _timeout_kwargs(connect_timeout_s: int | None) -> dict[str, Any]:
    return {} if connect_timeout_s is None else {"connect_timeout": int(connect_timeout_s)}


def dedicated_connection(pool: ConnectionPool) -> psycopg.Connection[Any]:
    """A connection made like the pool's (same role and search path) but autocommit and apart from it:
    what LISTEN needs, since the pool hands its transactional connections to others."""
    # psycopg_pool accepts callables for both (to rotate credentials); resolve them as it would.
    conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
    kwargs = dict((pool.kwargs() if callable(pool.kwargs) else pool.kwargs) or {})
    kwargs["autocommit"] = True
    return psycopg.connect(conninfo, **kwargs)


def migration_directories(service_migrations: Path | None) -> list[Path]:
    """The platform's migrations, then the service's: the order both are applied in."""
    return [PLATFORM_MIGRATIONS] + ([service_migrations] if service_migrations else [])


def pending_migrations(
    dsn: str, schema: str, directories: Sequence[Path], *, connect_timeout_s: int | None = None
) -> list[str]:
    """Ids of the migrations in ``directories`` not yet applied in ``schema``, read as ``dsn``'s user.

    Only reads (yoyo's own ``to_apply`` creates its bookkeeping tables first), so it works for a role
    that is not meant to change the schema."""
    _check_identifier(schema, "schema")
    known = [migration.id for migration in read_migrations(*(str(d) for d in directories if d.is_dir()))]
    with psycopg.connect(dsn, autocommit=True, **_timeout_kwargs(connect_timeout_s)) as conn:
        try:
            found = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"._yoyo_migration',)).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            # The schema exists but this role may not use it: it was not provisioned for this role.
            return known
        if found is None or found[0] is None:
            return known
        rows = conn.execute(
            sql.SQL("SELECT migration_id FROM {}").format(sql.Identifier(schema, "_yoyo_migration"))
        ).fetchall()
    applied = {row[0] for row in rows}
    return [name for name in known if name not in applied]


def migrate_schema(
    admin_dsn: str,
    schema: str,
    service_migrations: Path | None = None,
    *,
    role: str | None = None,
    password: str | None = None,
    connect_timeout_s: int | None = None,
) -> str:
    """Provision ``schema`` and its role, apply the platform's and the service's migrations as that role
    and secure the audit log: everything but the pool. Returns the role's DSN.

    ``cityhub db migrate`` runs this from a Job when services start with ``DB_MIGRATE_ON_START=false``."""
    role_name = role or f"cityhub_{schema}"
    provision_schema(admin_dsn, schema, role_name, password, connect_timeout_s=connect_timeout_s)
    dsn = role_dsn(admin_dsn, role_name, password)
    apply_migrations(
        dsn, schema, migration_directories(service_migrations), connect_timeout_s=connect_timeout_s
    )
    # Only now does the audit log exist (created by the service's role): hand it to the owner role.
    secure_audit_log(admin_dsn, schema, role_name, connect_timeout_s=connect_timeout_s)
    return dsn


def set_up_database(
    admin_dsn: str,
    schema: str,
    service_migrations: Path | None = None,
    *,
    role: str | None = None,
    password: str | None = None,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout_s: int | None = None,
    open_timeout_s: float = 30.0,
    statement_timeout_s: float | None = None,
    checkout_timeout_s: float = 30.0,
) -> ConnectionPool:
    """Provision, migrate and open a pool for one service: what every composition root calls.

    ``connect_timeout_s`` bounds each connection attempt (libpq ``connect_timeout``), ``open_timeout_s``
    the wait for the pool's first connections; without them an unreachable server can hold start-up."""
    dsn = migrate_schema(
        admin_dsn,
        schema,
        service_migrations,
        role=role,
        password=password,
        connect_timeout_s=connect_timeout_s,
    )
    return create_pool(
        dsn,
        schema,
        min_size=min_size,
        max_size=max_size,
        connect_timeout_s=connect_timeout_s,
        open_timeout_s=open_timeout_s,
        statement_timeout_s=statement_timeout_s,
        checkout_timeout_s=checkout_timeout_s,
    )
