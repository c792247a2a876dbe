"""Alert changes pushed to watchers: one change feed per process, fanned out in memory.

Every use case that changes an alert calls ``pg_notify`` in the same transaction, so a notification
exists only for a committed change and reaches every replica of the service (each listens on the same
channel). One listening connection per process takes the notifications in batches, reads each changed
alert once, and hands the same committed alert to every subscription whose sites it concerns: the cost
of a change is one read, whatever the number of watchers. Watchers are asyncio subscriptions on the gRPC
server's event loop (see services/platform/grpc_server.py): an open watcher costs a small queue, not a
thread or a connection.

What a subscription receives: :class:`Update` (the change and the alert as committed), :data:`RESYNC`
when it may have missed some (the listener reconnected, the read failed, or the watcher fell more than a
queue behind: it should re-read the open alerts), and :data:`CLOSED` when the service is stopping (the
stream ends and the server's shutdown does not wait for it).
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

from services.platform.errors import UnavailableError
from services.platform.logs import get_logger
from services.platform.retry import Backoff
from services.safety.domain.model import Alert

__all__ = ["CLOSED", "RESYNC", "AlertFeed", "Change", "Subscription", "Update", "alert_channel"]

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
# After the first notification, how long to keep collecting the ones already on their way: a burst of
# changes becomes one batch (one read per alert, one hop to the event loop) for a millisecond or two.
_GATHER_S = 0.002
_BATCH_MAX = 500

LoadAlerts = Callable[[Sequence[str]], Mapping[str, Alert]]


def alert_channel(schema: str) -> str:
    """The NOTIFY channel for one schema's alerts (LISTEN is per database; tests share one)."""
    return f"cityhub_alerts_{schema}"[:63]


@dataclass(frozen=True, slots=True)
class Change:
    """One notification: which alert changed, at which site, and how (an AlertChangeKind value)."""

    alert_id: str
    site_id: str
    change: str


@dataclass(frozen=True, slots=True)
class Update:
    """A change with the alert as committed, read once for every watcher."""

    change: str
    alert: Alert


Item = Update | _Marker


@dataclass(eq=False)
class Subscription:
    """One watcher's view: ``site_ids`` None means every site. Used only on its event loop."""

    site_ids: frozenset[str] | None
    capacity: int
    _items: deque[Update] = field(init=False, default_factory=deque)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _behind: bool = field(init=False, default=False)
    _stopped: bool = field(init=False, default=False)

    def wants(self, site_id: str) -> bool:
        return self.site_ids is None or site_id in self.site_ids

    def offer(self, item: Item) -> None:
        if item is CLOSED:
            self._stopped = True
        elif item is RESYNC or len(self._items) >= self.capacity:
            # A watcher too slow to keep up re-reads instead of making the feed wait or grow without end.
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
                # Everything queued is superseded by the re-read the watcher is about to do.
                self._items.clear()
                return RESYNC
            if self._items:
                return self._items.popleft()
            self._wake.clear()
            await self._wake.wait()


class AlertFeed:
    """The process's one change feed. ``connect`` opens the LISTEN connection (None: changes arrive only
    through :meth:`publish`, as in unit tests); ``load`` reads changed alerts, once per batch."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]] | None,
        channel: str,
        *,
        load: LoadAlerts,
        queue_size: int = 1000,
    ) -> None:
        self._connect = connect
        self._channel = channel
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
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def start(self) -> None:
        """Start listening (idempotent); the service starts its feed with the server."""
        with self._lock:
            if self._thread is not None or self._connect is None or self._closed.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=f"alert-feed-{self._channel}", daemon=True)
            self._thread.start()

    @asynccontextmanager
    async def subscribe(
        self, site_ids: frozenset[str] | None, *, ready_timeout_s: float = 10.0
    ) -> AsyncIterator[Subscription]:
        """A subscription for the duration of the block; changes committed after entry are delivered.
        UNAVAILABLE when the feed cannot listen to PostgreSQL within ``ready_timeout_s``."""
        self.start()
        if not self._listening.is_set() and not self._closed.is_set():
            listening = await asyncio.to_thread(self._listening.wait, ready_timeout_s)
            if not listening:
                raise UnavailableError("PostgreSQL: the alert feed is not listening; retry shortly")
        subscription = Subscription(site_ids, self._queue_size)
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
        self._fan_out(lambda _subscription: [CLOSED])
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def publish(self, changes: Sequence[Change]) -> None:
        """Read the changed alerts once and hand each change to the subscriptions that want it. Runs on
        the listener's thread; a failed read tells every watcher to re-read rather than miss a change."""
        if not changes:
            return
        ids = list(dict.fromkeys(c.alert_id for c in changes))
        try:
            alerts = self._load(ids)
        except Exception as error:  # noqa: BLE001 - the watchers are told; the feed keeps going
            log.warning("alert_feed_read_failed", error=str(error), changes=len(changes))
            self.resync()
            return
        updates = [
            (change.site_id, Update(change.change, alerts[change.alert_id]))
            for change in changes
            if change.alert_id in alerts
        ]
        if updates:
            self._fan_out(lambda sub: [u for site, u in updates if sub.wants(site)])

    def resync(self) -> None:
        """Tell every watcher it may have missed changes."""
        self._fan_out(lambda _subscription: [RESYNC])

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
                conn.execute(f'LISTEN "{self._channel}"')
                if not first:
                    # Changes may have committed while we were not listening.
                    self.resync()
                first = False
                backoff.reset()
                self._listening.set()
                log.info("alert_feed_listening", channel=self._channel)
                while not self._closed.is_set():
                    batch = self._next_batch(conn)
                    if batch:
                        self.publish(batch)
            except psycopg.Error as error:
                self._listening.clear()
                delay = backoff.next_delay()
                log.warning("alert_feed_lost", error=str(error), retry_in_s=delay)
                backoff.wait(self._closed, delay)
            finally:
                if conn is not None:
                    conn.close()
        log.info("alert_feed_stopped", channel=self._channel)

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
        return Change(str(data["alert_id"]), str(data["site_id"]), str(data["change"]))
    except (ValueError, KeyError, TypeError):
        log.warning("alert_feed_bad_payload", payload=payload[:200])
        return None
