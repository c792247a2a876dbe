"""The inbox projection: the domains' alert-like events into items (dedup by fixed buckets, occurrences,
the sources' lifecycle), the hub's own InboxItemAcknowledged/Resolved/Escalated, and correlation into
incidents. The rules are in domain/inbox.py; what each event means in mapping/inbox.py.

Order independence. Events of different topics and partitions interleave arbitrarily, so live consumption
and a replay see them in different orders; every row here is a function of the SET of events applied:

- every event is recorded as a fact (an occurrence, a source's signal, a hub action, an escalation round),
  whether or not the item it concerns is opened yet, and the item's row is recomputed from its facts
  (domain.inbox.item_state) — an acknowledgement before its alert, a resolution before the item, all end
  the same;
- the item an occurrence belongs to is its fixed dedup bucket (domain.inbox.bucket_start), not a window
  anchored at whichever occurrence arrived first;
- incidents are the connected components of correlated items (domain.inbox.may_correlate and a reason:
  same subject, a link, the distance), recomputed for the items an event touches — an item opened or
  changed, or an entity whose name, location or links the event (already applied by the entities
  projection, which runs first) may have changed — and for the members of their incidents, so a component
  that grows, merges or splits is rewritten. The id derives from the earliest member, the reasons are
  sorted.

Publishing. InboxItemOpened, InboxItemRepeated and IncidentFormed (when a component is formed or changes)
are published from here, in the consumer's transaction, through ``ctx.outbox``. A rebuild runs the
projections into a fresh schema with ``ctx.outbox = None``: nothing is published and no watcher is told.
Event ids derive from the item and what happened, so they are the same facts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from cityhub.hub.v1 import events_pb2 as hub_events
from google.protobuf.message import Message

from services.hub.domain.entities import INVERSE, EntityRow, LinkRow, Resolution
from services.hub.domain.inbox import (
    DOMAIN_OF,
    Action,
    InboxItem,
    ItemAction,
    ItemChange,
    ItemKind,
    ItemStatus,
    Occurrence,
    Raised,
    SourceAcknowledged,
    SourceCleared,
    SourceSignal,
    bucket_start,
    distance_m,
    distance_reason,
    escalated_severity,
    incident_key,
    latitude_band,
    link_reason,
    may_correlate,
    same_subject_reason,
)
from services.hub.mapping import inbox as mapping
from services.hub.repository.store import ProjectionStore
from services.hub.usecases.common import HubContext, derived_id
from services.platform.kafka import EventEnvelope
from services.platform.logs import get_logger

__all__ = ["event_uuid", "projector"]

log = get_logger()
_NAMESPACE = uuid.UUID("0b6c7a52-3f0e-4c55-9d1a-2a6f3e8c4d17")
_FORWARD = {inverse: relation for relation, inverse in INVERSE.items()}
_CHANGE_OF_STATUS = {
    ItemStatus.ACKNOWLEDGED: ItemChange.ACKNOWLEDGED,
    ItemStatus.RESOLVED: ItemChange.RESOLVED,
    ItemStatus.OPEN: ItemChange.OPENED,
}
Key = tuple[str, str]
# Windows with more items than this are indexed for correlation (_Window); a handful is as cheap tried whole.
# Measured on the benchmark's dense tail (bench/results/hub-20261202T14*.json), the catch-up applied 343
# events/s indexing every window, 222 from 64 items, 170 from 256: the index pays already in a moderately busy
# window; the differences on the sparse month-long stream were within the machine's noise that day.
_INDEX_FROM = 16
_MICROSECOND = timedelta(microseconds=1)


def event_uuid(*parts: str) -> str:
    """The id of a hub event derived from what it reports (the same fact, the same id)."""
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


class _Subjects:
    """The entities of items, read once per correlation run (names, locations, links)."""

    def __init__(self, repo: ProjectionStore) -> None:
        self._repo = repo
        self._entities: dict[Key, EntityRow | None] = {}
        self._links: dict[Key, dict[Key, LinkRow]] = {}

    def entity(self, key: Key) -> EntityRow | None:
        if key not in self._entities:
            self._entities[key] = self._repo.entity(*key)
        return self._entities[key]

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Read the entities of many items at once (a window's), not one statement each."""
        missing = sorted({key for key in keys if key not in self._entities})
        found = self._repo.entities(missing)
        for key in missing:
            self._entities[key] = found.get(key)

    def links(self, key: Key) -> dict[Key, LinkRow]:
        if key not in self._links:
            # links_of orders its rows: of two links between the same entities the last one read is kept,
            # the same every time.
            self._links[key] = {(link.kind, link.id): link for link in self._repo.links_of(*key)}
        return self._links[key]


class _Window:
    """A correlation window's items indexed by what can give two of them a reason (``_reason``): the same
    subject, a link between their subjects, or locations within the distance, whose latitudes then lie in
    the same or neighbouring bands (:func:`latitude_band`). Trying only those candidates finds the same
    reasons as trying every item of the window, without trying thousands in a busy one (an alert storm):
    ``_reason`` answers None for every other pair."""

    def __init__(self, items: list[InboxItem], subjects: _Subjects, distance: float) -> None:
        self._subjects = subjects
        self._distance = distance
        self._items = items
        self._order: dict[str, int] = {}
        self._by_subject: dict[Key, list[InboxItem]] = {}
        self._by_band: dict[int, list[InboxItem]] = {}
        # A quiet window is cheaper tried whole than indexed: the index reads every item's entity, where
        # trying reads only those of the items that may correlate (may_correlate comes first).
        self._indexed = len(items) > _INDEX_FROM
        if not self._indexed:
            return
        self._order = {item.item_id: n for n, item in enumerate(items)}
        subjects.prefetch((item.subject_kind, item.subject_id) for item in items)
        for item in items:
            key = (item.subject_kind, item.subject_id)
            self._by_subject.setdefault(key, []).append(item)
            band = self._band(key)
            if band is not None:
                self._by_band.setdefault(band, []).append(item)

    def _band(self, key: Key) -> int | None:
        entity = self._subjects.entity(key)
        if entity is None or entity.latitude is None or entity.longitude is None:
            return None
        return latitude_band(entity.latitude, self._distance)

    def candidates(self, item: InboxItem) -> list[InboxItem]:
        """The window's items that may have a reason with ``item``, in the window's order."""
        if not self._indexed:
            return self._items
        key = (item.subject_kind, item.subject_id)
        found = {other.item_id: other for other in self._by_subject.get(key, ())}
        for linked in self._subjects.links(key):
            found.update((other.item_id, other) for other in self._by_subject.get(linked, ()))
        band = self._band(key)
        if band is not None:
            for near in (band - 1, band, band + 1):
                found.update((other.item_id, other) for other in self._by_band.get(near, ()))
        return sorted(found.values(), key=lambda other: self._order[other.item_id])


class _InboxProjection:
    def __init__(self, ctx: HubContext) -> None:
        self._ctx = ctx
        self._window = ctx.config.dedup_window
        self._correlation_window = ctx.config.correlation_window
        self._distance = ctx.config.correlation_distance_m

    # --- dispatch ---------------------------------------------------------------------------------------

    def __call__(
        self, repo: ProjectionStore, envelope: EventEnvelope, message: Message, found: Resolution | None
    ) -> None:
        """``found``: what the event resolved to for the entities (None: no domain's event)."""
        if envelope.type in mapping.HUB_INBOX_EVENTS:
            self._hub_event(repo, envelope.id, message, mapping.hub_event_time(message, envelope))
            return
        touched: set[str] = set()
        signal = mapping.signal_of(envelope, message)
        if isinstance(signal, Raised):
            if signal.subject_id:
                touched |= self._raised(repo, envelope.id, signal)
        elif isinstance(signal, SourceAcknowledged):
            touched |= self._source_signal(
                repo,
                signal.kind,
                SourceSignal(signal.source_id, Action.ACKNOWLEDGED, signal.at, signal.by, envelope.id),
            )
        elif isinstance(signal, SourceCleared):
            touched |= self._source_signal(
                repo, signal.kind, SourceSignal(signal.source_id, Action.CLEARED, signal.at, "", envelope.id)
            )
        touched |= self._items_at_entities_changed_by(repo, found)
        if touched:
            self._correlate(repo, touched, envelope.id)

    # --- publishing (never during a rebuild) ------------------------------------------------------------

    @property
    def _live(self) -> bool:
        return self._ctx.outbox is not None

    def _publish(
        self, repo: ProjectionStore, key: str, message: Message, event_id: str, at: datetime
    ) -> None:
        if self._ctx.outbox is not None:
            repo.publish_inbox_event(
                self._ctx.outbox,
                topic=self._ctx.events_topic,
                key=key,
                message=message,
                event_id=event_id,
                time=at,
            )

    def _notify(self, repo: ProjectionStore, item_id: str, change: ItemChange) -> None:
        if self._live:
            repo.notify_inbox_change(item_id, change.value)

    def _refresh(self, repo: ProjectionStore, item_id: str) -> InboxItem | None:
        """Recompute the item from its facts and tell the watchers what changed."""
        before, after = repo.refresh_inbox_item(item_id)
        if before is None or after is None:
            return after
        if after.status is not before.status:
            self._notify(repo, item_id, _CHANGE_OF_STATUS[after.status])
        elif after.escalation_round != before.escalation_round or after.escalated != before.escalated:
            self._notify(repo, item_id, ItemChange.ESCALATED)
        return after

    # --- a domain raised something ----------------------------------------------------------------------

    def _raised(self, repo: ProjectionStore, event_id: str, raised: Raised) -> set[str]:
        # Fixed buckets, not a window anchored at the first arrival (domain/inbox.py says why).
        bucket = bucket_start(raised.at, self._window)
        item_id = derived_id(
            "itm", raised.subject_kind, raised.subject_id, raised.kind.value, bucket.isoformat()
        )
        opened = not repo.inbox_item_exists(item_id)
        if opened:
            repo.insert_inbox_item(
                InboxItem(
                    item_id=item_id,
                    kind=raised.kind,
                    severity=raised.severity,
                    effective_severity=raised.severity,
                    status=ItemStatus.OPEN,
                    subject_kind=raised.subject_kind,
                    subject_id=raised.subject_id,
                    domain=DOMAIN_OF[raised.kind],
                    title=raised.title,
                    opened_at=raised.at,
                    last_occurred_at=raised.at,
                    occurrence_count=1,
                    source_id=raised.source_id,
                )
            )
        occurrence = Occurrence(event_id, raised.at, raised.summary, raised.source_id)
        if not repo.add_inbox_occurrence(item_id, occurrence, raised.severity):
            return set()  # a replayed event: nothing new
        item = self._refresh(repo, item_id)
        if item is None:
            return set()
        if opened:
            self._publish(repo, item_id, mapping.item_opened(item), event_uuid("opened", item_id), raised.at)
            self._notify(repo, item_id, ItemChange.OPENED)
        else:
            self._publish(
                repo,
                item_id,
                mapping.item_repeated(item_id, item.occurrence_count, raised.at),
                event_uuid("repeated", item_id, event_id),
                raised.at,
            )
            self._notify(repo, item_id, ItemChange.REPEATED)
        return {item_id}

    # --- the domain moved a source on -------------------------------------------------------------------

    def _source_signal(self, repo: ProjectionStore, kind: ItemKind, signal: SourceSignal) -> set[str]:
        # Recorded whether or not an item holds the source yet: it applies when one does.
        if not repo.add_inbox_source_signal(kind, signal):
            return set()
        items = repo.inbox_items_with_source(kind, signal.source_id)
        for item_id in items:
            self._refresh(repo, item_id)
        return set(items)

    # --- the hub's own events ---------------------------------------------------------------------------

    def _hub_event(self, repo: ProjectionStore, event_id: str, message: Message, at: datetime) -> None:
        item_id = str(getattr(message, "item_id", ""))
        if not item_id:
            return
        if isinstance(message, hub_events.InboxItemAcknowledged):
            repo.add_inbox_action(item_id, ItemAction(event_id, Action.ACKNOWLEDGED, at, message.by))
        elif isinstance(message, hub_events.InboxItemResolved):
            repo.add_inbox_action(item_id, ItemAction(event_id, Action.RESOLVED, at, message.by))
        elif isinstance(message, hub_events.InboxItemEscalated):
            # The escalator recorded the round when it published it (live); a replay records it here. The
            # item (when opened) follows from the rounds recorded.
            item = repo.inbox_item(item_id)
            severity = mapping.SEVERITY.from_proto(message.severity) or (
                escalated_severity(item.severity) if item is not None else None
            )
            if severity is None:
                return
            repo.record_inbox_escalation(item_id, message.round, severity, at)
        else:
            return
        # Whether or not the use case applied it first: the item is recomputed from its facts (a no-op
        # then) and its incident looked at again (a resolution may end a correlation).
        if self._refresh(repo, item_id) is not None:
            self._correlate(repo, {item_id}, event_id)

    # --- entities that changed ---------------------------------------------------------------------------

    def _items_at_entities_changed_by(self, repo: ProjectionStore, found: Resolution | None) -> set[str]:
        """The items whose correlation the entities projection may just have changed: at an entity this
        event named, located or linked (a link added after the items opened joins them)."""
        if found is None:
            return set()
        keys: set[Key] = {(m.kind.value, m.id) for m in found.mentions if m.name or m.latitude is not None}
        for link in found.links:
            keys.add((link.from_kind.value, link.from_id))
            keys.add((link.to_kind.value, link.to_id))
        return set(repo.inbox_items_at(sorted(keys))) if keys else set()

    # --- correlation ------------------------------------------------------------------------------------

    def _correlate(self, repo: ProjectionStore, touched: Iterable[str], event_id: str) -> None:
        """Recompute the components of the touched items and of every item of their incidents now
        (``event_id``: the event that touched them)."""
        seeds = repo.inbox_items_by_ids(sorted(set(touched)))
        old_incidents = sorted({i.incident_id for i in seeds.values() if i.incident_id})
        for incident_id in old_incidents:
            incident = repo.inbox_incident(incident_id)
            if incident is not None:
                seeds.update(repo.inbox_items_by_ids([x for x in incident.item_ids if x not in seeds]))
        subjects = _Subjects(repo)
        windows: dict[datetime, _Window] = {}
        done: set[str] = set()
        stale = set(old_incidents)
        for item_id in sorted(seeds):
            if item_id in done:
                continue
            members, reasons = self._component(repo, subjects, windows, seeds[item_id])
            done |= set(members)
            # A member may come from an incident no seed was in (a component renamed by an earlier item
            # joining): that incident may be left empty too.
            stale |= {m.incident_id for m in members.values() if m.incident_id}
            self._write_component(repo, members, reasons, event_id)
        repo.drop_empty_inbox_incidents(sorted(stale))

    def _component(
        self,
        repo: ProjectionStore,
        subjects: _Subjects,
        windows: dict[datetime, _Window],
        start: InboxItem,
    ) -> tuple[dict[str, InboxItem], set[str]]:
        window = self._correlation_window
        members = {start.item_id: start}
        reasons: set[str] = set()
        frontier = [start]
        while frontier:
            item = frontier.pop()
            bucket = bucket_start(item.opened_at, window)
            # Only the item's own window can hold a correlated item (may_correlate), so every member of a
            # component shares it: its items are read once per correlation, not once per member (which
            # read a busy window's thousands of items again for each of its incident's members), and only
            # the candidates for a reason are tried.
            if bucket not in windows:
                items = repo.items_opened_between(bucket, bucket + window - _MICROSECOND)
                windows[bucket] = _Window(items, subjects, self._distance)
            for other in windows[bucket].candidates(item):
                if other.item_id == item.item_id or not may_correlate(item, other, window):
                    continue
                reason = self._reason(subjects, item, other)
                if reason is None:
                    continue
                reasons.add(reason)
                if other.item_id not in members:
                    members[other.item_id] = other
                    frontier.append(other)
        return members, reasons

    def _write_component(
        self, repo: ProjectionStore, members: dict[str, InboxItem], reasons: set[str], event_id: str
    ) -> None:
        ordered = sorted(members.values(), key=incident_key)
        if len(ordered) < 2:
            lone = ordered[0]
            if lone.incident_id:
                repo.set_inbox_incident_of([lone.item_id], "")
                self._notify(repo, lone.item_id, ItemChange.CORRELATED)
            return
        first = ordered[0]
        incident_id = derived_id("inc", first.item_id)
        severity = max((m.severity for m in ordered), key=lambda s: s.rank)
        shown = sorted(reasons)
        before = repo.inbox_incident(incident_id)
        item_ids = tuple(m.item_id for m in ordered)
        if (
            before is not None
            and before.item_ids == item_ids
            and list(before.reasons) == shown
            and before.severity is severity
            and before.opened_at == first.opened_at
        ):
            return
        repo.put_inbox_incident(incident_id, first.opened_at, severity, shown)
        moved = [m.item_id for m in ordered if m.incident_id != incident_id]
        repo.set_inbox_incident_of(moved, incident_id)
        incident = repo.inbox_incident(incident_id)
        if incident is not None:
            self._publish(
                repo,
                incident_id,
                mapping.incident_formed(incident),
                # A component may come back to an earlier shape (split, then joined again): the event that
                # changed it makes the fact unique (each event is applied once, each incident written once).
                event_uuid("incident", incident_id, event_id),
                max(m.opened_at for m in ordered),
            )
        for item_id in moved:
            self._notify(repo, item_id, ItemChange.CORRELATED)
        if self._live:  # news when it happens; a rebuild forming every past incident again is not
            log.info("inbox_incident_formed", incident_id=incident_id, items=len(ordered))

    def _reason(self, subjects: _Subjects, a: InboxItem, b: InboxItem) -> str | None:
        """Why two items belong together: the same subject, a link, or the distance — read in one
        direction (the smaller item id first), so the text is the same whichever item asks."""
        item, other = sorted((a, b), key=lambda i: i.item_id)
        mine_key: Key = (item.subject_kind, item.subject_id)
        theirs_key: Key = (other.subject_kind, other.subject_id)
        me = subjects.entity(mine_key)
        my_name = me.name if me is not None else ""
        if mine_key == theirs_key:
            return same_subject_reason(item.subject_kind, item.subject_id, my_name)
        link = subjects.links(mine_key).get(theirs_key)
        if link is not None:
            mine = (item.subject_kind, item.subject_id, my_name)
            theirs = (link.kind, link.id, link.name)
            if link.outgoing:
                return link_reason(link.relation, mine, theirs)
            return link_reason(_FORWARD.get(link.relation, link.relation), theirs, mine)
        there = subjects.entity(theirs_key)
        if me is None or me.latitude is None or me.longitude is None:
            return None
        if there is None or there.latitude is None or there.longitude is None:
            return None
        metres = distance_m(me.latitude, me.longitude, there.latitude, there.longitude)
        return distance_reason(metres) if metres <= self._distance else None


def projector(
    ctx: HubContext,
) -> Callable[[ProjectionStore, EventEnvelope, Message, Resolution | None], None]:
    return _InboxProjection(ctx)
