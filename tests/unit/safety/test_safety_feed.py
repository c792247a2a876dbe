"""The in-process side of the alert feed: one read per change for every watcher, scoping, falling behind,
a failed read, and stopping (no sockets: changes come in through ``publish`` as the listener hands them)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence

import psycopg
import pytest

from services.platform.errors import UnavailableError
from services.safety.alert_feed import CLOSED, RESYNC, AlertFeed, Change, Subscription, Update
from services.safety.domain.model import Alert
from tests.unit.safety.test_safety_alert_rules import alert


class Alerts:
    """The feed's ``load``: counts how often the database would be read."""

    def __init__(self, *alerts: Alert) -> None:
        self.by_id = {a.alert_id: a for a in alerts}
        self.reads: list[list[str]] = []
        self.fail = False

    def __call__(self, ids: Sequence[str]) -> Mapping[str, Alert]:
        self.reads.append(list(ids))
        if self.fail:
            raise OSError("connection refused")
        return {i: self.by_id[i] for i in ids if i in self.by_id}


def feed_of(load: Alerts, *, queue_size: int = 10) -> AlertFeed:
    return AlertFeed(None, "test_channel", load=load, queue_size=queue_size)


async def publish_from_listener(feed: AlertFeed, changes: list[Change]) -> None:
    """As the listener does: from another thread; items reach the loop's queues by a hop."""
    await asyncio.to_thread(feed.publish, changes)
    await asyncio.sleep(0.01)


async def next_item(subscription: Subscription) -> object:
    return await asyncio.wait_for(subscription.get(), 1.0)


def test_a_change_is_read_once_and_reaches_every_watcher_of_its_site_only() -> None:
    at_a = alert(alert_id="alert_a", site_id="site_a")
    load = Alerts(at_a)
    feed = feed_of(load)

    async def scenario() -> None:
        async with (
            feed.subscribe(frozenset({"site_a"})) as room_a,
            feed.subscribe(frozenset({"site_b"})) as room_b,
            feed.subscribe(None) as district,
        ):
            await publish_from_listener(feed, [Change("alert_a", "site_a", "raised")])
            assert await next_item(room_a) == Update("raised", at_a)
            assert await next_item(district) == Update("raised", at_a)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(room_b.get(), 0.05)

    asyncio.run(scenario())
    assert load.reads == [["alert_a"]]


def test_a_burst_of_changes_is_one_read_and_arrives_in_commit_order() -> None:
    first, second = alert(alert_id="a1"), alert(alert_id="a2")
    load = Alerts(first, second)
    feed = feed_of(load)

    async def scenario() -> list[object]:
        async with feed.subscribe(None) as watcher:
            await publish_from_listener(
                feed,
                [
                    Change("a1", "site_1", "raised"),
                    Change("a2", "site_1", "raised"),
                    Change("a1", "site_1", "updated"),
                ],
            )
            return [await next_item(watcher) for _ in range(3)]

    got = asyncio.run(scenario())
    assert got == [Update("raised", first), Update("raised", second), Update("updated", first)]
    assert load.reads == [["a1", "a2"]]


def test_a_watcher_that_falls_behind_is_told_to_re_read_instead_of_losing_changes_silently() -> None:
    load = Alerts(alert())
    feed = feed_of(load, queue_size=3)

    async def scenario() -> list[object]:
        async with feed.subscribe(None) as watcher:
            await publish_from_listener(feed, [Change("alert_1", "site_1", "updated")] * 4)
            got = [await next_item(watcher)]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(watcher.get(), 0.05)
            return got

    assert asyncio.run(scenario()) == [RESYNC]


def test_a_failed_read_tells_every_watcher_to_re_read_and_the_feed_goes_on() -> None:
    load = Alerts(alert())
    feed = feed_of(load)

    async def scenario() -> list[object]:
        async with feed.subscribe(None) as watcher:
            load.fail = True
            await publish_from_listener(feed, [Change("alert_1", "site_1", "updated")])
            got = [await next_item(watcher)]
            load.fail = False
            await publish_from_listener(feed, [Change("alert_1", "site_1", "acknowledged")])
            got.append(await next_item(watcher))
            return got

    assert asyncio.run(scenario()) == [RESYNC, Update("acknowledged", alert())]


def test_closing_wakes_a_waiting_watcher_at_once_even_when_it_is_behind() -> None:
    load = Alerts(alert())
    feed = feed_of(load, queue_size=2)

    async def scenario() -> list[object]:
        async with feed.subscribe(None) as behind:
            await publish_from_listener(feed, [Change("alert_1", "site_1", "updated")] * 5)
            async with feed.subscribe(None) as idle:
                waiting = asyncio.ensure_future(idle.get())
                await asyncio.sleep(0.01)
                await asyncio.to_thread(feed.close)
                return [await asyncio.wait_for(waiting, 1.0), await next_item(behind)]

    assert asyncio.run(scenario()) == [CLOSED, CLOSED]


def test_subscribing_after_close_ends_at_once() -> None:
    feed = feed_of(Alerts())
    feed.close()

    async def scenario() -> object:
        async with feed.subscribe(None) as late:
            return await next_item(late)

    assert asyncio.run(scenario()) is CLOSED


def test_a_feed_that_cannot_listen_answers_unavailable_instead_of_waiting() -> None:
    never = threading.Event()

    def connect() -> object:
        never.wait(5)
        raise psycopg.OperationalError("unreachable")

    feed = AlertFeed(connect, "test_channel", load=Alerts())  # type: ignore[arg-type]

    async def scenario() -> None:
        async with feed.subscribe(None, ready_timeout_s=0.1):
            pass

    try:
        with pytest.raises(UnavailableError, match="PostgreSQL"):
            asyncio.run(scenario())
    finally:
        never.set()
        feed.close()
