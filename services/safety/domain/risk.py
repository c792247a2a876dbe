"""Risk assessment: what the detections at one site within a window, the matched persons' risk flags and
their hazardous purchases of the last 30 days add up to. Pure functions, tested case by case.

The rules are a weighted score with named weights and thresholds, so a reviewer can read (and a district
can tune) exactly why a situation came out at the level it did:

- each kind of behaviour seen counts once, however often it was seen (a second camera seeing the same
  breach is not a second breach), with one reason per zone or weapon;
- a person's flags and purchases count only when that person was matched by face with enough
  confidence in the window: being on record is not a danger, being on record *and at the school* is;
- a vehicle match links a person too (the plate is a recorded vehicle of concern, or the gateway named the
  owner), but the car identifies the car, not the driver: the owner's record then counts at
  ``VEHICLE_LINK_PERCENT`` of its weight. A person linked by face and by car counts once, in full;
- a purchase counts when it was made in the 30 days before the assessment, once per kind of item per
  person (the latest one, whose age the reason states);
- detections below ``MIN_CONFIDENCE`` are ignored as noise.

Reasons are short human sentences in a stable order (behaviour, then who, then what they bought): they
are what the duty room reads first. They name behaviour, zones and *categories* ("psychiatric history",
"bought loose petrol 3 days ago"), never a name or an identity number.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.safety.domain.model import DetectionKind, HazardousItem, RiskFlag, RiskLevel

__all__ = [
    "ALERT_FROM",
    "BEHAVIOUR_WEIGHTS",
    "CRITICAL_FROM",
    "ELEVATED_FROM",
    "FACE_MATCH_MIN_CONFIDENCE",
    "FLAG_WEIGHTS",
    "HIGH_FROM",
    "MIN_CONFIDENCE",
    "PURCHASE_LOOKBACK",
    "PURCHASE_WEIGHTS",
    "VEHICLE_LINK_PERCENT",
    "VEHICLE_MATCH_MIN_CONFIDENCE",
    "Assessment",
    "Observation",
    "PersonProfile",
    "PurchaseFact",
    "assess",
    "level_for",
    "panic_assessment",
    "raises_alert",
]

# --- weights and thresholds -------------------------------------------------------------------------

BEHAVIOUR_WEIGHTS: Mapping[DetectionKind, int] = {
    DetectionKind.PERIMETER_BREACH: 30,
    DetectionKind.WEAPON: 35,
    DetectionKind.VEHICLE_MATCH: 15,
    DetectionKind.LOITERING: 10,
    DetectionKind.CROWDING: 10,
    # Being recognised is little in itself; it is what brings the person's flags and purchases in.
    DetectionKind.FACE_MATCH: 10,
}
FLAG_WEIGHTS: Mapping[RiskFlag, int] = {
    RiskFlag.THREATS_MADE: 30,
    RiskFlag.PSYCHIATRIC_HISTORY: 25,
    RiskFlag.PRIOR_VIOLENCE: 25,
    RiskFlag.SUBSTANCE_ABUSE: 10,
}
PURCHASE_WEIGHTS: Mapping[HazardousItem, int] = {
    HazardousItem.LOOSE_PETROL: 30,
    HazardousItem.TOXIC_CHEMICAL: 30,
    HazardousItem.CONTROLLED_KNIFE: 25,
    HazardousItem.GAS_CYLINDER: 15,
    HazardousItem.FIREWORKS: 10,
}
# Score from which each level starts (below ELEVATED_FROM: low).
ELEVATED_FROM = 20
HIGH_FROM = 50
CRITICAL_FROM = 80
# High and above raise an alert that reaches the duty room at once.
ALERT_FROM = RiskLevel.HIGH
MIN_CONFIDENCE = 0.5
FACE_MATCH_MIN_CONFIDENCE = 0.8
VEHICLE_MATCH_MIN_CONFIDENCE = 0.8
# How much of a person's record (flags and purchases) a vehicle match brings in, against a face match's
# 100: whoever drives the car may not be its owner. At 70 a car alone raises an alert (15 + 0.7 x record
# >= 50) when the owner's record weighs 50 or more (a flag and a hazardous purchase, or two grave flags);
# a face does at 40 (10 + record >= 50). See the table in docs/services/safety.md.
VEHICLE_LINK_PERCENT = 70
PURCHASE_LOOKBACK = timedelta(days=30)

# The order reasons are listed in: what is happening, before who it is, before what they bought.
_BEHAVIOUR_ORDER = (
    DetectionKind.PERIMETER_BREACH,
    DetectionKind.WEAPON,
    DetectionKind.VEHICLE_MATCH,
    DetectionKind.LOITERING,
    DetectionKind.CROWDING,
    DetectionKind.FACE_MATCH,
)
_FLAG_ORDER = tuple(RiskFlag)
_FLAG_TEXT: Mapping[RiskFlag, str] = {
    RiskFlag.PSYCHIATRIC_HISTORY: "psychiatric history",
    RiskFlag.PRIOR_VIOLENCE: "prior violence",
    RiskFlag.THREATS_MADE: "has made threats",
    RiskFlag.SUBSTANCE_ABUSE: "substance abuse",
}
_ITEM_TEXT: Mapping[HazardousItem, str] = {
    HazardousItem.LOOSE_PETROL: "loose petrol",
    HazardousItem.CONTROLLED_KNIFE: "a controlled knife",
    HazardousItem.TOXIC_CHEMICAL: "a toxic chemical",
    HazardousItem.FIREWORKS: "fireworks",
    HazardousItem.GAS_CYLINDER: "a gas cylinder",
}


@dataclass(frozen=True, slots=True)
class Observation:
    """A detection as the rules see it."""

    kind: DetectionKind
    zone: str
    detected_at: datetime
    confidence: float
    label: str = ""
    # FACE_MATCH: the person recognised. VEHICLE_MATCH: the person the gateway links the car to, if any.
    person_token: str = ""
    # VEHICLE_MATCH: the token of the plate read (matched against ``vehicle_owners`` in :func:`assess`).
    vehicle_token: str = ""


@dataclass(frozen=True, slots=True)
class PurchaseFact:
    item: HazardousItem
    purchased_at: datetime


@dataclass(frozen=True, slots=True)
class PersonProfile:
    """What is on record about a person of concern (decrypted inside the service only)."""

    person_token: str
    flags: frozenset[RiskFlag]
    purchases: tuple[PurchaseFact, ...] = ()


@dataclass(frozen=True, slots=True)
class Assessment:
    level: RiskLevel
    score: int
    reasons: tuple[str, ...]
    # Kinds of the detections that counted, in reason order.
    detection_kinds: tuple[DetectionKind, ...]
    # Persons matched with enough confidence (by face first, then by vehicle), in first-seen order.
    person_tokens: tuple[str, ...]
    # Flag categories that counted (for events: categories only, no other health detail).
    flag_categories: tuple[RiskFlag, ...]

    @property
    def raises_alert(self) -> bool:
        return raises_alert(self.level)


def level_for(score: int) -> RiskLevel:
    if score >= CRITICAL_FROM:
        return RiskLevel.CRITICAL
    if score >= HIGH_FROM:
        return RiskLevel.HIGH
    if score >= ELEVATED_FROM:
        return RiskLevel.ELEVATED
    return RiskLevel.LOW


def raises_alert(level: RiskLevel) -> bool:
    return level.at_least(ALERT_FROM)


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def _with_article(label: str) -> str:
    text = " ".join(label.strip().lower().split())
    if not text:
        return "a weapon"
    first = text.split(" ", 1)[0]
    if first in {"a", "an", "the", "two", "several", "some"} or text.endswith("s"):
        return text
    return f"an {text}" if text[0] in "aeiou" else f"a {text}"


def _behaviour_reasons(
    kind: DetectionKind, seen: Sequence[Observation], linked_zones: Collection[str]
) -> list[str]:
    zones = _unique(o.zone for o in seen)
    if kind is DetectionKind.PERIMETER_BREACH:
        return [f"perimeter breach at {zone}" for zone in zones]
    if kind is DetectionKind.WEAPON:
        return [f"carrying {_with_article(label)}" for label in _unique(o.label for o in seen)]
    if kind is DetectionKind.VEHICLE_MATCH:
        return [
            f"vehicle of a person of concern at {zone}"
            if zone in linked_zones
            else f"vehicle of concern at {zone}"
            for zone in zones
        ]
    if kind is DetectionKind.LOITERING:
        return [f"loitering at {zone}" for zone in zones]
    if kind is DetectionKind.CROWDING:
        return [f"crowding at {zone}" for zone in zones]
    return [f"person of concern recognised at {zone}" for zone in zones]


def _age_text(purchased_at: datetime, at: datetime) -> str:
    days = max(0, (at - purchased_at) // timedelta(days=1))
    if days == 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def _vehicle_links(
    seen: Sequence[Observation], owners: Mapping[str, str], persons: Mapping[str, PersonProfile]
) -> list[tuple[str, str]]:
    """(zone, person token) for every confident vehicle match linked to a person on record: the owner of
    the recorded plate, and the person the gateway named."""
    return [
        (o.zone, token)
        for o in seen
        if o.confidence >= VEHICLE_MATCH_MIN_CONFIDENCE
        for token in (o.person_token, owners.get(o.vehicle_token, "") if o.vehicle_token else "")
        if token and token in persons
    ]


def _record_points(profile: PersonProfile, at: datetime) -> tuple[int, list[RiskFlag], list[str]]:
    """What a person's record weighs at ``at``: the flags, and the latest purchase of each item within
    ``PURCHASE_LOOKBACK`` (heaviest first), with their reasons."""
    flags = [flag for flag in _FLAG_ORDER if flag in profile.flags]
    points = sum(FLAG_WEIGHTS[flag] for flag in flags)
    latest: dict[HazardousItem, datetime] = {}
    for purchase in profile.purchases:
        if at - PURCHASE_LOOKBACK <= purchase.purchased_at <= at:
            previous = latest.get(purchase.item)
            if previous is None or purchase.purchased_at > previous:
                latest[purchase.item] = purchase.purchased_at
    purchases: list[str] = []
    for item in sorted(latest, key=lambda i: (-PURCHASE_WEIGHTS[i], i.value)):
        points += PURCHASE_WEIGHTS[item]
        purchases.append(f"bought {_ITEM_TEXT[item]} {_age_text(latest[item], at)}")
    return points, flags, purchases


def assess(
    observations: Iterable[Observation],
    persons: Mapping[str, PersonProfile],
    at: datetime,
    vehicle_owners: Mapping[str, str] | None = None,
) -> Assessment:
    """The risk at one site at ``at``, from the detections in its window and the matched persons' records.

    ``persons`` may hold more people than were matched; only those face-matched here with at least
    ``FACE_MATCH_MIN_CONFIDENCE``, or linked to a vehicle matched with at least
    ``VEHICLE_MATCH_MIN_CONFIDENCE`` (``vehicle_owners``: vehicle token -> person token, or the
    detection's own person token), count; a person linked only by vehicle counts at
    ``VEHICLE_LINK_PERCENT``. Purchases after ``at`` or older than ``PURCHASE_LOOKBACK`` do not count.
    """
    owners = vehicle_owners or {}
    usable = [o for o in observations if o.confidence >= MIN_CONFIDENCE]
    by_kind: dict[DetectionKind, list[Observation]] = {}
    for observation in sorted(usable, key=lambda o: o.detected_at):
        by_kind.setdefault(observation.kind, []).append(observation)

    faces = _unique(
        o.person_token
        for o in by_kind.get(DetectionKind.FACE_MATCH, ())
        if o.person_token and o.confidence >= FACE_MATCH_MIN_CONFIDENCE
    )
    vehicle_links = _vehicle_links(by_kind.get(DetectionKind.VEHICLE_MATCH, ()), owners, persons)
    linked_zones = {zone for zone, _ in vehicle_links}

    score = 0
    reasons: list[str] = []
    kinds: list[DetectionKind] = []
    for kind in _BEHAVIOUR_ORDER:
        seen = by_kind.get(kind)
        if not seen:
            continue
        score += BEHAVIOUR_WEIGHTS[kind]
        kinds.append(kind)
        reasons.extend(_behaviour_reasons(kind, seen, linked_zones))

    # A person's record counts once: in full when the face was seen, reduced when only the car was.
    matched = _unique([*faces, *(token for _, token in vehicle_links)])
    flags_counted: list[RiskFlag] = []
    purchase_reasons: list[str] = []
    for token in matched:
        profile = persons.get(token)
        if profile is None:
            continue
        points, flags, purchases = _record_points(profile, at)
        score += points if token in faces else points * VEHICLE_LINK_PERCENT // 100
        flags_counted.extend(flag for flag in flags if flag not in flags_counted)
        purchase_reasons.extend(purchases)
    reasons.extend(_FLAG_TEXT[flag] for flag in flags_counted)
    reasons.extend(_unique(purchase_reasons))
    return Assessment(
        level=level_for(score),
        score=score,
        reasons=tuple(_unique(reasons)),
        detection_kinds=tuple(kinds),
        person_tokens=tuple(matched),
        flag_categories=tuple(flags_counted),
    )


def panic_assessment(zone: str) -> Assessment:
    """The one-click alarm: a person on site says it is an emergency, so it is critical at once.

    The presser's note stays in the alert's timeline, not in the reasons: reasons travel in events and
    free text typed in a hurry may name someone."""
    where = f" at {zone}" if zone else ""
    return Assessment(
        level=RiskLevel.CRITICAL,
        score=CRITICAL_FROM,
        reasons=(f"one-click alarm pressed{where}",),
        detection_kinds=(),
        person_tokens=(),
        flag_categories=(),
    )
