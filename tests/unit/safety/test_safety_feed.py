"""The in-process side of the alert feed: scoping, falling behind, and stopping (no sockets)."""

from __future__ import annotations

import threading
import time

from services.safety.alert_feed import CLOSED, RESYNC, Change, Subscription


def change(site: str, alert: str = "alert_1") -> Change:
    return Change(alert, site, "raised")


def test_a_site_scoped_subscription_wants_only_its_sites() -> None:
    scoped = Subscription(frozenset({"site_a"}), capacity=10)
    assert scoped.wants(change("site_a"))
    assert not scoped.wants(change("site_b"))
    assert Subscription(None, capacity=10).wants(change("site_b"))


def test_changes_arrive_in_order_and_nothing_means_none() -> None:
    sub = Subscription(None, capacity=10)
    sub.offer(change("s", "a1"))
    sub.offer(change("s", "a2"))
    first, second = sub.get(0.1), sub.get(0.1)
    assert isinstance(first, Change)
    assert isinstance(second, Change)
    assert (first.alert_id, second.alert_id) == ("a1", "a2")
    assert sub.get(0.01) is None


def test_a_watcher_that_falls_behind_is_told_to_re_read_instead_of_losing_changes_silently() -> None:
    sub = Subscription(None, capacity=10)
    for index in range(11):
        sub.offer(change("s", f"a{index}"))
    assert sub.get(0.1) is RESYNC
    assert sub.get(0.01) is None


def test_closing_wakes_a_waiting_watcher_at_once_even_when_it_is_behind() -> None:
    sub = Subscription(None, capacity=10)
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(sub.get(5.0)))
    thread.start()
    started = time.monotonic()
    sub.offer(CLOSED)
    thread.join(2)
    assert got == [CLOSED]
    assert time.monotonic() - started < 1.0

    behind = Subscription(None, capacity=10)
    for index in range(20):
        behind.offer(change("s", f"a{index}"))
    behind.offer(CLOSED)
    assert behind.get(0.1) is CLOSED
