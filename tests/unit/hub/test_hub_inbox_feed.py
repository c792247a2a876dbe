"""The hub's side of the inbox watch feed (the machinery is the platform's, tested through safety's alert
feed and tests/unit/test_platform_change_feed.py): a subscription filters on the item as committed, a
watcher that falls behind or misses a read is told to re-read, and the server's stop ends a WatchInbox
stream at once through the hook the use cases register."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from services.hub.domain.inbox import FilterInput, InboxItem, ItemKind, ItemStatus, ListItems, Severity
from services.hub.usecases.common import HubConfig, HubContext, HubUnitOfWork
from services.hub.usecases.inbox import InboxUseCases
from services.hub.usecases.inbox_feed import CLOSED, RESYNC, Change, InboxFeed, Subscription, Update

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def item(item_id: str, town: str) -> InboxItem:
    return InboxItem(
        item_id=item_id,
        kind=ItemKind.DEVICE_FAULT,
        severity=Severity.MEDIUM,
        effective_severity=Severity.MEDIUM,
        status=ItemStatus.OPEN,
        subject_kind="site",
        subject_id="site_1",
        domain="industry",
        title="a fault",
        opened_at=T0,
        last_occurred_at=T0,
        occurrence_count=1,
        town=town,
    )


class Items:
    """The feed's ``load``: counts how often the database would be read."""

    def __init__(self, *items: InboxItem) -> None:
        self.by_id = {i.item_id: i for i in items}
        self.reads: list[list[str]] = []
        self.fail = False

    def __call__(self, ids: Sequence[str]) -> Mapping[str, InboxItem]:
        self.reads.append(list(ids))
        if self.fail:
            raise OSError("connection refused")
        return {i: self.by_id[i] for i in ids if i in self.by_id}


async def publish_from_listener(feed: InboxFeed, changes: list[Change]) -> None:
    await asyncio.to_thread(feed.publish, changes)
    await asyncio.sleep(0.01)


async def next_item(subscription: Subscription) -> object:
    return await asyncio.wait_for(subscription.get(), 1.0)


def in_town(town: str) -> Callable[[InboxItem], bool]:
    return lambda i: i.town == town


def test_a_change_is_read_once_and_reaches_only_the_watchers_whose_filter_wants_the_item() -> None:
    north, south = item("i1", "north"), item("i2", "south")
    load = Items(north, south)
    feed = InboxFeed(None, load=load)

    async def scenario() -> None:
        async with feed.subscribe(in_town("north")) as at_north, feed.subscribe(in_town("east")) as at_east:
            await publish_from_listener(feed, [Change("i1", "opened"), Change("i2", "opened")])
            assert await next_item(at_north) == Update("opened", north)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(at_east.get(), 0.05)

    asyncio.run(scenario())
    assert load.reads == [["i1", "i2"]]


def test_falling_behind_or_a_failed_read_tells_the_watcher_to_re_read() -> None:
    load = Items(item("i1", "north"))
    feed = InboxFeed(None, load=load, queue_size=2)

    async def scenario() -> list[object]:
        async with feed.subscribe(in_town("north")) as watcher:
            await publish_from_listener(feed, [Change("i1", "updated")] * 3)
            got = [await next_item(watcher)]
            load.fail = True
            await publish_from_listener(feed, [Change("i1", "updated")])
            got.append(await next_item(watcher))
            load.fail = False
            await publish_from_listener(feed, [Change("i1", "acknowledged")])
            got.append(await next_item(watcher))
            return got

    assert asyncio.run(scenario()) == [RESYNC, RESYNC, Update("acknowledged", item("i1", "north"))]


def test_the_servers_stop_hook_ends_an_open_watch_at_once() -> None:
    north = item("i1", "north")
    feed = InboxFeed(None, load=Items(north))
    hooks: list[Callable[[], None]] = []
    # No include_open and no scopes: the watch never reads the store, so none is needed.
    ctx = HubContext(uow=cast(HubUnitOfWork, None), config=HubConfig(), peers={}, on_stop=hooks.append)
    inbox = InboxUseCases(ctx, feed=feed)
    assert hooks == [feed.close]

    async def scenario() -> list[Any]:
        live = asyncio.Event()

        async def on_live() -> None:
            live.set()

        async def collect() -> list[Any]:
            stream = inbox.watch(ListItems(FilterInput()), None, include_open=False, on_live=on_live)
            return [i async for i in stream]

        watching = asyncio.ensure_future(collect())
        await asyncio.wait_for(live.wait(), 1.0)
        await publish_from_listener(feed, [Change("i1", "opened")])
        await asyncio.to_thread(hooks[0])
        return await asyncio.wait_for(watching, 1.0)

    assert asyncio.run(scenario()) == [north]
    assert feed.closed
    assert feed.watchers == 0

    async def late() -> object:
        async with feed.subscribe(in_town("north")) as subscription:
            return await next_item(subscription)

    assert asyncio.run(late()) is CLOSED
