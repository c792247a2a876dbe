"""Business matching against the real service: supply and demand posts in several categories, divisions and
chambers ranked in the documented order with their explained parts; the bad posts of the issue refused
naming the field with nothing stored; interest and acceptance by both sides making the match (MatchMade,
both members credited)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2, events_pb2

from tests.integration.commerce.commerce_support import Commerce, rid
from tests.support import violations, wait_until

pytestmark = pytest.mark.integration
P = commerce_pb2

SUPPLY, DEMAND = P.POST_KIND_SUPPLY, P.POST_KIND_DEMAND


@dataclass
class Member:
    membership_id: str
    chamber_id: str
    credit_code: str

    @property
    def as_user(self) -> dict[str, tuple[str, ...]]:
        return {"roles": ("enterprise_user",), "scopes": (f"enterprise:{self.credit_code}",)}


@dataclass
class Tree:
    """Chambers A and B under one federation, chamber C under another."""

    federation_ab: str
    chamber_a: str
    name_a: str
    chamber_b: str
    chamber_c: str


def _today(commerce: Commerce, days: int = 0) -> str:
    return (datetime.now(commerce.settings.district_zone).date() + timedelta(days=days)).isoformat()


def _tree(commerce: Commerce) -> Tree:
    federation, chamber_a = commerce.federation_and_chamber()
    chamber_b = commerce.call(
        "CreateChamber",
        P.CreateChamberRequest(
            request_id=rid(),
            federation_id=federation.federation_id,
            name=f"Hometown chamber {secrets.token_hex(2)}",
            kind=P.CHAMBER_KIND_REGIONAL,
            division_code="330102",
            join_rule=P.JOIN_RULE_AUTO_APPROVE_KNOWN,
        ),
    ).chamber
    _, chamber_c = commerce.federation_and_chamber()
    return Tree(
        federation.federation_id,
        chamber_a.chamber_id,
        chamber_a.name,
        chamber_b.chamber_id,
        chamber_c.chamber_id,
    )


def _member(commerce: Commerce, chamber_id: str, code: str | None = None) -> Member:
    code = code or commerce.industry.onboard()
    membership = commerce.call(
        "ApplyForMembership",
        P.ApplyForMembershipRequest(request_id=rid(), chamber_id=chamber_id, credit_code=code),
    ).membership
    assert membership.status == P.MEMBERSHIP_STATUS_ACTIVE
    return Member(membership.membership_id, chamber_id, code)


def _post(
    commerce: Commerce, member: Member, kind: int, category: str, division: str = "331004", **extra: object
) -> P.Post:
    request = P.CreatePostRequest(
        request_id=rid(),
        membership_id=member.membership_id,
        kind=kind,  # type: ignore[arg-type]
        category=category,
        division_code=division,
        quantity=20,
        unit="t",
        valid_until=_today(commerce, 30),
    )
    for name, value in extra.items():
        setattr(request, name, value)
    post: P.Post = commerce.call("CreatePost", request, **member.as_user).post
    return post


def _parts(ranked: P.RankedMatch) -> dict[str, tuple[float, str]]:
    return {p.factor: (round(p.value, 6), p.explanation) for p in ranked.parts}


def _make_match(commerce: Commerce, supply: P.Post, seller: Member, demand: P.Post, buyer: Member) -> P.Match:
    commerce.call(
        "ExpressInterest",
        P.ExpressInterestRequest(
            request_id=rid(), post_id=supply.post_id, counterpart_post_id=demand.post_id
        ),
        **seller.as_user,
    )
    proposed = commerce.call(
        "ListMatches", P.ListMatchesRequest(post_id=demand.post_id), **buyer.as_user
    ).matches[0]
    match: P.Match = commerce.call(
        "AcceptMatch", P.AcceptMatchRequest(match_id=proposed.match_id, side=DEMAND), **buyer.as_user
    ).match
    return match


def test_counterparts_rank_in_the_documented_order_with_their_explanations(commerce: Commerce) -> None:
    tree = _tree(commerce)
    tag = secrets.token_hex(3)
    category = f"Castings {tag}"
    seller = _member(commerce, tree.chamber_a)
    same_chamber, tie, sibling = (
        _member(commerce, c) for c in (tree.chamber_a, tree.chamber_a, tree.chamber_b)
    )
    far, old_partner = _member(commerce, tree.chamber_c), _member(commerce, tree.chamber_c)

    # The seller and old_partner were matched before, over another category.
    earlier = _make_match(
        commerce,
        _post(commerce, seller, SUPPLY, f"bolts {tag}"),
        seller,
        _post(commerce, old_partner, DEMAND, f"bolts {tag}", "330106"),
        old_partner,
    )
    assert earlier.status == P.MATCH_STATUS_MATCHED

    own = _post(commerce, seller, SUPPLY, category, "331004")
    best = _post(commerce, same_chamber, DEMAND, f"CASTINGS {tag.upper()}", "331004")
    tied = _post(commerce, tie, DEMAND, category.lower(), "331004")
    near = _post(commerce, sibling, DEMAND, category, "331002")
    partner = _post(commerce, old_partner, DEMAND, category, "330106")
    loose = _post(commerce, far, DEMAND, f"steel castings {tag}", "320106")
    # Never counterparts: another category, the same kind, the seller's own demand.
    _post(commerce, same_chamber, DEMAND, f"textiles {tag}", "331004")
    _post(commerce, sibling, SUPPLY, category, "331004")
    _post(commerce, seller, DEMAND, category, "331004")

    found = commerce.call("FindMatches", P.FindMatchesRequest(post_id=own.post_id), **seller.as_user).matches
    assert [(m.post.post_id, round(m.score, 6)) for m in found] == [
        (best.post_id, 0.85),
        (tied.post_id, 0.85),
        (near.post_id, 0.65),
        (partner.post_id, 0.625),
        (loose.post_id, 0.2),
    ]
    assert [p.factor for p in found[0].parts] == ["category", "distance", "chamber_affinity", "past_matches"]
    assert [round(p.weight, 6) for p in found[0].parts] == [0.4, 0.25, 0.2, 0.15]
    key = category.lower()
    assert _parts(found[0]) == {
        "category": (1.0, f"same category ({key})"),
        "distance": (1.0, "same county (331004)"),
        "chamber_affinity": (1.0, f"both in {tree.name_a}"),
        "past_matches": (0.0, "no earlier match between the two enterprises"),
    }
    assert _parts(found[2]) == {
        "category": (1.0, f"same category ({key})"),
        "distance": (0.6, "same city (3310)"),
        "chamber_affinity": (0.5, f"chambers under the same federation ({tree.federation_ab})"),
        "past_matches": (0.0, "no earlier match between the two enterprises"),
    }
    partner_parts = _parts(found[3])
    assert partner_parts["distance"] == (0.3, "same province (33)")
    assert partner_parts["chamber_affinity"] == (0.0, "chambers under different federations")
    assert partner_parts["past_matches"] == (1.0, "the two enterprises were matched before")
    loose_parts = _parts(found[4])
    assert loose_parts["category"] == (0.5, f"one category contains the other ({key} / steel {key})")
    assert loose_parts["distance"] == (0.0, "different provinces (33 / 32)")

    top = commerce.call("FindMatches", P.FindMatchesRequest(post_id=own.post_id, limit=2), **seller.as_user)
    assert [m.post.post_id for m in top.matches] == [best.post_id, tied.post_id]
    # Another enterprise cannot ask for the seller's post's matches: it is not theirs to see.
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("FindMatches", P.FindMatchesRequest(post_id=own.post_id), **far.as_user)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("FindMatches", P.FindMatchesRequest(post_id=own.post_id, limit=101), **seller.as_user)
    assert set(violations(error.value)) == {"limit"}


def test_an_empty_category_or_a_past_validity_is_refused_and_nothing_stored(commerce: Commerce) -> None:
    tree = _tree(commerce)
    member = _member(commerce, tree.chamber_a)
    kept = _post(commerce, member, SUPPLY, "gears", description="Spur gears, module 2-6")
    assert (kept.category, kept.valid_until, kept.credit_code, kept.chamber_id) == (
        "gears",
        _today(commerce, 30),
        member.credit_code,
        tree.chamber_a,
    )

    def listed() -> list[str]:
        posts = commerce.call(
            "ListPosts",
            P.ListPostsRequest(credit_code=member.credit_code, include_expired=True),
            **member.as_user,
        ).posts
        return [p.post_id for p in posts]

    assert listed() == [kept.post_id]
    refused: list[tuple[str, dict[str, Any], str]] = [
        ("", {}, "category"),
        ("gears", {"valid_until": _today(commerce, -1)}, "valid_until"),
        ("gears", {"valid_until": "2026-02-30"}, "valid_until"),
        ("gears", {"quantity": 0.0}, "quantity"),
        ("gears", {"division_code": "12345"}, "division_code"),
    ]
    for category, changes, field in refused:
        with pytest.raises(grpc.RpcError) as error:
            _post(commerce, member, SUPPLY, category, **changes)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations(error.value)) == {field}
    with pytest.raises(grpc.RpcError) as error:
        _post(commerce, member, SUPPLY, "", valid_until=_today(commerce, -3))
    assert set(violations(error.value)) == {"category", "valid_until"}
    assert listed() == [kept.post_id]
    # A post valid through today is still open.
    today = _post(commerce, member, DEMAND, "gears", valid_until=_today(commerce))
    assert listed() == [today.post_id, kept.post_id]
    only_demand = commerce.call(
        "ListPosts", P.ListPostsRequest(chamber_id=tree.chamber_a, kind=DEMAND, category="GEARS")
    ).posts
    assert [p.post_id for p in only_demand] == [today.post_id]


def test_interest_and_both_acceptances_make_the_match_and_credit_both_members(commerce: Commerce) -> None:
    tree = _tree(commerce)
    tag = secrets.token_hex(3)
    seller, buyer = _member(commerce, tree.chamber_a), _member(commerce, tree.chamber_b)
    supply = _post(commerce, seller, SUPPLY, f"CNC machining {tag}", "331004")
    demand = _post(commerce, buyer, DEMAND, f"cnc machining {tag}", "331002")

    request = P.ExpressInterestRequest(
        request_id=rid(), post_id=demand.post_id, counterpart_post_id=supply.post_id
    )
    proposed = commerce.call("ExpressInterest", request, **buyer.as_user).match
    assert (proposed.status, proposed.supply_accepted, proposed.demand_accepted) == (
        P.MATCH_STATUS_PROPOSED,
        False,
        True,
    )
    assert (proposed.supply_post_id, proposed.demand_post_id) == (supply.post_id, demand.post_id)
    assert (proposed.supply_credit_code, proposed.demand_credit_code) == (
        seller.credit_code,
        buyer.credit_code,
    )
    # Category 1.0, same city 0.6, same federation 0.5, no past match: 0.4 + 0.15 + 0.1.
    assert round(proposed.score, 6) == 0.65
    assert commerce.call("ExpressInterest", request, **buyer.as_user).match == proposed

    # The buyer may not accept for the seller; a side of nobody's is refused.
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "AcceptMatch", P.AcceptMatchRequest(match_id=proposed.match_id, side=SUPPLY), **buyer.as_user
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("AcceptMatch", P.AcceptMatchRequest(match_id=proposed.match_id), **seller.as_user)
    assert set(violations(error.value)) == {"side"}

    matched = commerce.call(
        "AcceptMatch", P.AcceptMatchRequest(match_id=proposed.match_id, side=SUPPLY), **seller.as_user
    ).match
    assert (matched.status, matched.supply_accepted, matched.demand_accepted) == (
        P.MATCH_STATUS_MATCHED,
        True,
        True,
    )
    assert matched.HasField("matched_at")
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "AcceptMatch", P.AcceptMatchRequest(match_id=proposed.match_id, side=SUPPLY), **seller.as_user
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    events = wait_until(
        lambda: commerce.events({matched.match_id}), timeout_s=20, what="the MatchMade event on Kafka"
    )
    assert [kind for kind, _ in events] == ["cityhub.commerce.v1.MatchMade"]
    made = events[0][1]
    assert isinstance(made, events_pb2.MatchMade)
    assert (made.supply_credit_code, made.demand_credit_code, made.category) == (
        seller.credit_code,
        buyer.credit_code,
        f"cnc machining {tag}",
    )

    for member in (seller, buyer):
        ledger = commerce.call("ListLedger", P.ListLedgerRequest(membership_id=member.membership_id))
        assert [(e.source, e.source_id, e.points) for e in ledger.entries] == [
            (P.POINT_SOURCE_MATCH_COMPLETED, matched.match_id, 30)
        ]
        assert ledger.total_points == 30

    listed = commerce.call(
        "ListMatches", P.ListMatchesRequest(credit_code=seller.credit_code), **seller.as_user
    )
    assert [m.match_id for m in listed.matches] == [matched.match_id]
    # Pairing two demands, or a post with the same enterprise's, is refused.
    other_demand = _post(commerce, seller, DEMAND, f"cnc machining {tag}")
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "ExpressInterest",
            P.ExpressInterestRequest(
                request_id=rid(), post_id=other_demand.post_id, counterpart_post_id=demand.post_id
            ),
            **seller.as_user,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "ExpressInterest",
            P.ExpressInterestRequest(
                request_id=rid(), post_id=other_demand.post_id, counterpart_post_id=supply.post_id
            ),
            **seller.as_user,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
