"""The alert inbox's rules, pure: the one severity scale and the per-kind mapping for events that carry
none, the one lifecycle, the dedup window, the escalation schedule, the correlation reasons, and the
commands of the inbox RPCs with their checks.

How the inbox reads the domains (the projection applies these rules; mapping/inbox.py reads the events):

- One item per (subject, kind) and dedup bucket: time is cut into fixed buckets of ``dedup_window``
  (counted from the Unix epoch) and every occurrence of a (subject, kind) in one bucket is one item, its
  id derived from (subject kind, subject id, kind, bucket start). Why fixed buckets and not a window
  anchored at the first occurrence: alerts of one subject come from different partitions (a site's alerts
  are keyed by alert id, an enterprise's by device), so which occurrence is "first" depends on the order
  they arrive in, and live consumption and a replay would cut different items. A bucket depends only on
  the occurrence's own time. The trade-off: repeats straddling a bucket boundary (10:59 and 11:01 with a
  one-hour window) make two items, and an occurrence with a domain id already in an item of an earlier
  bucket (a safety alert updated two hours on) makes a new item of its bucket.
- Every item's state is recomputed from the facts recorded about it (:func:`item_state`): its
  occurrences, what the owning domain said about its sources, the hub's own acknowledgements,
  resolutions and escalation rounds — each a set, so the item is the same whatever order they came in
  (an acknowledgement arriving before the alert it acknowledges included).
- Every domain id behind an item is a *source* with its own state: a domain's clearing event (device
  recovered, cold chain back in range, violation verified, request resolved, application completed)
  clears its source, and the item is resolved once every source of it is cleared.
- Safety keeps the lifecycle of its alerts: the item follows safety's AlertAcknowledged (any of its
  alerts acknowledged → acknowledged) and AlertResolved (all resolved → resolved); the hub never resolves
  a safety item itself and acknowledges one by asking safety.
- An item resolved in the hub (InboxItemResolved) that occurs again after the resolution is open again
  (the resolution covers the occurrences up to its time); one resolved by its domain is open again when a
  new, uncleared source joins it. An acknowledgement is kept (an acknowledged item repeats acknowledged).
- Incidents are the connected components of items under "correlated": the same subject, linked subjects
  or subjects within the distance, opened within the correlation window of each other, the earlier one
  not resolved before the later one opened (:func:`may_correlate`). The id derives from the earliest
  member (opened_at, then item id), the reasons are sorted: a function of the items and the entities'
  links, recomputed whenever an item or a link changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services.platform.errors import Violations
from services.platform.validation import check_query_period

__all__ = [
    "DEFAULT_SEVERITY",
    "DOMAIN_OF",
    "LIFECYCLE_IN_DOMAIN",
    "MAX_FILTER_VALUES",
    "AcknowledgeItem",
    "Action",
    "EscalationFact",
    "FilterInput",
    "GetItem",
    "InboxFilter",
    "InboxItem",
    "Incident",
    "ItemAction",
    "ItemChange",
    "ItemKind",
    "ItemState",
    "ItemStatus",
    "ListIncidents",
    "ListItems",
    "Occurrence",
    "OccurrenceFact",
    "Raised",
    "ResolveItem",
    "Severity",
    "SourceAcknowledged",
    "SourceCleared",
    "SourceSignal",
    "bucket_start",
    "distance_m",
    "distance_reason",
    "escalated_severity",
    "higher",
    "incident_key",
    "item_state",
    "latitude_band",
    "link_reason",
    "may_correlate",
    "next_escalation",
    "same_subject_reason",
    "severity_of",
]

MAX_FILTER_VALUES = 100
# Reasons shown for a distance are rounded UP to this step: "within 620 m" stays true of the pair.
_DISTANCE_STEP_M = 10
_EARTH_RADIUS_M = 6_371_008.8


class Severity(StrEnum):
    """The one scale (common.v1.Severity), in rising order."""

    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {s: i for i, s in enumerate(Severity)}


class ItemKind(StrEnum):
    SAFETY_ALERT = "SAFETY_ALERT"
    DEVICE_FAULT = "DEVICE_FAULT"
    DEVICE_SILENT = "DEVICE_SILENT"
    COLD_CHAIN = "COLD_CHAIN"
    MORNING_CHECK_FAILED = "MORNING_CHECK_FAILED"
    KITCHEN_VIOLATION = "KITCHEN_VIOLATION"
    APPLICATION_OVERDUE = "APPLICATION_OVERDUE"
    SERVICE_REQUEST_OVERDUE = "SERVICE_REQUEST_OVERDUE"
    EQUIPMENT_OFFLINE = "EQUIPMENT_OFFLINE"


class ItemStatus(StrEnum):
    """OPEN → ACKNOWLEDGED → RESOLVED (an item may also be resolved straight from OPEN by its domain)."""

    OPEN = "OPEN"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"


DOMAIN_OF: Mapping[ItemKind, str] = {
    ItemKind.SAFETY_ALERT: "safety",
    ItemKind.DEVICE_FAULT: "industry",
    ItemKind.DEVICE_SILENT: "industry",
    ItemKind.COLD_CHAIN: "kitchen",
    ItemKind.MORNING_CHECK_FAILED: "kitchen",
    ItemKind.KITCHEN_VIOLATION: "kitchen",
    ItemKind.EQUIPMENT_OFFLINE: "kitchen",
    ItemKind.APPLICATION_OVERDUE: "govservice",
    ItemKind.SERVICE_REQUEST_OVERDUE: "commerce",
}

# Kinds whose owning domain keeps the lifecycle: acknowledged there, resolved only by its event.
LIFECYCLE_IN_DOMAIN = frozenset({ItemKind.SAFETY_ALERT})

# The severity of an item whose event carries none (safety and industry events carry their own; these
# are also their fallbacks when a producer leaves it unspecified). Why each:
DEFAULT_SEVERITY: Mapping[ItemKind, Severity] = {
    # A person or a place at risk: safety's own scale starts alerts at high.
    ItemKind.SAFETY_ALERT: Severity.HIGH,
    # A machine stopped in fault costs output, not safety.
    ItemKind.DEVICE_FAULT: Severity.MEDIUM,
    # A silent box means figures are missing, nothing worse is known.
    ItemKind.DEVICE_SILENT: Severity.LOW,
    # Food for children kept out of range: it may be served before anyone looks.
    ItemKind.COLD_CHAIN: Severity.HIGH,
    # The staff member is already barred from the shift: the risk is handled, the kitchen may be short.
    ItemKind.MORNING_CHECK_FAILED: Severity.MEDIUM,
    # Hygiene violations (captures, short disinfection cycles) need rectifying the same day.
    ItemKind.KITCHEN_VIOLATION: Severity.MEDIUM,
    # A unit nobody is monitoring may be out of range unseen.
    ItemKind.EQUIPMENT_OFFLINE: Severity.MEDIUM,
    # Late paperwork: a citizen or an enterprise waits, nobody is at risk.
    ItemKind.APPLICATION_OVERDUE: Severity.LOW,
    ItemKind.SERVICE_REQUEST_OVERDUE: Severity.LOW,
}


def severity_of(kind: ItemKind, given: Severity | None) -> Severity:
    """The domain's severity when its event has one, else the documented default of the kind."""
    return given if given is not None else DEFAULT_SEVERITY[kind]


def higher(a: Severity, b: Severity) -> Severity:
    return a if a.rank >= b.rank else b


def escalated_severity(severity: Severity) -> Severity:
    """One level up, capped at CRITICAL."""
    levels = list(Severity)
    return levels[min(severity.rank + 1, len(levels) - 1)]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def bucket_start(at: datetime, window: timedelta) -> datetime:
    """The start of the fixed dedup bucket ``at`` falls in: buckets of ``window`` counted from the Unix
    epoch, in whole microseconds (exact, no float rounding), so every replica and a replay agree."""
    width = max(window // _MICRO, 1)
    offset = (at - _EPOCH) // _MICRO
    return _EPOCH + (offset // width) * width * _MICRO


def next_escalation(
    opened_at: datetime,
    deadline: timedelta,
    reminder: timedelta,
    last_round: int,
    last_at: datetime | None,
) -> tuple[int, datetime]:
    """The next round to publish for an unacknowledged item and when it is due: round 1 at ``opened_at +
    deadline``, then each reminder ``reminder`` after the previous round was published (so a hub that was
    down sends one late reminder, not a burst of the ones it missed)."""
    if last_round <= 0 or last_at is None:
        return 1, opened_at + deadline
    return last_round + 1, last_at + reminder


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine on the mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def latitude_band(latitude: float, distance_m: float) -> int:
    """Which band of latitude a point is in, bands a little taller than ``distance_m``: two points within
    ``distance_m`` of each other (:func:`distance_m`) are in the same band or in neighbouring ones, since a
    great-circle distance is never shorter than the difference of latitudes alone (R·|Δφ|)."""
    # 111,000 m per degree is less than R·π/180 (111,195 m): a band spans a little more than the distance.
    return math.floor(latitude / (max(distance_m, 1.0) / 111_000.0))


def distance_reason(metres: float) -> str:
    """e.g. "within 620 m" (rounded up to 10 m)."""
    shown = max(_DISTANCE_STEP_M, math.ceil(metres / _DISTANCE_STEP_M) * _DISTANCE_STEP_M)
    return f"within {shown} m"


# How a link reads, from its "from" end to its "to" end (relations the entities family records).
_RELATION_PHRASE: Mapping[str, str] = {
    "kitchen_of_site": "of",
    "operator_of_kitchen": "operating",
    "in_park": "in",
    "member_of_chamber": "member of",
    "applicant_of": "applicant of",
}


def _label(kind: str, name: str, entity_id: str) -> str:
    return f"{kind.lower()} {name or entity_id}"


def link_reason(relation: str, source: tuple[str, str, str], target: tuple[str, str, str]) -> str:
    """How a link (``source`` -relation-> ``target``, each (kind, id, name)) reads, e.g. "kitchen Sunrise
    Kitchen of site No. 3 Primary School"."""
    phrase = _RELATION_PHRASE.get(relation, f"linked ({relation}) to")
    return f"{_label(source[0], source[2], source[1])} {phrase} {_label(target[0], target[2], target[1])}"


def same_subject_reason(kind: str, entity_id: str, name: str) -> str:
    return f"both at {_label(kind, name, entity_id)}"


# --- what the domains' events mean to the inbox (mapping/inbox.py builds these) ------------------------


@dataclass(frozen=True, slots=True)
class Raised:
    """An alert-like event: opens an item or repeats one."""

    kind: ItemKind
    severity: Severity
    subject_kind: str
    subject_id: str
    # The owning domain's id of what was raised (alert id, violation id, ...): "" when it has none.
    source_id: str
    at: datetime
    title: str
    summary: str


@dataclass(frozen=True, slots=True)
class SourceAcknowledged:
    """The owning domain acknowledged one source of an item (safety's AlertAcknowledged)."""

    kind: ItemKind
    source_id: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SourceCleared:
    """The owning domain closed one source of an item (cleared, verified, resolved, completed)."""

    kind: ItemKind
    source_id: str
    at: datetime


# --- the inbox's own state ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboxItem:
    item_id: str
    kind: ItemKind
    severity: Severity
    effective_severity: Severity
    status: ItemStatus
    subject_kind: str
    subject_id: str
    domain: str
    title: str
    opened_at: datetime
    last_occurred_at: datetime
    occurrence_count: int
    source_id: str = ""
    escalated: bool = False
    escalation_round: int = 0
    incident_id: str = ""
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
    resolved_at: datetime | None = None
    resolved_by: str = ""
    # From the entities family at read time (the entity may be heard of after the item opened).
    subject_name: str = ""
    town: str = ""


@dataclass(frozen=True, slots=True)
class Occurrence:
    event_id: str
    at: datetime
    summary: str
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    item_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    opened_at: datetime
    severity: Severity
    town: str = ""


class ItemChange(StrEnum):
    """What happened to an item (the watch feed's notification)."""

    OPENED = "opened"
    REPEATED = "repeated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    CORRELATED = "correlated"


# --- the facts an item is computed from ---------------------------------------------------------------


class Action(StrEnum):
    ACKNOWLEDGED = "ACKNOWLEDGED"
    RESOLVED = "RESOLVED"
    CLEARED = "CLEARED"


@dataclass(frozen=True, slots=True)
class OccurrenceFact:
    event_id: str
    at: datetime
    severity: Severity
    source_id: str = ""


@dataclass(frozen=True, slots=True)
class SourceSignal:
    """The owning domain acknowledged (ACKNOWLEDGED) or closed (CLEARED) one source."""

    source_id: str
    signal: Action
    at: datetime
    by: str = ""
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class ItemAction:
    """The hub's own InboxItemAcknowledged (ACKNOWLEDGED) or InboxItemResolved (RESOLVED)."""

    event_id: str
    action: Action
    at: datetime
    by: str = ""


@dataclass(frozen=True, slots=True)
class EscalationFact:
    round: int
    severity: Severity
    at: datetime


@dataclass(frozen=True, slots=True)
class ItemState:
    """Everything of an item's row that its facts decide."""

    severity: Severity
    effective_severity: Severity
    status: ItemStatus
    opened_at: datetime
    last_occurred_at: datetime
    occurrence_count: int
    source_id: str
    escalated: bool
    escalation_round: int
    acknowledged_at: datetime | None
    acknowledged_by: str
    resolved_at: datetime | None
    resolved_by: str


def item_state(
    domain: str,
    occurrences: Sequence[OccurrenceFact],
    signals: Sequence[SourceSignal],
    actions: Sequence[ItemAction],
    escalations: Sequence[EscalationFact],
) -> ItemState:
    """An item's state from the facts about it — a function of the sets, never of their order:

    - opened at its earliest occurrence (then event id), whose source id it shows; last occurred at the
      latest; the severity the highest of its occurrences'.
    - escalated when a round was published: the round the highest, the effective severity one level above
      the severity (or the highest round's, if higher).
    - resolved by its domain when every source of it is cleared (at the last of the clearings, by the
      domain), or by the hub's InboxItemResolved made at or after its last occurrence (the earliest such);
      of the two the earlier.
    - acknowledged by the earliest acknowledgement (the hub's, or the domain's of one of its sources) made
      no later than the resolution.
    """
    if not occurrences:
        raise ValueError("an item has at least one occurrence")
    ordered = sorted(occurrences, key=lambda o: (o.at, o.event_id))
    first, last_at = ordered[0], max(o.at for o in ordered)
    severity = max((o.severity for o in ordered), key=lambda s: s.rank)
    effective = severity
    escalated = bool(escalations)
    round_ = max((e.round for e in escalations), default=0)
    if escalated:
        effective = higher(
            escalated_severity(severity), max((e.severity for e in escalations), key=lambda s: s.rank)
        )
    sources = {o.source_id for o in ordered if o.source_id}
    cleared: dict[str, datetime] = {}
    for signal in signals:
        if signal.signal is Action.CLEARED and signal.source_id in sources:
            cleared[signal.source_id] = min(cleared.get(signal.source_id, signal.at), signal.at)
    resolutions: list[tuple[datetime, str]] = []
    if sources and set(cleared) == sources:
        resolutions.append((max(cleared.values()), domain))
    hub_resolved = sorted(
        (a.at, a.event_id, a.by) for a in actions if a.action is Action.RESOLVED and a.at >= last_at
    )
    if hub_resolved:
        resolutions.append((hub_resolved[0][0], hub_resolved[0][2]))
    resolved = min(resolutions) if resolutions else None
    acks = sorted(
        [(a.at, a.by) for a in actions if a.action is Action.ACKNOWLEDGED]
        + [(s.at, s.by) for s in signals if s.signal is Action.ACKNOWLEDGED and s.source_id in sources]
    )
    if resolved is not None:
        acks = [a for a in acks if a[0] <= resolved[0]]
    ack = acks[0] if acks else None
    status = ItemStatus.RESOLVED if resolved else ItemStatus.ACKNOWLEDGED if ack else ItemStatus.OPEN
    return ItemState(
        severity=severity,
        effective_severity=effective,
        status=status,
        opened_at=first.at,
        last_occurred_at=last_at,
        occurrence_count=len(ordered),
        source_id=first.source_id,
        escalated=escalated,
        escalation_round=round_,
        acknowledged_at=ack[0] if ack else None,
        acknowledged_by=ack[1] if ack else "",
        resolved_at=resolved[0] if resolved else None,
        resolved_by=resolved[1] if resolved else "",
    )


def may_correlate(a: InboxItem, b: InboxItem, window: timedelta) -> bool:
    """Whether two items are close enough in time to correlate (a reason is still needed): opened inside
    the same fixed ``window`` (:func:`bucket_start`, as dedup), and the earlier one not resolved before the
    later one opened.

    The same window, not merely within ``window`` of each other: correlation is transitive, and pairs
    within a window of each other chain — alerts every few minutes at neighbouring kitchens made one
    incident spanning days, and every new item recomputed all of it. Inside one window an incident is
    what the command centre means by one ("inside a window", issue 13), its size is bounded, and it is
    still a function of the set of items. The price is the bucket's edge: two related alerts a minute
    apart either side of it are two incidents."""
    if bucket_start(a.opened_at, window) != bucket_start(b.opened_at, window):
        return False
    early, late = sorted((a, b), key=incident_key)
    return early.resolved_at is None or early.resolved_at >= late.opened_at


def incident_key(item: InboxItem) -> tuple[datetime, str]:
    """The order of an incident's members: the earliest (opened_at, then item id) names the incident."""
    return (item.opened_at, item.item_id)


# --- commands ----------------------------------------------------------------------------------------

_DOMAINS = ("safety", "industry", "kitchen", "commerce", "govservice")


@dataclass(frozen=True, slots=True)
class InboxFilter:
    towns: frozenset[str] = frozenset()
    min_severity: Severity | None = None
    domains: frozenset[str] = frozenset()
    statuses: frozenset[ItemStatus] = frozenset()

    def matches(self, item: InboxItem) -> bool:
        if self.towns and item.town not in self.towns:
            return False
        if self.min_severity is not None and item.effective_severity.rank < self.min_severity.rank:
            return False
        if self.domains and item.domain not in self.domains:
            return False
        return not self.statuses or item.status in self.statuses


@dataclass(frozen=True, slots=True)
class FilterInput:
    """A filter as the request gave it (unknown enum values already None, so they can be named)."""

    towns: Sequence[str] = ()
    min_severity: Severity | None = None
    min_severity_set: bool = False
    domains: Sequence[str] = ()
    statuses: Sequence[ItemStatus | None] = ()

    def check(self, violations: Violations, path: str) -> InboxFilter:
        for name, values in (("towns", self.towns), ("domains", self.domains), ("statuses", self.statuses)):
            if len(values) > MAX_FILTER_VALUES:
                violations.add(f"{path}.{name}", f"at most {MAX_FILTER_VALUES} values")
        for i, town in enumerate(self.towns):
            if not town.strip():
                violations.add(f"{path}.towns[{i}]", "must not be empty")
        for i, domain in enumerate(self.domains):
            if domain not in _DOMAINS:
                violations.add(f"{path}.domains[{i}]", f"must be one of {', '.join(_DOMAINS)}")
        for i, status in enumerate(self.statuses):
            if status is None:
                violations.add(f"{path}.statuses[{i}]", "must be a status (not UNSPECIFIED)")
        if self.min_severity_set and self.min_severity is None:
            violations.add(f"{path}.min_severity", "is not a severity")
        return InboxFilter(
            towns=frozenset(self.towns),
            min_severity=self.min_severity,
            domains=frozenset(self.domains),
            statuses=frozenset(s for s in self.statuses if s is not None),
        )


@dataclass(frozen=True, slots=True)
class ListItems:
    filter: FilterInput
    page_size: int = 0
    page_token: str = ""

    def check(self) -> InboxFilter:
        violations = Violations()
        checked = self.filter.check(violations, "filter")
        violations.check()
        return checked


def _check_item_id(violations: Violations, item_id: str) -> None:
    if not item_id.strip():
        violations.add("item_id", "is required")
    elif len(item_id) > 128:
        violations.add("item_id", "at most 128 characters")


@dataclass(frozen=True, slots=True)
class GetItem:
    item_id: str

    def check(self) -> None:
        violations = Violations()
        _check_item_id(violations, self.item_id)
        violations.check()


@dataclass(frozen=True, slots=True)
class AcknowledgeItem:
    item_id: str
    note: str = ""
    by: str = ""

    def check(self) -> None:
        violations = Violations()
        _check_item_id(violations, self.item_id)
        if len(self.note) > 2000:
            violations.add("note", "at most 2000 characters")
        violations.check()


@dataclass(frozen=True, slots=True)
class ResolveItem:
    item_id: str
    note: str = ""
    by: str = ""

    def check(self) -> None:
        violations = Violations()
        _check_item_id(violations, self.item_id)
        if len(self.note) > 2000:
            violations.add("note", "at most 2000 characters")
        violations.check()


@dataclass(frozen=True, slots=True)
class ListIncidents:
    towns: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    page_size: int = 0
    page_token: str = ""

    def check(self) -> None:
        violations = Violations()
        if len(self.towns) > MAX_FILTER_VALUES:
            violations.add("towns", f"at most {MAX_FILTER_VALUES} values")
        for i, town in enumerate(self.towns):
            if not town.strip():
                violations.add(f"towns[{i}]", "must not be empty")
        check_query_period(violations, "period", self.start, self.end, required=False)
        violations.check()
