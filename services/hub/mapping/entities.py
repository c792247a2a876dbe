"""The entities family's proto <-> domain translation: domain events into the rules' DomainEvent, the RPC
requests into commands, rows into Entity / Link / Part / TimelineEntry messages."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2
from cityhub.hub.v1 import hub_pb2
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import safety_pb2
from google.protobuf import any_pb2
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
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
# google.protobuf's Timestamp range (ToDatetime raises outside it).
_SECONDS_MIN, _SECONDS_MAX = -62_135_596_800, 253_402_300_799
_NANOS_PER_SECOND = 1_000_000_000
# Bounds the caches keyed by what arrives on a topic (ce_type): the contracts have a few hundred types.
_MAX_TYPES = 4096


def _enum_prefix(enum_name: str) -> str:
    """SiteKind -> "SITE_KIND_" (the proto style guide's value prefix)."""
    prefix = _PREFIXES.get(enum_name)
    if prefix is None:
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"
        _PREFIXES[enum_name] = prefix
    return prefix


def _datetime(stamp: Timestamp) -> datetime | None:
    """Timestamp.ToDatetime(tzinfo=UTC) without its per-call checks and time-zone conversion (the same
    value: epoch + whole microseconds, rounded toward zero); None when unset (0, 0)."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not (seconds or nanos):
        return None
    if _SECONDS_MIN <= seconds <= _SECONDS_MAX and 0 <= nanos < _NANOS_PER_SECOND:
        return _EPOCH + timedelta(0, seconds, nanos // 1000)  # (days, seconds, microseconds)
    return stamp.ToDatetime(tzinfo=UTC)  # raises its own ValueError for an invalid one


class _EnumNames(dict[int, str]):
    """An enum's numbers to their short names; a number the contract does not name (an open enum keeps
    them) reads as the number."""

    def __init__(self, enum: EnumDescriptor) -> None:
        self.prefix = _enum_prefix(enum.name)
        super().__init__(
            (number, value.name.removeprefix(self.prefix)) for number, value in enum.values_by_number.items()
        )

    def __missing__(self, number: int) -> str:
        return str(number).removeprefix(self.prefix)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How fields_of reads one message type, decided once from its descriptor: every field in order with
    one attrgetter, then the fields whose raw value is not their value, by what they need."""

    names: tuple[str, ...]
    read: Callable[[Message], tuple[Any, ...]]
    enums: tuple[tuple[str, _EnumNames], ...] = ()
    enum_lists: tuple[tuple[str, _EnumNames], ...] = ()
    lists: tuple[str, ...] = ()
    maps: tuple[str, ...] = ()
    # Singular message fields (None when not set): timestamps as datetimes, others as dicts.
    stamps: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    # Repeated message fields and what each element becomes.
    message_lists: tuple[tuple[str, Callable[[Any], Any]], ...] = ()


def _is_timestamp(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.full_name == "google.protobuf.Timestamp"


def _new_plan(descriptor: Any) -> _Plan:
    names = tuple(fd.name for fd in descriptor.fields)
    read: Callable[[Message], tuple[Any, ...]]
    if len(names) > 1:
        read = operator.attrgetter(*names)
    elif names:
        only = operator.attrgetter(names[0])
        read = lambda message: (only(message),)  # noqa: E731 - attrgetter of one name gives no tuple
    else:
        read = lambda _message: ()  # noqa: E731
    enums: list[tuple[str, _EnumNames]] = []
    enum_lists: list[tuple[str, _EnumNames]] = []
    message_lists: list[tuple[str, Callable[[Any], Any]]] = []
    lists: list[str] = []
    maps: list[str] = []
    stamps: list[str] = []
    messages: list[str] = []
    fd: FieldDescriptor
    for fd in descriptor.fields:
        is_enum = fd.type == FieldDescriptor.TYPE_ENUM and fd.enum_type is not None
        is_message = fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type is not None
        if fd.is_repeated:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                maps.append(fd.name)
            elif is_enum and fd.enum_type is not None:
                enum_lists.append((fd.name, _EnumNames(fd.enum_type)))
            elif is_message:
                message_lists.append((fd.name, _datetime if _is_timestamp(fd) else fields_of))
            else:
                lists.append(fd.name)
        elif is_enum and fd.enum_type is not None:
            enums.append((fd.name, _EnumNames(fd.enum_type)))
        elif is_message:
            (stamps if _is_timestamp(fd) else messages).append(fd.name)
    return _Plan(
        names,
        read,
        tuple(enums),
        tuple(enum_lists),
        tuple(lists),
        tuple(maps),
        tuple(stamps),
        tuple(messages),
        tuple(message_lists),
    )


# Per message class (generated classes live as long as the process).
_PLANS: dict[type[Message], _Plan] = {}


def fields_of(message: Message) -> dict[str, Any]:
    """Every field of a message (defaults included): enums by short name, timestamps as datetimes (None
    when unset), nested messages as dicts, repeated fields as lists."""
    # What each field needs is decided from the descriptor once per message type, not per field per
    # event (a replay reads millions).
    plan = _PLANS.get(type(message))
    if plan is None:
        plan = _PLANS[type(message)] = _new_plan(message.DESCRIPTOR)
    out = dict(zip(plan.names, plan.read(message), strict=False))  # the getter reads every name
    for name, enum in plan.enums:
        out[name] = enum[out[name]]
    # Most repeated fields are empty: a new list without iterating the container.
    for name in plan.lists:
        raw = out[name]
        out[name] = list(raw) if raw else []
    for name, enum in plan.enum_lists:
        raw = out[name]
        out[name] = list(map(enum.__getitem__, raw)) if raw else []
    for name in plan.stamps:
        # An unset timestamp reads as (0, 0), which is None as well: no HasField needed.
        out[name] = _datetime(out[name])
    for name in plan.messages:
        out[name] = fields_of(out[name]) if message.HasField(name) else None
    for name in plan.maps:
        out[name] = dict(out[name])
    for name, convert in plan.message_lists:
        out[name] = [convert(v) for v in out[name]]
    return out


@functools.lru_cache(maxsize=_MAX_TYPES)
def _domain_and_name(ce_type: str) -> tuple[str, str] | None:
    match = _TYPE.match(ce_type)
    return None if match is None or match.group(1) not in DOMAIN_ORDER else (match.group(1), match.group(2))


def domain_event(envelope: EventEnvelope, message: Message) -> DomainEvent | None:
    """The event as the rules read it, or None when it is no domain's (the hub's own events)."""
    found = _domain_and_name(envelope.type)
    if found is None:
        return None
    at = envelope.time if envelope.time.tzinfo else envelope.time.replace(tzinfo=UTC)
    # By position (domain, name, ce_type, event_id, at, fields): cheaper than by keyword.
    return DomainEvent(found[0], found[1], envelope.type, envelope.id, at, fields_of(message))


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
