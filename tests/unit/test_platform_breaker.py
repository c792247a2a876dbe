"""The breaker's rules and the caller's deadline budget, without sockets."""

from __future__ import annotations

import time

import pytest

from services.platform import deadlines
from services.platform.breaker import Breaker, BreakerState
from services.platform.errors import DeadlineExceededError, UnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_then_answers_at_once() -> None:
    clock = Clock()
    breaker = Breaker("PostgreSQL", threshold=3, cooldown_s=2.0, clock=clock)
    for _ in range(2):
        breaker.before()
        breaker.failed()
    breaker.before()  # two failures: still closed
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(UnavailableError, match="PostgreSQL is unavailable"):
        breaker.before()


def test_a_success_in_between_resets_the_count() -> None:
    breaker = Breaker("Kafka", threshold=2, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED


def test_after_the_cooldown_one_call_probes_and_its_outcome_decides() -> None:
    clock = Clock()
    breaker = Breaker("Kafka", threshold=1, cooldown_s=2.0, clock=clock)
    breaker.failed()
    clock.now += 2.0
    breaker.before()  # the probe goes through
    with pytest.raises(UnavailableError):
        breaker.before()  # others do not, while it is out
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(UnavailableError):
        breaker.before()
    clock.now += 2.0
    breaker.before()
    breaker.succeeded()
    assert breaker.state.value == "closed"
    breaker.before()


def test_without_a_caller_deadline_the_budget_is_the_ceiling() -> None:
    assert deadlines.budget(3.0) == 3.0
    assert deadlines.remaining_s() is None
    deadlines.check("the commit")


def test_a_caller_deadline_caps_the_budget_and_once_passed_nothing_starts_or_commits() -> None:
    with deadlines.bound(time.monotonic() + 0.5):
        assert 0 < deadlines.budget(3.0) <= 0.5
        assert deadlines.budget(0.1) == 0.1
    with deadlines.bound(time.monotonic() - 0.01):
        with pytest.raises(DeadlineExceededError, match="before a connection"):
            deadlines.budget(3.0, "a connection")
        with pytest.raises(DeadlineExceededError, match="nothing was committed"):
            deadlines.check("the commit")
    assert deadlines.remaining_s() is None
