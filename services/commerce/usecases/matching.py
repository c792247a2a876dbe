"""Business matching: posts, the ranked counterparts of a post, and the two-sided acceptance that makes a
match (crediting both members' excellence points in the same transaction)."""

from __future__ import annotations

from datetime import date, datetime

from services.commerce.domain import matching as rules
from services.commerce.domain.access import Visibility
from services.commerce.domain.matching import Match, MatchStatus, Post, PostKind, RankedMatch
from services.commerce.domain.model import MembershipStatus, PointSource
from services.commerce.mapping.matching import match_made
from services.commerce.usecases.common import CommerceContext, CommerceTx, new_id, require_membership
from services.platform.errors import FailedPreconditionError, NotFoundError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["Matching"]

log = get_logger()
# The most counterparts one FindMatches scores: far more than any district's open posts in one category.
_MAX_CANDIDATES = 5000


class Matching:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    def _today(self) -> date:
        return self._ctx.clock().astimezone(self._ctx.config.zone).date()

    # --- posts -------------------------------------------------------------------------------------

    def create_post(self, command: rules.CreatePost, visibility: Visibility) -> Post:
        valid_until = command.check(self._today())
        assert command.kind is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("create_post", command.request_id, command)
            if replay is not None:
                return _stored_post(tx, replay["post_id"])
            member = require_membership(tx, command.membership_id, visibility)
            if member.status is not MembershipStatus.ACTIVE:
                raise FailedPreconditionError(
                    f"membership_id: membership {member.membership_id} is {member.status.value}, not ACTIVE"
                )
            post = Post(
                new_id("post"),
                member.chamber_id,
                member.membership_id,
                member.credit_code,
                command.kind,
                command.category,
                command.division_code,
                command.quantity,
                command.unit,
                command.description,
                valid_until,
                self._ctx.clock(),
            )
            tx.repo.add_post(post)
            tx.remember("create_post", command.request_id, {"post_id": post.post_id})
        log.info("post_created", post_id=post.post_id, chamber_id=post.chamber_id, kind=post.kind.value)
        return post

    def list_posts(
        self, query: rules.ListPosts, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Post], str]:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            posts = tx.repo.list_posts(
                visibility,
                chamber_id=query.chamber_id,
                kind=query.kind,
                category=query.category,
                credit_code=query.credit_code,
                open_on=None if query.include_expired else self._today(),
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
            )
        return paginate(posts, page, lambda p: (p.created_at, p.post_id))

    # --- matches -----------------------------------------------------------------------------------

    def find_matches(self, query: rules.FindMatches, visibility: Visibility) -> list[RankedMatch]:
        limit = query.check()
        today = self._today()
        with self._ctx.uow.transaction() as tx:
            post = _visible_post(tx, query.post_id, visibility, "post")
            if not rules.is_open(post, today):
                # An expired post matches nothing; answering an empty list would hide why.
                raise FailedPreconditionError(
                    f"post_id: post {post.post_id} expired on {post.valid_until.isoformat()}"
                )
            federation = tx.repo.federation_of_chamber(post.chamber_id)
            candidates = tx.repo.counterpart_candidates(post, today, _MAX_CANDIDATES)
        return rules.rank(post, federation, candidates, limit)

    def express_interest(self, command: rules.ExpressInterest, visibility: Visibility) -> Match:
        command.check()
        today = self._today()
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("express_interest", command.request_id, command)
            if replay is not None:
                return _stored_match(tx, replay["match_id"])
            own = _visible_post(tx, command.post_id, visibility, "post")
            other = tx.repo.get_post(command.counterpart_post_id)
            if other is None:
                raise FailedPreconditionError(f"counterpart_post_id: no post {command.counterpart_post_id!r}")
            if other.kind is own.kind:
                raise FailedPreconditionError(
                    f"counterpart_post_id: both posts are {own.kind.value}; a match pairs supply and demand"
                )
            if other.credit_code == own.credit_code:
                raise FailedPreconditionError("counterpart_post_id: is a post of the same enterprise")
            for field, post in (("post_id", own), ("counterpart_post_id", other)):
                if not rules.is_open(post, today):
                    raise FailedPreconditionError(
                        f"{field}: post {post.post_id} expired on {post.valid_until.isoformat()}"
                    )
            _require_active(tx, own)
            supply, demand = rules.supply_and_demand(own, other)
            match = tx.repo.match_of_pair(supply.post_id, demand.post_id, for_update=True)
            if match is None:
                match = self._propose(tx, own, other, supply, demand)
            match = self._accept(tx, match, own.kind, {supply.kind: supply, demand.kind: demand})
            tx.remember("express_interest", command.request_id, {"match_id": match.match_id})
        log.info("match_interest_expressed", match_id=match.match_id, side=own.kind.value)
        return match

    def accept_match(self, command: rules.AcceptMatch, visibility: Visibility) -> Match:
        command.check()
        assert command.side is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            match = tx.repo.get_match(command.match_id, for_update=True)
            if match is None:
                raise NotFoundError(f"no match {command.match_id!r}")
            side_post_id = match.supply_post_id if command.side is PostKind.SUPPLY else match.demand_post_id
            other_post_id = match.demand_post_id if command.side is PostKind.SUPPLY else match.supply_post_id
            side_post = tx.repo.get_post(side_post_id)
            other_post = tx.repo.get_post(other_post_id)
            assert side_post is not None, "posts are never deleted"
            assert other_post is not None, "posts are never deleted"
            # Only that side's enterprise (or its chamber's staff) accepts for it.
            if not visibility.sees_member(side_post.chamber_id, side_post.credit_code):
                raise NotFoundError(f"no match {command.match_id!r}")
            _require_active(tx, side_post)
            match = self._accept(
                tx, match, command.side, {side_post.kind: side_post, other_post.kind: other_post}
            )
        log.info(
            "match_accepted", match_id=match.match_id, side=command.side.value, status=match.status.value
        )
        return match

    def list_matches(
        self, query: rules.ListMatches, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Match], str]:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            if query.post_id:
                _visible_post(tx, query.post_id, visibility, "post")
            matches = tx.repo.list_matches(
                visibility,
                post_id=query.post_id,
                credit_code=query.credit_code,
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
            )
        return paginate(matches, page, lambda m: (m.proposed_at, m.match_id))

    # --- steps -------------------------------------------------------------------------------------

    def _propose(self, tx: CommerceTx, own: Post, other: Post, supply: Post, demand: Post) -> Match:
        federation = tx.repo.federation_of_chamber(own.chamber_id)
        other_federation = tx.repo.federation_of_chamber(other.chamber_id)
        chamber = tx.repo.get_chamber(other.chamber_id)
        matched_before = tx.repo.matched_before(own.credit_code, other.credit_code)
        candidate = rules.Candidate(other, other_federation, chamber.name if chamber else "", matched_before)
        score = rules.explain(own, federation, candidate).score
        proposed = Match(
            new_id("match"),
            supply.post_id,
            demand.post_id,
            supply.credit_code,
            demand.credit_code,
            MatchStatus.PROPOSED,
            False,
            False,
            score,
            self._ctx.clock(),
            None,
        )
        if tx.repo.add_match(proposed):
            return proposed
        # The other side proposed the same pair at the same instant: join theirs.
        joined = tx.repo.match_of_pair(supply.post_id, demand.post_id, for_update=True)
        assert joined is not None, "the conflicting match exists"
        return joined

    def _accept(self, tx: CommerceTx, match: Match, side: PostKind, posts: dict[PostKind, Post]) -> Match:
        if match.status is MatchStatus.MATCHED:
            raise FailedPreconditionError(f"match {match.match_id} is MATCHED already")
        now = self._ctx.clock()
        changed, made = rules.accept(match, side, now)
        if changed == match:
            return match
        tx.repo.save_match(changed)
        if made:
            points = self._ctx.config.points[PointSource.MATCH_COMPLETED]
            for post in posts.values():
                tx.repo.add_points(
                    entry_id=new_id("pts"),
                    membership_id=post.membership_id,
                    chamber_id=post.chamber_id,
                    source=PointSource.MATCH_COMPLETED,
                    source_id=changed.match_id,
                    points=points,
                    note=f"match {changed.match_id} ({post.category})",
                    earned_at=now,
                )
            category = posts[PostKind.DEMAND].category
            tx.publish(
                key=changed.match_id, subject=changed.match_id, message=match_made(changed, category, now)
            )
            log.info("match_made", match_id=changed.match_id)
        return changed


def _visible_post(tx: CommerceTx, post_id: str, visibility: Visibility, what: str) -> Post:
    post = tx.repo.get_post(post_id) if post_id else None
    if post is None or not visibility.sees_member(post.chamber_id, post.credit_code):
        raise NotFoundError(f"no {what} {post_id!r}")
    return post


def _require_active(tx: CommerceTx, post: Post) -> None:
    member = tx.repo.get_membership(post.membership_id)
    if member is None or member.status is not MembershipStatus.ACTIVE:
        status = member.status.value if member else "gone"
        raise FailedPreconditionError(
            f"post {post.post_id}: its membership {post.membership_id} is {status}, not ACTIVE"
        )


def _stored_post(tx: CommerceTx, post_id: str) -> Post:
    post = tx.repo.get_post(post_id)
    assert post is not None, "a remembered post is never deleted"
    return post


def _stored_match(tx: CommerceTx, match_id: str) -> Match:
    match = tx.repo.get_match(match_id)
    assert match is not None, "a remembered match is never deleted"
    return match
