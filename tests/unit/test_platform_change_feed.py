"""The platform change feed's LISTEN loop, which the services' feed tests do not reach (they hand changes
in through ``publish``): the channel asked of the connection, a burst as one batch, a bad payload skipped,
a lost connection re-listened with every watcher told to re-read, and closing ending the thread."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg

from services.platform.change_feed import CLOSED, RESYNC, ChangeFeed


@dataclass
class Notice:
    payload: str


@dataclass
class FakeConnection:
    """What the feed uses of a psycopg connection; ``notifies`` takes the test's steps from a queue."""

    steps: queue.Queue[list[str] | Exception]
    executed: list[str] = field(default_factory=list)
    closed: bool = False
    pending: list[Notice] = field(default_factory=list)

    def execute(self, sql: str) -> FakeConnection:
        self.executed.append(sql)
        return self

    def notifies(self, *, timeout: float, stop_after: int) -> Iterator[Notice]:
        # A step's payloads arrive together (as a burst does), then are handed out ``stop_after`` at a time.
        if not self.pending:
            try:
                step = self.steps.get(timeout=timeout)
            except queue.Empty:
                return iter(())
            if isinstance(step, Exception):
                raise step
            self.pending.extend(Notice(p) for p in step)
        taken, self.pending = self.pending[:stop_after], self.pending[stop_after:]
        return iter(taken)

    def close(self) -> None:
        self.closed = True


class Reads:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, ids: Sequence[str]) -> Mapping[str, str]:
        self.batches.append(list(ids))
        return {i: i.upper() for i in ids}


def test_the_listener_batches_skips_bad_payloads_and_re_listens_with_a_resync() -> None:
    steps: queue.Queue[list[str] | Exception] = queue.Queue()
    connections: list[FakeConnection] = []
    asked: list[FakeConnection] = []

    def connect() -> psycopg.Connection[Any]:
        connections.append(FakeConnection(steps))
        return cast(psycopg.Connection[Any], connections[-1])

    def channel(conn: psycopg.Connection[Any]) -> str:
        asked.append(cast(FakeConnection, conn))
        return "test_changes"

    reads = Reads()
    feed: ChangeFeed[str, str, str] = ChangeFeed(
        connect,
        channel,
        label="test",
        parse=lambda data: str(data["id"]),
        key=lambda notice: notice,
        load=reads,
        update=lambda _notice, row: row,
    )

    async def next_item(get: Any) -> object:
        return await asyncio.wait_for(get(), 2.0)

    async def scenario() -> list[object]:
        async with feed.watch(lambda _notice, _update: True) as watcher:
            steps.put(['{"id":"a"}', "not json", '{"other":1}', '{"id":"b"}', '{"id":"a"}'])
            got = [await next_item(watcher.get) for _ in range(3)]
            steps.put(psycopg.OperationalError("connection lost"))
            got.append(await next_item(watcher.get))
            steps.put(['{"id":"c"}'])
            got.append(await next_item(watcher.get))
            await asyncio.to_thread(feed.close)
            got.append(await next_item(watcher.get))
            return got

    try:
        assert asyncio.run(scenario()) == ["A", "B", "A", RESYNC, "C", CLOSED]
    finally:
        feed.close()
    assert reads.batches == [["a", "b"], ["c"]]
    assert asked == connections
    assert len(connections) == 2
    assert all(c.executed == ['LISTEN "test_changes"'] and c.closed for c in connections)
    assert feed.closed
    assert feed.watchers == 0
