"""The excellence rules without sockets: points in a period from a known ledger, standard competition
ranking with the documented tie order for members and chambers, and the commands' bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.commerce.domain.excellence import (
    ChamberTotal,
    GetShowcase,
    LedgerEntry,
    ListLedger,
    MemberTotal,
    Ranked,
    RankingQuery,
    RecordAward,
    chamber_totals,
    member_totals,
    rank_chambers,
    rank_members,
)
from services.commerce.domain.model import PointSource
from services.platform.errors import InvalidArgumentError

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 2, 1, tzinfo=UTC)


def _at(month: int, day: int, hour: int = 9) -> datetime:
    year = 2025 if month == 12 else 2026
    return datetime(year, month, day, hour, tzinfo=UTC)


def _entry(
    n: int, member: str, chamber: str, source: PointSource, *, points: int, at: datetime
) -> LedgerEntry:
    return LedgerEntry(f"pts_{n:03d}", member, chamber, source, f"src-{n}", points, "", at)


# The known ledger: chamber ch-a (m1..m5, m8) and chamber ch-b (m6, m7), January 2026.
LEDGER = [
    _entry(1, "m1", "ch-a", PointSource.AWARD, points=50, at=_at(1, 3)),
    _entry(2, "m1", "ch-a", PointSource.ACTIVITY_ATTENDANCE, points=10, at=_at(1, 10)),
    _entry(3, "m2", "ch-a", PointSource.MATCH_COMPLETED, points=30, at=_at(1, 5)),
    _entry(4, "m2", "ch-a", PointSource.MATCH_COMPLETED, points=30, at=_at(1, 8)),
    # m3: 20 inside; one entry the day before and one exactly at the (exclusive) end do not count.
    _entry(5, "m3", "ch-a", PointSource.COURSE_COMPLETED, points=40, at=_at(12, 31, 23)),
    _entry(6, "m3", "ch-a", PointSource.COURSE_COMPLETED, points=20, at=_at(1, 2)),
    _entry(7, "m3", "ch-a", PointSource.AWARD, points=40, at=END),
    _entry(8, "m4", "ch-a", PointSource.AWARD, points=100, at=_at(1, 20)),
    _entry(9, "m5", "ch-a", PointSource.SERVICE_RATING, points=10, at=_at(1, 1, 0)),
    _entry(10, "m5", "ch-a", PointSource.SERVICE_RATING, points=10, at=_at(1, 2)),
    # m8 earned only outside the period: not ranked.
    _entry(11, "m8", "ch-a", PointSource.AWARD, points=500, at=_at(12, 1)),
    _entry(12, "m6", "ch-b", PointSource.AWARD, points=200, at=_at(1, 15)),
    _entry(13, "m7", "ch-b", PointSource.MATCH_COMPLETED, points=60, at=_at(1, 16)),
]
NAMES = {f"m{i}": f"Enterprise {i}" for i in range(1, 9)}


def _totals(chamber: str | None = None) -> list[MemberTotal]:
    entries = [e for e in LEDGER if chamber is None or e.chamber_id == chamber]
    return member_totals(entries, NAMES, START, END)


def test_points_in_a_period_count_entries_from_start_up_to_but_not_including_end() -> None:
    by_member = {t.membership_id: t for t in _totals()}
    assert {m: t.points for m, t in by_member.items()} == {
        "m1": 60,
        "m2": 60,
        "m3": 20,
        "m4": 100,
        "m5": 20,
        "m6": 200,
        "m7": 60,
    }
    assert by_member["m1"].reached_at == _at(1, 10)
    assert by_member["m2"].reached_at == _at(1, 8)
    assert by_member["m5"].reached_at == _at(1, 2)


def test_members_share_a_rank_on_equal_points_and_the_earlier_total_is_listed_first() -> None:
    assert rank_members(_totals("ch-a")) == [
        Ranked(1, "m4", "Enterprise 4", 100),
        # m2 reached 60 on 8 January, m1 on 10 January.
        Ranked(2, "m2", "Enterprise 2", 60),
        Ranked(2, "m1", "Enterprise 1", 60),
        # Same points, same time reached: membership id decides; the next rank skips to 4.
        Ranked(4, "m3", "Enterprise 3", 20),
        Ranked(4, "m5", "Enterprise 5", 20),
    ]


def test_the_limit_cuts_the_listing_after_the_ranks_are_given() -> None:
    assert [(r.rank, r.id) for r in rank_members(_totals("ch-a"), 3)] == [(1, "m4"), (2, "m2"), (2, "m1")]


def test_members_without_points_are_not_ranked() -> None:
    totals = [
        MemberTotal("m1", "ch-a", "One", 0, _at(1, 1)),
        MemberTotal("m2", "ch-a", "Two", 5, _at(1, 1)),
    ]
    assert rank_members(totals) == [Ranked(1, "m2", "Two", 5)]
    assert rank_members([]) == []


def test_chambers_rank_by_their_members_sum_and_more_members_with_points_break_a_tie() -> None:
    chambers = {"ch-a": "Chamber A", "ch-b": "Chamber B", "ch-c": "Chamber C", "ch-quiet": "Quiet"}
    extra = [
        MemberTotal("m9", "ch-c", "Nine", 130, _at(1, 4)),
        MemberTotal("m10", "ch-c", "Ten", 130, _at(1, 4)),
        MemberTotal("m11", "ch-d", "Elsewhere", 999, _at(1, 4)),
    ]
    totals = chamber_totals([*_totals(), *extra], chambers)
    assert sorted(totals, key=lambda t: t.chamber_id) == [
        ChamberTotal("ch-a", "Chamber A", 260, 5),
        ChamberTotal("ch-b", "Chamber B", 260, 2),
        ChamberTotal("ch-c", "Chamber C", 260, 2),
    ]
    # ch-a has five members with points; ch-b and ch-c two each, so the chamber id orders them. ch-d is
    # not the federation's, ch-quiet earned nothing.
    assert rank_chambers(totals) == [
        Ranked(1, "ch-a", "Chamber A", 260),
        Ranked(1, "ch-b", "Chamber B", 260),
        Ranked(1, "ch-c", "Chamber C", 260),
    ]


def test_chamber_ranks_skip_after_a_tie() -> None:
    totals = [
        ChamberTotal("ch-2", "Two", 90, 3),
        ChamberTotal("ch-1", "One", 90, 3),
        ChamberTotal("ch-3", "Three", 120, 1),
        ChamberTotal("ch-4", "Four", 10, 1),
        ChamberTotal("ch-0", "None", 0, 0),
    ]
    assert [(r.rank, r.id, r.points) for r in rank_chambers(totals)] == [
        (1, "ch-3", 120),
        (2, "ch-1", 90),
        (2, "ch-2", 90),
        (4, "ch-4", 10),
    ]


# --- commands ------------------------------------------------------------------------------------------


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


@pytest.mark.parametrize("points", [0, -5, 1001])
def test_an_award_outside_1_to_1000_points_names_points(points: int) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RecordAward("r-1", "mem_1", "Advanced enterprise 2026", points).check()
    assert _fields(error) == {"points"}


def test_an_award_names_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RecordAward("", "", "  ", 0).check()
    assert _fields(error) == {"request_id", "membership_id", "title", "points"}
    RecordAward("r-1", "mem_1", "Advanced enterprise 2026", 1000).check()


def test_a_ranking_names_exactly_one_subject_a_period_and_a_limit_up_to_500() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RankingQuery("ch-a", "fed-1", (START, END), 20).check()
    assert _fields(error) == {"chamber_id"}
    with pytest.raises(InvalidArgumentError) as error:
        RankingQuery("", "", (None, None), 501).check()
    assert _fields(error) == {"chamber_id", "period.start_time", "period.end_time", "limit"}
    with pytest.raises(InvalidArgumentError) as error:
        RankingQuery("ch-a", "", (END, START), -1).check()
    assert _fields(error) == {"period.end_time", "limit"}
    query = RankingQuery("ch-a", "", (START, END), 0)
    query.check()
    assert query.places == 20
    assert RankingQuery("ch-a", "", (START, END), 500).places == 500


def test_publishing_needs_a_request_id() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RankingQuery("ch-a", "", (START, END), 0).check(publishing=True)
    assert _fields(error) == {"request_id"}
    RankingQuery("ch-a", "", (START, END), 0, "r-1").check(publishing=True)


def test_ledger_period_is_optional_and_showcase_period_required() -> None:
    ListLedger("mem_1", (None, None)).check()
    with pytest.raises(InvalidArgumentError) as error:
        ListLedger("", (END, START)).check()
    assert _fields(error) == {"membership_id", "period.end_time"}
    with pytest.raises(InvalidArgumentError) as error:
        GetShowcase("ch-a", "", (START, None)).check()
    assert _fields(error) == {"period.end_time"}
