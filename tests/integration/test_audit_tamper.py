"""Rewriting the audit log's history is refused to the service's own role, and found when a superuser did it.

The service's role may only read and append: the table, its sequence and trigger function belong to the
schema's NOLOGIN owner role (also for logs created before that rule, handed over at the next start). A
superuser can still rewrite rows and recompute the chain, but the service has anchored its chain head on
Kafka before, and ``cityhub audit verify`` finds the rewrite at the first anchor that no longer matches.
Real PostgreSQL and Kafka; every test has its own schema and anchor topic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql
from psycopg_pool import ConnectionPool

from services.cli.audit_commands import audit
from services.platform.db import (
    PLATFORM_MIGRATIONS,
    apply_migrations,
    create_pool,
    owner_role,
    role_dsn,
    set_up_database,
)
from services.platform.probe import POLICY, PROBE_SERVICE
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import AuditEntry, AuditLog
from services.platform.security.anchors import AuditAnchorPublisher, read_anchors
from services.platform.security.audit import Anchor, chain_hash
from services.platform.settings import ServiceSettings
from tests.kafka_support import delete_topics, raw_producer
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

SPEC = ServiceSpec(label="audit_tamper_test", grpc_services=[PROBE_SERVICE], policy=POLICY)


def _entry(n: int, actor: str = "officer-1") -> AuditEntry:
    return AuditEntry(
        actor, ("police",), "read", "/x/GetPerson", f"P-{n}", ("record.identity_number",), "p", "shown"
    )


def _as_service_role(database_url: str, schema: str) -> psycopg.Connection[Any]:
    """A connection as the service's own role, the way its pool connects."""
    return psycopg.connect(
        role_dsn(database_url, f"cityhub_{schema}"), options=f"-c search_path={schema}", autocommit=True
    )


def _verify(database_url: str, bootstrap: str, schema: str, topic: str, *extra: str) -> Result:
    args = ["verify", "--database-url", database_url, "--bootstrap", bootstrap, "--schema", schema]
    return CliRunner().invoke(audit, [*args, "--anchor-topic", topic, *extra])


@pytest.fixture(scope="module")
def secured(database_url: str) -> Iterator[tuple[str, ConnectionPool]]:
    schema = unique_name("t_audown")
    pool = set_up_database(database_url, schema, min_size=1, max_size=2)
    AuditLog(pool).append(_entry(1))
    try:
        yield schema, pool
    finally:
        pool.close()


# --- ownership: the service's role may only append --------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "UPDATE audit_log SET purpose = 'none'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DROP TABLE audit_log",
        "ALTER TABLE audit_log ADD COLUMN note TEXT",
        "ALTER TABLE audit_log RENAME TO audit_log_old",
        "DROP SCHEMA {schema} CASCADE",
        "CREATE TRIGGER t BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()",
        "CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger AS 'SELECT NULL' LANGUAGE sql",
        "SELECT setval('audit_log_id_seq', 1)",
        "SET ROLE {owner}",
        "SET session_replication_role = replica",
    ],
)
def test_the_service_role_cannot_disable_the_triggers_or_rewrite_alter_or_drop_the_audit_log(
    database_url: str, secured: tuple[str, ConnectionPool], statement: str
) -> None:
    schema, _pool = secured
    text = statement.format(schema=schema, owner=owner_role(schema))
    with _as_service_role(database_url, schema) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(text)


def test_the_service_role_still_appends_reads_and_verifies(secured: tuple[str, ConnectionPool]) -> None:
    _schema, pool = secured
    log = AuditLog(pool)
    row = log.append(_entry(2))
    assert log.search(subject="P-2")[0].id == row.id
    assert log.head() == (row.id, row.row_hash)
    assert log.check().ok


def test_the_owner_role_cannot_log_in_and_the_service_role_is_not_a_member(
    database_url: str, secured: tuple[str, ConnectionPool]
) -> None:
    schema, _pool = secured
    owner, role = owner_role(schema), f"cityhub_{schema}"
    with psycopg.connect(database_url) as admin:
        owners = admin.execute(
            """SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
               WHERE c.relnamespace = %s::regnamespace AND c.relname IN ('audit_log', 'audit_log_id_seq')
               UNION ALL SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p
               WHERE p.pronamespace = %s::regnamespace AND p.proname = 'audit_log_refuse_change'
               UNION ALL SELECT 'schema', pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s""",
            (schema, schema, schema),
        ).fetchall()
        can_login, is_member = admin.execute(
            "SELECT rolcanlogin, pg_has_role(%s, rolname, 'MEMBER') FROM pg_roles WHERE rolname = %s",
            (role, owner),
        ).fetchone() or (None, None)
    assert dict(owners) == {
        "audit_log": owner,
        "audit_log_id_seq": owner,
        "audit_log_refuse_change": owner,
        "schema": owner,
    }
    assert can_login is False
    assert is_member is False


def test_a_log_created_before_the_owner_role_is_handed_over_at_the_next_start(database_url: str) -> None:
    schema = unique_name("t_audold")
    role = f"cityhub_{schema}"
    # Provisioning as it was: the schema, and so every table the migrations made, belonged to the service.
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), sql.Identifier(role))
        )
    apply_migrations(role_dsn(database_url, role), schema, [PLATFORM_MIGRATIONS])
    old_pool = create_pool(role_dsn(database_url, role), schema, max_size=1)
    try:
        first = AuditLog(old_pool).append(_entry(1))
    finally:
        old_pool.close()
    with _as_service_role(database_url, schema) as conn:  # the defect: the service could switch them off
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER ALL")

    pool = set_up_database(database_url, schema, max_size=1)  # the next start
    try:
        with _as_service_role(database_url, schema) as conn:
            for statement in ("ALTER TABLE audit_log DISABLE TRIGGER ALL", "DROP TABLE audit_log"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
        log = AuditLog(pool)
        second = log.append(_entry(2))
        assert second.prev_hash == first.row_hash
        assert log.check().ok
    finally:
        pool.close()


# --- anchors: the chain head on Kafka -----------------------------------------------------------------------


@pytest.fixture
def anchor_topic(kafka_bootstrap: str) -> Iterator[str]:
    topic = unique_name("t_audit_anchors")
    try:
        yield topic
    finally:
        delete_topics(kafka_bootstrap, [topic])


def _anchors(bootstrap: str, topic: str, schema: str) -> list[Anchor]:
    return (read_anchors(bootstrap, topic, [schema], timeout_s=10) or {}).get(schema, [])


def _runtime(database_url: str, kafka_bootstrap: str, topic: str, interval_s: float) -> ServiceRuntime:
    settings = ServiceSettings(
        service_name=unique_name("t_audanc"),
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,  # type: ignore[arg-type]  # pydantic parses the str
        topic_partitions=1,
        log_level="warning",
        audit_anchor_topic=topic,
        audit_anchor_interval_s=interval_s,
    )
    return ServiceRuntime(settings, SPEC, guards=[], configure_logs=False)


def _rewrite_as_superuser(database_url: str, schema: str, target: int) -> None:
    """Switch the triggers off, change row ``target`` and recompute the chain from it on."""
    admin_pool = ConnectionPool(database_url, min_size=1, max_size=1, open=True)
    try:
        rows = list(AuditLog(admin_pool, schema=schema).rows())
    finally:
        admin_pool.close()
    table = sql.Identifier(schema, "audit_log")
    with psycopg.connect(database_url) as admin, admin.transaction():
        admin.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(table))
        previous = next(r.row_hash for r in reversed(rows) if r.id < target)
        for row in (r for r in rows if r.id >= target):
            entry = dataclasses.replace(row.entry, actor="nobody") if row.id == target else row.entry
            row_hash = chain_hash(previous, row.id, row.at, entry)
            update = sql.SQL("UPDATE {} SET actor = %s, prev_hash = %s, row_hash = %s WHERE id = %s")
            admin.execute(update.format(table), (entry.actor, previous, row_hash, row.id))
            previous = row_hash
        admin.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER ALL").format(table))


def test_a_superuser_rewrite_with_a_recomputed_chain_fails_verify_at_the_anchor_published_before(
    database_url: str, kafka_bootstrap: str, anchor_topic: str
) -> None:
    runtime = _runtime(database_url, kafka_bootstrap, anchor_topic, interval_s=0.2)
    schema = runtime.settings.service_name
    try:
        runtime.start()
        log = AuditLog(runtime.pool)
        rows = [log.append(_entry(n)) for n in range(1, 6)]
        anchors = wait_until(
            lambda: [a for a in _anchors(kafka_bootstrap, anchor_topic, schema) if a.head_id == rows[-1].id],
            timeout_s=20,
            what="the service to anchor its head",
        )
        assert anchors[0].head_hash == rows[-1].row_hash
        before = _verify(database_url, kafka_bootstrap, schema, anchor_topic)
        assert before.exit_code == 0, before.output
        assert f"{schema}: ok, 5 rows" in before.output
        assert "anchors checked" in before.output
        assert f"newest anchored row {rows[-1].id}" in before.output
    finally:
        runtime.close()

    target = rows[1].id
    _rewrite_as_superuser(database_url, schema, target)
    chain_only = _verify(database_url, kafka_bootstrap, schema, anchor_topic, "--no-anchors")
    assert chain_only.exit_code == 0, chain_only.output  # the recomputed chain holds on its own

    first_stale = min(
        a.head_id for a in _anchors(kafka_bootstrap, anchor_topic, schema) if a.head_id >= target
    )
    after = _verify(database_url, kafka_bootstrap, schema, anchor_topic)
    assert after.exit_code == 1, after.output
    assert (
        f"{schema}: BROKEN at anchor of row {first_stale} ({anchor_topic} partition 0 offset" in after.output
    )
    assert "rewritten" in after.output


def test_the_runtime_anchors_on_shutdown_and_only_a_head_that_moved(
    database_url: str, kafka_bootstrap: str, anchor_topic: str
) -> None:
    runtime = _runtime(database_url, kafka_bootstrap, anchor_topic, interval_s=3600)
    schema = runtime.settings.service_name
    try:
        runtime.start()
        log = AuditLog(runtime.pool)
        rows = [log.append(_entry(n)) for n in range(1, 3)]
    finally:
        runtime.close()
    assert [(a.head_id, a.head_hash) for a in _anchors(kafka_bootstrap, anchor_topic, schema)] == [
        (rows[-1].id, rows[-1].row_hash)
    ]

    # A new process knows nothing it published before: its first anchor repeats the head once.
    pool = create_pool(role_dsn(database_url, f"cityhub_{schema}"), schema, max_size=1)
    producer = raw_producer(kafka_bootstrap)
    try:
        log = AuditLog(pool)
        publisher = AuditAnchorPublisher(log, producer, schema, bootstrap=kafka_bootstrap, topic=anchor_topic)
        first = publisher.publish_if_moved()
        assert first is not None
        assert (first.head_id, first.head_hash) == (rows[-1].id, rows[-1].row_hash)
        assert publisher.publish_if_moved() is None  # unchanged: nothing sent
        third = log.append(_entry(3))
        moved = publisher.publish_if_moved()
        assert moved is not None
        assert moved.head_id == third.id
    finally:
        producer.close(timeout=5)
        pool.close()
    assert [a.head_id for a in _anchors(kafka_bootstrap, anchor_topic, schema)] == [
        rows[-1].id,
        rows[-1].id,
        third.id,
    ]


def test_verify_says_when_a_log_has_no_anchor_yet(
    database_url: str, kafka_bootstrap: str, secured: tuple[str, ConnectionPool], anchor_topic: str
) -> None:
    schema, _pool = secured
    result = _verify(database_url, kafka_bootstrap, schema, anchor_topic)
    assert result.exit_code == 0, result.output
    assert f"{schema}: ok" in result.output
    assert f"no anchor on {anchor_topic} yet" in result.output
