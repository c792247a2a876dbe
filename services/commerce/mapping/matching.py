"""Proto <-> domain for business matching: posts, ranked matches, matches and the MatchMade event."""

from __future__ import annotations

from datetime import datetime

from cityhub.commerce.v1 import commerce_pb2, events_pb2

from services.commerce.domain import matching as rules
from services.commerce.domain.matching import Match, MatchStatus, Post, PostKind, RankedMatch
from services.platform.protoconv import EnumMap, optional_timestamp, to_timestamp

__all__ = [
    "MATCH_STATUS",
    "POST_KIND",
    "accept_match",
    "create_post",
    "express_interest",
    "find_matches",
    "list_matches",
    "list_posts",
    "match_made",
    "match_pb",
    "post_pb",
    "ranked_pb",
]

POST_KIND = EnumMap(PostKind, commerce_pb2.PostKind, "POST_KIND")
MATCH_STATUS = EnumMap(MatchStatus, commerce_pb2.MatchStatus, "MATCH_STATUS")


# --- requests -> commands ------------------------------------------------------------------------


def create_post(request: commerce_pb2.CreatePostRequest) -> rules.CreatePost:
    return rules.CreatePost(
        request_id=request.request_id,
        membership_id=request.membership_id,
        kind=POST_KIND.from_proto(request.kind),
        category=request.category,
        division_code=request.division_code,
        quantity=request.quantity,
        unit=request.unit,
        description=request.description,
        valid_until=request.valid_until,
    )


def list_posts(request: commerce_pb2.ListPostsRequest) -> rules.ListPosts:
    return rules.ListPosts(
        chamber_id=request.chamber_id,
        # UNSPECIFIED means any kind here (the input guard already refused numbers the contract lacks).
        kind=POST_KIND.from_proto(request.kind),
        category=request.category,
        credit_code=request.credit_code,
        include_expired=request.include_expired,
    )


def find_matches(request: commerce_pb2.FindMatchesRequest) -> rules.FindMatches:
    return rules.FindMatches(post_id=request.post_id, limit=request.limit)


def express_interest(request: commerce_pb2.ExpressInterestRequest) -> rules.ExpressInterest:
    return rules.ExpressInterest(
        request_id=request.request_id,
        post_id=request.post_id,
        counterpart_post_id=request.counterpart_post_id,
    )


def accept_match(request: commerce_pb2.AcceptMatchRequest) -> rules.AcceptMatch:
    return rules.AcceptMatch(match_id=request.match_id, side=POST_KIND.from_proto(request.side))


def list_matches(request: commerce_pb2.ListMatchesRequest) -> rules.ListMatches:
    return rules.ListMatches(post_id=request.post_id, credit_code=request.credit_code)


# --- domain -> responses and events --------------------------------------------------------------


def post_pb(post: Post) -> commerce_pb2.Post:
    return commerce_pb2.Post(
        post_id=post.post_id,
        chamber_id=post.chamber_id,
        membership_id=post.membership_id,
        credit_code=post.credit_code,
        kind=POST_KIND.to_proto(post.kind),
        category=post.category,
        division_code=post.division_code,
        quantity=post.quantity,
        unit=post.unit,
        description=post.description,
        valid_until=post.valid_until.isoformat(),
        created_at=to_timestamp(post.created_at),
    )


def ranked_pb(ranked: RankedMatch) -> commerce_pb2.RankedMatch:
    return commerce_pb2.RankedMatch(
        post=post_pb(ranked.post),
        score=ranked.score,
        parts=[
            commerce_pb2.ScorePart(factor=p.factor, value=p.value, weight=p.weight, explanation=p.explanation)
            for p in ranked.parts
        ],
    )


def match_pb(match: Match) -> commerce_pb2.Match:
    return commerce_pb2.Match(
        match_id=match.match_id,
        supply_post_id=match.supply_post_id,
        demand_post_id=match.demand_post_id,
        supply_credit_code=match.supply_credit_code,
        demand_credit_code=match.demand_credit_code,
        status=MATCH_STATUS.to_proto(match.status),
        supply_accepted=match.supply_accepted,
        demand_accepted=match.demand_accepted,
        score=match.score,
        proposed_at=to_timestamp(match.proposed_at),
        matched_at=optional_timestamp(match.matched_at),
    )


def match_made(match: Match, category: str, at: datetime) -> events_pb2.MatchMade:
    return events_pb2.MatchMade(
        match_id=match.match_id,
        supply_post_id=match.supply_post_id,
        demand_post_id=match.demand_post_id,
        supply_credit_code=match.supply_credit_code,
        demand_credit_code=match.demand_credit_code,
        category=category,
        score=match.score,
        at=to_timestamp(at),
    )
