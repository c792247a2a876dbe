"""Business matching (供需对接): supply and demand posts, the explained match score, and the match's two
acceptances.

The score of a counterpart post is a weighted sum of four parts, each 0-1 and explained in one sentence
(docs/services/commerce.md, "Business matching"):

====================  ======  ====================================================================
factor                weight  value
====================  ======  ====================================================================
``category``          0.40    1.0 the same normalised category; 0.5 one contains the other; else 0 —
                              and a counterpart scoring 0 here is not a match at all
``distance``          0.25    by the posts' GB/T 2260 codes: 1.0 same county (all six digits), 0.6 same
                              city (first four), 0.3 same province (first two), else 0
``chamber_affinity``  0.20    1.0 the same chamber, 0.5 chambers under the same federation, else 0
``past_matches``      0.15    1.0 the two enterprises have been matched before, else 0
====================  ======  ====================================================================

Ranking: score descending (rounded to 6 decimals so equal parts always tie), then the counterpart's
``created_at`` (older first: it has waited longer), then its ``post_id``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code, invalid_division_code
from services.platform.validation import parse_date, text_problem

__all__ = [
    "CATEGORY_WEIGHT",
    "CHAMBER_WEIGHT",
    "DEFAULT_MATCH_LIMIT",
    "DISTANCE_WEIGHT",
    "MAX_MATCH_LIMIT",
    "PAST_MATCHES_WEIGHT",
    "AcceptMatch",
    "Candidate",
    "CreatePost",
    "ExpressInterest",
    "FindMatches",
    "ListMatches",
    "ListPosts",
    "Match",
    "MatchStatus",
    "Post",
    "PostKind",
    "RankedMatch",
    "ScorePart",
    "accept",
    "category_key",
    "category_part",
    "chamber_part",
    "distance_part",
    "explain",
    "is_open",
    "parse_date",
    "past_matches_part",
    "rank",
    "score_of",
    "side_posts",
    "supply_and_demand",
]

CATEGORY_WEIGHT = 0.40
DISTANCE_WEIGHT = 0.25
CHAMBER_WEIGHT = 0.20
PAST_MATCHES_WEIGHT = 0.15

DEFAULT_MATCH_LIMIT = 10
MAX_MATCH_LIMIT = 100
_MAX_CATEGORY = 200
_MAX_UNIT = 32
_MAX_DESCRIPTION = 2000
# Far beyond any trade volume in any unit: a larger figure is a typing mistake.
_MAX_QUANTITY = 1e12
# A post is a current offer: a validity further out than this is a typing mistake.
_MAX_VALIDITY_DAYS = 5 * 366
_SPACES = re.compile(r"\s+")


class PostKind(StrEnum):
    SUPPLY = "SUPPLY"
    DEMAND = "DEMAND"

    @property
    def opposite(self) -> PostKind:
        return PostKind.DEMAND if self is PostKind.SUPPLY else PostKind.SUPPLY


class MatchStatus(StrEnum):
    PROPOSED = "PROPOSED"
    MATCHED = "MATCHED"


@dataclass(frozen=True, slots=True)
class Post:
    post_id: str
    chamber_id: str
    membership_id: str
    credit_code: str
    kind: PostKind
    category: str
    division_code: str
    quantity: float
    unit: str
    description: str
    valid_until: date
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Match:
    match_id: str
    supply_post_id: str
    demand_post_id: str
    supply_credit_code: str
    demand_credit_code: str
    status: MatchStatus
    supply_accepted: bool
    demand_accepted: bool
    score: float
    proposed_at: datetime
    matched_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScorePart:
    factor: str
    value: float
    weight: float
    explanation: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """A counterpart post with what scoring it needs beyond the post itself."""

    post: Post
    federation_id: str
    chamber_name: str
    # The two enterprises were matched before (any MATCHED match between their credit codes).
    matched_before: bool


@dataclass(frozen=True, slots=True)
class RankedMatch:
    post: Post
    score: float
    parts: tuple[ScorePart, ...]


# --- the score ---------------------------------------------------------------------------------------


def category_key(category: str) -> str:
    """The category as matching compares it: case-folded, trimmed, inner runs of spaces made one."""
    return _SPACES.sub(" ", category.strip()).casefold()


def category_part(own: str, other: str) -> ScorePart:
    mine, theirs = category_key(own), category_key(other)
    if mine and mine == theirs:
        return ScorePart("category", 1.0, CATEGORY_WEIGHT, f"same category ({theirs})")
    if mine and theirs and (mine in theirs or theirs in mine):
        return ScorePart(
            "category", 0.5, CATEGORY_WEIGHT, f"one category contains the other ({mine} / {theirs})"
        )
    return ScorePart("category", 0.0, CATEGORY_WEIGHT, f"different categories ({mine} / {theirs})")


def distance_part(own: str, other: str) -> ScorePart:
    if own == other:
        return ScorePart("distance", 1.0, DISTANCE_WEIGHT, f"same county ({other})")
    if own[:4] == other[:4]:
        return ScorePart("distance", 0.6, DISTANCE_WEIGHT, f"same city ({other[:4]})")
    if own[:2] == other[:2]:
        return ScorePart("distance", 0.3, DISTANCE_WEIGHT, f"same province ({other[:2]})")
    return ScorePart("distance", 0.0, DISTANCE_WEIGHT, f"different provinces ({own[:2]} / {other[:2]})")


def chamber_part(own_chamber: str, own_federation: str, candidate: Candidate) -> ScorePart:
    if own_chamber == candidate.post.chamber_id:
        return ScorePart("chamber_affinity", 1.0, CHAMBER_WEIGHT, f"both in {candidate.chamber_name}")
    if own_federation == candidate.federation_id:
        return ScorePart(
            "chamber_affinity", 0.5, CHAMBER_WEIGHT, f"chambers under the same federation ({own_federation})"
        )
    return ScorePart("chamber_affinity", 0.0, CHAMBER_WEIGHT, "chambers under different federations")


def past_matches_part(matched_before: bool) -> ScorePart:
    if matched_before:
        return ScorePart("past_matches", 1.0, PAST_MATCHES_WEIGHT, "the two enterprises were matched before")
    return ScorePart("past_matches", 0.0, PAST_MATCHES_WEIGHT, "no earlier match between the two enterprises")


def score_of(parts: Iterable[ScorePart]) -> float:
    """The weighted sum, rounded so that equal parts reached in any order give one exact figure."""
    return round(sum(p.value * p.weight for p in parts), 6)


def explain(post: Post, own_federation: str, candidate: Candidate) -> RankedMatch:
    parts = (
        category_part(post.category, candidate.post.category),
        distance_part(post.division_code, candidate.post.division_code),
        chamber_part(post.chamber_id, own_federation, candidate),
        past_matches_part(candidate.matched_before),
    )
    return RankedMatch(candidate.post, score_of(parts), parts)


def rank(post: Post, own_federation: str, candidates: Iterable[Candidate], limit: int) -> list[RankedMatch]:
    """The counterparts of ``post`` best first (see the module text); those of another category dropped."""
    ranked = [
        explain(post, own_federation, c)
        for c in candidates
        if c.post.kind is post.kind.opposite
        and c.post.credit_code != post.credit_code
        and c.post.post_id != post.post_id
    ]
    kept = [r for r in ranked if r.parts[0].value > 0]
    kept.sort(key=lambda r: (-r.score, r.post.created_at, r.post.post_id))
    return kept[:limit]


# --- posts and the match's state -----------------------------------------------------------------


def is_open(post: Post, today: date) -> bool:
    """Open through its last valid day (the district's local date)."""
    return post.valid_until >= today


def supply_and_demand(one: Post, other: Post) -> tuple[Post, Post]:
    """The two posts as (supply, demand); callers checked they are of opposite kinds."""
    return (one, other) if one.kind is PostKind.SUPPLY else (other, one)


def accept(match: Match, side: PostKind, now: datetime) -> tuple[Match, bool]:
    """The match with ``side`` accepted, and whether this made it MATCHED (both sides now accepted).
    The caller refuses a match that is MATCHED already."""
    supply = match.supply_accepted or side is PostKind.SUPPLY
    demand = match.demand_accepted or side is PostKind.DEMAND
    made = supply and demand and match.status is MatchStatus.PROPOSED
    status = MatchStatus.MATCHED if made else match.status
    matched_at = now if made else match.matched_at
    changed = Match(
        match.match_id,
        match.supply_post_id,
        match.demand_post_id,
        match.supply_credit_code,
        match.demand_credit_code,
        status,
        supply,
        demand,
        match.score,
        match.proposed_at,
        matched_at,
    )
    return changed, made


# --- commands ------------------------------------------------------------------------------------


def _text(v: Violations, field: str, value: str, limit: int, *, required: bool, free: bool = False) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    elif value:
        v.add_if(text_problem(value, max_chars=limit, free_text=free), field)


def _id(v: Violations, field: str, value: str) -> None:
    if not value:
        v.add(field, "is required")


@dataclass(frozen=True, slots=True)
class CreatePost:
    request_id: str
    membership_id: str
    kind: PostKind | None
    category: str
    division_code: str
    quantity: float
    unit: str
    description: str
    valid_until: str

    def check(self, today: date) -> date:
        """Every bad field at once; the validity's date when all are good. ``today`` is the district's."""
        v = Violations()
        check_request_id(v, self.request_id)
        _id(v, "membership_id", self.membership_id)
        if self.kind is None:
            v.add("kind", "must be SUPPLY or DEMAND")
        if not category_key(self.category):
            v.add("category", "must not be empty")
        else:
            _text(v, "category", self.category, _MAX_CATEGORY, required=True)
        v.add_if(invalid_division_code(self.division_code), "division_code")
        if not self.quantity > 0:
            v.add("quantity", "must be greater than 0")
        elif self.quantity > _MAX_QUANTITY:
            v.add("quantity", f"must be at most {_MAX_QUANTITY:.0e}")
        _text(v, "unit", self.unit, _MAX_UNIT, required=True)
        _text(v, "description", self.description, _MAX_DESCRIPTION, required=False, free=True)
        until = parse_date(self.valid_until)
        if until is None:
            v.add("valid_until", "must be a date, YYYY-MM-DD")
        elif until < today:
            v.add("valid_until", f"must not be in the past (today is {today.isoformat()})")
        elif (until - today).days > _MAX_VALIDITY_DAYS:
            v.add("valid_until", "must be within five years")
        v.check()
        assert until is not None, "checked"
        return until


@dataclass(frozen=True, slots=True)
class ListPosts:
    chamber_id: str
    kind: PostKind | None
    category: str
    credit_code: str
    include_expired: bool

    def check(self) -> None:
        v = Violations()
        if self.category:
            _text(v, "category", self.category, _MAX_CATEGORY, required=False)
        if self.credit_code:
            v.add_if(invalid_credit_code(self.credit_code), "credit_code")
        v.check()


@dataclass(frozen=True, slots=True)
class FindMatches:
    post_id: str
    limit: int

    def check(self) -> int:
        """The number of matches to return (0 asks for the default)."""
        v = Violations()
        _id(v, "post_id", self.post_id)
        if self.limit < 0:
            v.add("limit", "must not be negative")
        elif self.limit > MAX_MATCH_LIMIT:
            v.add("limit", f"must be at most {MAX_MATCH_LIMIT}")
        v.check()
        return self.limit or DEFAULT_MATCH_LIMIT


@dataclass(frozen=True, slots=True)
class ExpressInterest:
    request_id: str
    post_id: str
    counterpart_post_id: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _id(v, "post_id", self.post_id)
        _id(v, "counterpart_post_id", self.counterpart_post_id)
        if self.post_id and self.post_id == self.counterpart_post_id:
            v.add("counterpart_post_id", "must be another post than post_id")
        v.check()


@dataclass(frozen=True, slots=True)
class AcceptMatch:
    match_id: str
    side: PostKind | None

    def check(self) -> None:
        v = Violations()
        _id(v, "match_id", self.match_id)
        if self.side is None:
            v.add("side", "must be SUPPLY or DEMAND")
        v.check()


@dataclass(frozen=True, slots=True)
class ListMatches:
    post_id: str
    credit_code: str

    def check(self) -> None:
        v = Violations()
        if bool(self.post_id) == bool(self.credit_code):
            v.add("post_id", "name exactly one of post_id and credit_code")
        elif self.credit_code:
            v.add_if(invalid_credit_code(self.credit_code), "credit_code")
        v.check()


def side_posts(match: Match, posts: Sequence[Post]) -> dict[PostKind, Post]:
    """The match's two posts by side."""
    found = {p.post_id: p for p in posts}
    return {PostKind.SUPPLY: found[match.supply_post_id], PostKind.DEMAND: found[match.demand_post_id]}
