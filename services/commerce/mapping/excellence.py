"""Proto <-> domain for the excellence family: awards, the ledger, rankings and the showcase."""

from __future__ import annotations

from datetime import datetime

from cityhub.commerce.v1 import commerce_pb2, events_pb2
from cityhub.common.v1 import common_pb2

from services.commerce.domain.excellence import (
    GetShowcase,
    LedgerEntry,
    ListLedger,
    Ranking,
    RankingQuery,
    RecordAward,
    Showcase,
)
from services.commerce.mapping import POINT_SOURCE
from services.platform.protoconv import time_range, to_timestamp

__all__ = [
    "ledger_entry_pb",
    "list_ledger",
    "list_ledger_response",
    "publish_query",
    "ranking_pb",
    "ranking_published",
    "ranking_query",
    "record_award",
    "showcase_pb",
    "showcase_query",
]


def record_award(request: commerce_pb2.RecordAwardRequest) -> RecordAward:
    return RecordAward(request.request_id, request.membership_id, request.title, request.points)


def list_ledger(request: commerce_pb2.ListLedgerRequest) -> ListLedger:
    return ListLedger(request.membership_id, time_range(request.period))


def ranking_query(request: commerce_pb2.GetRankingsRequest) -> RankingQuery:
    return RankingQuery(request.chamber_id, request.federation_id, time_range(request.period), request.limit)


def publish_query(request: commerce_pb2.PublishRankingRequest) -> RankingQuery:
    return RankingQuery(
        request.chamber_id,
        request.federation_id,
        time_range(request.period),
        request.limit,
        request.request_id,
    )


def showcase_query(request: commerce_pb2.GetShowcaseRequest) -> GetShowcase:
    return GetShowcase(request.chamber_id, request.federation_id, time_range(request.period))


def ledger_entry_pb(entry: LedgerEntry) -> commerce_pb2.LedgerEntry:
    return commerce_pb2.LedgerEntry(
        entry_id=entry.entry_id,
        membership_id=entry.membership_id,
        chamber_id=entry.chamber_id,
        source=POINT_SOURCE.to_proto(entry.source),
        source_id=entry.source_id,
        points=entry.points,
        note=entry.note,
        earned_at=to_timestamp(entry.earned_at),
    )


def list_ledger_response(
    entries: list[LedgerEntry], total_points: int, next_token: str
) -> commerce_pb2.ListLedgerResponse:
    return commerce_pb2.ListLedgerResponse(
        entries=[ledger_entry_pb(e) for e in entries],
        total_points=total_points,
        page=common_pb2.PageResponse(next_page_token=next_token, total_size=-1),
    )


def _period_pb(start: datetime, end: datetime) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=to_timestamp(start), end_time=to_timestamp(end))


def ranking_pb(ranking: Ranking) -> commerce_pb2.Ranking:
    return commerce_pb2.Ranking(
        chamber_id=ranking.chamber_id,
        federation_id=ranking.federation_id,
        period=_period_pb(ranking.start, ranking.end),
        entries=[
            commerce_pb2.Ranked(rank=r.rank, id=r.id, name=r.name, points=r.points) for r in ranking.entries
        ],
    )


def ranking_published(ranking: Ranking, at: datetime) -> events_pb2.RankingPublished:
    """The event: ids, names of the ranked (enterprise or chamber names, public in a ranking) and points."""
    return events_pb2.RankingPublished(ranking=ranking_pb(ranking), at=to_timestamp(at))


def showcase_pb(showcase: Showcase) -> commerce_pb2.Showcase:
    return commerce_pb2.Showcase(
        chamber_id=showcase.chamber_id,
        federation_id=showcase.federation_id,
        period=_period_pb(showcase.start, showcase.end),
        members=showcase.members,
        new_joins=showcase.new_joins,
        activities=showcase.activities,
        matches=showcase.matches,
        requests_resolved=showcase.requests_resolved,
        requests_resolved_on_time=showcase.requests_resolved_on_time,
    )
