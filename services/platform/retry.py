"""Capped exponential backoff for loops that run until a stop event: the consumer and the outbox relay.

The delays come from tenacity's wait strategy (``wait_exponential``: 0.1 s, 0.2 s, 0.4 s ... capped at
10 s by default); the sleeping is done on the loop's :class:`threading.Event`, so a shutdown never waits
out a long delay. The loops are not "call this until it works" (they keep running after a success and
keep their own state between attempts), so the helper is a small object the loop asks for the next delay
and resets after each success, rather than a decorator around one call::

    backoff = Backoff()
    while not stop_event.is_set():
        try:
            step()
        except TransientError:
            if not backoff.wait(stop_event):
                break  # stop was requested while waiting
            continue
        backoff.reset()
"""

from __future__ import annotations

import threading

from tenacity import RetryCallState, Retrying
from tenacity.wait import wait_base, wait_exponential, wait_exponential_jitter

__all__ = ["DEFAULT_CAP_S", "DEFAULT_FIRST_S", "Backoff", "exponential_wait"]

DEFAULT_FIRST_S = 0.1
DEFAULT_CAP_S = 10.0


def exponential_wait(
    first: float = DEFAULT_FIRST_S, cap: float = DEFAULT_CAP_S, jitter: float = 0.0
) -> wait_base:
    """tenacity's strategy for ``first * 2**(n-1)`` seconds before retry ``n``, at most ``cap``; with
    ``jitter``, a random 0..``jitter`` s is added (still capped) so many clients do not retry in step."""
    if first <= 0 or cap < first:
        raise ValueError(f"backoff needs 0 < first <= cap (got first={first}, cap={cap})")
    if jitter < 0:
        raise ValueError(f"jitter must not be negative (got {jitter})")
    if jitter:
        return wait_exponential_jitter(multiplier=first, max=cap, exp_base=2, jitter=jitter)
    return wait_exponential(multiplier=first, min=first, max=cap, exp_base=2)


class Backoff:
    """Delays between the failed attempts of a long-running loop, slept on its stop event.

    ``attempt`` counts the failures since the last :meth:`reset`; the n-th failure waits
    ``first * 2**(n-1)`` seconds (capped). Not thread-safe: each loop owns its own.
    """

    def __init__(
        self, first: float = DEFAULT_FIRST_S, cap: float = DEFAULT_CAP_S, *, jitter: float = 0.0
    ) -> None:
        self._wait = exponential_wait(first, cap, jitter)
        # tenacity's wait strategies read a RetryCallState, which needs the Retrying it belongs to; this
        # one is never called, it only carries the strategy.
        self._retrying = Retrying(wait=self._wait, reraise=True)
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Failures since the last success (0 before the first)."""
        return self._attempt

    def reset(self) -> None:
        """After a success: the next failure waits the first delay again."""
        self._attempt = 0

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        self._attempt += 1
        state = RetryCallState(self._retrying, None, (), {})
        state.attempt_number = self._attempt
        return float(self._wait(state))

    def wait(self, stop_event: threading.Event, delay: float | None = None) -> bool:
        """Sleep the next delay (or ``delay``, already taken from :meth:`next_delay`) on ``stop_event``:
        False when stop was requested before or during the wait, True when the loop should go again."""
        if delay is None:
            delay = self.next_delay()
        # Event.wait returns at once (True) when stop is already set, and as soon as it is set meanwhile.
        return not stop_event.wait(delay)
