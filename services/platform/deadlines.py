"""The caller's deadline, for the work done on its behalf.

The gRPC server binds each call's deadline (``time.monotonic()`` at which the caller stops waiting) in a
context variable; the unit of work, the telemetry publisher and peer calls ask :func:`budget` how long
they may wait for a dependency: the remaining time, capped by the dependency's own ceiling. Work with no
caller (consumers, relays, tests) has no deadline and gets the ceiling. A budget that is already spent
raises DeadlineExceededError, so nothing starts, and nothing commits, for a caller that has given up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from services.platform.errors import DeadlineExceededError

__all__ = ["bound", "budget", "check", "remaining_s", "set_deadline"]

_deadline: ContextVar[float | None] = ContextVar("cityhub_deadline", default=None)


@contextmanager
def bound(deadline: float | None) -> Iterator[None]:
    """Run the block under ``deadline`` (monotonic seconds; None: no deadline)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def set_deadline(deadline: float | None) -> None:
    """Bind ``deadline`` for the rest of the current context (the gRPC server does, per call)."""
    _deadline.set(deadline)


def remaining_s() -> float | None:
    """Seconds left before the current caller's deadline (never negative); None without one."""
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def budget(ceiling_s: float, what: str = "the work") -> float:
    """How long ``what`` may wait: the remaining deadline capped at ``ceiling_s``. Raises
    DeadlineExceededError when the deadline has passed."""
    remaining = remaining_s()
    if remaining is None:
        return ceiling_s
    if remaining <= 0.0:
        raise DeadlineExceededError(f"the caller's deadline passed before {what}; nothing was done")
    return min(ceiling_s, remaining)


def check(what: str) -> None:
    """Raise DeadlineExceededError if the caller's deadline has passed (before committing, say)."""
    remaining = remaining_s()
    if remaining is not None and remaining <= 0.0:
        raise DeadlineExceededError(f"the caller's deadline passed before {what}; nothing was committed")
