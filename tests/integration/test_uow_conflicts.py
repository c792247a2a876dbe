"""A unique key taken by a concurrent transaction (check-then-insert races) surfaces from the platform's
unit of work as ALREADY_EXISTS, never as psycopg's UniqueViolation (which would answer INTERNAL), and
names the table and key columns but not the key's value."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from services.platform.db import set_up_database
from services.platform.errors import AlreadyExistsError
from services.platform.outbox import OutboxWriter
from services.platform.uow import PostgresUnitOfWork

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def uow(database_url: str) -> Iterator[PostgresUnitOfWork[Conn]]:
    schema = f"uowrace_t{secrets.token_hex(4)}"
    pool: ConnectionPool = set_up_database(database_url, schema, min_size=1, max_size=8)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE gadgets (gadget_id TEXT PRIMARY KEY, serial_number TEXT NOT NULL UNIQUE)")
    try:
        yield PostgresUnitOfWork(pool, lambda conn: conn, OutboxWriter.for_service(schema))
    finally:
        pool.close()


def test_concurrent_check_then_insert_answers_already_exists(uow: PostgresUnitOfWork[Conn]) -> None:
    serial = f"SN-{secrets.token_hex(4)}-" + "x" * 300
    count = 6
    start = threading.Barrier(count)
    outcomes: list[object] = []
    lock = threading.Lock()

    def register(index: int) -> None:
        try:
            with uow.transaction() as tx:
                taken = tx.repo.execute(
                    "SELECT 1 FROM gadgets WHERE serial_number = %s", (serial,)
                ).fetchone()
                start.wait(timeout=10)  # every one has checked before any inserts
                if taken is None:
                    tx.repo.execute(
                        "INSERT INTO gadgets (gadget_id, serial_number) VALUES (%s, %s)",
                        (f"g-{index}", serial),
                    )
            outcome: object = "ok"
        except Exception as error:  # noqa: BLE001 - collected for the test thread
            outcome = error
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes.count("ok") == 1, outcomes
    refused = [o for o in outcomes if o != "ok"]
    assert all(isinstance(o, AlreadyExistsError) for o in refused), refused
    message = str(refused[0])
    assert "gadgets" in message
    assert "serial_number" in message
    assert "x" * 20 not in message
