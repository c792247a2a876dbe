"""Database changes pushed to watch streams: one change feed per process, fanned out in memory.

A service's use cases call ``pg_notify`` in the transaction that changes a row, so a notification exists
only for a committed change and reaches every replica (each listens on the same channel). One listening
connection per process takes the notifications in batches, reads each changed row once, and hands the
result to every subscription whose filter wants it: the cost of a change is one read, whatever the number
of watchers. Subscriptions live on the gRPC server's event loop (see services/platform/grpc_server.py): an
open watcher costs a small bounded queue, not a thread or a connection.

What a subscription receives: the service's update (the change and the row as committed), :data:`RESYNC`
when it may have missed some (the listener reconnected, the read failed, or the watcher fell more than a
queue behind: it should re-read what is open), and :data:`CLOSED` when the service is stopping (the stream
ends and the server's shutdown does not wait for it).

The service keeps its domain: what a payload names (``parse``, ``key``), how the changed rows are read
(``load``), what a watcher receives (``update``) and how a subscription filters (``wants``); see
services/safety/alert_feed.py and services/hub/usecases/inbox_feed.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import psycopg

from services.platform.errors import UnavailableError
from services.platform.logs import get_logger
from services.platform.retry import Backoff

__all__ = ["CLOSED", "RESYNC", "ChangeFeed", "Marker", "Subscription"]

log = get_logger()

N = TypeVar("N")  # one notification, as the service parses its payload
R = TypeVar("R")  # a changed row, as the service reads it
U = TypeVar("U")  # what a watcher receives for one notification


class Marker:
    """A signal in a subscription's stream instead of an update."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


RESYNC: Final = Marker("RESYNC")
CLOSED: Final = Marker("CLOSED")
_RECONNECT_MAX_S = 10.0
_POLL_S = 0.5
# After the first notification, how long to keep collecting the ones already on their way: a burst of
# changes becomes one batch (one read per row, one hop to the event loop) for a millisecond or two.
_GATHER_S = 0.002
_BATCH_MAX = 500


@dataclass(eq=False)
class Subscription(Generic[N, U]):
    """One watcher: ``wants`` is its filter (checked on the listener's batch, before queueing). Used only
    on its event loop."""

    wants: Callable[[N, U], bool]
    capacity: int
    _items: deque[U] = field(init=False, default_factory=deque)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _behind: bool = field(init=False, default=False)
    _stopped: bool = field(init=False, default=False)

    def offer(self, item: U | Marker) -> None:
        if item is CLOSED:
            self._stopped = True
        elif item is RESYNC or len(self._items) >= self.capacity:
            # A watcher too slow to keep up re-reads instead of making the feed wait or grow without end.
            self._behind = True
        elif not isinstance(item, Marker):
            self._items.append(item)
        self._wake.set()

    async def get(self) -> U | Marker:
        """The next item, waiting as long as it takes (the caller's cancellation ends the wait)."""
        while True:
            if self._stopped:
                return CLOSED
            if self._behind:
                self._behind = False
                # Everything queued is superseded by the re-read the watcher is about to do.
                self._items.clear()
                return RESYNC
            if self._items:
                return self._items.popleft()
            self._wake.clear()
            await self._wake.wait()


class ChangeFeed(Generic[N, R, U]):
    """The process's one feed of a kind of change. ``connect`` opens the LISTEN connection (None: changes
    arrive only through :meth:`publish`, as in unit tests); ``channel`` is the channel's name, or reads it
    on that connection. ``parse`` turns a decoded JSON payload into a notification (KeyError, TypeError or
    ValueError: a bad payload, logged and skipped); ``key`` names the row it changed; ``load`` reads the
    changed rows, once per batch (absent: gone, nothing to send); ``update`` is what a watcher receives.
    ``label`` names the feed in logs, the thread and errors. A service subclasses it with its domain parts
    and a ``subscribe`` that turns its filter into ``wants`` for :meth:`watch`."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]] | None,
        channel: str | Callable[[psycopg.Connection[Any]], str],
        *,
        label: str,
        parse: Callable[[Any], N],
        key: Callable[[N], str],
        load: Callable[[Sequence[str]], Mapping[str, R]],
        update: Callable[[N, R], U],
        queue_size: int = 1000,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._label = label
        self._parse = parse
        self._key = key
        self._load = load
        self._update = update
        self._queue_size = queue_size
        self._subscriptions: dict[Subscription[N, U], asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listening = threading.Event()
        if connect is None:
            self._listening.set()
        self._thread: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def start(self) -> None:
        """Start listening (idempotent): the first watcher starts the feed."""
        with self._lock:
            if self._thread is not None or self._connect is None or self._closed.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=f"change-feed-{self._label}", daemon=True)
            self._thread.start()

    @asynccontextmanager
    async def watch(
        self, wants: Callable[[N, U], bool], *, ready_timeout_s: float = 10.0
    ) -> AsyncIterator[Subscription[N, U]]:
        """A subscription for the duration of the block; changes committed after entry are delivered.
        UNAVAILABLE when the feed cannot listen to PostgreSQL within ``ready_timeout_s``."""
        self.start()
        if not self._listening.is_set() and not self._closed.is_set():
            listening = await asyncio.to_thread(self._listening.wait, ready_timeout_s)
            if not listening:
                raise UnavailableError(f"PostgreSQL: the {self._label} feed is not listening; retry shortly")
        subscription = Subscription(wants, self._queue_size)
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed.is_set():
                subscription.offer(CLOSED)
            self._subscriptions[subscription] = loop
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscriptions.pop(subscription, None)

    def close(self, timeout_s: float = 5.0) -> None:
        """End every subscription (their streams finish) and stop listening. Idempotent; the service
        registers it with the server's ``on_stop`` so open streams do not hold the shutdown's grace."""
        self._closed.set()
        self._fan_out(lambda _subscription: [CLOSED])
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def publish(self, notices: Sequence[N]) -> None:
        """Read the changed rows once and hand each change to the subscriptions that want it. Runs on the
        listener's thread; a failed read tells every watcher to re-read rather than miss a change."""
        if not notices:
            return
        keys = list(dict.fromkeys(self._key(notice) for notice in notices))
        try:
            rows = self._load(keys)
        except Exception as error:  # noqa: BLE001 - the watchers are told; the feed keeps going
            log.warning("change_feed_read_failed", feed=self._label, error=str(error), changes=len(notices))
            self.resync()
            return
        updates = [
            (notice, self._update(notice, rows[key]))
            for notice in notices
            if (key := self._key(notice)) in rows
        ]
        if updates:
            self._fan_out(lambda sub: [u for notice, u in updates if sub.wants(notice, u)])

    def resync(self) -> None:
        """Tell every watcher it may have missed changes."""
        self._fan_out(lambda _subscription: [RESYNC])

    def _fan_out(self, items_for: Callable[[Subscription[N, U]], Sequence[U | Marker]]) -> None:
        """One hop to each event loop per batch; the per-watcher work runs there, where the queues live."""
        with self._lock:
            by_loop: dict[asyncio.AbstractEventLoop, list[Subscription[N, U]]] = {}
            for subscription, loop in self._subscriptions.items():
                by_loop.setdefault(loop, []).append(subscription)
        for loop, subscriptions in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: its watchers are gone
                loop.call_soon_threadsafe(_deliver, subscriptions, items_for)

    def _run(self) -> None:
        assert self._connect is not None
        backoff = Backoff(first=0.2, cap=_RECONNECT_MAX_S)
        first = True
        channel = self._channel if isinstance(self._channel, str) else ""
        while not self._closed.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._connect()
                channel = self._channel if isinstance(self._channel, str) else self._channel(conn)
                conn.execute(f'LISTEN "{channel}"')
                if not first:
                    # Changes may have committed while we were not listening.
                    self.resync()
                first = False
                backoff.reset()
                self._listening.set()
                log.info("change_feed_listening", feed=self._label, channel=channel)
                while not self._closed.is_set():
                    batch = self._next_batch(conn)
                    if batch:
                        self.publish(batch)
            except psycopg.Error as error:
                self._listening.clear()
                delay = backoff.next_delay()
                log.warning("change_feed_lost", feed=self._label, error=str(error), retry_in_s=delay)
                backoff.wait(self._closed, delay)
            finally:
                if conn is not None:
                    conn.close()
        log.info("change_feed_stopped", feed=self._label, channel=channel)

    def _next_batch(self, conn: psycopg.Connection[Any]) -> list[N]:
        notices = list(conn.notifies(timeout=_POLL_S, stop_after=1))
        if notices:
            notices.extend(conn.notifies(timeout=_GATHER_S, stop_after=_BATCH_MAX))
        batch = []
        for notice in notices:
            try:
                batch.append(self._parse(json.loads(notice.payload)))
            except (ValueError, KeyError, TypeError):
                log.warning("change_feed_bad_payload", feed=self._label, payload=notice.payload[:200])
        return batch


def _deliver(
    subscriptions: Sequence[Subscription[N, U]],
    items_for: Callable[[Subscription[N, U]], Sequence[U | Marker]],
) -> None:
    for subscription in subscriptions:
        for item in items_for(subscription):
            subscription.offer(item)
