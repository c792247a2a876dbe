"""The platform's connection pool (services/platform/db.create_pool) against the real PostgreSQL: a
connection handed back is ready for the next caller at once, and one that died while it sat idle (a
PostgreSQL restart, an administrator ending the session) is replaced, not handed out."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from services.platform import db
from services.platform.db import create_pool

pytestmark = pytest.mark.integration


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    schema = f"pool_t{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    pool = create_pool(database_url, schema, min_size=2, max_size=2)
    try:
        yield pool
    finally:
        pool.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_returned_connection_is_available_to_the_next_caller_at_once(pool: ConnectionPool) -> None:
    # Returned inline: nothing waits for the pool's worker thread before the connection is usable again
    # (a busy service's next call would otherwise wait for it, or open a new one).
    for _ in range(50):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        assert pool.get_stats()["pool_available"] == 2


def test_a_connection_returned_in_a_transaction_comes_back_clean(pool: ConnectionPool) -> None:
    conn = pool.getconn()
    conn.execute("SELECT 1")  # leaves a transaction open
    pool.putconn(conn)
    with pool.connection() as again:
        assert again.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_connection_that_died_while_idle_is_replaced(
    pool: ConnectionPool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_JUST_USED_S", 0.0)  # every hand-out is checked, as after a second idle
    with pool.connection() as conn:
        pid = conn.info.backend_pid
    with psycopg.connect(database_url, autocommit=True) as admin:
        # Ended while idle in the pool, as a PostgreSQL restart would end it (waiting until it is gone).
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    for _ in range(3):
        with pool.connection() as conn:
            assert conn.execute("SELECT 42").fetchone() == (42,)
            assert conn.info.backend_pid != pid
