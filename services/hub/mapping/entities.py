"""The entities family's proto <-> domain translation: domain events into the rules' DomainEvent, the RPC
requests into commands, rows into Entity / Link / Part / TimelineEntry messages."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2
from cityhub.hub.v1 import hub_pb2
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import safety_pb2
from google.protobuf import any_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.hub.domain.entities import (
    DOMAIN_ORDER,
    DomainEvent,
    EntityKind,
    EntityRow,
    LinkRow,
    NearCommand,
    SearchCommand,
    TimelineCommand,
)
from services.platform.kafka import EventEnvelope
from services.platform.protoconv import to_timestamp

__all__ = [
    "KIND",
    "detail_call",
    "domain_event",
    "entity_pb",
    "kind_of",
    "link_pb",
    "near_command",
    "part_pb",
    "search_command",
    "timeline_command",
    "timeline_entry_pb",
]

_TYPE = re.compile(r"^cityhub\.([a-z]+)\.v1\.([A-Za-z0-9]+)$")
_PREFIXES: dict[str, str] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _enum_prefix(enum_name: str) -> str:
    """SiteKind -> "SITE_KIND_" (the proto style guide's value prefix)."""
    prefix = _PREFIXES.get(enum_name)
    if prefix is None:
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"
        _PREFIXES[enum_name] = prefix
    return prefix


def _value(fd: Any, value: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        enum_value = fd.enum_type.values_by_number.get(value)
        name = enum_value.name if enum_value else str(value)
        return name.removeprefix(_enum_prefix(fd.enum_type.name))
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == "google.protobuf.Timestamp":
            return value.ToDatetime(tzinfo=UTC) if (value.seconds or value.nanos) else None
        return fields_of(value)
    return value


def fields_of(message: Message) -> dict[str, Any]:
    """Every field of a message (defaults included): enums by short name, timestamps as datetimes (None
    when unset), nested messages as dicts, repeated fields as lists."""
    out: dict[str, Any] = {}
    for fd in message.DESCRIPTOR.fields:
        raw = getattr(message, fd.name)
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                out[fd.name] = dict(raw)
            else:
                out[fd.name] = [_value(fd, v) for v in raw]
        elif fd.type == FieldDescriptor.TYPE_MESSAGE and not message.HasField(fd.name):
            out[fd.name] = None
        else:
            out[fd.name] = _value(fd, raw)
    return out


def domain_event(envelope: EventEnvelope, message: Message) -> DomainEvent | None:
    """The event as the rules read it, or None when it is no domain's (the hub's own events)."""
    match = _TYPE.match(envelope.type)
    if match is None or match.group(1) not in DOMAIN_ORDER:
        return None
    at = envelope.time if envelope.time.tzinfo else envelope.time.replace(tzinfo=UTC)
    return DomainEvent(
        domain=match.group(1),
        name=match.group(2),
        ce_type=envelope.type,
        event_id=envelope.id,
        at=at,
        fields=fields_of(message),
    )


# ---------------------------------------------------------------------------------------------------
# Requests

_KIND_BY_NUMBER: Mapping[int, EntityKind] = {
    common_pb2.ENTITY_KIND_ENTERPRISE: EntityKind.ENTERPRISE,
    common_pb2.ENTITY_KIND_SITE: EntityKind.SITE,
    common_pb2.ENTITY_KIND_KITCHEN: EntityKind.KITCHEN,
    common_pb2.ENTITY_KIND_PARK: EntityKind.PARK,
    common_pb2.ENTITY_KIND_REGION: EntityKind.REGION,
    common_pb2.ENTITY_KIND_DEVICE: EntityKind.DEVICE,
    common_pb2.ENTITY_KIND_CHAMBER: EntityKind.CHAMBER,
    common_pb2.ENTITY_KIND_PERSON: EntityKind.PERSON,
    common_pb2.ENTITY_KIND_APPLICATION: EntityKind.APPLICATION,
}
KIND: Mapping[str, int] = {kind.value: number for number, kind in _KIND_BY_NUMBER.items()}


def kind_of(number: int) -> EntityKind | None:
    return _KIND_BY_NUMBER.get(number)


def _kinds(numbers: Sequence[int], path: str, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    found: list[str] = []
    for i, number in enumerate(numbers):
        kind = kind_of(number)
        if kind is None:
            problems.append((f"{path}[{i}]", "must be a known entity kind"))
        else:
            found.append(kind.value)
    return tuple(dict.fromkeys(found))


def ref_of(ref: common_pb2.EntityRef, path: str, problems: list[tuple[str, str]]) -> tuple[str, str]:
    kind = kind_of(ref.kind)
    if kind is None:
        problems.append((f"{path}.kind", "must be a known entity kind"))
    if not ref.id.strip():
        problems.append((f"{path}.id", "is required"))
    elif len(ref.id) > 100:
        problems.append((f"{path}.id", "must be at most 100 characters"))
    return (kind.value if kind else "", ref.id.strip())


def search_command(request: hub_pb2.SearchEntitiesRequest) -> SearchCommand:
    problems: list[tuple[str, str]] = []
    kinds = _kinds(request.kinds, "kinds", problems)
    return SearchCommand(
        query=request.query,
        kinds=kinds,
        town=request.town.strip(),
        page_size=request.page.page_size,
        page_token=request.page.page_token,
        problems=tuple(problems),
    )


def near_command(request: hub_pb2.ListEntitiesNearRequest) -> NearCommand:
    problems: list[tuple[str, str]] = []
    kinds = _kinds(request.kinds, "kinds", problems)
    return NearCommand(
        latitude=request.center.latitude,
        longitude=request.center.longitude,
        radius_m=request.radius_meters,
        kinds=kinds,
        limit=request.limit,
        has_center=request.HasField("center"),
        problems=tuple(problems),
    )


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def timeline_command(request: hub_pb2.GetTimelineRequest) -> TimelineCommand:
    problems: list[tuple[str, str]] = []
    kind, id_ = ref_of(request.ref, "ref", problems)
    start = end = None
    if request.HasField("period"):
        start = _time(request.period, "start_time")
        end = _time(request.period, "end_time")
    return TimelineCommand(
        kind=kind,
        id=id_,
        domains=tuple(request.domains),
        kinds=tuple(request.kinds),
        start=start,
        end=end,
        page_size=request.page.page_size,
        page_token=request.page.page_token,
        problems=tuple(problems),
    )


# ---------------------------------------------------------------------------------------------------
# Responses


def ref_pb(kind: str, id_: str, domain: str = "") -> common_pb2.EntityRef:
    return common_pb2.EntityRef(kind=KIND.get(kind, 0), id=id_, domain=domain)  # type: ignore[arg-type]


def entity_pb(row: EntityRow) -> hub_pb2.Entity:
    entity = hub_pb2.Entity(
        ref=ref_pb(row.kind, row.id, row.owner_domain),
        name=row.name,
        town=row.town,
        division_code=row.division_code,
        domains=list(row.domains),
        first_seen_at=to_timestamp(row.first_seen_at),
    )
    if row.latitude is not None and row.longitude is not None:
        entity.location.CopyFrom(common_pb2.GeoPoint(latitude=row.latitude, longitude=row.longitude))
    return entity


def link_pb(link: LinkRow) -> hub_pb2.Link:
    return hub_pb2.Link(
        to=ref_pb(link.kind, link.id), relation=link.relation, domain=link.domain, to_name=link.name
    )


def part_pb(
    domain: str,
    *,
    status: str,
    facts: Sequence[tuple[str, str]] = (),
    last_event_at: datetime | None = None,
    freshness_seconds: int = 0,
    detail: Message | None = None,
    problem: str = "",
) -> hub_pb2.Part:
    part = hub_pb2.Part(
        domain=domain,
        status=getattr(hub_pb2, f"PART_STATUS_{status}"),
        facts=[hub_pb2.Fact(name=n, value=v) for n, v in facts],
        freshness_seconds=freshness_seconds,
        problem=problem,
    )
    if last_event_at is not None:
        part.last_event_at.CopyFrom(to_timestamp(last_event_at))
    if detail is not None:
        packed = any_pb2.Any()
        packed.Pack(detail)
        part.detail.CopyFrom(packed)
    return part


def timeline_entry_pb(
    at: datetime, domain: str, kind: str, summary: str, event_id: str
) -> hub_pb2.TimelineEntry:
    return hub_pb2.TimelineEntry(
        at=to_timestamp(at), domain=domain, kind=kind, summary=summary, event_id=event_id
    )


# ---------------------------------------------------------------------------------------------------
# Live detail: which domain RPC answers a part that events do not carry


def detail_call(  # noqa: PLR0911 - one read per (domain, kind)
    kind: str, id_: str, domain: str, links: Sequence[LinkRow]
) -> tuple[str, Message] | None:
    """The owning domain's read RPC (stub method name, request) for an entity's part, or None when the
    domain has no read for that kind (the part is then served from the projections alone)."""
    del links
    match (domain, kind):
        case ("safety", EntityKind.SITE):
            return "GetSite", safety_pb2.GetSiteRequest(site_id=id_)
        case ("industry", EntityKind.ENTERPRISE):
            return "GetEnterprise", industry_pb2.GetEnterpriseRequest(credit_code=id_)
        case ("industry", EntityKind.PARK):
            return "ListEnterprises", industry_pb2.ListEnterprisesRequest(park_id=id_)
        case ("kitchen", EntityKind.KITCHEN):
            return "GetKitchen", kitchen_pb2.GetKitchenRequest(kitchen_id=id_)
        case ("kitchen", EntityKind.SITE):
            return "ListKitchens", kitchen_pb2.ListKitchensRequest(site_id=id_)
        case ("commerce", EntityKind.ENTERPRISE):
            return "ListMemberships", commerce_pb2.ListMembershipsRequest(credit_code=id_)
        case ("commerce", EntityKind.CHAMBER):
            return "GetChamber", commerce_pb2.GetChamberRequest(chamber_id=id_)
        case ("govservice", EntityKind.APPLICATION):
            return "GetApplication", govservice_pb2.GetApplicationRequest(application_no=id_)
    return None
