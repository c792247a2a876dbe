"""Inbox changes pushed to watchers: the hub's domain parts of the platform's change feed
(services/platform/change_feed.py: one LISTEN per process, batches, bounded queues, re-send when behind,
ending streams on server stop).

The projection (and the use cases acknowledging or resolving at the hub) NOTIFY on the schema's inbox
channel in the transaction that changes an item. What stays here is what is the hub's: the channel is
named by the database (per schema, so a rebuild's fresh schema has its own), a payload names an item and
how it changed, a batch's items are read once as committed (``load``), and a subscription's filter looks
at the item itself. A watcher that falls a queue behind is told to re-read the open items (:data:`RESYNC`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import psycopg

from services.hub.domain.inbox import InboxItem
from services.hub.repository.inbox import INBOX_CHANNEL_SQL
from services.platform import change_feed
from services.platform.change_feed import CLOSED, RESYNC, ChangeFeed

__all__ = ["CLOSED", "RESYNC", "Change", "InboxFeed", "Subscription", "Update"]

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


Subscription = change_feed.Subscription[Change, Update]


class InboxFeed(ChangeFeed[Change, InboxItem, Update]):
    """The process's one inbox change feed. ``connect`` opens the LISTEN connection (None: changes come
    only through :meth:`publish`); ``load`` reads the changed items, once per batch."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]] | None,
        *,
        load: LoadItems,
        queue_size: int = 1000,
    ) -> None:
        super().__init__(
            connect,
            _inbox_channel,
            label="inbox",
            parse=_parse,
            key=_item_id,
            load=load,
            update=_update,
            queue_size=queue_size,
        )

    def subscribe(
        self, wants: Callable[[InboxItem], bool], *, ready_timeout_s: float = 10.0
    ) -> AbstractAsyncContextManager[Subscription]:
        """A subscription for the block; changes committed after entry are delivered. UNAVAILABLE when the
        feed cannot listen to PostgreSQL within ``ready_timeout_s``."""
        return self.watch(lambda _change, update: wants(update.item), ready_timeout_s=ready_timeout_s)


def _inbox_channel(conn: psycopg.Connection[Any]) -> str:
    # Asked of the listening connection itself: its search path decides the schema, as it does for the
    # transactions that NOTIFY.
    row = conn.execute(f"SELECT {INBOX_CHANNEL_SQL}").fetchone()
    return str(row[0]) if row else "cityhub_inbox"


def _parse(data: Any) -> Change:
    return Change(str(data["item_id"]), str(data["change"]))


def _item_id(change: Change) -> str:
    return change.item_id


def _update(change: Change, item: InboxItem) -> Update:
    return Update(change.change, item)
