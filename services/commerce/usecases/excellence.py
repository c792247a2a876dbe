"""Excellence (争先创优): awards on the points ledger, a member's ledger, rankings of members in a chamber
and of chambers across a federation, published rankings, and the showcase figures.

The other families credit the ledger themselves (``tx.repo.add_points`` in their own transactions); this
family records awards and reads the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.commerce.domain.access import Visibility
from services.commerce.domain.excellence import (
    GetShowcase,
    LedgerEntry,
    ListLedger,
    Ranked,
    Ranking,
    RankingQuery,
    RecordAward,
    Showcase,
    chamber_totals,
    rank_chambers,
    rank_members,
)
from services.commerce.domain.model import MembershipStatus, PointSource
from services.commerce.mapping import excellence as excellence_mapping
from services.commerce.usecases.common import (
    CommerceContext,
    CommerceTx,
    new_id,
    require_chamber,
    require_membership,
)
from services.platform.errors import FailedPreconditionError, NotFoundError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["Excellence", "LedgerPage"]

log = get_logger()

# Awards may be given to a suspended member too (the award may predate the suspension); not to a pending,
# rejected or former one.
_AWARDABLE = (MembershipStatus.ACTIVE, MembershipStatus.SUSPENDED)
LedgerPage = tuple[list[LedgerEntry], int, str]


def _ranking_result(ranking: Ranking) -> dict[str, Any]:
    """A published ranking as the request log keeps it: a replay answers exactly what was published."""
    return {
        "chamber_id": ranking.chamber_id,
        "federation_id": ranking.federation_id,
        "start": ranking.start.isoformat(),
        "end": ranking.end.isoformat(),
        "entries": [[r.rank, r.id, r.name, r.points] for r in ranking.entries],
    }


def _ranking_of(result: dict[str, Any]) -> Ranking:
    return Ranking(
        chamber_id=result["chamber_id"],
        federation_id=result["federation_id"],
        start=datetime.fromisoformat(result["start"]),
        end=datetime.fromisoformat(result["end"]),
        entries=tuple(Ranked(int(e[0]), str(e[1]), str(e[2]), int(e[3])) for e in result["entries"]),
    )


class Excellence:
    def __init__(self, ctx: CommerceContext) -> None:
        self._uow = ctx.uow
        self._clock = ctx.clock

    # --- the ledger --------------------------------------------------------------------------------------

    def record_award(self, command: RecordAward, visibility: Visibility) -> LedgerEntry:
        command.check()
        with self._uow.transaction() as tx:
            replay = tx.claim("record_award", command.request_id, command)
            if replay is not None:
                existing = tx.repo.get_ledger_entry(replay["entry_id"])
                assert existing is not None, "a remembered ledger entry is never deleted"
                return existing
            member = require_membership(tx, command.membership_id, visibility)
            # Awards are the chamber's to give: an enterprise user seeing its own membership may not.
            if not visibility.sees_chamber(member.chamber_id):
                raise NotFoundError(f"no membership {command.membership_id!r}")
            if member.status not in _AWARDABLE:
                raise FailedPreconditionError(
                    f"membership_id: the membership is {member.status.value}, awards go to active or"
                    " suspended members"
                )
            entry_id = new_id("pts")
            entry = LedgerEntry(
                entry_id=entry_id,
                membership_id=member.membership_id,
                chamber_id=member.chamber_id,
                source=PointSource.AWARD,
                # Each award is its own source, so every award counts (the ledger keeps one entry per
                # member, source and source id).
                source_id=entry_id,
                points=command.points,
                note=command.title,
                earned_at=self._clock(),
            )
            tx.repo.add_points(
                entry_id=entry.entry_id,
                membership_id=entry.membership_id,
                chamber_id=entry.chamber_id,
                source=entry.source,
                source_id=entry.source_id,
                points=entry.points,
                note=entry.note,
                earned_at=entry.earned_at,
            )
            tx.remember("record_award", command.request_id, {"entry_id": entry_id})
        log.info("award_recorded", entry_id=entry_id, membership_id=entry.membership_id, points=entry.points)
        return entry

    def list_ledger(
        self, query: ListLedger, visibility: Visibility, page_size: int, page_token: str
    ) -> LedgerPage:
        """A page of the member's entries (newest first), the period's total and the next page's token."""
        query.check()
        page = page_of(page_size, page_token)
        before = decode_cursor(page.token, datetime, str)
        start, end = query.period
        with self._uow.transaction() as tx:
            member = require_membership(tx, query.membership_id, visibility)
            entries = tx.repo.list_ledger_entries(
                member.membership_id,
                start,
                end,
                before=(before[0], before[1]) if before else None,
                limit=page.size + 1,
            )
            total = tx.repo.ledger_total(member.membership_id, start, end)
        shown, token = paginate(entries, page, lambda e: (e.earned_at, e.entry_id))
        return shown, total, token

    # --- rankings ----------------------------------------------------------------------------------------

    def rankings(self, query: RankingQuery, visibility: Visibility) -> Ranking:
        query.check()
        with self._uow.transaction() as tx:
            return self._ranking(tx, query, visibility, publishing=False)

    def publish_ranking(self, query: RankingQuery, visibility: Visibility) -> Ranking:
        """The ranking as GetRankings computes it, published as RankingPublished once per request id."""
        query.check(publishing=True)
        now = self._clock()
        with self._uow.transaction() as tx:
            # Access first, then the request log: a replay answers only a caller who may publish this.
            ranking = self._ranking(tx, query, visibility, publishing=True)
            replay = tx.claim("publish_ranking", query.request_id, query)
            if replay is not None:
                return _ranking_of(replay)
            tx.publish(
                key=ranking.subject,
                subject=ranking.subject,
                message=excellence_mapping.ranking_published(ranking, now),
            )
            tx.remember("publish_ranking", query.request_id, _ranking_result(ranking))
        log.info("ranking_published", subject=ranking.subject, places=len(ranking.entries))
        return ranking

    def _ranking(
        self, tx: CommerceTx, query: RankingQuery, visibility: Visibility, *, publishing: bool
    ) -> Ranking:
        start, end = query.bounds
        if query.chamber_id:
            chamber_id = self._ranked_chamber(tx, query.chamber_id, visibility, publishing=publishing)
            totals = tx.repo.excellence_member_totals([chamber_id], start, end)
            entries = rank_members(totals, query.places)
        else:
            chambers = self._federation_chambers(tx, query.federation_id, visibility, publishing=publishing)
            totals = tx.repo.excellence_member_totals(sorted(chambers), start, end)
            entries = rank_chambers(chamber_totals(totals, chambers), query.places)
        return Ranking(query.chamber_id, query.federation_id, start, end, tuple(entries))

    @staticmethod
    def _ranked_chamber(tx: CommerceTx, chamber_id: str, visibility: Visibility, *, publishing: bool) -> str:
        """A chamber's ranking is its staff's (and federation staff's); its members may read it too."""
        if publishing or visibility.sees_chamber(chamber_id):
            return require_chamber(tx, chamber_id, visibility).chamber_id
        chamber = tx.repo.get_chamber(chamber_id)
        if chamber is None or not tx.repo.excellence_member_of(chamber_id, visibility.enterprises):
            raise NotFoundError(f"no chamber {chamber_id!r}")
        return chamber.chamber_id

    @staticmethod
    def _federation_chambers(
        tx: CommerceTx, federation_id: str, visibility: Visibility, *, publishing: bool
    ) -> dict[str, str]:
        """The chambers of the federation's whole subtree. Federation staff read and publish it; staff of a
        chamber in it may read it (to see where their chamber stands)."""
        missing = NotFoundError(f"no federation {federation_id!r}")
        if not tx.repo.excellence_federation_exists(federation_id):
            raise missing
        chambers = tx.repo.excellence_subtree_chambers(federation_id)
        if visibility.everything:
            return chambers
        if publishing or not visibility.chambers & chambers.keys():
            raise missing
        return chambers

    # --- showcase ----------------------------------------------------------------------------------------

    def showcase(self, query: GetShowcase, visibility: Visibility) -> Showcase:
        query.check()
        start, end = query.bounds
        with self._uow.transaction() as tx:
            if query.chamber_id:
                chamber_ids = [require_chamber(tx, query.chamber_id, visibility).chamber_id]
            else:
                if not visibility.everything or not tx.repo.excellence_federation_exists(query.federation_id):
                    raise NotFoundError(f"no federation {query.federation_id!r}")
                chamber_ids = sorted(tx.repo.excellence_subtree_chambers(query.federation_id))
            figures = tx.repo.excellence_showcase(chamber_ids, start, end)
        return Showcase(
            chamber_id=query.chamber_id,
            federation_id=query.federation_id,
            start=start,
            end=end,
            members=figures["members"],
            new_joins=figures["new_joins"],
            activities=figures["activities"],
            matches=figures["matches"],
            requests_resolved=figures["requests_resolved"],
            requests_resolved_on_time=figures["requests_resolved_on_time"],
        )
