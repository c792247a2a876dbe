"""Alert changes pushed to watchers: PostgreSQL LISTEN/NOTIFY fanned out to in-process subscriptions.

Every use case that changes an alert calls ``pg_notify`` in the same transaction, so a notification
exists only for a committed change and reaches every replica of the service (each listens on the same
channel); a watcher then reads the alert as committed. One listening connection per process serves all
its watchers; it is opened when the first watcher subscribes.

What a subscription receives: the ids of changed alerts in its scope, :data:`RESYNC` when it may have
missed some (the listener reconnected, or the watcher fell more than a queue behind: it should re-read
the open alerts), and :data:`CLOSED` when the service is stopping (the stream ends and the server's
shutdown does not wait for it).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg

from services.platform.logs import get_logger
from services.platform.retry import Backoff

__all__ = ["CLOSED", "RESYNC", "AlertFeed", "Change", "Subscription", "alert_channel"]

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


def alert_channel(schema: str) -> str:
    """The NOTIFY channel for one schema's alerts (LISTEN is per database; tests share one)."""
    return f"cityhub_alerts_{schema}"[:63]


@dataclass(frozen=True, slots=True)
class Change:
    alert_id: str
    site_id: str
    change: str


@dataclass(eq=False)
class Subscription:
    """One watcher's view: ``site_ids`` None means every site."""

    site_ids: frozenset[str] | None
    capacity: int
    _queue: queue.Queue[Change | _Marker] = field(init=False)
    _behind: threading.Event = field(init=False, default_factory=threading.Event)
    _stopped: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._queue = queue.Queue(maxsize=self.capacity)

    def wants(self, change: Change) -> bool:
        return self.site_ids is None or change.site_id in self.site_ids

    def offer(self, item: Change | _Marker) -> None:
        if item is CLOSED:
            self._stopped.set()
            # Wake a waiting get() at once; a full queue wakes it anyway.
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(item)
            return
        if item is RESYNC:
            self._behind.set()
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._behind.set()

    def get(self, timeout: float) -> Change | _Marker | None:
        """The next item, or None after ``timeout`` with nothing to say."""
        if self._stopped.is_set():
            return CLOSED
        if self._behind.is_set():
            self._behind.clear()
            # Everything queued is superseded by the re-read the watcher is about to do.
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            return RESYNC
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return CLOSED if self._stopped.is_set() else item


class AlertFeed:
    def __init__(
        self, connect: Callable[[], psycopg.Connection[Any]], channel: str, *, queue_size: int = 1000
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @contextmanager
    def subscribe(
        self, site_ids: frozenset[str] | None, *, ready_timeout_s: float = 10.0
    ) -> Iterator[Subscription]:
        """A subscription for the duration of the block; changes committed after entry are delivered."""
        subscription = Subscription(site_ids, self._queue_size)
        with self._lock:
            if self._closed.is_set():
                subscription.offer(CLOSED)
            self._subscriptions.add(subscription)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._run, name=f"alert-feed-{self._channel}", daemon=True
                )
                self._thread.start()
        try:
            if not self._closed.is_set() and not self._listening.wait(ready_timeout_s):
                raise RuntimeError("the alert feed could not start listening to PostgreSQL")
            yield subscription
        finally:
            with self._lock:
                self._subscriptions.discard(subscription)

    @property
    def watchers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def close(self, timeout_s: float = 5.0) -> None:
        """End every subscription (their streams finish) and stop listening. Idempotent."""
        self._closed.set()
        with self._lock:
            subscriptions = list(self._subscriptions)
            thread = self._thread
        for subscription in subscriptions:
            subscription.offer(CLOSED)
        if thread is not None:
            thread.join(timeout_s)

    def _broadcast(self, item: Change | _Marker) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            if isinstance(item, Change) and not subscription.wants(item):
                continue
            subscription.offer(item)

    def _run(self) -> None:
        backoff = Backoff(first=0.2, cap=_RECONNECT_MAX_S)
        first = True
        while not self._closed.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._connect()
                conn.execute(f'LISTEN "{self._channel}"')
                if not first:
                    # Changes may have committed while we were not listening.
                    self._broadcast(RESYNC)
                first = False
                backoff.reset()
                self._listening.set()
                log.info("alert_feed_listening", channel=self._channel)
                while not self._closed.is_set():
                    for notification in conn.notifies(timeout=_POLL_S):
                        self._dispatch(notification.payload)
            except psycopg.Error as error:
                delay = backoff.next_delay()
                log.warning("alert_feed_lost", error=str(error), retry_in_s=delay)
                backoff.wait(self._closed, delay)
            finally:
                if conn is not None:
                    conn.close()
        log.info("alert_feed_stopped", channel=self._channel)

    def _dispatch(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            change = Change(str(data["alert_id"]), str(data["site_id"]), str(data["change"]))
        except (ValueError, KeyError, TypeError):
            log.warning("alert_feed_bad_payload", payload=payload[:200])
            return
        self._broadcast(change)
