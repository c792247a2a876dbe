"""Business matching's pure rules: the explained score, the documented ranking order, the two-sided
acceptance, and the post checks (every bad field named at once)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.commerce.domain.matching import (
    CATEGORY_WEIGHT,
    CHAMBER_WEIGHT,
    DEFAULT_MATCH_LIMIT,
    DISTANCE_WEIGHT,
    PAST_MATCHES_WEIGHT,
    AcceptMatch,
    Candidate,
    CreatePost,
    FindMatches,
    ListMatches,
    Match,
    MatchStatus,
    Post,
    PostKind,
    accept,
    category_key,
    category_part,
    chamber_part,
    distance_part,
    is_open,
    past_matches_part,
    rank,
)
from services.platform.errors import InvalidArgumentError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 1)


def _post(
    post_id: str,
    kind: PostKind,
    category: str,
    division: str = "331004",
    *,
    chamber: str = "ch-a",
    code: str = "code-other",
    created: int = 0,
    until: date = date(2026, 6, 30),
) -> Post:
    return Post(
        post_id,
        chamber,
        f"mem-{post_id}",
        code,
        kind,
        category,
        division,
        10.0,
        "t",
        "",
        until,
        T0 + timedelta(minutes=created),
    )


def _candidate(post: Post, federation: str = "fed-1", *, before: bool = False) -> Candidate:
    return Candidate(post, federation, f"chamber {post.chamber_id}", before)


def _violations(error: pytest.ExceptionInfo[InvalidArgumentError]) -> dict[str, str]:
    return {v.field: v.description for v in error.value.violations}


def test_the_weights_add_up_to_one() -> None:
    assert pytest.approx(1.0) == CATEGORY_WEIGHT + DISTANCE_WEIGHT + CHAMBER_WEIGHT + PAST_MATCHES_WEIGHT
    assert (CATEGORY_WEIGHT, DISTANCE_WEIGHT, CHAMBER_WEIGHT, PAST_MATCHES_WEIGHT) == (0.4, 0.25, 0.2, 0.15)


def test_categories_are_compared_case_folded_and_trimmed() -> None:
    assert category_key("  CNC   Machining ") == "cnc machining"
    assert category_part("Castings", "castings").value == 1.0
    contained = category_part("castings", "steel castings")
    assert (contained.value, contained.explanation) == (
        0.5,
        "one category contains the other (castings / steel castings)",
    )
    assert category_part("steel castings", "castings").value == 0.5
    assert category_part("castings", "textiles").value == 0.0


@pytest.mark.parametrize(
    ("other", "value", "explanation"),
    [
        ("331004", 1.0, "same county (331004)"),
        ("331002", 0.6, "same city (3310)"),
        ("330106", 0.3, "same province (33)"),
        ("320106", 0.0, "different provinces (33 / 32)"),
    ],
)
def test_distance_goes_by_the_division_code(other: str, value: float, explanation: str) -> None:
    part = distance_part("331004", other)
    assert (part.factor, part.value, part.weight, part.explanation) == (
        "distance",
        value,
        DISTANCE_WEIGHT,
        explanation,
    )


def test_chamber_affinity_and_past_matches() -> None:
    same = _candidate(_post("p", PostKind.DEMAND, "x", chamber="ch-a"))
    sibling = _candidate(_post("p", PostKind.DEMAND, "x", chamber="ch-b"))
    stranger = _candidate(_post("p", PostKind.DEMAND, "x", chamber="ch-c"), "fed-2")
    assert chamber_part("ch-a", "fed-1", same).value == 1.0
    assert chamber_part("ch-a", "fed-1", same).explanation == "both in chamber ch-a"
    assert chamber_part("ch-a", "fed-1", sibling).value == 0.5
    assert chamber_part("ch-a", "fed-1", stranger).value == 0.0
    assert past_matches_part(True).value == 1.0
    assert past_matches_part(False).value == 0.0


def test_counterparts_rank_in_the_documented_order_with_their_parts() -> None:
    own = _post("own", PostKind.SUPPLY, "Castings", "331004", chamber="ch-a", code="code-own")
    candidates = [
        # contained category, same city, sibling chamber: 0.4*0.5 + 0.25*0.6 + 0.2*0.5 = 0.45
        _candidate(_post("d-steel", PostKind.DEMAND, "steel castings", "331002", chamber="ch-b", created=1)),
        # same everything, no past match: 0.4 + 0.25 + 0.2 = 0.85
        _candidate(_post("d-best", PostKind.DEMAND, "castings", "331004", created=5)),
        # the same score as d-best but older: first of the tie
        _candidate(_post("d-older", PostKind.DEMAND, "CASTINGS", "331004", created=2)),
        # same category, other province, other federation, matched before: 0.4 + 0.15 = 0.55
        _candidate(
            _post("d-far", PostKind.DEMAND, "castings", "320106", chamber="ch-z", created=3),
            "fed-9",
            before=True,
        ),
        # another category: never a match, however close
        _candidate(_post("d-textiles", PostKind.DEMAND, "textiles", "331004", created=0)),
        # the same kind, or the same enterprise: never a counterpart
        _candidate(_post("s-rival", PostKind.SUPPLY, "castings", "331004", created=0)),
        _candidate(_post("d-self", PostKind.DEMAND, "castings", "331004", code="code-own", created=0)),
    ]
    ranked = rank(own, "fed-1", candidates, DEFAULT_MATCH_LIMIT)
    assert [(r.post.post_id, r.score) for r in ranked] == [
        ("d-older", 0.85),
        ("d-best", 0.85),
        ("d-far", 0.55),
        ("d-steel", 0.45),
    ]
    far = ranked[2]
    assert [(p.factor, p.value) for p in far.parts] == [
        ("category", 1.0),
        ("distance", 0.0),
        ("chamber_affinity", 0.0),
        ("past_matches", 1.0),
    ]
    assert [p.explanation for p in far.parts] == [
        "same category (castings)",
        "different provinces (33 / 32)",
        "chambers under different federations",
        "the two enterprises were matched before",
    ]
    assert [r.post.post_id for r in rank(own, "fed-1", candidates, 2)] == ["d-older", "d-best"]


def test_ties_beyond_the_creation_time_fall_to_the_post_id() -> None:
    own = _post("own", PostKind.DEMAND, "castings", code="code-own")
    twins = [_candidate(_post(pid, PostKind.SUPPLY, "castings")) for pid in ("s-2", "s-1", "s-3")]
    assert [r.post.post_id for r in rank(own, "fed-1", twins, 10)] == ["s-1", "s-2", "s-3"]


def test_both_sides_accepting_make_the_match() -> None:
    proposed = Match("m", "s", "d", "cs", "cd", MatchStatus.PROPOSED, True, False, 0.85, T0, None)
    again, made = accept(proposed, PostKind.SUPPLY, T0)
    assert (again, made) == (proposed, False)
    later = T0 + timedelta(hours=1)
    matched, made = accept(proposed, PostKind.DEMAND, later)
    assert made
    assert (matched.status, matched.supply_accepted, matched.demand_accepted, matched.matched_at) == (
        MatchStatus.MATCHED,
        True,
        True,
        later,
    )


def test_a_post_is_open_through_its_last_day() -> None:
    post = _post("p", PostKind.SUPPLY, "x", until=TODAY)
    assert is_open(post, TODAY)
    assert not is_open(post, TODAY + timedelta(days=1))


def _create(**changes: object) -> CreatePost:
    values: dict[str, object] = {
        "request_id": "r-1",
        "membership_id": "mem-1",
        "kind": PostKind.SUPPLY,
        "category": "castings",
        "division_code": "331004",
        "quantity": 20.0,
        "unit": "t",
        "description": "",
        "valid_until": "2026-03-31",
    }
    values.update(changes)
    return CreatePost(**values)  # type: ignore[arg-type]


def test_a_good_post_passes_and_yields_its_validity() -> None:
    assert _create().check(TODAY) == date(2026, 3, 31)
    # Today is still valid (the district's local date).
    assert _create(valid_until="2026-03-01").check(TODAY) == TODAY


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": ""}, "category"),
        ({"valid_until": "2026-02-28"}, "valid_until"),
        ({"valid_until": "2026-02-30"}, "valid_until"),
        ({"valid_until": "31/03/2026"}, "valid_until"),
        ({"quantity": 0.0}, "quantity"),
        ({"quantity": -1.0}, "quantity"),
        ({"division_code": "33100"}, "division_code"),
        ({"kind": None}, "kind"),
        ({"unit": ""}, "unit"),
        ({"request_id": ""}, "request_id"),
        ({"membership_id": ""}, "membership_id"),
    ],
)
def test_each_bad_post_field_is_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _create(**changes).check(TODAY)
    assert set(_violations(error)) == {field}


def test_every_bad_post_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _create(category="", valid_until="2020-01-01", quantity=0.0).check(TODAY)
    found = _violations(error)
    assert set(found) == {"category", "valid_until", "quantity"}
    assert found["valid_until"] == "must not be in the past (today is 2026-03-01)"


def test_query_checks() -> None:
    assert FindMatches("p", 0).check() == DEFAULT_MATCH_LIMIT
    assert FindMatches("p", 100).check() == 100
    with pytest.raises(InvalidArgumentError) as error:
        FindMatches("p", 101).check()
    assert set(_violations(error)) == {"limit"}
    with pytest.raises(InvalidArgumentError) as error:
        AcceptMatch("m", None).check()
    assert set(_violations(error)) == {"side"}
    with pytest.raises(InvalidArgumentError) as error:
        ListMatches("", "").check()
    assert set(_violations(error)) == {"post_id"}
    with pytest.raises(InvalidArgumentError) as error:
        ListMatches("", "not-a-code").check()
    assert set(_violations(error)) == {"credit_code"}
