"""Inbox changes pushed to watchers: one change feed per process, fanned out in memory (the shape of
services/safety/alert_feed.py).

The projection (and the use cases acknowledging or resolving at the hub) NOTIFY on the schema's inbox
channel in the transaction that changes an item, so a notification exists only for a committed change and
reaches every replica. One listening connection per process takes the notifications in batches, reads
each changed item once, and hands it to every subscription whose filter wants it: the cost of a change is
one read whatever the number of watchers. Subscriptions live on the gRPC server's event loop, each with a
bounded queue: a watcher that falls a queue behind is told to re-read the open items (:data:`RESYNC`)
instead of making the feed wait or memory grow.
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
from typing import Any, Final

import psycopg

from services.hub.domain.inbox import InboxItem
from services.hub.repository.inbox import INBOX_CHANNEL_SQL
from services.platform.errors import UnavailableError
from services.platform.logs import get_logger
from services.platform.retry import Backoff

__all__ = ["CLOSED", "RESYNC", "Change", "InboxFeed", "Subscription", "Update"]

log = get_logger()


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


RESYNC: Final = _Marker("RESYNC")
CLOSED: Final = _Marker("CLOSED")
_RECONNECT_MAX_S = 10.0
_POLL_S = 0.5
# After the first notification, how long to keep collecting those already on their way (one read a burst).
_GATHER_S = 0.002
_BATCH_MAX = 500

LoadItems = Callable[[Sequence[str]], Mapping[str, InboxItem]]


@dataclass(frozen=True, slots=True)
class Change:
    item_id: str
    change: str


@dataclass(frozen=True, slots=True)
class Update:
    """A change with the item as committed, read once for every watcher."""

    change: str
    item: InboxItem


Item = Update | _Marker


@dataclass(eq=False)
class Subscription:
    """One watcher: ``wants`` is its filter (checked on the listener's batch, before queueing)."""

    wants: Callable[[InboxItem], bool]
    capacity: int
    _items: deque[Update] = field(init=False, default_factory=deque)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _behind: bool = field(init=False, default=False)
    _stopped: bool = field(init=False, default=False)

    def offer(self, item: Item) -> None:
        if item is CLOSED:
            self._stopped = True
        elif item is RESYNC or len(self._items) >= self.capacity:
            # Too slow to keep up: re-read instead of making the feed wait or grow without end.
            self._behind = True
        elif isinstance(item, Update):
            self._items.append(item)
        self._wake.set()

    async def get(self) -> Item:
        """The next item, waiting as long as it takes (the caller's cancellation ends the wait)."""
        while True:
            if self._stopped:
                return CLOSED
            if self._behind:
                self._behind = False
                self._items.clear()
                return RESYNC
            if self._items:
                return self._items.popleft()
            self._wake.clear()
            await self._wake.wait()


class InboxFeed:
    """The process's one inbox change feed. ``connect`` opens the LISTEN connection (None: changes come
    only through :meth:`publish`); ``load`` reads the changed items, once per batch."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]] | None,
        *,
        load: LoadItems,
        queue_size: int = 1000,
    ) -> None:
        self._connect = connect
        self._load = load
        self._queue_size = queue_size
        self._subscriptions: dict[Subscription, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listening = threading.Event()
        if connect is None:
            self._listening.set()
        self._thread: threading.Thread | None = None

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def start(self) -> None:
        """Start listening (idempotent): the first watcher starts the feed."""
        with self._lock:
            if self._thread is not None or self._connect is None or self._closed.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="hub-inbox-feed", daemon=True)
            self._thread.start()

    @asynccontextmanager
    async def subscribe(
        self, wants: Callable[[InboxItem], bool], *, ready_timeout_s: float = 10.0
    ) -> AsyncIterator[Subscription]:
        """A subscription for the block; changes committed after entry are delivered. UNAVAILABLE when the
        feed cannot listen to PostgreSQL within ``ready_timeout_s``."""
        self.start()
        if not self._listening.is_set() and not self._closed.is_set():
            listening = await asyncio.to_thread(self._listening.wait, ready_timeout_s)
            if not listening:
                raise UnavailableError("PostgreSQL: the inbox feed is not listening; retry shortly")
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
        """End every subscription (their streams finish) and stop listening. Idempotent."""
        self._closed.set()
        self._fan_out(lambda _s: [CLOSED])
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def publish(self, changes: Sequence[Change]) -> None:
        """Read the changed items once and hand each to the subscriptions that want it; a failed read tells
        every watcher to re-read rather than miss a change."""
        if not changes:
            return
        ids = list(dict.fromkeys(c.item_id for c in changes))
        try:
            items = self._load(ids)
        except Exception as error:  # noqa: BLE001 - the watchers are told; the feed keeps going
            log.warning("inbox_feed_read_failed", error=str(error), changes=len(changes))
            self.resync()
            return
        updates = [Update(c.change, items[c.item_id]) for c in changes if c.item_id in items]
        if updates:
            self._fan_out(lambda sub: [u for u in updates if sub.wants(u.item)])

    def resync(self) -> None:
        self._fan_out(lambda _s: [RESYNC])

    def _fan_out(self, items_for: Callable[[Subscription], Sequence[Item]]) -> None:
        """One hop to each event loop per batch; the per-watcher work runs there, where the queues live."""
        with self._lock:
            by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
            for subscription, loop in self._subscriptions.items():
                by_loop.setdefault(loop, []).append(subscription)
        for loop, subscriptions in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: its watchers are gone
                loop.call_soon_threadsafe(_deliver, subscriptions, items_for)

    def _run(self) -> None:
        assert self._connect is not None
        backoff = Backoff(first=0.2, cap=_RECONNECT_MAX_S)
        first = True
        while not self._closed.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._connect()
                row = conn.execute(f"SELECT {INBOX_CHANNEL_SQL}").fetchone()
                channel = str(row[0]) if row else "cityhub_inbox"
                conn.execute(f'LISTEN "{channel}"')
                if not first:
                    # Changes may have committed while we were not listening.
                    self.resync()
                first = False
                backoff.reset()
                self._listening.set()
                log.info("inbox_feed_listening", channel=channel)
                while not self._closed.is_set():
                    batch = self._next_batch(conn)
                    if batch:
                        self.publish(batch)
            except psycopg.Error as error:
                self._listening.clear()
                delay = backoff.next_delay()
                log.warning("inbox_feed_lost", error=str(error), retry_in_s=delay)
                backoff.wait(self._closed, delay)
            finally:
                if conn is not None:
                    conn.close()
        log.info("inbox_feed_stopped")

    def _next_batch(self, conn: psycopg.Connection[Any]) -> list[Change]:
        notices = list(conn.notifies(timeout=_POLL_S, stop_after=1))
        if notices:
            notices.extend(conn.notifies(timeout=_GATHER_S, stop_after=_BATCH_MAX))
        changes = []
        for notice in notices:
            change = _parse(notice.payload)
            if change is not None:
                changes.append(change)
        return changes


def _deliver(subscriptions: list[Subscription], items_for: Callable[[Subscription], Sequence[Item]]) -> None:
    for subscription in subscriptions:
        for item in items_for(subscription):
            subscription.offer(item)


def _parse(payload: str) -> Change | None:
    try:
        data = json.loads(payload)
        return Change(str(data["item_id"]), str(data["change"]))
    except (ValueError, KeyError, TypeError):
        log.warning("inbox_feed_bad_payload", payload=payload[:200])
        return None
