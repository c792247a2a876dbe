"""The inbox family's tables held in memory for the rebuild (repository/memory/__init__.py says why): the
same answers as :class:`services.hub.repository.inbox.InboxSql` for every method the inbox projection
calls, and the same rows at the end (hub_0002_inbox.sql as hub_0004 left it).

The SQL's reads are index probes; here each has its dict: items by id, by subject, by (kind, source) of
their occurrences, by incident, and by opened_at (a sorted index, the correlation's range read). Text is
ordered by Python's code-point order, the database's (builtin C.UTF-8: repository/memory/__init__.py).
Timestamps are kept in UTC, as the SQL hands them back (the server's and the sessions' TimeZone is UTC;
either way an aware datetime compares and is written by its instant)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sortedcontainers import SortedDict

from services.hub.domain.inbox import (
    Action,
    EscalationFact,
    InboxItem,
    Incident,
    ItemAction,
    ItemKind,
    ItemState,
    ItemStatus,
    Occurrence,
    OccurrenceFact,
    Severity,
    SourceSignal,
    item_state,
)
from services.hub.repository.memory.tables import Tables
from services.platform.outbox import OutboxWriter

__all__ = ["MemoryInbox"]

Key = tuple[str, str]

_ITEM_COLUMNS = (
    "item_id", "kind", "domain", "severity", "effective_severity", "status", "subject_kind", "subject_id",
    "title", "source_id", "opened_at", "last_occurred_at", "occurrence_count", "escalated",
    "escalation_round", "incident_id", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
)  # fmt: skip


def _utc(at: datetime) -> datetime:
    """The instant in UTC. A naive datetime has no instant (the SQL would read it in the session's time
    zone): refused rather than guessed."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a naive datetime ({at.isoformat()}) where a timestamptz is stored")
    return at if at.tzinfo is UTC else at.astimezone(UTC)


def _utc_or_none(at: datetime | None) -> datetime | None:
    return None if at is None else _utc(at)


class _Item:
    """One row of ``inbox_items`` (mutable while the replay runs; never handed out)."""

    __slots__ = (*_ITEM_COLUMNS, "read")

    def __init__(self, item: InboxItem) -> None:
        # The columns insert_inbox_item writes; the others take their defaults (the SQL's INSERT names
        # only these: the item's escalation, incident, acknowledgement and resolution are not written).
        self.item_id = item.item_id
        self.kind = ItemKind(item.kind)
        self.domain = item.domain
        self.severity = Severity(item.severity)
        self.effective_severity = Severity(item.effective_severity)
        self.status = ItemStatus(item.status)
        self.subject_kind = item.subject_kind
        self.subject_id = item.subject_id
        self.title = item.title
        self.source_id = item.source_id
        self.opened_at = _utc(item.opened_at)
        self.last_occurred_at = _utc(item.last_occurred_at)
        self.occurrence_count = item.occurrence_count
        self.escalated = False
        self.escalation_round = 0
        self.incident_id = ""
        self.acknowledged_at: datetime | None = None
        self.acknowledged_by = ""
        self.resolved_at: datetime | None = None
        self.resolved_by = ""
        # The InboxItem last read (frozen, every field immutable: safe to hand out again), None once the
        # row changes; still good while the subject's name and town are those it was read with.
        self.read: InboxItem | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.item_id, self.kind.value, self.domain, self.severity.value, self.effective_severity.value,
            self.status.value, self.subject_kind, self.subject_id, self.title, self.source_id,
            self.opened_at, self.last_occurred_at, self.occurrence_count, self.escalated,
            self.escalation_round, self.incident_id, self.acknowledged_at, self.acknowledged_by,
            self.resolved_at, self.resolved_by,
        )  # fmt: skip


class _Occurrence:
    __slots__ = ("at", "severity", "source_id", "summary")

    def __init__(self, at: datetime, summary: str, source_id: str, severity: Severity) -> None:
        self.at, self.summary, self.source_id, self.severity = at, summary, source_id, severity


class MemoryInbox:
    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, _Item] = {}
        # opened_at -> the ids of the items opened then: items_opened_between's range read, in
        # (opened_at, item_id) order (the ids of one instant sorted when read: ties are rare).
        self._opened: SortedDict[datetime, set[str]] = SortedDict()
        self._at_subject: dict[Key, set[str]] = {}
        self._in_incident: dict[str, set[str]] = {}
        self._occurrences: dict[str, dict[str, _Occurrence]] = {}  # item -> event id -> occurrence
        # (item kind, occurrence source id) -> the items with such an occurrence (inbox_items_with_source).
        self._with_source: dict[Key, set[str]] = {}
        # (kind, source id) -> (signal, event id) -> (at, by): inbox_source_signals by its primary key.
        self._signals: dict[Key, dict[tuple[Action, str], tuple[datetime, str]]] = {}
        self._actions: dict[str, dict[str, ItemAction]] = {}  # item -> event id -> action
        self._escalations: dict[str, dict[int, tuple[Severity, datetime]]] = {}  # item -> round -> ...
        self._incidents: dict[str, tuple[datetime, Severity, tuple[str, ...]]] = {}

    # --- provided by MemoryEntities (MemoryHub's first base) ------------------------------------------

    def subject_name_town(self, kind: str, id_: str) -> tuple[str, str]:
        """The subject's (name, town), '' for an unknown one (the SQL's LEFT JOIN and coalesce)."""
        raise NotImplementedError("MemoryInbox reads subjects through MemoryEntities (MemoryHub)")

    # --- publishing: never during a rebuild -----------------------------------------------------------

    # The SQL's signatures, so MemoryHub stands in for HubRepository; the arguments are not used.
    def publish_inbox_event(
        self,
        outbox: OutboxWriter,  # noqa: ARG002
        *,
        topic: str,  # noqa: ARG002
        key: str,  # noqa: ARG002
        message: Message,  # noqa: ARG002
        event_id: str,  # noqa: ARG002
        time: datetime,  # noqa: ARG002
    ) -> None:
        raise RuntimeError(
            "the in-memory hub is the rebuild's and a rebuild publishes nothing (ctx.outbox must be None)"
        )

    def notify_inbox_change(self, item_id: str, change: str) -> None:  # noqa: ARG002
        raise RuntimeError(
            "the in-memory hub is the rebuild's and a rebuild tells no watcher (ctx.outbox must be None)"
        )

    # --- items ----------------------------------------------------------------------------------------

    def _read(self, row: _Item) -> InboxItem:
        name, town = self.subject_name_town(row.subject_kind, row.subject_id)
        held = row.read
        if held is not None and held.subject_name == name and held.town == town:
            return held
        # Positional, in InboxItem's field order: the correlation reads every item in its window.
        row.read = InboxItem(
            row.item_id, row.kind, row.severity, row.effective_severity, row.status, row.subject_kind,
            row.subject_id, row.domain, row.title, row.opened_at, row.last_occurred_at, row.occurrence_count,
            row.source_id, row.escalated, row.escalation_round, row.incident_id, row.acknowledged_at,
            row.acknowledged_by, row.resolved_at, row.resolved_by, name, town,
        )  # fmt: skip
        return row.read

    def inbox_item(self, item_id: str, *, for_update: bool = False) -> InboxItem | None:  # noqa: ARG002
        # for_update: one replay, one writer; nothing to lock.
        row = self._items.get(item_id)
        return None if row is None else self._read(row)

    def inbox_items_by_ids(self, item_ids: Sequence[str]) -> dict[str, InboxItem]:
        found: dict[str, InboxItem] = {}
        for item_id in item_ids:
            row = self._items.get(item_id)
            if row is not None and item_id not in found:
                found[item_id] = self._read(row)
        return found

    def inbox_item_exists(self, item_id: str) -> bool:
        return item_id in self._items

    def insert_inbox_item(self, item: InboxItem) -> None:
        if item.item_id in self._items:
            # The SQL's primary key refuses it (the projection checks inbox_item_exists first).
            raise ValueError(f"inbox item {item.item_id} exists already")
        row = _Item(item)
        self._items[row.item_id] = row
        self._index_opened(row)
        self._at_subject.setdefault((row.subject_kind, row.subject_id), set()).add(row.item_id)

    def _index_opened(self, row: _Item) -> None:
        ids = self._opened.get(row.opened_at)
        if ids is None:
            self._opened[row.opened_at] = {row.item_id}
        else:
            ids.add(row.item_id)

    def _unindex_opened(self, row: _Item) -> None:
        ids = self._opened[row.opened_at]
        ids.discard(row.item_id)
        if not ids:
            del self._opened[row.opened_at]

    def set_inbox_item_state(self, item_id: str, state: ItemState) -> None:
        """The item's row as its facts decide (domain.inbox.item_state)."""
        row = self._items.get(item_id)
        if row is None:
            return  # UPDATE ... WHERE item_id = %s: no row, nothing
        row.read = None
        opened_at = _utc(state.opened_at)
        if opened_at != row.opened_at:
            self._unindex_opened(row)
            row.opened_at = opened_at
            self._index_opened(row)
        row.severity = Severity(state.severity)
        row.effective_severity = Severity(state.effective_severity)
        row.status = ItemStatus(state.status)
        row.last_occurred_at = _utc(state.last_occurred_at)
        row.occurrence_count = state.occurrence_count
        row.source_id = state.source_id
        row.escalated = state.escalated
        row.escalation_round = state.escalation_round
        row.acknowledged_at = _utc_or_none(state.acknowledged_at)
        row.acknowledged_by = state.acknowledged_by
        row.resolved_at = _utc_or_none(state.resolved_at)
        row.resolved_by = state.resolved_by

    def items_opened_between(self, start: datetime, end: datetime) -> list[InboxItem]:
        """Every item opened in [start, end] (BETWEEN: both ends included), oldest first (opened_at, then
        item id)."""
        found: list[InboxItem] = []
        start, end = _utc(start), _utc(end)
        if start > end:
            return found
        for at in self._opened.irange(start, end):
            ids = self._opened[at]
            found.extend(self._read(self._items[i]) for i in (sorted(ids) if len(ids) > 1 else ids))
        return found

    def inbox_items_at(self, subjects: Sequence[Key]) -> list[str]:
        """The ids of every item at one of ``subjects`` (kind, id), in id order."""
        found: set[str] = set()
        for subject in subjects:
            found |= self._at_subject.get(subject, set())
        return sorted(found)

    # --- occurrences and sources ----------------------------------------------------------------------

    def add_inbox_occurrence(self, item_id: str, occurrence: Occurrence, severity: Severity) -> bool:
        """False when this event is already an occurrence of the item (a replayed event)."""
        row = self._items.get(item_id)
        if row is None:
            # inbox_occurrences.item_id REFERENCES inbox_items: the SQL refuses it.
            raise ValueError(f"an occurrence of inbox item {item_id}, which does not exist")
        held = self._occurrences.setdefault(item_id, {})
        if occurrence.event_id in held:
            return False
        held[occurrence.event_id] = _Occurrence(
            _utc(occurrence.at), occurrence.summary, occurrence.source_id, Severity(severity)
        )
        self._with_source.setdefault((row.kind.value, occurrence.source_id), set()).add(item_id)
        return True

    def add_inbox_source_signal(self, kind: ItemKind, signal: SourceSignal) -> bool:
        """Record what the domain said about a source; False when this event is recorded already."""
        held = self._signals.setdefault((ItemKind(kind).value, signal.source_id), {})
        key = (Action(signal.signal), signal.event_id)
        if key in held:
            return False
        held[key] = (_utc(signal.at), signal.by)
        return True

    def inbox_items_with_source(self, kind: ItemKind, source_id: str) -> list[str]:
        """The items (of ``kind``) with an occurrence of the source, in id order."""
        return sorted(self._with_source.get((ItemKind(kind).value, source_id), ()))

    def add_inbox_action(self, item_id: str, action: ItemAction) -> bool:
        """Record the hub's acknowledgement or resolution of an item (opened yet or not)."""
        held = self._actions.setdefault(item_id, {})
        if action.event_id in held:
            return False
        held[action.event_id] = ItemAction(action.event_id, Action(action.action), _utc(action.at), action.by)
        return True

    def refresh_inbox_item(self, item_id: str) -> tuple[InboxItem | None, InboxItem | None]:
        """Recompute the item's row from its facts; (before, after), both None when no such item."""
        before = self.inbox_item(item_id)
        if before is None:
            return None, None
        facts = self.inbox_item_facts(item_id, before.kind)
        self.set_inbox_item_state(item_id, item_state(before.domain, *facts))
        return before, self.inbox_item(item_id)

    def inbox_item_facts(
        self, item_id: str, kind: ItemKind
    ) -> tuple[list[OccurrenceFact], list[SourceSignal], list[ItemAction], list[EscalationFact]]:
        """Everything recorded about an item, from which its state is computed (each list in no order the
        state depends on: item_state is a function of the sets)."""
        occurrences = [
            OccurrenceFact(event_id, o.at, o.severity, o.source_id)
            for event_id, o in self._occurrences.get(item_id, {}).items()
        ]
        sources = sorted({o.source_id for o in occurrences if o.source_id})
        kind_value = ItemKind(kind).value
        signals = [
            SourceSignal(source_id, signal, at, by, event_id)
            for source_id in sources
            for (signal, event_id), (at, by) in self._signals.get((kind_value, source_id), {}).items()
        ]
        actions = list(self._actions.get(item_id, {}).values())
        escalations = [
            EscalationFact(round_, severity, at)
            for round_, (severity, at) in self._escalations.get(item_id, {}).items()
        ]
        return occurrences, signals, actions, escalations

    # --- incidents ------------------------------------------------------------------------------------

    def put_inbox_incident(
        self, incident_id: str, opened_at: datetime, severity: Severity, reasons: Sequence[str]
    ) -> None:
        self._incidents[incident_id] = (_utc(opened_at), Severity(severity), tuple(reasons))

    def set_inbox_incident_of(self, item_ids: Sequence[str], incident_id: str) -> None:
        """Put the items in the incident ('' for none)."""
        for item_id in item_ids:
            row = self._items.get(item_id)
            if row is None or row.incident_id == incident_id:
                continue
            if row.incident_id:
                members = self._in_incident[row.incident_id]
                members.discard(item_id)
                if not members:
                    del self._in_incident[row.incident_id]
            row.incident_id = incident_id
            row.read = None
            if incident_id:
                self._in_incident.setdefault(incident_id, set()).add(item_id)

    def drop_empty_inbox_incidents(self, incident_ids: Sequence[str]) -> None:
        """Remove the incidents no item belongs to any more (their component split or was renamed)."""
        for incident_id in incident_ids:
            if incident_id in self._in_incident:
                continue
            if not incident_id and len(self._items) > sum(map(len, self._in_incident.values())):
                continue  # '' (no incident): every item in none "belongs" to it, as the SQL reads it
            self._incidents.pop(incident_id, None)

    def inbox_incident(self, incident_id: str) -> Incident | None:
        held = self._incidents.get(incident_id)
        if held is None:
            return None
        opened_at, severity, reasons = held
        members = sorted(
            (self._items[i] for i in self._in_incident.get(incident_id, ())),
            key=lambda row: (row.opened_at, row.item_id),
        )
        # An incident's town is its earliest item's subject's town.
        town = self.subject_name_town(members[0].subject_kind, members[0].subject_id)[1] if members else ""
        return Incident(
            incident_id=incident_id,
            item_ids=tuple(row.item_id for row in members),
            reasons=reasons,
            opened_at=opened_at,
            severity=severity,
            town=town,
        )

    # --- escalation -----------------------------------------------------------------------------------

    def record_inbox_escalation(self, item_id: str, round_: int, severity: Severity, at: datetime) -> bool:
        """False when that round is recorded already (published by another replica, or applied)."""
        held = self._escalations.setdefault(item_id, {})
        if round_ in held:
            return False
        held[round_] = (Severity(severity), _utc(at))
        return True

    # --- the rows at the end --------------------------------------------------------------------------

    def tables(self) -> Tables:
        items = (row.row() for row in self._items.values())
        occurrences = (
            (item_id, event_id, o.at, o.summary, o.source_id, o.severity.value)
            for item_id, held in self._occurrences.items()
            for event_id, o in held.items()
        )
        incidents = (
            (incident_id, opened_at, severity.value, list(reasons))
            for incident_id, (opened_at, severity, reasons) in self._incidents.items()
        )
        escalations = (
            (item_id, round_, severity.value, at)
            for item_id, held_rounds in self._escalations.items()
            for round_, (severity, at) in held_rounds.items()
        )
        signals = (
            (kind, source_id, signal.value, event_id, at, by)
            for (kind, source_id), held_signals in self._signals.items()
            for (signal, event_id), (at, by) in held_signals.items()
        )
        actions = (
            (item_id, event_id, a.action.value, a.at, a.by)
            for item_id, held_actions in self._actions.items()
            for event_id, a in held_actions.items()
        )
        return {
            "inbox_items": (_ITEM_COLUMNS, items),
            "inbox_occurrences": (
                ("item_id", "event_id", "at", "summary", "source_id", "severity"),
                occurrences,
            ),
            "inbox_incidents": (("incident_id", "opened_at", "severity", "reasons"), incidents),
            "inbox_escalations": (("item_id", "round", "severity", "published_at"), escalations),
            "inbox_source_signals": (("kind", "source_id", "signal", "event_id", "at", "by"), signals),
            "inbox_item_actions": (("item_id", "event_id", "action", "at", "by"), actions),
        }
