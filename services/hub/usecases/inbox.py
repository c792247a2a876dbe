"""The inbox's use cases: list and read items and incidents within the caller's view, acknowledge and
resolve, and watch.

Acknowledging. An item whose domain keeps its own lifecycle (a safety alert) is acknowledged in that
domain with the hub's service token, after the hub has checked its own caller (the item visible, OPEN);
the inbox then follows the domain's event. The RPC waits briefly (``ACK_FOLLOW_S``, within the caller's
deadline) for that event to arrive and answers the item as it is then: ACKNOWLEDGED when safety's event
came in time, else still OPEN (the acknowledgement is done; the inbox catches up). Any other item is
acknowledged here: the state change and InboxItemAcknowledged in one transaction; the projection applies
the same event again idempotently (and alone on a rebuild). A repeated step is FAILED_PRECONDITION.

Visibility: the entities family's rule (``visible`` / ``visible_keys``) on the item's subject; an item
outside the caller's view answers NOT_FOUND.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.hub.domain.inbox import (
    LIFECYCLE_IN_DOMAIN,
    AcknowledgeItem,
    Action,
    GetItem,
    InboxFilter,
    InboxItem,
    Incident,
    ItemAction,
    ItemChange,
    ItemStatus,
    ListIncidents,
    ListItems,
    Occurrence,
    ResolveItem,
)
from services.hub.mapping import inbox as mapping
from services.hub.usecases.common import HubContext, HubTx
from services.hub.usecases.inbox_feed import CLOSED, RESYNC, InboxFeed, Update
from services.platform import deadlines
from services.platform.errors import FailedPreconditionError, NotFoundError, UnavailableError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["ACK_FOLLOW_S", "MAX_OPEN_SENT", "InboxUseCases", "ItemView", "Scopes"]

log = get_logger()

Scopes = Mapping[str, frozenset[str]] | None
# How long an acknowledgement made in safety waits for the inbox to follow safety's event.
ACK_FOLLOW_S = 2.0
_FOLLOW_POLL_S = 0.1
# A watcher is sent at most this many open items at the start (and after falling behind), newest first.
MAX_OPEN_SENT = 1000
_OPEN = frozenset({ItemStatus.OPEN, ItemStatus.ACKNOWLEDGED})


@dataclass(frozen=True, slots=True)
class ItemView:
    item: InboxItem
    occurrences: list[Occurrence]
    incident: Incident | None


async def _nothing() -> None:
    return None


class InboxUseCases:
    def __init__(self, ctx: HubContext, feed: InboxFeed | None = None) -> None:
        self._ctx = ctx
        self._uow = ctx.uow
        self._feed = feed or InboxFeed(
            ctx.listen, load=self._load_changed, queue_size=ctx.config.watch_queue_size
        )
        if ctx.on_stop is not None:
            ctx.on_stop(self._feed.close)

    @property
    def feed(self) -> InboxFeed:
        return self._feed

    # --- reads ------------------------------------------------------------------------------------------

    def list_items(self, command: ListItems, scopes: Scopes) -> tuple[list[InboxItem], str]:
        flt = command.check()
        page = page_of(command.page_size, command.page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            subjects = tx.repo.visible_keys(scopes)
            rows = tx.repo.list_inbox_items(
                flt, (after[0], after[1]) if after else None, page.size + 1, subjects
            )
        return paginate(rows, page, lambda i: (i.opened_at, i.item_id))

    def get_item(self, command: GetItem, scopes: Scopes) -> ItemView:
        command.check()
        with self._uow.transaction() as tx:
            item = self._visible_item(tx, command.item_id, scopes)
            occurrences = tx.repo.inbox_occurrences(item.item_id)
            incident = tx.repo.inbox_incident(item.incident_id) if item.incident_id else None
        return ItemView(item, occurrences, incident)

    def list_incidents(self, command: ListIncidents, scopes: Scopes) -> tuple[list[Incident], str]:
        command.check()
        page = page_of(command.page_size, command.page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            subjects = tx.repo.visible_keys(scopes)
            rows = tx.repo.list_inbox_incidents(
                command.towns,
                start=command.start,
                end=command.end,
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
                subjects=subjects,
            )
            if subjects is not None:
                # A scoped caller sees the incident's items it may see, no others.
                shown = tx.repo.inbox_items_by_ids([i for n in rows for i in n.item_ids])
                rows = [
                    _only(n, {i for i in n.item_ids if i in shown and _key(shown[i]) in subjects})
                    for n in rows
                ]
        return paginate(rows, page, lambda n: (n.opened_at, n.incident_id))

    def _visible_item(
        self, tx: HubTx, item_id: str, scopes: Scopes, *, for_update: bool = False
    ) -> InboxItem:
        item = tx.repo.inbox_item(item_id, for_update=for_update)
        if item is None or not tx.repo.visible(scopes, item.subject_kind, item.subject_id):
            raise NotFoundError("inbox item not found")
        return item

    # --- acknowledge and resolve ------------------------------------------------------------------------

    def acknowledge(self, command: AcknowledgeItem, scopes: Scopes) -> InboxItem:
        command.check()
        with self._uow.transaction() as tx:
            item = self._visible_item(tx, command.item_id, scopes, for_update=True)
            if item.status is not ItemStatus.OPEN:
                raise FailedPreconditionError(f"item_id: the item is {item.status.value}, not OPEN")
            if item.kind not in LIFECYCLE_IN_DOMAIN:
                at = self._ctx.clock()
                event_id = tx.publish(
                    key=item.item_id,
                    subject=item.item_id,
                    message=mapping.item_acknowledged(item.item_id, command.by, command.note, at),
                    topic=self._ctx.events_topic,
                    time=at,
                )
                # The same fact the projection records when the event comes back (same event id): the item
                # is computed from its facts either way, so a rebuild makes the same row.
                tx.repo.add_inbox_action(
                    item.item_id, ItemAction(event_id, Action.ACKNOWLEDGED, at, command.by)
                )
                tx.repo.refresh_inbox_item(item.item_id)
                tx.repo.notify_inbox_change(item.item_id, ItemChange.ACKNOWLEDGED.value)
                done = tx.repo.inbox_item(item.item_id)
                log.info("inbox_item_acknowledged", item_id=item.item_id, kind=item.kind.value)
                return done or item
            alert_ids = tx.repo.inbox_open_sources(item.item_id, item.kind)
        # The remote call runs outside any transaction: no row stays locked while safety answers.
        self._acknowledge_in_safety(item, alert_ids, command)
        return self._follow(item.item_id)

    def _acknowledge_in_safety(self, item: InboxItem, alert_ids: list[str], command: AcknowledgeItem) -> None:
        peer = self._ctx.peers.get("safety")
        if peer is None:
            raise UnavailableError("safety is not configured at the hub: its alerts cannot be acknowledged")
        note = f"via the hub by {command.by}" + (f": {command.note}" if command.note else "")
        for alert_id in alert_ids or [item.source_id]:
            # A stable request id: a retry of this acknowledgement is answered by safety, not refused (and
            # another caller's, with another note, is safety's to refuse as a repeated step).
            said = hashlib.sha256(f"{command.by}|{command.note}".encode()).hexdigest()[:12]
            request_id = f"hub:{item.item_id}:{alert_id}:{said}"[:128]
            peer.call(
                peer.stub.AcknowledgeAlert, mapping.safety_acknowledge(request_id, alert_id, note[:2000])
            )
        log.info("inbox_item_acknowledged_in_safety", item_id=item.item_id, alerts=len(alert_ids))

    def _follow(self, item_id: str) -> InboxItem:
        """The item once the inbox has followed the domain's event, or as it is after ACK_FOLLOW_S."""
        remaining = deadlines.remaining_s()
        wait_s = ACK_FOLLOW_S if remaining is None else max(0.0, min(ACK_FOLLOW_S, remaining - 0.5))
        until = time.monotonic() + wait_s
        while True:
            with self._uow.transaction() as tx:
                item = tx.repo.inbox_item(item_id)
            if item is None:
                raise NotFoundError("inbox item not found")
            if item.status is not ItemStatus.OPEN or time.monotonic() >= until:
                return item
            time.sleep(_FOLLOW_POLL_S)

    def resolve(self, command: ResolveItem, scopes: Scopes) -> InboxItem:
        command.check()
        with self._uow.transaction() as tx:
            item = self._visible_item(tx, command.item_id, scopes, for_update=True)
            if item.kind in LIFECYCLE_IN_DOMAIN:
                raise FailedPreconditionError(
                    f"item_id: a {item.domain} item is resolved in {item.domain}; the inbox follows its event"
                )
            if item.status is not ItemStatus.ACKNOWLEDGED:
                raise FailedPreconditionError(f"item_id: the item is {item.status.value}, not ACKNOWLEDGED")
            at = self._ctx.clock()
            event_id = tx.publish(
                key=item.item_id,
                subject=item.item_id,
                message=mapping.item_resolved(item.item_id, command.by, command.note, at),
                topic=self._ctx.events_topic,
                time=at,
            )
            tx.repo.add_inbox_action(item.item_id, ItemAction(event_id, Action.RESOLVED, at, command.by))
            tx.repo.refresh_inbox_item(item.item_id)
            tx.repo.notify_inbox_change(item.item_id, ItemChange.RESOLVED.value)
            done = tx.repo.inbox_item(item.item_id)
        log.info("inbox_item_resolved", item_id=item.item_id)
        return done or item

    # --- watch ------------------------------------------------------------------------------------------

    async def watch(
        self,
        command: ListItems,
        scopes: Scopes,
        *,
        include_open: bool,
        route_escalated: bool = False,
        on_live: Callable[[], Awaitable[None]] = _nothing,
    ) -> AsyncIterator[InboxItem]:
        """Items matching the filter as they change, until the client goes or the service stops. Runs on the
        server's event loop; reads go to worker threads. Subscribes before reading the open items, so
        nothing committed in between is missed (it may come twice: a watcher keys by item id). With
        ``route_escalated`` (a district operator) an escalated item comes whatever the filter says."""
        flt = command.check()

        def wants(item: InboxItem) -> bool:
            return flt.matches(item) or (route_escalated and item.escalated)

        async with self._feed.subscribe(wants) as subscription:
            await on_live()
            if include_open:
                for item in await asyncio.to_thread(self._open_items, flt, scopes):
                    yield item
            while True:
                got = await subscription.get()
                if got is CLOSED:
                    return
                if got is RESYNC:
                    for item in await asyncio.to_thread(self._open_items, flt, scopes):
                        yield item
                    continue
                if isinstance(got, Update) and (
                    scopes is None or await asyncio.to_thread(self._sees, scopes, got.item)
                ):
                    yield got.item

    def _open_items(self, flt: InboxFilter, scopes: Scopes) -> list[InboxItem]:
        statuses = flt.statuses & _OPEN if flt.statuses else _OPEN
        if not statuses:
            return []
        only_open = InboxFilter(flt.towns, flt.min_severity, flt.domains, statuses)
        with self._uow.transaction() as tx:
            return tx.repo.list_inbox_items(only_open, None, MAX_OPEN_SENT, tx.repo.visible_keys(scopes))

    def _sees(self, scopes: Scopes, item: InboxItem) -> bool:
        with self._uow.transaction() as tx:
            return tx.repo.visible(scopes, item.subject_kind, item.subject_id)

    def _load_changed(self, item_ids: Sequence[str]) -> dict[str, InboxItem]:
        with self._uow.transaction() as tx:
            return tx.repo.inbox_items_by_ids(item_ids)


def _key(item: InboxItem) -> tuple[str, str]:
    return (item.subject_kind, item.subject_id)


def _only(incident: Incident, shown: set[str]) -> Incident:
    return Incident(
        incident.incident_id,
        tuple(i for i in incident.item_ids if i in shown),
        incident.reasons,
        incident.opened_at,
        incident.severity,
        incident.town,
    )
