"""Excellence (争先创优): the points ledger's entries, the commands of the family, and the ranking rules.

Rankings (docs/services/commerce.md, "Excellence"):

* Members of a chamber are ranked by the points they earned in the period; chambers of a federation by the
  sum of their members' points in the period (the federation's whole subtree: its own chambers and those of
  the federations under it).
* Only members (chambers) with points in the period are ranked; one with none is not listed.
* Standard competition ranking: equal points share a rank and the next rank skips ("1, 2, 2, 4").
* Equal points are listed, for members, by the time they reached their total (the ``earned_at`` of their
  last entry in the period, earlier first), then by membership id; for chambers, by more members with
  points first, then by chamber id. The listing order never depends on the database's row order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.commerce.domain.model import PointSource
from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.validation import check_query_period, text_problem

__all__ = [
    "DEFAULT_RANKING_LIMIT",
    "MAX_AWARD_POINTS",
    "MAX_RANKING_LIMIT",
    "ChamberTotal",
    "GetShowcase",
    "LedgerEntry",
    "ListLedger",
    "MemberTotal",
    "Period",
    "Ranked",
    "Ranking",
    "RankingQuery",
    "RecordAward",
    "Showcase",
    "chamber_totals",
    "member_totals",
    "rank_chambers",
    "rank_members",
]

Period = tuple[datetime | None, datetime | None]

MAX_AWARD_POINTS = 1000
DEFAULT_RANKING_LIMIT = 20
MAX_RANKING_LIMIT = 500
_MAX_TITLE = 200


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    membership_id: str
    chamber_id: str
    source: PointSource
    source_id: str
    points: int
    note: str
    earned_at: datetime


@dataclass(frozen=True, slots=True)
class MemberTotal:
    """A member's points in a period and when it reached them (its last entry in the period)."""

    membership_id: str
    chamber_id: str
    name: str
    points: int
    reached_at: datetime


@dataclass(frozen=True, slots=True)
class ChamberTotal:
    chamber_id: str
    name: str
    points: int
    members_with_points: int


@dataclass(frozen=True, slots=True)
class Ranked:
    rank: int
    # A membership id (members in a chamber) or a chamber id (chambers in a federation).
    id: str
    name: str
    points: int


@dataclass(frozen=True, slots=True)
class Ranking:
    """Exactly one of ``chamber_id`` / ``federation_id`` is set; the period is half-open [start, end)."""

    chamber_id: str
    federation_id: str
    start: datetime
    end: datetime
    entries: tuple[Ranked, ...]

    @property
    def subject(self) -> str:
        return self.chamber_id or self.federation_id


@dataclass(frozen=True, slots=True)
class Showcase:
    chamber_id: str
    federation_id: str
    start: datetime
    end: datetime
    members: int
    new_joins: int
    activities: int
    matches: int
    requests_resolved: int
    requests_resolved_on_time: int


# --- the ranking rules -------------------------------------------------------------------------------


def _competition_ranks(ordered: list[tuple[str, str, int]]) -> list[Ranked]:
    """Ranks for (id, name, points) already in listing order: equal points share the rank of the first of
    them, and the next distinct total takes its position ("1, 2, 2, 4")."""
    ranked: list[Ranked] = []
    for position, (item_id, name, points) in enumerate(ordered, start=1):
        same_as_previous = bool(ranked) and ranked[-1].points == points
        rank = ranked[-1].rank if same_as_previous else position
        ranked.append(Ranked(rank, item_id, name, points))
    return ranked


def rank_members(totals: Iterable[MemberTotal], limit: int | None = None) -> list[Ranked]:
    """Members by points (most first); ties by the earlier time the total was reached, then membership id.
    Members without points are not ranked. ``limit`` cuts the listing after ranks are given."""
    scored = [t for t in totals if t.points > 0]
    scored.sort(key=lambda t: (-t.points, t.reached_at, t.membership_id))
    ranked = _competition_ranks([(t.membership_id, t.name, t.points) for t in scored])
    return ranked if limit is None else ranked[:limit]


def rank_chambers(totals: Iterable[ChamberTotal], limit: int | None = None) -> list[Ranked]:
    """Chambers by points (most first); ties by more members with points, then chamber id. Chambers
    without points are not ranked."""
    scored = [t for t in totals if t.points > 0]
    scored.sort(key=lambda t: (-t.points, -t.members_with_points, t.chamber_id))
    ranked = _competition_ranks([(t.chamber_id, t.name, t.points) for t in scored])
    return ranked if limit is None else ranked[:limit]


def member_totals(
    entries: Iterable[LedgerEntry], names: dict[str, str], start: datetime, end: datetime
) -> list[MemberTotal]:
    """Each member's points in ``[start, end)`` and the ``earned_at`` of its last entry there: the
    definition the repository's ``excellence_member_totals`` computes in SQL over the whole ledger."""
    totals: dict[str, MemberTotal] = {}
    for entry in entries:
        if not start <= entry.earned_at < end:
            continue
        seen = totals.get(entry.membership_id)
        totals[entry.membership_id] = MemberTotal(
            membership_id=entry.membership_id,
            chamber_id=entry.chamber_id,
            name=names.get(entry.membership_id, ""),
            points=(seen.points if seen else 0) + entry.points,
            reached_at=max(seen.reached_at, entry.earned_at) if seen else entry.earned_at,
        )
    return list(totals.values())


def chamber_totals(members: Iterable[MemberTotal], chamber_names: dict[str, str]) -> list[ChamberTotal]:
    """Each chamber's sum of its members' points, and how many of its members have points. Only chambers
    named in ``chamber_names`` (the federation's) count."""
    points: dict[str, int] = {}
    counted: dict[str, int] = {}
    for member in members:
        if member.chamber_id not in chamber_names or member.points <= 0:
            continue
        points[member.chamber_id] = points.get(member.chamber_id, 0) + member.points
        counted[member.chamber_id] = counted.get(member.chamber_id, 0) + 1
    return [ChamberTotal(cid, chamber_names[cid], points[cid], counted[cid]) for cid in points]


# --- commands --------------------------------------------------------------------------------------------


def _one_subject(v: Violations, chamber_id: str, federation_id: str) -> None:
    if bool(chamber_id) == bool(federation_id):
        v.add("chamber_id", "name exactly one of chamber_id and federation_id")


def _limit(v: Violations, limit: int) -> None:
    if limit < 0:
        v.add("limit", "must not be negative")
    elif limit > MAX_RANKING_LIMIT:
        v.add("limit", f"must be at most {MAX_RANKING_LIMIT}")


@dataclass(frozen=True, slots=True)
class RecordAward:
    request_id: str
    membership_id: str
    title: str
    points: int

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.membership_id:
            v.add("membership_id", "is required")
        if not self.title.strip():
            v.add("title", "is required")
        else:
            v.add_if(text_problem(self.title, max_chars=_MAX_TITLE), "title")
        if not 1 <= self.points <= MAX_AWARD_POINTS:
            v.add("points", f"must be between 1 and {MAX_AWARD_POINTS}")
        v.check()


@dataclass(frozen=True, slots=True)
class ListLedger:
    membership_id: str
    period: Period

    def check(self) -> None:
        v = Violations()
        if not self.membership_id:
            v.add("membership_id", "is required")
        check_query_period(v, "period", *self.period, required=False)
        v.check()


@dataclass(frozen=True, slots=True)
class RankingQuery:
    """GetRankings and PublishRanking (the latter with a request id)."""

    chamber_id: str
    federation_id: str
    period: Period
    limit: int
    request_id: str = ""

    def check(self, *, publishing: bool = False) -> None:
        v = Violations()
        if publishing:
            check_request_id(v, self.request_id)
        _one_subject(v, self.chamber_id, self.federation_id)
        check_query_period(v, "period", *self.period, required=True)
        _limit(v, self.limit)
        v.check()

    @property
    def places(self) -> int:
        return self.limit or DEFAULT_RANKING_LIMIT

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        start, end = self.period
        assert start is not None, "checked"
        assert end is not None, "checked"
        return start, end


@dataclass(frozen=True, slots=True)
class GetShowcase:
    chamber_id: str
    federation_id: str
    period: Period

    def check(self) -> None:
        v = Violations()
        _one_subject(v, self.chamber_id, self.federation_id)
        check_query_period(v, "period", *self.period, required=True)
        v.check()

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        start, end = self.period
        assert start is not None, "checked"
        assert end is not None, "checked"
        return start, end
