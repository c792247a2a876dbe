"""Alert changes pushed to watchers: safety's domain parts of the platform's change feed
(services/platform/change_feed.py: one LISTEN per process, batches, bounded queues, re-send when behind,
ending streams on server stop).

Every use case that changes an alert calls ``pg_notify`` on :func:`alert_channel` in the same
transaction. What stays here is what is safety's: a payload names an alert, its site and how it changed;
a batch's alerts are read once as committed (``load``); a duty room's subscription wants the alerts of its
sites, judged by the site the notification names, before anything is queued for it.

What a subscription receives: :class:`Update` (the change and the alert as committed), :data:`RESYNC`
when it may have missed some (it should re-read the open alerts), and :data:`CLOSED` when the service is
stopping (the stream ends and the server's shutdown does not wait for it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg

from services.platform import change_feed
from services.platform.change_feed import CLOSED, RESYNC, ChangeFeed
from services.safety.domain.model import Alert

__all__ = ["CLOSED", "RESYNC", "AlertFeed", "Change", "Subscription", "Update", "alert_channel"]

LoadAlerts = Callable[[Sequence[str]], Mapping[str, Alert]]


def alert_channel(schema: str) -> str:
    """The NOTIFY channel for one schema's alerts (LISTEN is per database; tests share one)."""
    return f"cityhub_alerts_{schema}"[:63]


@dataclass(frozen=True, slots=True)
class Change:
    """One notification: which alert changed, at which site, and how (an AlertChangeKind value)."""

    alert_id: str
    site_id: str
    change: str


@dataclass(frozen=True, slots=True)
class Update:
    """A change with the alert as committed, read once for every watcher."""

    change: str
    alert: Alert


Subscription = change_feed.Subscription[Change, Update]


class AlertFeed(ChangeFeed[Change, Alert, Update]):
    """The process's one alert feed. ``connect`` opens the LISTEN connection (None: changes arrive only
    through :meth:`publish`, as in unit tests); ``load`` reads changed alerts, once per batch."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]] | None,
        channel: str,
        *,
        load: LoadAlerts,
        queue_size: int = 1000,
    ) -> None:
        super().__init__(
            connect,
            channel,
            label="alert",
            parse=_parse,
            key=_alert_id,
            load=load,
            update=_update,
            queue_size=queue_size,
        )

    def subscribe(
        self, site_ids: frozenset[str] | None, *, ready_timeout_s: float = 10.0
    ) -> AbstractAsyncContextManager[Subscription]:
        """A subscription to the alerts of ``site_ids`` (None: every site) for the duration of the block;
        changes committed after entry are delivered. UNAVAILABLE when the feed cannot listen to PostgreSQL
        within ``ready_timeout_s``."""
        return self.watch(partial(_at_sites, site_ids), ready_timeout_s=ready_timeout_s)


def _parse(data: Any) -> Change:
    return Change(str(data["alert_id"]), str(data["site_id"]), str(data["change"]))


def _alert_id(change: Change) -> str:
    return change.alert_id


def _update(change: Change, alert: Alert) -> Update:
    return Update(change.change, alert)


def _at_sites(site_ids: frozenset[str] | None, change: Change, _got: Update) -> bool:
    # The notification's site, so a watcher's scope is judged on what was committed with the change.
    return site_ids is None or change.site_id in site_ids
