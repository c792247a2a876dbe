"""What the hub's projections need from storage, as a Protocol: the SQL repository (:class:`HubRepository`,
the live consumer's) and the rebuild's in-memory tables (:class:`repository.memory.MemoryHub`) both
provide it, and mypy checks that each does, method for method."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from google.protobuf.message import Message

from services.hub.domain.dashboard import Fact, Metric
from services.hub.domain.entities import EntityRow, LinkChange, LinkRow, Mention
from services.hub.domain.inbox import (
    InboxItem,
    Incident,
    ItemAction,
    ItemKind,
    Occurrence,
    Severity,
    SourceSignal,
)
from services.platform.outbox import OutboxWriter

__all__ = ["ProjectionStore"]


class ProjectionStore(Protocol):
    # --- entities -------------------------------------------------------------------------------------
    def entity(self, kind: str, id_: str) -> EntityRow | None: ...

    def entities(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], EntityRow]: ...

    def links_of(self, kind: str, id_: str, *, names: bool = True) -> list[LinkRow]: ...

    def applicants_of(self, application_no: str) -> list[str]: ...

    def upsert_mention(self, mention: Mention, domain: str, at: datetime) -> None: ...

    def change_link(self, change: LinkChange, domain: str, at: datetime) -> None: ...

    def update_part(
        self,
        kind: str,
        id_: str,
        domain: str,
        at: datetime,
        step: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> None: ...

    def add_timeline(
        self, kind: str, id_: str, *, event_id: str, at: datetime, domain: str, ce_type: str, summary: str
    ) -> None: ...

    # --- inbox ----------------------------------------------------------------------------------------
    def publish_inbox_event(
        self, outbox: OutboxWriter, *, topic: str, key: str, message: Message, event_id: str, time: datetime
    ) -> None: ...

    def notify_inbox_change(self, item_id: str, change: str) -> None: ...

    def inbox_item(self, item_id: str, *, for_update: bool = False) -> InboxItem | None: ...

    def inbox_items_by_ids(self, item_ids: Sequence[str]) -> dict[str, InboxItem]: ...

    def inbox_item_exists(self, item_id: str) -> bool: ...

    def insert_inbox_item(self, item: InboxItem) -> None: ...

    def items_opened_between(self, start: datetime, end: datetime) -> list[InboxItem]: ...

    def inbox_items_at(self, subjects: Sequence[tuple[str, str]]) -> list[str]: ...

    def add_inbox_occurrence(self, item_id: str, occurrence: Occurrence, severity: Severity) -> bool: ...

    def add_inbox_source_signal(self, kind: ItemKind, signal: SourceSignal) -> bool: ...

    def inbox_items_with_source(self, kind: ItemKind, source_id: str) -> list[str]: ...

    def add_inbox_action(self, item_id: str, action: ItemAction) -> bool: ...

    def refresh_inbox_item(self, item_id: str) -> tuple[InboxItem | None, InboxItem | None]: ...

    def record_inbox_escalation(
        self, item_id: str, round_: int, severity: Severity, at: datetime
    ) -> bool: ...

    def put_inbox_incident(
        self, incident_id: str, opened_at: datetime, severity: Severity, reasons: Sequence[str]
    ) -> None: ...

    def set_inbox_incident_of(self, item_ids: Sequence[str], incident_id: str) -> None: ...

    def drop_empty_inbox_incidents(self, incident_ids: Sequence[str]) -> None: ...

    def inbox_incident(self, incident_id: str) -> Incident | None: ...

    # --- dashboard ------------------------------------------------------------------------------------
    def record_fact(self, fact: Fact) -> None: ...

    def dashboard_fact(self, metric: Metric, key: str) -> Fact | None: ...

    def record_device_hour(
        self,
        *,
        device_id: str,
        hour_started_at: datetime,
        day: date,
        credit_code: str,
        availability: float,
        oee: float,
        at: datetime,
        event_id: str,
    ) -> None: ...
