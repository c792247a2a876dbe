"""CommerceService methods of the excellence family: awards, the ledger, rankings and the showcase."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import excellence as mapping
from services.commerce.usecases.common import CommerceContext
from services.commerce.usecases.excellence import Excellence

__all__ = ["ExcellenceApi"]


class ExcellenceApi:
    _excellence: Excellence

    def _init_excellence(self, ctx: CommerceContext) -> None:
        self._excellence = Excellence(ctx)

    def RecordAward(  # noqa: N802
        self,
        request: commerce_pb2.RecordAwardRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.RecordAwardResponse:
        entry = self._excellence.record_award(mapping.record_award(request), current_visibility())
        return commerce_pb2.RecordAwardResponse(entry=mapping.ledger_entry_pb(entry))

    def ListLedger(  # noqa: N802
        self,
        request: commerce_pb2.ListLedgerRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListLedgerResponse:
        entries, total, token = self._excellence.list_ledger(
            mapping.list_ledger(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return mapping.list_ledger_response(entries, total, token)

    def GetRankings(  # noqa: N802
        self,
        request: commerce_pb2.GetRankingsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.GetRankingsResponse:
        ranking = self._excellence.rankings(mapping.ranking_query(request), current_visibility())
        return commerce_pb2.GetRankingsResponse(ranking=mapping.ranking_pb(ranking))

    def PublishRanking(  # noqa: N802
        self,
        request: commerce_pb2.PublishRankingRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.PublishRankingResponse:
        ranking = self._excellence.publish_ranking(mapping.publish_query(request), current_visibility())
        return commerce_pb2.PublishRankingResponse(ranking=mapping.ranking_pb(ranking))

    def GetShowcase(  # noqa: N802
        self,
        request: commerce_pb2.GetShowcaseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.GetShowcaseResponse:
        showcase = self._excellence.showcase(mapping.showcase_query(request), current_visibility())
        return commerce_pb2.GetShowcaseResponse(showcase=mapping.showcase_pb(showcase))
