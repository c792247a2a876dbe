"""The entities family's rules, pure: how each domain event resolves to entities (the keys it carries),
the links it makes, what it adds to each entity's part (counters and last values kept as a JSON state,
from which the facts are computed), its one-line timeline summary; the visibility rule every family uses;
search scoring; distances.

Decisions (see docs/services/hub.md):
- Entity kinds are the common EntityKind names without the prefix ("SITE", "ENTERPRISE", ...).
- Devices are not entities: a device's events count on its enterprise (devices, open device alerts,
  the last utilisation figures) and its park (devices). A person is never an entity: a person applicant's
  application has no applicant link, and no token or name reaches a row.
- Regions are REGION entities identified by their GB/T 2260 six-digit division code (the only region key
  the events carry); a town or street (乡镇/街道) is identified by its name as the events carry it
  (SiteRegistered.town, KitchenRegistered.town, MembershipApproved.town) and is an attribute of entities
  (Entity.town, the filter of search, the inbox and the dashboard), not an entity of its own.
- Commerce federations have no EntityKind: their events resolve to nothing.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from services.platform.errors import Violations

__all__ = [
    "DOMAIN_ORDER",
    "INVERSE",
    "DomainEvent",
    "EntityKind",
    "EntityRow",
    "LinkChange",
    "LinkRow",
    "Mention",
    "NameRank",
    "PartRow",
    "Resolution",
    "apply_part",
    "bounding_box",
    "facts_of",
    "haversine_m",
    "held",
    "region_covers",
    "region_prefix",
    "resolve",
    "search_score",
]

DOMAIN_ORDER = ("safety", "industry", "kitchen", "commerce", "govservice")


class EntityKind(StrEnum):
    ENTERPRISE = "ENTERPRISE"
    SITE = "SITE"
    KITCHEN = "KITCHEN"
    PARK = "PARK"
    REGION = "REGION"
    DEVICE = "DEVICE"
    CHAMBER = "CHAMBER"
    PERSON = "PERSON"
    APPLICATION = "APPLICATION"


class NameRank:
    """Which source gave an entity's name: a stronger one is never overwritten by a weaker one."""

    NONE = 0
    MENTION = 1  # another domain's mention (a kitchen's operator name)
    MEMBERSHIP = 2  # commerce's approved membership (the enterprise's registered name)
    OWN = 3  # the entity's own registration event


# Relations (from -> to) and how they read from the other end.
KITCHEN_OF_SITE = "kitchen_of_site"  # KITCHEN -> SITE
OPERATOR_OF_KITCHEN = "operator_of_kitchen"  # ENTERPRISE -> KITCHEN
IN_PARK = "in_park"  # ENTERPRISE -> PARK
MEMBER_OF_CHAMBER = "member_of_chamber"  # ENTERPRISE -> CHAMBER
APPLICANT_OF = "applicant_of"  # ENTERPRISE -> APPLICATION
IN_REGION = "in_region"  # SITE/KITCHEN/PARK/ENTERPRISE/CHAMBER -> REGION
FILED_IN = "filed_in"  # APPLICATION -> REGION
HANDLED_BY = "handled_by"  # APPLICATION -> REGION
INVERSE = {
    KITCHEN_OF_SITE: "site_of_kitchen",
    OPERATOR_OF_KITCHEN: "kitchen_operated_by",
    IN_PARK: "park_of_enterprise",
    MEMBER_OF_CHAMBER: "chamber_has_member",
    APPLICANT_OF: "application_by",
    IN_REGION: "region_contains",
    FILED_IN: "filed_here",
    HANDLED_BY: "handled_here",
}
# Links that carry visibility one step. A region's containment does not: a clerk's region scope covers
# its applications (filed in or handled by it), not every school and enterprise in the county.
NOT_VISIBILITY = frozenset({IN_REGION})


# ---------------------------------------------------------------------------------------------------
# Rows the repository returns


@dataclass(frozen=True, slots=True)
class EntityRow:
    kind: str
    id: str
    name: str
    town: str
    division_code: str
    latitude: float | None
    longitude: float | None
    owner_domain: str
    # False while the entity is known only from another entity's event (a stub).
    registered: bool
    first_seen_at: datetime
    # The domains with a part (events) about it, in DOMAIN_ORDER.
    domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A link as seen from one entity: the other end, the relation read from this end, the domain."""

    kind: str
    id: str
    relation: str
    domain: str
    name: str = ""
    outgoing: bool = True


@dataclass(frozen=True, slots=True)
class PartRow:
    domain: str
    state: Mapping[str, Any]
    last_event_at: datetime
    event_count: int


# ---------------------------------------------------------------------------------------------------
# Resolution of one event


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """A domain event as the rules read it: its type's short name ("SiteRegistered"), ce_type, id, time
    and payload fields (enums by their short names, e.g. "SCHOOL"; timestamps as datetimes or None; nested
    messages as dicts)."""

    domain: str
    name: str
    ce_type: str
    event_id: str
    at: datetime
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Mention:
    """An entity an event names, with what the event says about it (empty: says nothing)."""

    kind: EntityKind
    id: str
    name: str = ""
    name_rank: int = NameRank.NONE
    town: str = ""
    division_code: str = ""
    latitude: float | None = None
    longitude: float | None = None
    # The entity's own registration event (not a stub any more).
    registers: bool = False

    @property
    def name_source_rank(self) -> int:
        """How strong a source of the entity's name this mention is: an empty name is none at all, or a
        first mention without a name would outrank a later one with it (the name would depend on order)."""
        return self.name_rank if self.name else NameRank.NONE

    @property
    def town_source_rank(self) -> int:
        """As for the name; the entity's own registration is the stronger source of its town."""
        return (2 if self.registers else 1) if self.town else 0


@dataclass(frozen=True, slots=True)
class LinkChange:
    from_kind: EntityKind
    from_id: str
    relation: str
    to_kind: EntityKind
    to_id: str
    remove: bool = False


@dataclass(frozen=True, slots=True)
class Resolution:
    """What one event does to the entities: entities to create or fill in, links to make or remove, the
    entities it concerns (a timeline row and a part update each) and its summary line."""

    mentions: tuple[Mention, ...] = ()
    links: tuple[LinkChange, ...] = ()
    concerns: tuple[tuple[EntityKind, str], ...] = ()
    summary: str = ""
    # govservice: the application whose applicant enterprise the event also concerns (looked up by link).
    application: str = ""

    @property
    def empty(self) -> bool:
        return not self.concerns


def _s(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def _location(fields: Mapping[str, Any]) -> tuple[float | None, float | None]:
    point = fields.get("location")
    if not isinstance(point, dict | Mapping):  # a dict first: fields_of's (an ABC check is slower)
        return None, None
    lat, lon = float(point.get("latitude", 0.0)), float(point.get("longitude", 0.0))
    # proto3 cannot tell "not given" from (0, 0): the Gulf of Guinea is no place in the district.
    if lat == 0.0 and lon == 0.0:
        return None, None
    return lat, lon


def _region(code: str) -> Mention:
    return Mention(EntityKind.REGION, code, name=code, name_rank=NameRank.OWN)


def _in_region(kind: EntityKind, id_: str, code: str) -> tuple[LinkChange, ...]:
    return (LinkChange(kind, id_, IN_REGION, EntityKind.REGION, code),) if code else ()


# Fields a summary may quote, per event type (never tokens, names of persons, free-text reasons).
_SUMMARY_FIELDS: Mapping[str, tuple[str, ...]] = {
    "SiteRegistered": ("name", "kind", "town"),
    "SensorRegistered": ("sensor_id", "kind", "zone"),
    "RiskAssessed": ("level", "severity", "detection_count"),
    "AlertRaised": ("alert_id", "level", "severity", "trigger"),
    "AlertUpdated": ("alert_id", "level", "severity", "occurrences"),
    "AlertAcknowledged": ("alert_id",),
    "AlertDispatched": ("alert_id", "alert_status"),
    "UnitStatusChanged": ("alert_id", "unit_kind", "status"),
    "AlertResolved": ("alert_id", "outcome", "joint_response"),
    "ParkRegistered": ("park_id", "division_code"),
    "EnterpriseOnboarded": ("credit_code", "sector", "park_id"),
    "DeviceRegistered": ("device_id", "machine_type", "workshop"),
    "DeviceStateChanged": ("device_id", "previous_state", "state"),
    "DeviceAlertRaised": ("alert_id", "device_id", "kind", "severity"),
    "DeviceAlertCleared": ("alert_id", "device_id", "kind"),
    "OrderStageChanged": ("order_id", "previous_stage", "stage", "late"),
    "UtilisationRolledUp": ("device_id", "workshop"),
    "KitchenRegistered": ("name", "site_id", "operator_kind", "town"),
    "StaffAdded": ("staff_id", "role"),
    "MorningCheckFailed": ("check_id", "shift_date", "shift"),
    "ColdChainAlertRaised": ("alert_id", "equipment_id", "kind", "temperature_c", "limit_c"),
    "ColdChainAlertCleared": ("alert_id", "equipment_id", "minutes_out_of_range"),
    "EquipmentOffline": ("alert_id", "equipment_id", "kind"),
    "EquipmentViolationFound": ("alert_id", "equipment_id", "alert_kind", "minutes", "date"),
    "ViolationOpened": ("violation_id", "kind", "camera_id"),
    "ViolationRectified": ("violation_id", "kind", "seconds_to_rectify"),
    "ViolationVerified": ("violation_id", "kind"),
    "ViolationReopened": ("violation_id", "kind"),
    "DeliveryReceived": ("delivery_id", "product", "lot_number", "supplier_credit_code"),
    "DeliveryRefused": ("delivery_id", "product", "lot_number", "supplier_credit_code"),
    "MealServed": ("meal_id", "meal_date", "sitting", "servings", "fully_traced"),
    "RatingRecorded": ("rating_id", "meal_id", "score"),
    "ChamberCreated": ("name", "kind", "sector"),
    "MembershipApplied": ("membership_id", "chamber_id", "credit_code"),
    "MembershipApproved": ("membership_id", "chamber_id", "credit_code", "auto_approved"),
    "MembershipRejected": ("membership_id", "chamber_id", "credit_code"),
    "MembershipSuspended": ("membership_id", "chamber_id", "credit_code"),
    "MembershipReinstated": ("membership_id", "chamber_id", "credit_code"),
    "MembershipEnded": ("membership_id", "chamber_id", "credit_code"),
    "MemberCodeIssued": ("membership_id", "chamber_id", "credit_code"),
    "ActivityHeld": ("activity_id", "title", "capacity"),
    "AttendanceRecorded": ("activity_id", "chamber_id", "credit_code"),
    "MatchMade": ("match_id", "category", "supply_credit_code", "demand_credit_code"),
    "ServiceRequestOpened": ("service_request_id", "type", "chamber_id"),
    "ServiceRequestOverdue": ("service_request_id", "type", "chamber_id"),
    "ServiceRequestResolved": ("service_request_id", "type", "on_time"),
    "CourseCompleted": ("course_id", "chamber_id", "credit_code"),
    "ApplicationFiled": ("application_no", "item_code", "filing_region", "handling_region", "applicant_kind"),
    "ApplicationReceived": ("application_no", "region"),
    "ApplicationForwarded": ("application_no", "from_region", "to_region"),
    "ApplicationAccepted": ("application_no", "region", "due_date"),
    "SupplementRequested": ("application_no", "region"),
    "ApplicationSupplemented": ("application_no", "region", "due_date"),
    "ApplicationCompleted": ("application_no", "handling_region", "on_time", "working_days_used"),
    "ApplicationRejected": ("application_no", "region"),
    "ApplicationOverdue": ("application_no", "handling_region", "due_date"),
}
# Inspections exist in safety and kitchen under one name.
_SUMMARY_BY_DOMAIN: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("safety", "InspectionRecorded"): ("inspection_id", "method", "finding_count", "worst_severity"),
    ("kitchen", "InspectionRecorded"): ("inspection_id", "result", "findings"),
}


@functools.lru_cache(maxsize=1024)
def _words(name: str) -> str:
    """ "ColdChainAlertRaised" -> "Cold chain alert raised"."""
    parts = re.findall(r"[A-Z][a-z0-9]*", name) or [name]
    return " ".join([parts[0], *(p.lower() for p in parts[1:])])


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Values a summary leaves out (a bool never is: False == 0).
_EMPTY = (None, "", 0, 0.0, "UNSPECIFIED")


@functools.lru_cache(maxsize=1024)
def _summary_plan(domain: str, name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The head of an event type's summary and the fields it may quote with their labels (per type, once)."""
    names = _SUMMARY_BY_DOMAIN.get((domain, name)) or _SUMMARY_FIELDS.get(name, ())
    return _words(name), tuple((n, n.replace("_", " ")) for n in names)


def summary_of(event: DomainEvent) -> str:
    """One line from the event's type and the fields its type may quote (empty values left out)."""
    head, quoted = _summary_plan(event.domain, event.name)
    fields = event.fields
    shown = []
    for name, label in quoted:
        value = fields.get(name)
        # Text and whole numbers (most of what is quoted) first: what the general rule below makes of them.
        kind = type(value)
        if kind is str:
            if value and value != "UNSPECIFIED":
                shown.append(f"{label} {value}")
        elif kind is int:
            if value:
                shown.append(f"{label} {value}")
        elif not (value in _EMPTY and not isinstance(value, bool)):
            shown.append(f"{label} {_shown(value)}")
    return f"{head}: {', '.join(shown)}" if shown else head


def _resolved(
    event: DomainEvent,
    *,
    mentions: tuple[Mention, ...] = (),
    links: tuple[LinkChange, ...] = (),
    concerns: tuple[tuple[EntityKind, str], ...] = (),
    application: str = "",
) -> Resolution:
    """What a resolver found, with the event's summary line when it concerns an entity."""
    return Resolution(mentions, links, concerns, summary_of(event) if concerns else "", application)


# A mention that says nothing but the entity (most events' only one), shared: Mentions are frozen, and a
# replay would otherwise make one per event.
@functools.lru_cache(maxsize=1 << 16)
def _bare(kind: EntityKind, id_: str) -> Mention:
    return Mention(kind, id_)


def _safety(event: DomainEvent) -> Resolution:
    f = event.fields
    site = _s(f, "site_id")
    if not site:
        return Resolution()
    if event.name == "SiteRegistered":
        lat, lon = _location(f)
        code = _s(f, "division_code")
        mention = Mention(
            EntityKind.SITE,
            site,
            name=_s(f, "name"),
            name_rank=NameRank.OWN,
            town=_s(f, "town"),
            division_code=code,
            latitude=lat,
            longitude=lon,
            registers=True,
        )
        return _resolved(
            event,
            mentions=(mention, *((_region(code),) if code else ())),
            links=_in_region(EntityKind.SITE, site, code),
            concerns=((EntityKind.SITE, site),),
        )
    return _resolved(event, mentions=(_bare(EntityKind.SITE, site),), concerns=((EntityKind.SITE, site),))


def _industry(event: DomainEvent) -> Resolution:
    f = event.fields
    credit, park = _s(f, "credit_code"), _s(f, "park_id")
    code = _s(f, "division_code")
    if event.name == "ParkRegistered":
        if not park:
            return Resolution()
        # Industry keeps park names to itself: the park is known by its id.
        mention = Mention(EntityKind.PARK, park, name=park, division_code=code, registers=True)
        return _resolved(
            event,
            mentions=(mention, *((_region(code),) if code else ())),
            links=_in_region(EntityKind.PARK, park, code),
            concerns=((EntityKind.PARK, park),),
        )
    if not credit:
        return Resolution()
    if event.name == "EnterpriseOnboarded":
        mentions = [Mention(EntityKind.ENTERPRISE, credit, division_code=code, registers=True)]
        links = list(_in_region(EntityKind.ENTERPRISE, credit, code))
        concerns = [(EntityKind.ENTERPRISE, credit)]
        if code:
            mentions.append(_region(code))
        if park:
            mentions.append(Mention(EntityKind.PARK, park, name=park, name_rank=NameRank.NONE))
            links.append(LinkChange(EntityKind.ENTERPRISE, credit, IN_PARK, EntityKind.PARK, park))
            concerns.append((EntityKind.PARK, park))
        return _resolved(event, mentions=tuple(mentions), links=tuple(links), concerns=tuple(concerns))
    concerns = [(EntityKind.ENTERPRISE, credit)]
    mentions = [_bare(EntityKind.ENTERPRISE, credit)]
    if event.name == "DeviceRegistered" and park:
        mentions.append(Mention(EntityKind.PARK, park, name=park))
        concerns.append((EntityKind.PARK, park))
    return _resolved(event, mentions=tuple(mentions), concerns=tuple(concerns))


def _kitchen(event: DomainEvent) -> Resolution:
    f = event.fields
    kitchen = _s(f, "kitchen_id")
    if not kitchen:
        return Resolution()
    if event.name != "KitchenRegistered":
        return _resolved(
            event, mentions=(_bare(EntityKind.KITCHEN, kitchen),), concerns=((EntityKind.KITCHEN, kitchen),)
        )
    lat, lon = _location(f)
    code, town, site = _s(f, "division_code"), _s(f, "town"), _s(f, "site_id")
    mentions = [
        Mention(
            EntityKind.KITCHEN,
            kitchen,
            name=_s(f, "name"),
            name_rank=NameRank.OWN,
            town=town,
            division_code=code,
            latitude=lat,
            longitude=lon,
            registers=True,
        )
    ]
    links = list(_in_region(EntityKind.KITCHEN, kitchen, code))
    concerns = [(EntityKind.KITCHEN, kitchen)]
    if code:
        mentions.append(_region(code))
    if site:
        mentions.append(_bare(EntityKind.SITE, site))
        links.append(LinkChange(EntityKind.KITCHEN, kitchen, KITCHEN_OF_SITE, EntityKind.SITE, site))
        concerns.append((EntityKind.SITE, site))
    operator = _s(f, "operator_credit_code")
    if operator:
        # A contractor is an enterprise: its name from the kitchen is a mention, weaker than its own.
        mentions.append(
            Mention(EntityKind.ENTERPRISE, operator, name=_s(f, "operator_name"), name_rank=NameRank.MENTION)
        )
        links.append(
            LinkChange(EntityKind.ENTERPRISE, operator, OPERATOR_OF_KITCHEN, EntityKind.KITCHEN, kitchen)
        )
        concerns.append((EntityKind.ENTERPRISE, operator))
    return _resolved(event, mentions=tuple(mentions), links=tuple(links), concerns=tuple(concerns))


def _commerce(event: DomainEvent) -> Resolution:
    f = event.fields
    chamber, credit = _s(f, "chamber_id"), _s(f, "credit_code")
    if event.name == "ChamberCreated":
        if not chamber:
            return Resolution()
        code = _s(f, "division_code")
        mention = Mention(
            EntityKind.CHAMBER, chamber, name=_s(f, "name"), name_rank=NameRank.OWN, division_code=code,
            registers=True,
        )  # fmt: skip
        return _resolved(
            event,
            mentions=(mention, *((_region(code),) if code else ())),
            links=_in_region(EntityKind.CHAMBER, chamber, code),
            concerns=((EntityKind.CHAMBER, chamber),),
        )
    if event.name == "MatchMade":
        sides = [c for c in (_s(f, "supply_credit_code"), _s(f, "demand_credit_code")) if c]
        unique = tuple(dict.fromkeys(sides))
        return _resolved(
            event,
            mentions=tuple(_bare(EntityKind.ENTERPRISE, c) for c in unique),
            concerns=tuple((EntityKind.ENTERPRISE, c) for c in unique),
        )
    mentions: list[Mention] = []
    concerns: list[tuple[EntityKind, str]] = []
    links: list[LinkChange] = []
    if credit:
        if event.name == "MembershipApproved":
            mentions.append(
                Mention(
                    EntityKind.ENTERPRISE,
                    credit,
                    name=_s(f, "enterprise_name"),
                    name_rank=NameRank.MEMBERSHIP,
                    town=_s(f, "town"),
                )
            )
        else:
            mentions.append(_bare(EntityKind.ENTERPRISE, credit))
        concerns.append((EntityKind.ENTERPRISE, credit))
    if chamber:
        mentions.append(_bare(EntityKind.CHAMBER, chamber))
        concerns.append((EntityKind.CHAMBER, chamber))
        if credit and event.name in ("MembershipApproved", "MembershipReinstated"):
            links.append(
                LinkChange(EntityKind.ENTERPRISE, credit, MEMBER_OF_CHAMBER, EntityKind.CHAMBER, chamber)
            )
        elif credit and event.name == "MembershipEnded":
            links.append(
                LinkChange(
                    EntityKind.ENTERPRISE, credit, MEMBER_OF_CHAMBER, EntityKind.CHAMBER, chamber, remove=True
                )
            )
    return _resolved(event, mentions=tuple(mentions), links=tuple(links), concerns=tuple(concerns))


def _govservice(event: DomainEvent) -> Resolution:
    f = event.fields
    number = _s(f, "application_no")
    if not number:
        return Resolution()
    app = (EntityKind.APPLICATION, number)
    if event.name == "ApplicationFiled":
        filing, handling = _s(f, "filing_region"), _s(f, "handling_region")
        mentions = [
            Mention(
                EntityKind.APPLICATION, number, name=number, name_rank=NameRank.OWN,
                division_code=handling or filing, registers=True,
            )
        ]  # fmt: skip
        links: list[LinkChange] = []
        for relation, code in ((FILED_IN, filing), (HANDLED_BY, handling)):
            if code:
                mentions.append(_region(code))
                links.append(LinkChange(EntityKind.APPLICATION, number, relation, EntityKind.REGION, code))
        concerns = [app]
        credit = _s(f, "credit_code")
        # A person applicant is no entity (no personal data in the hub): only enterprises are linked.
        if f.get("applicant_kind") == "ENTERPRISE" and credit:
            mentions.append(_bare(EntityKind.ENTERPRISE, credit))
            links.append(
                LinkChange(EntityKind.ENTERPRISE, credit, APPLICANT_OF, EntityKind.APPLICATION, number)
            )
            concerns.append((EntityKind.ENTERPRISE, credit))
        return _resolved(event, mentions=tuple(mentions), links=tuple(links), concerns=tuple(concerns))
    links = []
    mentions = [_bare(EntityKind.APPLICATION, number)]
    if event.name == "ApplicationForwarded" and _s(f, "to_region"):
        to = _s(f, "to_region")
        mentions.append(_region(to))
        links.append(LinkChange(EntityKind.APPLICATION, number, HANDLED_BY, EntityKind.REGION, to))
    # The applicant enterprise (if any) is found by its link when projecting.
    return _resolved(event, mentions=tuple(mentions), links=tuple(links), concerns=(app,), application=number)


_RESOLVERS: Mapping[str, Callable[[DomainEvent], Resolution]] = {
    "safety": _safety,
    "industry": _industry,
    "kitchen": _kitchen,
    "commerce": _commerce,
    "govservice": _govservice,
}


def resolve(event: DomainEvent) -> Resolution:
    """The entities an event concerns, what it says about them, the links it makes and its summary."""
    resolver = _RESOLVERS.get(event.domain)
    return Resolution() if resolver is None else resolver(event)


# ---------------------------------------------------------------------------------------------------
# Parts: counters and last values per (entity, domain), and the facts computed from them

State = dict[str, Any]


def _add(state: State, key: str, by: float = 1) -> None:
    state[key] = state.get(key, 0) + by


def _set_add(state: State, key: str, item: str) -> None:
    items = set(state.get(key, []))
    if item:
        items.add(item)
    state[key] = sorted(items)


def _set_remove(state: State, key: str, item: str) -> None:
    state[key] = sorted(set(state.get(key, [])) - {item})


def _stamp(at: datetime) -> str:
    """A time as text that sorts as the time does (fixed width, UTC, microseconds always shown)."""
    u = at.astimezone(UTC)
    if u.year < 1000:  # strftime's %Y does not pad a year to four digits; %04d below would
        return u.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as that strftime, a third of its cost (a replay stamps most events).
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - one C call, faster than an f-string
        u.year,
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        u.microsecond,
    )


def _latest(state: State, key: str, value: Any, at: datetime, tie: str = "") -> None:
    """Set ``state[key]`` to ``value`` when (event time, ``tie``, value) is the greatest seen for ``key``.

    A "last value" fed by events of different partitions (the alerts of a site, the devices of an
    enterprise) must not be whichever arrived last: the order is a total one on the events' own data, kept
    in ``state["as_of"]``, so the part is the same for any arrival order (a rebuild by replay included)."""
    mark = [_stamp(at), tie, str(value)]
    as_of: dict[str, Any] = dict(state.get("as_of", {}))
    if key in as_of and list(as_of[key]) > mark:
        return
    as_of[key] = mark
    state["as_of"] = dict(sorted(as_of.items()))
    state[key] = value


def _safety_part(state: State, e: DomainEvent) -> None:
    f = e.fields
    match e.name:
        case "SiteRegistered":
            state["site_kind"] = f.get("kind", "")
        case "SensorRegistered":
            _add(state, "sensors")
        case "RiskAssessed":
            _latest(state, "last_risk_level", f.get("level", ""), e.at)
        case "AlertRaised":
            _add(state, "alerts_raised")
            _set_add(state, "open_alerts", _s(f, "alert_id"))
            _latest(state, "last_risk_level", f.get("level", ""), e.at, _s(f, "alert_id"))
        case "AlertUpdated":
            _latest(state, "last_risk_level", f.get("level", ""), e.at, _s(f, "alert_id"))
        case "AlertResolved":
            _set_remove(state, "open_alerts", _s(f, "alert_id"))
            if f.get("joint_response"):
                _add(state, "joint_responses")
        case "InspectionRecorded":
            _add(state, "inspections")
            _latest(
                state,
                "last_inspection_findings",
                int(f.get("finding_count", 0)),
                e.at,
                _s(f, "inspection_id"),
            )


def _industry_part(state: State, e: DomainEvent) -> None:  # noqa: PLR0912 - one case per event type
    f = e.fields
    match e.name:
        case "ParkRegistered":
            state["park_registered"] = True
        case "EnterpriseOnboarded":
            if e.fields.get("credit_code") and state.get("_kind") == EntityKind.PARK:
                _add(state, "enterprises")
            else:
                state["sector"] = f.get("sector", "")
                state["park_id"] = _s(f, "park_id")
        case "DeviceRegistered":
            _add(state, "devices")
        case "DeviceStateChanged":
            _latest(state, "last_device_state", f.get("state", ""), e.at, _s(f, "device_id"))
        case "DeviceAlertRaised":
            _add(state, "device_alerts_raised")
            _set_add(state, "open_device_alerts", _s(f, "alert_id"))
        case "DeviceAlertCleared":
            _set_remove(state, "open_device_alerts", _s(f, "alert_id"))
        case "OrderStageChanged":
            _set_add(state, "orders", _s(f, "order_id"))
            if f.get("late"):
                _set_add(state, "late_orders", _s(f, "order_id"))
        case "UtilisationRolledUp":
            figures = f.get("figures") or {}
            hour = f.get("hour_started_at")
            # The latest hour wins whatever order the devices' summaries arrive in; of two devices' summaries
            # of that hour the greater device id (a total order on the events' data, not their arrival). A
            # summary of the same device and hour published again (late samples) comes on the device's
            # partition after the first, so it replaces it.
            stamp = hour.isoformat() if isinstance(hour, datetime) else ""
            mark = (stamp, _s(f, "device_id"))
            if mark >= (str(state.get("utilisation_hour", "")), str(state.get("utilisation_device", ""))):
                state["utilisation_hour"], state["utilisation_device"] = mark
                for name in ("availability", "performance", "quality", "oee"):
                    state[f"last_{name}"] = round(float(figures.get(name, 0.0)), 4)


def _kitchen_part(state: State, e: DomainEvent) -> None:  # noqa: PLR0912 - one case per event type
    f = e.fields
    match e.name:
        case "KitchenRegistered":
            if state.get("_kind") == EntityKind.KITCHEN:
                state["operator_kind"] = f.get("operator_kind", "")
                state["meals_per_day"] = int(f.get("meals_per_day", 0))
            else:
                # The school of a kitchen, or its operator: which kitchens.
                _set_add(state, "kitchens", _s(f, "kitchen_id"))
        case "StaffAdded":
            _add(state, "staff")
        case "MorningCheckFailed":
            _add(state, "morning_checks_failed")
        case "ColdChainAlertRaised":
            _add(state, "cold_chain_alerts")
            _set_add(state, "open_cold_chain_alerts", _s(f, "alert_id"))
        case "ColdChainAlertCleared":
            _set_remove(state, "open_cold_chain_alerts", _s(f, "alert_id"))
        case "EquipmentOffline":
            _add(state, "equipment_offline")
        case "EquipmentViolationFound":
            _add(state, "equipment_violations")
        case "ViolationOpened" | "ViolationReopened":
            _set_add(state, "open_violations", _s(f, "violation_id"))
        case "ViolationVerified":
            _set_remove(state, "open_violations", _s(f, "violation_id"))
        case "DeliveryReceived":
            _add(state, "deliveries_received")
        case "DeliveryRefused":
            _add(state, "deliveries_refused")
        case "MealServed":
            _add(state, "meals_served")
            _add(state, "servings", int(f.get("servings", 0)))
        case "RatingRecorded":
            _add(state, "ratings")
            _add(state, "rating_total", int(f.get("score", 0)))
        case "InspectionRecorded":
            _latest(state, "last_inspection_result", f.get("result", ""), e.at, _s(f, "inspection_id"))


def _commerce_part(state: State, e: DomainEvent) -> None:
    f = e.fields
    kind = state.get("_kind")
    chamber, credit = _s(f, "chamber_id"), _s(f, "credit_code")
    statuses = {
        "MembershipApplied": "APPLIED",
        "MembershipApproved": "APPROVED",
        "MembershipRejected": "REJECTED",
        "MembershipSuspended": "SUSPENDED",
        "MembershipReinstated": "APPROVED",
        "MembershipEnded": "ENDED",
    }
    if e.name in statuses:
        key, other = ("memberships", chamber) if kind == EntityKind.ENTERPRISE else ("members", credit)
        book = dict(state.get(key, {}))
        book[other] = statuses[e.name]
        state[key] = dict(sorted(book.items()))
        if kind == EntityKind.ENTERPRISE and e.name == "MembershipApproved" and f.get("sector"):
            # Each chamber's approvals come on its own partition: the latest approval's sector wins.
            _latest(state, "sector", f["sector"], e.at, chamber)
        return
    match e.name:
        case "ChamberCreated":
            state["chamber_kind"] = f.get("kind", "")
            state["sector"] = _s(f, "sector")
        case "MemberCodeIssued":
            _add(state, "member_codes_issued")
        case "ActivityHeld":
            _add(state, "activities")
        case "AttendanceRecorded":
            _add(state, "attendances")
        case "MatchMade":
            _add(state, "matches")
        case "ServiceRequestOpened":
            _set_add(state, "open_service_requests", _s(f, "service_request_id"))
        case "ServiceRequestOverdue":
            _set_add(state, "overdue_service_requests", _s(f, "service_request_id"))
        case "ServiceRequestResolved":
            request = _s(f, "service_request_id")
            _set_remove(state, "open_service_requests", request)
            _set_remove(state, "overdue_service_requests", request)
            _add(state, "service_requests_resolved")
        case "CourseCompleted":
            _add(state, "courses_completed")


def _govservice_part(state: State, e: DomainEvent) -> None:
    f = e.fields
    if state.get("_kind") == EntityKind.APPLICATION:
        status = {
            "ApplicationFiled": "FILED",
            "ApplicationReceived": "RECEIVED",
            "ApplicationForwarded": "FORWARDED",
            "ApplicationAccepted": "ACCEPTED",
            "SupplementRequested": "SUPPLEMENT_REQUESTED",
            "ApplicationSupplemented": "ACCEPTED",
            "ApplicationCompleted": "COMPLETED",
            "ApplicationRejected": "REJECTED",
        }.get(e.name)
        if status:
            state["status"] = status
        if e.name == "ApplicationFiled":
            state["item_code"] = _s(f, "item_code")
            state["applicant_kind"] = f.get("applicant_kind", "")
        if f.get("due_date"):
            state["due_date"] = _s(f, "due_date")
        if e.name == "ApplicationOverdue":
            state["overdue"] = True
        if e.name == "ApplicationCompleted":
            state["on_time"] = bool(f.get("on_time"))
        return
    number = _s(f, "application_no")
    match e.name:
        case "ApplicationFiled":
            _set_add(state, "applications", number)
        case "ApplicationCompleted":
            _set_add(state, "completed", number)
        case "ApplicationRejected":
            _set_add(state, "rejected", number)
        case "ApplicationOverdue":
            _set_add(state, "overdue", number)


_PARTS: Mapping[str, Callable[[State, DomainEvent], None]] = {
    "safety": _safety_part,
    "industry": _industry_part,
    "kitchen": _kitchen_part,
    "commerce": _commerce_part,
    "govservice": _govservice_part,
}


def apply_part(kind: EntityKind, state: Mapping[str, Any], event: DomainEvent) -> State:
    """The part's new state after ``event`` (a copy; the input is left alone). Deterministic: it reads
    only the event and the state earlier events made."""
    new: State = dict(state)
    new["_kind"] = kind.value  # in place of any the input had: deleted below, the order of the rest kept
    step = _PARTS.get(event.domain)
    if step is not None:
        step(new, event)
    del new["_kind"]
    return new


def _count(state: Mapping[str, Any], key: str) -> str:
    value = state.get(key, [])
    return str(len(value) if isinstance(value, list | dict) else int(value))


def _joined(items: Iterable[str]) -> str:
    return ", ".join(items)


class _Facts:
    """Builds a part's facts from its state: values when present, counters when kept (``always``: shown as
    0 before the first event that would count)."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.state = state
        self.items: list[tuple[str, str]] = []

    def put(self, name: str, value: Any) -> None:
        if value not in (None, ""):
            self.items.append((name, _shown(value)))

    def value(self, *names: str) -> None:
        for name in names:
            self.put(name, self.state.get(name))

    def count(self, *names: str, always: bool = False) -> None:
        for name in names:
            if always or name in self.state:
                self.items.append((name, _count(self.state, name)))


def _safety_facts(kind: str, f: _Facts) -> None:
    del kind
    f.value("site_kind")
    f.count("sensors", "alerts_raised")
    f.count("open_alerts", always=True)
    f.value("last_risk_level")
    f.count("joint_responses", "inspections")


def _industry_facts(kind: str, f: _Facts) -> None:
    if kind == EntityKind.PARK:
        f.count("enterprises", "devices")
        return
    f.value("sector", "park_id")
    f.count("devices", always=True)
    f.count("device_alerts_raised")
    f.count("open_device_alerts", always=True)
    f.value("last_device_state")
    f.count("orders", "late_orders")
    if f.state.get("utilisation_hour"):
        f.value("utilisation_hour", "last_availability", "last_performance", "last_quality", "last_oee")


def _kitchen_facts(kind: str, f: _Facts) -> None:
    if kind != EntityKind.KITCHEN:
        # The school of a kitchen, or its operator: which kitchens.
        f.put("kitchens", _joined(f.state.get("kitchens", [])))
        return
    f.value("operator_kind")
    f.count("meals_per_day")
    f.count("meals_served", always=True)
    f.count("servings")
    f.count("open_violations", always=True)
    f.count("cold_chain_alerts")
    f.count("open_cold_chain_alerts", always=True)
    f.count("morning_checks_failed", "equipment_offline", "equipment_violations")
    f.count("deliveries_received", "deliveries_refused", "staff")
    if f.state.get("ratings"):
        f.put("average_rating", round(f.state.get("rating_total", 0) / f.state["ratings"], 2))
    f.value("last_inspection_result")


def _commerce_facts(kind: str, f: _Facts) -> None:
    if kind == EntityKind.ENTERPRISE:
        book: Mapping[str, str] = f.state.get("memberships", {})
        f.put("chambers", str(sum(1 for s in book.values() if s == "APPROVED")))
        f.put("membership_status", _joined(f"{c}: {s}" for c, s in book.items()))
        f.value("sector")
    else:
        f.value("chamber_kind", "sector")
        members: Mapping[str, str] = f.state.get("members", {})
        if members:
            f.put("members", str(sum(1 for s in members.values() if s == "APPROVED")))
            f.put("membership_requests", str(sum(1 for s in members.values() if s == "APPLIED")))
        f.count("activities")
    f.count("attendances", "member_codes_issued", "matches", "open_service_requests")
    f.count("overdue_service_requests", "service_requests_resolved", "courses_completed")


def _govservice_facts(kind: str, f: _Facts) -> None:
    if kind == EntityKind.APPLICATION:
        f.value("status", "item_code", "applicant_kind", "due_date")
        if "on_time" in f.state:
            f.put("on_time", bool(f.state["on_time"]))
        if f.state.get("overdue"):
            f.put("overdue", True)
        return
    f.items.append(("applications_filed", _count(f.state, "applications")))
    f.items.append(("applications_completed", _count(f.state, "completed")))
    if "rejected" in f.state:
        f.items.append(("applications_rejected", _count(f.state, "rejected")))
    if "overdue" in f.state:
        f.items.append(("applications_overdue", _count(f.state, "overdue")))


_FACTS: Mapping[str, Callable[[str, _Facts], None]] = {
    "safety": _safety_facts,
    "industry": _industry_facts,
    "kitchen": _kitchen_facts,
    "commerce": _commerce_facts,
    "govservice": _govservice_facts,
}


def facts_of(kind: str, domain: str, state: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The facts a part shows, computed from its state, in a fixed order."""
    facts = _Facts(state)
    step = _FACTS.get(domain)
    if step is not None:
        step(kind, facts)
    return facts.items


# ---------------------------------------------------------------------------------------------------
# Visibility

# The scope kind (api.scopes_of) that holds an entity of each kind directly.
SCOPE_OF_KIND: Mapping[EntityKind, str] = {
    EntityKind.SITE: "site",
    EntityKind.KITCHEN: "kitchen",
    EntityKind.CHAMBER: "chamber",
    EntityKind.ENTERPRISE: "enterprise",
    EntityKind.REGION: "region",
}


def region_prefix(code: str) -> str:
    """GB/T 2260 nesting: 520000 covers 52xxxx, 522600 covers 5226xx, 522632 only itself."""
    prefix = code
    while len(prefix) > 2 and prefix.endswith("00"):
        prefix = prefix[:-2]
    return prefix


def region_covers(scope_code: str, code: str) -> bool:
    return bool(scope_code) and bool(code) and code.startswith(region_prefix(scope_code))


def held(scopes: Mapping[str, frozenset[str]], kind: str, id_: str, regions: Iterable[str] = ()) -> bool:
    """Whether the caller's scopes hold the entity itself: its own scope, a region covering it, or (an
    application) a region covering where it was filed or is handled (``regions``)."""
    if kind == EntityKind.APPLICATION:
        codes = scopes.get("region", frozenset())
        return any(region_covers(s, r) for s in codes for r in regions)
    if kind == EntityKind.REGION:
        return any(region_covers(s, id_) for s in scopes.get("region", frozenset()))
    scope = SCOPE_OF_KIND.get(EntityKind(kind)) if kind in EntityKind.__members__ else None
    return scope is not None and id_ in scopes.get(scope, frozenset())


# ---------------------------------------------------------------------------------------------------
# Search and distance

SCORE_EXACT = 1.0
SCORE_PREFIX = 0.8
SCORE_SUBSTRING = 0.5


def search_score(query: str, id_: str, name: str) -> float | None:
    """An exact id or code first, then a prefix of the name or id, then a substring; case-insensitive.
    None: no match. (The repository computes the same ranking in SQL.)"""
    q = query.strip().lower()
    if not q:
        return None
    lid, lname = id_.lower(), name.lower()
    if lid == q:
        return SCORE_EXACT
    if lname.startswith(q) or lid.startswith(q):
        return SCORE_PREFIX
    if q in lname or q in lid:
        return SCORE_SUBSTRING
    return None


EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two WGS-84 points (mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing every point within ``radius_m`` (a prefilter)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    cos = math.cos(math.radians(lat))
    dlon = 180.0 if cos < 1e-9 else min(180.0, math.degrees(radius_m / (EARTH_RADIUS_M * cos)))
    return max(-90.0, lat - dlat), min(90.0, lat + dlat), lon - dlon, lon + dlon


# ---------------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True, slots=True)
class EntityKey:
    kind: EntityKind
    id: str


@dataclass(frozen=True, slots=True)
class SearchCommand:
    query: str
    kinds: tuple[str, ...]
    town: str
    page_size: int
    page_token: str
    # Problems found while reading the request (an unknown kind), reported with the rest.
    problems: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        v = Violations()
        for path, problem in self.problems:
            v.add(path, problem)
        q = self.query.strip()
        if not q:
            v.add("query", "is required")
        elif len(self.query) > 100:
            v.add("query", "must be at most 100 characters")
        if len(self.town) > 100:
            v.add("town", "must be at most 100 characters")
        v.check()


@dataclass(frozen=True, slots=True)
class NearCommand:
    latitude: float
    longitude: float
    radius_m: float
    kinds: tuple[str, ...]
    limit: int
    has_center: bool = True
    problems: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        v = Violations()
        for path, problem in self.problems:
            v.add(path, problem)
        if not self.has_center:
            v.add("center", "is required")
        else:
            if not (math.isfinite(self.latitude) and -90.0 <= self.latitude <= 90.0):
                v.add("center.latitude", "must be between -90 and 90")
            if not (math.isfinite(self.longitude) and -180.0 <= self.longitude <= 180.0):
                v.add("center.longitude", "must be between -180 and 180")
        if not (math.isfinite(self.radius_m) and 1.0 <= self.radius_m <= 50_000.0):
            v.add("radius_meters", "must be between 1 and 50000")
        if self.limit < 0 or self.limit > 500:
            v.add("limit", "must be between 0 (default 50) and 500")
        v.check()


@dataclass(frozen=True, slots=True)
class TimelineCommand:
    kind: str
    id: str
    domains: tuple[str, ...]
    kinds: tuple[str, ...]
    start: datetime | None
    end: datetime | None
    page_size: int
    page_token: str
    problems: tuple[tuple[str, str], ...] = field(default=())

    def check(self) -> None:
        v = Violations()
        for path, problem in self.problems:
            v.add(path, problem)
        for i, domain in enumerate(self.domains):
            if domain not in DOMAIN_ORDER:
                v.add(f"domains[{i}]", f"must be one of {', '.join(DOMAIN_ORDER)}")
        for i, kind in enumerate(self.kinds):
            if not kind or len(kind) > 200:
                v.add(f"kinds[{i}]", "must be an event type name of 1-200 characters")
        if self.start is not None and self.end is not None and self.end <= self.start:
            v.add("period.end_time", "must be after period.start_time")
        v.check()
