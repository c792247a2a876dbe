"""Clock-driven work a service does in the background (silence alerts, sweeps, finished days): one loop,
written once, so every such task behaves the same way under failure and shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable

from services.platform.logs import get_logger

__all__ = ["repeat"]

log = get_logger()


def repeat(stop: threading.Event, interval_s: float, round_: Callable[[], bool], *, task: str) -> None:
    """Run ``round_`` every ``interval_s`` until ``stop`` is set. A round returns True when it stopped at
    its batch limit with work left, and is then run again at once. A failing round is logged and retried
    next interval: a database or broker outage must not end the thread."""
    log.info("periodic_task_started", task=task, interval_s=interval_s)
    while not stop.is_set():
        try:
            while round_() and not stop.is_set():
                pass
        except Exception as error:  # noqa: BLE001 - the next round retries; the thread must live on
            log.warning("periodic_task_failed", task=task, error=str(error), error_type=type(error).__name__)
        stop.wait(interval_s)
    log.info("periodic_task_stopped", task=task)
