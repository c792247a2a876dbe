"""The planner's vocabulary: an :class:`Action` (one RPC a participant makes at a simulated moment), a
:class:`Ref` to a value only the server knows, the drafts the stories write and the schedule that puts them
in time order. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "LOCAL",
    "TELEMETRY_EVERY_S",
    "Action",
    "Draft",
    "Ref",
    "Schedule",
    "days_of",
    "digest",
    "local_time",
    "poisson",
    "refs",
    "stamp",
]

LOCAL = ZoneInfo("Asia/Shanghai")


# Telemetry: each collection box sends its machines' samples once a simulated minute.
TELEMETRY_EVERY_S = 60


@dataclass(frozen=True)
class Ref:
    """A value only the server knows: ``path`` (dotted, list indexes as numbers) in the answer of the action
    named ``key``."""

    key: str
    path: str


@dataclass(frozen=True)
class Action:
    index: int
    at: datetime
    service: str
    rpc: str
    request: Mapping[str, Any]
    # "service", "operator" (district operator, the command centre), "police" or "clerk:<division code>".
    caller: str = "service"
    # Names this action's answer for later Refs and needs.
    key: str = ""
    # Actions that must have succeeded first (the keys of every Ref in the request are added).
    needs: tuple[str, ...] = ()
    # A lifecycle step without a request id: on a replay FAILED_PRECONDITION means it was done already.
    step: bool = False
    # "district" for the registrations, "incident" for the reference incident's steps, else the family.
    family: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "at": stamp(self.at),
            "service": self.service,
            "rpc": self.rpc,
            "request": _plain(self.request),
            "caller": self.caller,
            "key": self.key,
            "needs": list(self.needs),
            "step": self.step,
            "family": self.family,
        }


def digest(actions: Iterable[Action]) -> str:
    """SHA-256 over the actions' canonical JSON: equal digests, equal plans."""
    hasher = hashlib.sha256()
    for action in actions:
        hasher.update(json.dumps(action.as_json(), sort_keys=True, ensure_ascii=False).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Ref):
        return {"$ref": value.key, "path": value.path}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, Ref):
        yield value.key
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from refs(v)


@dataclass
class Draft:
    at: datetime
    service: str
    rpc: str
    request: dict[str, Any]
    caller: str = "service"
    key: str = ""
    needs: tuple[str, ...] = ()
    step: bool = False
    family: str = ""
    create: bool = True  # gets a request id
    # The story's part of the plan even when sent with the registrations (a kitchen's morning before the
    # start): its request id names the start like the rest of the story.
    story: bool = False


@dataclass(order=True)
class _Entry:
    at: datetime
    seq: int
    item: Draft | Callable[[datetime], None] = field(compare=False)


class Schedule:
    """One heap of drafts and tickers in time order; ties keep the order they were scheduled in."""

    def __init__(self, end: datetime) -> None:
        self.end = end
        self._heap: list[_Entry] = []
        self._seq = itertools.count()

    def add(self, draft: Draft) -> None:
        if draft.at <= self.end:
            heapq.heappush(self._heap, _Entry(draft.at, next(self._seq), draft))

    def every(self, first: datetime, interval: Callable[[], float], tick: Callable[[datetime], None]) -> None:
        """Call ``tick(at)`` at ``first`` and then every ``interval()`` seconds until the end."""

        def run(at: datetime) -> None:
            tick(at)
            following = at + timedelta(seconds=interval())
            if following <= self.end:
                heapq.heappush(self._heap, _Entry(following, next(self._seq), run))

        if first <= self.end:
            heapq.heappush(self._heap, _Entry(first, next(self._seq), run))

    def drain(self) -> Iterator[Draft]:
        while self._heap:
            entry = heapq.heappop(self._heap)
            if isinstance(entry.item, Draft):
                yield entry.item
            else:
                entry.item(entry.at)


def poisson(rng: random.Random, per_day: float) -> Callable[[], float]:
    return lambda: rng.expovariate(per_day / 86400.0)


def days_of(start: datetime, end: datetime) -> Iterator[date]:
    day = start.astimezone(LOCAL).date()
    while datetime.combine(day, time(0), LOCAL) <= end:
        yield day
        day += timedelta(days=1)


def local_time(day: date, hh: int, mm: int, seconds: float = 0.0) -> datetime:
    return datetime.combine(day, time(hh, mm), LOCAL).astimezone(UTC) + timedelta(seconds=seconds)
