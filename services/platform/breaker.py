"""A circuit breaker per dependency: once it has failed several times in a row, callers are answered
UNAVAILABLE at once instead of each waiting out its own timeout, and one call at a time probes for
recovery.

closed -> (``threshold`` consecutive failures) -> open -> (``cooldown_s`` later) one probe ->
success: closed / failure: open again. Threads share one breaker per dependency; the state is a few
fields under a lock. Pure: the clock is injected, so the rules are unit-tested without sockets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from services.platform.errors import UnavailableError
from services.platform.logs import get_logger
from services.platform.metrics import DEPENDENCY_BREAKER_OPEN

__all__ = ["Breaker", "BreakerState"]

log = get_logger()


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    PROBING = "probing"


class Breaker:
    def __init__(
        self,
        dependency: str,
        *,
        service: str = "",
        threshold: int = 3,
        cooldown_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown_s <= 0:
            raise ValueError("a breaker needs threshold >= 1 and cooldown_s > 0")
        self.dependency = dependency
        self._threshold = threshold
        self._cooldown = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._gauge = DEPENDENCY_BREAKER_OPEN.labels(service or "-", dependency)

    @property
    def state(self) -> BreakerState:
        return self._state

    def before(self) -> bool:
        """Let the call through (True when it is the probe, which should not wait long), or raise
        UnavailableError at once while the breaker is open (one caller per cooldown is the probe)."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return False
            waited = self._clock() - self._opened_at
            if self._state is BreakerState.OPEN and waited >= self._cooldown:
                self._state = BreakerState.PROBING
                self._opened_at = self._clock()
                return True
            retry_in = max(0.0, self._cooldown - waited)
        raise UnavailableError(
            f"{self.dependency} is unavailable (failed {self._threshold} times in a row); "
            f"retry in {retry_in:.1f}s"
        )

    def succeeded(self) -> None:
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                log.info("breaker_closed", dependency=self.dependency)
                self._gauge.set(0)
            self._state = BreakerState.CLOSED
            self._failures = 0

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.PROBING or (
                self._state is BreakerState.CLOSED and self._failures >= self._threshold
            ):
                if self._state is BreakerState.CLOSED:
                    log.warning("breaker_opened", dependency=self.dependency, failures=self._failures)
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
                self._gauge.set(1)
