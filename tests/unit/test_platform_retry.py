"""The backoff of the consumer and outbox loops: tenacity's delays, slept on the loop's stop event."""

from __future__ import annotations

import threading
import time

import pytest

from services.platform.retry import Backoff, exponential_wait


def test_delays_start_at_a_tenth_double_and_cap_at_ten_seconds() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])
    assert backoff.attempt == 10
    # Far past the cap (no overflow, no growth).
    for _ in range(2000):
        backoff.next_delay()
    assert backoff.next_delay() == pytest.approx(10.0)


def test_reset_after_success_starts_from_the_first_delay_again() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() == pytest.approx(0.1)


def test_custom_first_and_cap() -> None:
    backoff = Backoff(first=0.5, cap=1.5)
    assert [backoff.next_delay() for _ in range(4)] == pytest.approx([0.5, 1.0, 1.5, 1.5])


def test_jitter_stays_between_the_base_delay_and_the_cap() -> None:
    backoff = Backoff(first=0.1, cap=2.0, jitter=0.05)
    for expected in [0.1, 0.2, 0.4, 0.8, 1.6]:
        assert expected <= backoff.next_delay() <= min(expected + 0.05, 2.0)
    assert backoff.next_delay() <= 2.0


@pytest.mark.parametrize(("first", "cap", "jitter"), [(0.0, 1.0, 0.0), (2.0, 1.0, 0.0), (0.1, 1.0, -1.0)])
def test_nonsensical_parameters_are_refused(first: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"backoff|jitter"):
        exponential_wait(first, cap, jitter)


def test_wait_sleeps_the_delay_and_says_go_on() -> None:
    stop = threading.Event()
    backoff = Backoff(first=0.05, cap=0.05)
    started = time.monotonic()
    assert backoff.wait(stop) is True
    assert time.monotonic() - started >= 0.045
    assert backoff.attempt == 1


def test_wait_returns_false_at_once_when_stop_is_already_set() -> None:
    stop = threading.Event()
    stop.set()
    backoff = Backoff(first=10.0, cap=10.0)
    started = time.monotonic()
    assert backoff.wait(stop) is False
    assert time.monotonic() - started < 0.5


def test_stop_during_a_long_wait_ends_it_promptly() -> None:
    stop = threading.Event()
    backoff = Backoff(first=10.0, cap=10.0)
    timer = threading.Timer(0.1, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        assert backoff.wait(stop) is False
    finally:
        timer.cancel()
    assert time.monotonic() - started < 2.0


def test_wait_with_a_delay_already_taken_does_not_count_twice() -> None:
    stop = threading.Event()
    backoff = Backoff(first=0.01, cap=0.01)
    delay = backoff.next_delay()
    assert backoff.wait(stop, delay) is True
    assert backoff.attempt == 1
