"""The unit of work: one transaction holding the service's repository, its outbox and its request ids.

A use case takes a :class:`UnitOfWork` and does everything a command changes inside one
``with uow.transaction() as tx:`` block: reads and writes through ``tx.repo``, events through
``tx.publish`` (the transactional outbox), idempotency through ``tx.claim``/``tx.remember``. Either all
of it commits or none of it does.

Production wires :class:`PostgresUnitOfWork` (a pooled connection, the service's repository bound to
it). Unit tests wire :class:`FakeUnitOfWork` around an in-memory repository: no sockets, and a
transaction that raises restores the repository as it was, so "nothing stored, nothing published" is
tested the same way as against PostgreSQL.

A unique key taken by a concurrent request (two creates of one natural key at once) is
:class:`AlreadyExistsError` (ALREADY_EXISTS), whichever statement or the commit found it.

The database being unreachable is not a bug: it surfaces as :class:`UnavailableError` (UNAVAILABLE),
never as INTERNAL, so a caller knows to retry (its request id makes the retry safe). The caller's deadline
bounds the work (:mod:`services.platform.deadlines`): the wait for a pooled connection and every
statement get what is left of it (capped by their ceilings), and a transaction whose caller's deadline
passed is rolled back rather than committed. After repeated failures a breaker answers UNAVAILABLE at
once, without holding a thread, and lets one transaction through now and then to probe for recovery.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from google.protobuf.message import Message
from psycopg_pool import ConnectionPool, PoolTimeout

from services.platform import deadlines
from services.platform.breaker import Breaker
from services.platform.errors import AlreadyExistsError, DeadlineExceededError, DomainError, UnavailableError
from services.platform.idempotency import (
    Fingerprint,
    RequestLog,
    fingerprint_material,
    replayed,
    sha256_fingerprint,
)
from services.platform.logs import get_logger
from services.platform.outbox import OutboxWriter

__all__ = [
    "FakeUnitOfWork",
    "PostgresUnitOfWork",
    "PublishedEvent",
    "Transaction",
    "UnitOfWork",
]

log = get_logger()
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Conn = psycopg.Connection[Any]


class Transaction(Protocol[R_co]):
    """What a use case may do inside one transaction."""

    @property
    def repo(self) -> R_co: ...

    def publish(
        self,
        *,
        key: str,
        subject: str,
        message: Message,
        topic: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> str:
        """Add an event to the outbox; it reaches Kafka only if this transaction commits."""
        ...

    def claim(
        self, operation: str, request_id: str, command: object, *, resumable: bool = False
    ) -> dict[str, Any] | None:
        """None for the first request with this id; the first's stored result for a replay (see
        :meth:`RequestLog.claim` for ``resumable``)."""
        ...

    def remember(self, operation: str, request_id: str, result: dict[str, Any]) -> None:
        """Store the result the first request made, for later replays."""
        ...

    def notify(self, channel: str, payload: str) -> None:
        """Announce a change to in-process listeners once this transaction commits (pg_notify)."""
        ...


class UnitOfWork(Protocol[R_co]):
    def transaction(self) -> AbstractContextManager[Transaction[R_co]]:
        """One transaction: commits when the block ends, rolls back when it raises."""
        ...

    def read(self) -> AbstractContextManager[R_co]:
        """The repository for reads only, each statement on its own (no BEGIN/COMMIT round trips)."""
        ...


class _PostgresTransaction(Generic[R]):
    def __init__(self, conn: Conn, repo: R, outbox: OutboxWriter, requests: RequestLog) -> None:
        self.conn = conn
        self._repo = repo
        self._outbox = outbox
        self._requests = requests

    @property
    def repo(self) -> R:
        return self._repo

    def publish(
        self,
        *,
        key: str,
        subject: str,
        message: Message,
        topic: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> str:
        return self._outbox.add(
            self.conn, key=key, subject=subject, message=message, topic=topic, event_id=event_id, time=time
        )

    def claim(
        self, operation: str, request_id: str, command: object, *, resumable: bool = False
    ) -> dict[str, Any] | None:
        return self._requests.claim(operation, request_id, command, resumable=resumable)

    def remember(self, operation: str, request_id: str, result: dict[str, Any]) -> None:
        self._requests.remember(operation, request_id, result)

    def notify(self, channel: str, payload: str) -> None:
        self.conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


class PostgresUnitOfWork(Generic[R]):
    """Transactions on a pooled connection, with ``repository(conn)`` bound to each.

    ``checkout_timeout_s`` caps the wait for a connection and ``statement_timeout_s`` each statement
    (the pool's connections carry it as their default; a shorter caller deadline is set per transaction).
    """

    def __init__(
        self,
        pool: ConnectionPool,
        repository: Callable[[Conn], R],
        outbox: OutboxWriter,
        *,
        fingerprint: Fingerprint = sha256_fingerprint,
        breaker: Breaker | None = None,
        checkout_timeout_s: float = 2.0,
        statement_timeout_s: float = 15.0,
    ) -> None:
        self._pool = pool
        self._repository = repository
        self._outbox = outbox
        self._fingerprint = fingerprint
        self._breaker = breaker or Breaker("PostgreSQL")
        self._checkout_timeout = checkout_timeout_s
        self._statement_timeout = statement_timeout_s

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction[R]]:
        with self._checked_out() as conn, conn.transaction():
            statement_s = deadlines.budget(self._statement_timeout, "the first statement")
            if statement_s < self._statement_timeout:
                conn.execute(
                    "SELECT set_config('statement_timeout', %s, true)", (f"{int(statement_s * 1000)}ms",)
                )
            yield _PostgresTransaction(
                conn, self._repository(conn), self._outbox, RequestLog(conn, self._fingerprint)
            )
            # A caller that has given up must not be told "failed" about a change that then happened.
            deadlines.check("the commit")

    @contextmanager
    def read(self) -> Iterator[R]:
        """Reads that need no transaction: under READ COMMITTED each statement takes its own snapshot
        either way, so a read made of one statement is as consistent in autocommit as inside BEGIN …
        COMMIT, and saves both round trips — on a hot read path (the hub's 360) those are most of the
        cost. The caller's deadline is checked before; each statement is bounded by the pool's ceiling
        (a per-request timeout would need a transaction or two more round trips)."""
        deadlines.check("the read")
        with self._checked_out() as conn:
            conn.autocommit = True
            try:
                yield self._repository(conn)
            finally:
                if not conn.closed:
                    conn.autocommit = False

    @contextmanager
    def _checked_out(self) -> Iterator[Conn]:
        """A pooled connection, with every way PostgreSQL can fail mapped to what a caller should hear."""
        probing = self._breaker.before()
        # A probe of a database that was down asks briefly: it is a question, not a wait.
        checkout = min(self._checkout_timeout, _PROBE_CHECKOUT_S) if probing else self._checkout_timeout
        try:
            with self._pool.connection(timeout=deadlines.budget(checkout, "a connection")) as conn:
                yield conn
        except PoolTimeout:
            self._breaker.failed()
            log.warning("database_unavailable", reason="pool_timeout")
            raise UnavailableError(
                "the database is unavailable (no connection within the pool timeout)"
            ) from None
        except psycopg.errors.UniqueViolation as error:
            self._breaker.succeeded()
            # Check-then-insert raced another request making the same entity: that is ALREADY_EXISTS,
            # never INTERNAL. (A repeated request id never gets here: the request log waits on its key.)
            raise _already_exists(error) from None
        except psycopg.errors.QueryCanceled:
            # Our statement timeout: the caller's deadline if that is what bounded it (the statement ran
            # out the time the caller had left), else a database too slow to answer within the ceiling
            # (not counted as down: one slow query is not an outage).
            remaining = deadlines.remaining_s()
            if remaining is not None and remaining < self._statement_timeout:
                raise DeadlineExceededError("the caller's deadline passed during the transaction") from None
            raise UnavailableError("the database did not answer within the statement timeout") from None
        except psycopg.OperationalError as error:
            self._breaker.failed()
            log.warning("database_unavailable", reason=type(error).__name__)
            raise UnavailableError("the database is unavailable; retry with the same request_id") from None
        except DomainError:
            self._breaker.succeeded()  # the database answered; the request was refused
            raise
        else:
            self._breaker.succeeded()


_PROBE_CHECKOUT_S = 0.5
_KEY_COLUMNS = re.compile(r"^Key \(([^)]{1,200})\)=")


def _already_exists(error: psycopg.errors.UniqueViolation) -> AlreadyExistsError:
    """The entity's kind and key columns, never the key's value (it is the caller's input, unbounded)."""
    diag = error.diag
    columns = _KEY_COLUMNS.match(diag.message_detail or "")
    what = diag.table_name or "entity"
    key = f" with that {columns.group(1)}" if columns else ""
    log.info("unique_violation", table=diag.table_name, constraint=diag.constraint_name)
    return AlreadyExistsError(f"a {what} row{key} already exists (made by a concurrent request)")


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """An event a fake transaction committed: what would have gone to the outbox."""

    key: str
    subject: str
    message: Message
    topic: str | None
    time: datetime | None = None


@dataclass
class _FakeTransaction(Generic[R]):
    _repo: R
    _fingerprint: Fingerprint
    _requests: dict[tuple[str, str], tuple[str, dict[str, Any] | None]]
    events: list[PublishedEvent] = field(default_factory=list)
    notifications: list[tuple[str, str]] = field(default_factory=list)

    @property
    def repo(self) -> R:
        return self._repo

    def publish(
        self,
        *,
        key: str,
        subject: str,
        message: Message,
        topic: str | None = None,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> str:
        self.events.append(PublishedEvent(key, subject, message, topic, time))
        return event_id or f"fake-event-{len(self.events)}"

    def claim(
        self, operation: str, request_id: str, command: object, *, resumable: bool = False
    ) -> dict[str, Any] | None:
        if not request_id:
            return None
        fingerprint = self._fingerprint(fingerprint_material(command))
        stored = self._requests.get((operation, request_id))
        if stored is None:
            self._requests[(operation, request_id)] = (fingerprint, None)
            return None
        if resumable and stored[1] is None and stored[0] == fingerprint:
            return None
        # A copy, as PostgreSQL hands every replay a fresh dict: a use case editing it changes no memory.
        return replayed(operation, request_id, fingerprint, stored[0], copy.deepcopy(stored[1]))

    def remember(self, operation: str, request_id: str, result: dict[str, Any]) -> None:
        if request_id:
            fingerprint, _ = self._requests[(operation, request_id)]
            self._requests[(operation, request_id)] = (fingerprint, copy.deepcopy(result))

    def notify(self, channel: str, payload: str) -> None:
        self.notifications.append((channel, payload))


class FakeUnitOfWork(Generic[R]):
    """An in-memory unit of work for unit tests of use cases.

    ``repo`` is the service's in-memory repository; ``published`` and ``notified`` collect what
    committed transactions sent. A transaction that raises restores the repository's attributes and the
    request memory to what they were, and keeps none of its events.
    """

    def __init__(self, repo: R, *, fingerprint: Fingerprint = sha256_fingerprint) -> None:
        self.repo = repo
        self.published: list[PublishedEvent] = []
        self.notified: list[tuple[str, str]] = []
        self.commits = 0
        self.rollbacks = 0
        self._fingerprint = fingerprint
        self._requests: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {}

    @contextmanager
    def transaction(self) -> Iterator[_FakeTransaction[R]]:
        saved_repo = copy.deepcopy(vars(self.repo))
        saved_requests = dict(self._requests)
        tx = _FakeTransaction(self.repo, self._fingerprint, self._requests)
        try:
            yield tx
        except BaseException:
            vars(self.repo).clear()
            vars(self.repo).update(saved_repo)
            self._requests.clear()
            self._requests.update(saved_requests)
            self.rollbacks += 1
            raise
        self.published.extend(tx.events)
        self.notified.extend(tx.notifications)
        self.commits += 1

    @contextmanager
    def read(self) -> Iterator[R]:
        yield self.repo

    def events_of(self, message_type: type[Message]) -> list[Any]:
        """The committed events of one message type, in publish order."""
        return [e.message for e in self.published if isinstance(e.message, message_type)]
