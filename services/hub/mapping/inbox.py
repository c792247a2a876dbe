"""The inbox's proto <-> domain translation: what each domain event means to the inbox (an item raised,
one of its sources acknowledged or cleared), the hub's own inbox events, and the RPC messages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cityhub.commerce.v1 import commerce_pb2
from cityhub.commerce.v1 import events_pb2 as commerce_events
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import events_pb2 as govservice_events
from cityhub.hub.v1 import events_pb2 as hub_events
from cityhub.hub.v1 import hub_pb2
from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.safety.v1 import safety_pb2
from google.protobuf.message import Message

from services.hub.domain.inbox import (
    AcknowledgeItem,
    FilterInput,
    GetItem,
    InboxItem,
    Incident,
    ItemKind,
    ItemStatus,
    ListIncidents,
    ListItems,
    Occurrence,
    Raised,
    ResolveItem,
    Severity,
    SourceAcknowledged,
    SourceCleared,
    severity_of,
)
from services.platform.kafka import EventEnvelope
from services.platform.protoconv import EnumMap, datetime_of, optional_timestamp, time_range, to_timestamp

__all__ = [
    "HUB_INBOX_EVENTS",
    "ITEM_KIND",
    "ITEM_STATUS",
    "SEVERITY",
    "Signal",
    "acknowledge",
    "get_item",
    "incident_pb",
    "item_pb",
    "list_incidents",
    "list_items",
    "occurrence_pb",
    "resolve",
    "signal_of",
    "watch_filter",
]

SEVERITY = EnumMap(Severity, common_pb2.Severity, "SEVERITY")
ITEM_KIND = EnumMap(ItemKind, hub_pb2.ItemKind, "ITEM_KIND")
ITEM_STATUS = EnumMap(ItemStatus, hub_pb2.ItemStatus, "ITEM_STATUS")

Signal = Raised | SourceAcknowledged | SourceCleared

# The hub's own inbox events the projection applies (an acknowledgement, a resolution, an escalation).
HUB_INBOX_EVENTS = frozenset(
    {
        hub_events.InboxItemAcknowledged.DESCRIPTOR.full_name,
        hub_events.InboxItemResolved.DESCRIPTOR.full_name,
        hub_events.InboxItemEscalated.DESCRIPTOR.full_name,
    }
)


def _enum_name(wrapper: Any, number: int, prefix: str) -> str:
    try:
        name: str = wrapper.Name(number)
    except ValueError:
        return "unknown"
    return name.removeprefix(prefix + "_").lower().replace("_", " ")


def _at(message: Any, field: str, envelope: EventEnvelope) -> datetime:
    """The event's own time when it has one, else the CloudEvent's time."""
    try:
        return datetime_of(message, field) or envelope.time
    except ValueError:
        return envelope.time


# --- domain events → signals -------------------------------------------------------------------------


def _safety(message: Message, envelope: EventEnvelope) -> Signal | None:
    if isinstance(message, safety_events.AlertRaised):
        reasons = "; ".join(message.reasons[:3])
        trigger = _enum_name(safety_pb2.AlertTrigger, message.trigger, "ALERT_TRIGGER")
        return Raised(
            kind=ItemKind.SAFETY_ALERT,
            severity=_severity(ItemKind.SAFETY_ALERT, message.severity),
            subject_kind="SITE",
            subject_id=message.site_id,
            source_id=message.alert_id,
            at=_at(message, "raised_at", envelope),
            title="Safety alert",
            summary=f"alert raised ({trigger})" + (f": {reasons}" if reasons else ""),
        )
    if isinstance(message, safety_events.AlertUpdated):
        return Raised(
            kind=ItemKind.SAFETY_ALERT,
            severity=_severity(ItemKind.SAFETY_ALERT, message.severity),
            subject_kind="SITE",
            subject_id=message.site_id,
            source_id=message.alert_id,
            at=_at(message, "updated_at", envelope),
            title="Safety alert",
            summary=f"alert updated ({message.occurrences} occurrences)",
        )
    if isinstance(message, safety_events.AlertAcknowledged):
        return SourceAcknowledged(
            ItemKind.SAFETY_ALERT,
            message.alert_id,
            message.acknowledged_by,
            _at(message, "acknowledged_at", envelope),
        )
    if isinstance(message, safety_events.AlertResolved):
        return SourceCleared(ItemKind.SAFETY_ALERT, message.alert_id, _at(message, "resolved_at", envelope))
    return None


def _device_kind(kind: int) -> ItemKind:
    # Fault vs silence by the alert's kind; an unknown kind counts as a fault (the more serious reading).
    return ItemKind.DEVICE_SILENT if kind == industry_pb2.DEVICE_ALERT_KIND_OFFLINE else ItemKind.DEVICE_FAULT


def _industry(message: Message, envelope: EventEnvelope) -> Signal | None:
    if isinstance(message, industry_events.DeviceAlertRaised):
        kind = _device_kind(message.kind)
        what = "in fault" if kind is ItemKind.DEVICE_FAULT else "silent"
        return Raised(
            kind=kind,
            severity=_severity(kind, message.severity),
            subject_kind="ENTERPRISE",
            subject_id=message.credit_code,
            source_id=message.alert_id,
            at=_at(message, "raised_at", envelope),
            title="Device fault" if kind is ItemKind.DEVICE_FAULT else "Device silent",
            summary=f"device {message.device_id} {what}",
        )
    if isinstance(message, industry_events.DeviceAlertCleared):
        return SourceCleared(
            _device_kind(message.kind), message.alert_id, _at(message, "cleared_at", envelope)
        )
    return None


def _kitchen(message: Message, envelope: EventEnvelope) -> Signal | None:  # noqa: PLR0911 - one per event
    # Every kitchen event names its kitchen; none carries a severity (the kind's default applies).
    kitchen_id = str(getattr(message, "kitchen_id", ""))

    def raised(kind: ItemKind, source: str, at: datetime, title: str, summary: str) -> Raised:
        return Raised(kind, _severity(kind, 0), "KITCHEN", kitchen_id, source, at, title, summary)

    if isinstance(message, kitchen_events.ColdChainAlertRaised):
        unit = _enum_name(kitchen_pb2.EquipmentKind, message.kind, "EQUIPMENT_KIND")
        return raised(
            ItemKind.COLD_CHAIN,
            message.alert_id,
            _at(message, "raised_at", envelope),
            "Cold-chain alert",
            f"{unit} {message.equipment_id} out of range: {message.temperature_c:.1f} °C "
            f"(limit {message.limit_c:.1f} °C)",
        )
    if isinstance(message, kitchen_events.ColdChainAlertCleared):
        return SourceCleared(ItemKind.COLD_CHAIN, message.alert_id, _at(message, "cleared_at", envelope))
    if isinstance(message, kitchen_events.EquipmentOffline):
        unit = _enum_name(kitchen_pb2.EquipmentKind, message.kind, "EQUIPMENT_KIND")
        return raised(
            ItemKind.EQUIPMENT_OFFLINE,
            message.alert_id,
            _at(message, "at", envelope),
            "Equipment offline",
            f"{unit} {message.equipment_id} sent nothing",
        )
    if isinstance(message, kitchen_events.MorningCheckFailed):
        reasons = ", ".join(_enum_name(kitchen_pb2.BarReason, r, "BAR_REASON") for r in message.bar_reasons)
        # The staff member stays out of the summary (a token is still a person's).
        return raised(
            ItemKind.MORNING_CHECK_FAILED,
            message.alert_id or message.check_id,
            _at(message, "at", envelope),
            "Morning check failed",
            f"a staff member barred from the {message.shift_date} {message.shift} shift"
            + (f": {reasons}" if reasons else ""),
        )
    if isinstance(message, kitchen_events.ViolationOpened):
        what = _enum_name(kitchen_pb2.ViolationKind, message.kind, "VIOLATION_KIND")
        return raised(
            ItemKind.KITCHEN_VIOLATION,
            message.violation_id,
            _at(message, "opened_at", envelope),
            "Kitchen violation",
            f"violation captured: {what}",
        )
    if isinstance(message, kitchen_events.ViolationVerified):
        return SourceCleared(ItemKind.KITCHEN_VIOLATION, message.violation_id, _at(message, "at", envelope))
    if isinstance(message, kitchen_events.EquipmentViolationFound):
        what = _enum_name(kitchen_pb2.AlertKind, message.alert_kind, "ALERT_KIND")
        return raised(
            ItemKind.KITCHEN_VIOLATION,
            message.alert_id,
            _at(message, "at", envelope),
            "Kitchen violation",
            f"equipment {message.equipment_id}: {what}",
        )
    return None


def _commerce(message: Message, envelope: EventEnvelope) -> Signal | None:
    kind = ItemKind.SERVICE_REQUEST_OVERDUE
    if isinstance(message, commerce_events.ServiceRequestOverdue):
        service = _enum_name(commerce_pb2.ServiceType, message.type, "SERVICE_TYPE")
        return Raised(
            kind=kind,
            severity=_severity(kind, 0),
            subject_kind="CHAMBER",
            subject_id=message.chamber_id,
            source_id=message.service_request_id,
            at=_at(message, "at", envelope),
            title="Service request overdue",
            summary=f"{service} request {message.service_request_id} of {message.credit_code} overdue",
        )
    if isinstance(message, commerce_events.ServiceRequestResolved):
        return SourceCleared(kind, message.service_request_id, _at(message, "at", envelope))
    return None


def _govservice(message: Message, envelope: EventEnvelope) -> Signal | None:
    kind = ItemKind.APPLICATION_OVERDUE
    if isinstance(message, govservice_events.ApplicationOverdue):
        return Raised(
            kind=kind,
            severity=_severity(kind, 0),
            subject_kind="APPLICATION",
            subject_id=message.application_no,
            source_id=message.application_no,
            at=_at(message, "at", envelope),
            title="Application overdue",
            summary=f"item {message.item_code} past its due date {message.due_date}"
            f" at {message.handling_region}",
        )
    # Finished either way: the overdue item is closed by the domain.
    if isinstance(message, govservice_events.ApplicationCompleted | govservice_events.ApplicationRejected):
        return SourceCleared(kind, message.application_no, _at(message, "at", envelope))
    return None


def _severity(kind: ItemKind, number: int) -> Severity:
    return severity_of(kind, SEVERITY.from_proto(number))


_BY_DOMAIN: dict[str, Callable[[Message, EventEnvelope], Signal | None]] = {
    "safety": _safety,
    "industry": _industry,
    "kitchen": _kitchen,
    "commerce": _commerce,
    "govservice": _govservice,
}


_Reader = Callable[[Message, EventEnvelope], Signal | None]
# The reader of each message class, found from its full name once (a replay reads millions of events).
_READER_OF: dict[type[Message], _Reader | None] = {}


def _reader_of(message: Message) -> _Reader | None:
    try:
        return _READER_OF[type(message)]
    except KeyError:
        pass
    parts = message.DESCRIPTOR.full_name.split(".")
    reader = _BY_DOMAIN.get(parts[1]) if len(parts) > 2 else None
    _READER_OF[type(message)] = reader
    return reader


def signal_of(envelope: EventEnvelope, message: Message) -> Signal | None:
    """What a domain event means to the inbox, or None when nothing (most events)."""
    reader = _reader_of(message)
    return None if reader is None else reader(message, envelope)


# --- the hub's events --------------------------------------------------------------------------------


def item_opened(item: InboxItem) -> hub_events.InboxItemOpened:
    return hub_events.InboxItemOpened(item=item_pb(item))


def item_repeated(item_id: str, count: int, at: datetime) -> hub_events.InboxItemRepeated:
    return hub_events.InboxItemRepeated(item_id=item_id, occurrence_count=count, at=to_timestamp(at))


def item_acknowledged(item_id: str, by: str, note: str, at: datetime) -> hub_events.InboxItemAcknowledged:
    return hub_events.InboxItemAcknowledged(item_id=item_id, by=by, note=note, at=to_timestamp(at))


def item_resolved(item_id: str, by: str, note: str, at: datetime) -> hub_events.InboxItemResolved:
    return hub_events.InboxItemResolved(item_id=item_id, by=by, note=note, at=to_timestamp(at))


def item_escalated(
    item_id: str, severity: Severity, round_: int, at: datetime
) -> hub_events.InboxItemEscalated:
    return hub_events.InboxItemEscalated(
        item_id=item_id, severity=SEVERITY.to_proto(severity), round=round_, at=to_timestamp(at)
    )


def incident_formed(incident: Incident) -> hub_events.IncidentFormed:
    return hub_events.IncidentFormed(incident=incident_pb(incident))


def hub_event_time(message: Message, envelope: EventEnvelope) -> datetime:
    return _at(message, "at", envelope)


# --- RPC messages ------------------------------------------------------------------------------------


def _entity_kind(kind: str) -> common_pb2.EntityKind.ValueType:
    try:
        return common_pb2.EntityKind.Value(f"ENTITY_KIND_{kind}")
    except ValueError:
        return common_pb2.ENTITY_KIND_UNSPECIFIED


def item_pb(item: InboxItem) -> hub_pb2.InboxItem:
    return hub_pb2.InboxItem(
        item_id=item.item_id,
        kind=ITEM_KIND.to_proto(item.kind),
        severity=SEVERITY.to_proto(item.severity),
        effective_severity=SEVERITY.to_proto(item.effective_severity),
        status=ITEM_STATUS.to_proto(item.status),
        subject=common_pb2.EntityRef(
            kind=_entity_kind(item.subject_kind), id=item.subject_id, domain=item.domain
        ),
        subject_name=item.subject_name,
        town=item.town,
        domain=item.domain,
        title=item.title,
        opened_at=to_timestamp(item.opened_at),
        last_occurred_at=to_timestamp(item.last_occurred_at),
        occurrence_count=item.occurrence_count,
        escalated=item.escalated,
        incident_id=item.incident_id,
        acknowledged_at=optional_timestamp(item.acknowledged_at),
        acknowledged_by=item.acknowledged_by,
        resolved_at=optional_timestamp(item.resolved_at),
        source_id=item.source_id,
    )


def occurrence_pb(occurrence: Occurrence) -> hub_pb2.Occurrence:
    return hub_pb2.Occurrence(
        at=to_timestamp(occurrence.at), event_id=occurrence.event_id, summary=occurrence.summary
    )


def incident_pb(incident: Incident) -> hub_pb2.Incident:
    return hub_pb2.Incident(
        incident_id=incident.incident_id,
        item_ids=list(incident.item_ids),
        reasons=list(incident.reasons),
        opened_at=to_timestamp(incident.opened_at),
        severity=SEVERITY.to_proto(incident.severity),
        town=incident.town,
    )


def _filter(request: hub_pb2.InboxFilter) -> FilterInput:
    return FilterInput(
        towns=tuple(request.towns),
        min_severity=SEVERITY.from_proto(request.min_severity),
        min_severity_set=request.min_severity != 0,
        domains=tuple(request.domains),
        statuses=tuple(ITEM_STATUS.from_proto(s) for s in request.statuses),
    )


def list_items(request: hub_pb2.ListInboxItemsRequest) -> ListItems:
    return ListItems(_filter(request.filter), request.page.page_size, request.page.page_token)


def watch_filter(request: hub_pb2.WatchInboxRequest) -> ListItems:
    return ListItems(_filter(request.filter))


def get_item(request: hub_pb2.GetInboxItemRequest) -> GetItem:
    return GetItem(request.item_id)


def acknowledge(request: hub_pb2.AcknowledgeInboxItemRequest, by: str) -> AcknowledgeItem:
    return AcknowledgeItem(request.item_id, request.note, by)


def resolve(request: hub_pb2.ResolveInboxItemRequest, by: str) -> ResolveItem:
    return ResolveItem(request.item_id, request.note, by)


def list_incidents(request: hub_pb2.ListIncidentsRequest) -> ListIncidents:
    start, end = time_range(request.period) if request.HasField("period") else (None, None)
    return ListIncidents(tuple(request.towns), start, end, request.page.page_size, request.page.page_token)


def safety_acknowledge(request_id: str, alert_id: str, note: str) -> safety_pb2.AcknowledgeAlertRequest:
    return safety_pb2.AcknowledgeAlertRequest(request_id=request_id, alert_id=alert_id, note=note)


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token, total_size=-1)


def list_items_response(items: Sequence[InboxItem], token: str) -> hub_pb2.ListInboxItemsResponse:
    return hub_pb2.ListInboxItemsResponse(items=[item_pb(i) for i in items], page=_page(token))


def get_item_response(
    item: InboxItem, occurrences: Sequence[Occurrence], incident: Incident | None
) -> hub_pb2.GetInboxItemResponse:
    return hub_pb2.GetInboxItemResponse(
        item=item_pb(item),
        occurrences=[occurrence_pb(o) for o in occurrences],
        incident=incident_pb(incident) if incident is not None else None,
    )


def acknowledge_response(item: InboxItem) -> hub_pb2.AcknowledgeInboxItemResponse:
    return hub_pb2.AcknowledgeInboxItemResponse(item=item_pb(item))


def resolve_response(item: InboxItem) -> hub_pb2.ResolveInboxItemResponse:
    return hub_pb2.ResolveInboxItemResponse(item=item_pb(item))


def watch_response(item: InboxItem) -> hub_pb2.WatchInboxResponse:
    return hub_pb2.WatchInboxResponse(item=item_pb(item))


def list_incidents_response(incidents: Sequence[Incident], token: str) -> hub_pb2.ListIncidentsResponse:
    return hub_pb2.ListIncidentsResponse(incidents=[incident_pb(n) for n in incidents], page=_page(token))
