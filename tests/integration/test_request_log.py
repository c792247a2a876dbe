"""Request ids against real PostgreSQL through :class:`PostgresUnitOfWork`: concurrent duplicates wait for
the first and replay its result, a rolled-back first leaves the id free, another body is refused, and a
database that cannot be reached is UNAVAILABLE, not an internal error."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from services.platform.db import set_up_database
from services.platform.errors import InvalidArgumentError, UnavailableError
from services.platform.outbox import OutboxWriter
from services.platform.uow import PostgresUnitOfWork
from tests.support import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class CreateThing:
    request_id: str
    name: str


class RollbackError(Exception):
    pass


@dataclass
class Db:
    schema: str
    role: str
    pool: ConnectionPool
    uow: PostgresUnitOfWork[Conn]
    admin_dsn: str

    def waiting_claims(self) -> int:
        """Statements of this test's role blocked on a lock (a duplicate claim waiting for the first)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO requests%%'",
                (self.role,),
            ).fetchone()
        return int(row[0]) if row else 0

    def stored(self, operation: str, request_id: str) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(
                "SELECT fingerprint, result FROM requests WHERE operation = %s AND request_id = %s",
                (operation, request_id),
            ).fetchall()


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[Db]:
    schema = f"reqlog_t{secrets.token_hex(4)}"
    pool = set_up_database(database_url, schema, min_size=1, max_size=6)
    uow: PostgresUnitOfWork[Conn] = PostgresUnitOfWork(
        pool, lambda conn: conn, OutboxWriter.for_service(schema)
    )
    try:
        yield Db(schema, f"cityhub_{schema}", pool, uow, database_url)
    finally:
        pool.close()


def _request_id() -> str:
    return f"req-{secrets.token_hex(6)}"


class _Second(threading.Thread):
    """Claims ``request_id`` in its own transaction and keeps what the claim returned (or raised)."""

    def __init__(self, db: Db, request_id: str, command: CreateThing) -> None:
        super().__init__(daemon=True)
        self._db = db
        self._request_id = request_id
        self._command = command
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with self._db.uow.transaction() as tx:
                self.result = tx.claim("CreateThing", self._request_id, self._command)
                if self.result is None:  # it became the first: it must store its own result
                    tx.remember("CreateThing", self._request_id, {"thing_id": "from-second"})
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            self.error = error
        finally:
            self.done.set()


def _start_second_while_first_holds_the_claim(db: Db, request_id: str, command: CreateThing) -> _Second:
    second = _Second(db, request_id, command)
    second.start()
    wait_until(lambda: db.waiting_claims() >= 1, timeout_s=10, what="the second claim to wait on the first")
    assert not second.done.is_set()
    return second


def test_a_concurrent_duplicate_waits_for_the_first_and_gets_its_result(db: Db) -> None:
    request_id = _request_id()
    command = CreateThing(request_id, "pump")
    with db.uow.transaction() as tx:
        assert tx.claim("CreateThing", request_id, command) is None
        # Seen waiting on the first's row lock in pg_locks, and not done: it waits for the commit.
        second = _start_second_while_first_holds_the_claim(db, request_id, command)
        tx.remember("CreateThing", request_id, {"thing_id": "T-1"})
    second.join(timeout=10)
    assert second.error is None
    assert second.result == {"thing_id": "T-1"}
    assert len(db.stored("CreateThing", request_id)) == 1


def test_many_concurrent_claims_exactly_one_is_first(db: Db) -> None:
    request_id = _request_id()
    command = CreateThing(request_id, "valve")
    results: list[dict[str, Any] | None] = []
    lock = threading.Lock()
    start = threading.Barrier(5)

    def claim(index: int) -> None:
        start.wait()
        with db.uow.transaction() as tx:
            found = tx.claim("CreateThing", request_id, command)
            if found is None:
                time.sleep(0.1)  # hold the claim so the others really overlap with it
                tx.remember("CreateThing", request_id, {"thing_id": f"T-{index}"})
        with lock:
            results.append(found)

    threads = [threading.Thread(target=claim, args=(i,), daemon=True) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    firsts = [r for r in results if r is None]
    replays = [r for r in results if r is not None]
    assert len(results) == 5
    assert len(firsts) == 1
    assert len({r["thing_id"] for r in replays}) == 1
    [row] = db.stored("CreateThing", request_id)
    assert row[1] == replays[0]


def test_a_rolled_back_first_lets_the_waiting_duplicate_become_first(db: Db) -> None:
    request_id = _request_id()
    command = CreateThing(request_id, "pump")
    second: _Second | None = None
    with pytest.raises(RollbackError), db.uow.transaction() as tx:  # noqa: PT012 - the rollback is the point
        assert tx.claim("CreateThing", request_id, command) is None
        second = _start_second_while_first_holds_the_claim(db, request_id, command)
        raise RollbackError
    assert second is not None
    second.join(timeout=10)
    assert second.error is None
    assert second.result is None, "after the first rolled back, the duplicate is the first"
    [row] = db.stored("CreateThing", request_id)
    assert row[1] == {"thing_id": "from-second"}


def test_a_rolled_back_claim_leaves_the_id_free_for_a_later_request(db: Db) -> None:
    request_id = _request_id()

    def first_attempt() -> None:
        with db.uow.transaction() as tx:
            assert tx.claim("CreateThing", request_id, CreateThing(request_id, "pump")) is None
            raise RollbackError

    with pytest.raises(RollbackError):
        first_attempt()
    assert db.stored("CreateThing", request_id) == []
    with db.uow.transaction() as tx:
        # Even with another body: the first request never happened.
        assert tx.claim("CreateThing", request_id, CreateThing(request_id, "valve")) is None
        tx.remember("CreateThing", request_id, {"thing_id": "T-2"})
    with db.uow.transaction() as tx:
        assert tx.claim("CreateThing", request_id, CreateThing(request_id, "valve")) == {"thing_id": "T-2"}


def test_the_same_id_with_a_different_body_is_refused_naming_request_id(db: Db) -> None:
    request_id = _request_id()
    with db.uow.transaction() as tx:
        tx.claim("CreateThing", request_id, CreateThing(request_id, "pump"))
        tx.remember("CreateThing", request_id, {"thing_id": "T-3"})
    with pytest.raises(InvalidArgumentError) as caught, db.uow.transaction() as tx:
        tx.claim("CreateThing", request_id, CreateThing(request_id, "valve"))
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("request_id", "was already used for a different request")
    ]


def test_a_resumable_claim_left_unanswered_lets_the_same_body_go_ahead_and_refuses_another(db: Db) -> None:
    """The ingest paths claim in a transaction of their own, send to Kafka, then remember: a claim whose
    answer was never stored (Kafka failed) lets the retry with the same body go ahead, and still refuses
    the same id with another body; once answered, a retry gets the answer."""
    request_id = _request_id()
    with db.uow.transaction() as tx:
        assert tx.claim("Ingest", request_id, CreateThing(request_id, "batch-1"), resumable=True) is None
    assert [row[1] for row in db.stored("Ingest", request_id)] == [None]
    with db.uow.transaction() as tx:
        assert tx.claim("Ingest", request_id, CreateThing(request_id, "batch-1"), resumable=True) is None
    with pytest.raises(InvalidArgumentError) as caught, db.uow.transaction() as tx:
        tx.claim("Ingest", request_id, CreateThing(request_id, "batch-2"), resumable=True)
    assert [v.field for v in caught.value.violations] == ["request_id"]
    with db.uow.transaction() as tx:
        tx.remember("Ingest", request_id, {"accepted": 5})
    with db.uow.transaction() as tx:
        assert tx.claim("Ingest", request_id, CreateThing(request_id, "batch-1"), resumable=True) == {
            "accepted": 5
        }


def test_an_unreachable_database_is_unavailable_not_an_operational_error() -> None:
    pool = ConnectionPool(
        "postgresql://x@127.0.0.1:1/x",
        min_size=1,
        max_size=1,
        timeout=1.0,
        kwargs={"connect_timeout": 2},
        open=False,
    )
    pool.open(wait=False)
    uow: PostgresUnitOfWork[Conn] = PostgresUnitOfWork(pool, lambda conn: conn, OutboxWriter.for_service("x"))
    try:
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="database is unavailable"), uow.transaction():
            pytest.fail("no transaction can begin without a database")
        assert time.monotonic() - started < 10
    finally:
        pool.close()


def test_a_connection_lost_mid_transaction_is_unavailable(db: Db) -> None:
    def terminated_midway() -> None:
        with db.uow.transaction() as tx:
            conn: Conn = tx.repo
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert pid is not None
            with psycopg.connect(db.admin_dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
            conn.execute("SELECT 1")

    with pytest.raises(UnavailableError, match="retry with the same request_id"):
        terminated_midway()
