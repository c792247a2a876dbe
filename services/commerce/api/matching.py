"""CommerceService methods of business matching: posts, ranked counterparts, interest and acceptance."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import matching as convert
from services.commerce.usecases.common import CommerceContext
from services.commerce.usecases.matching import Matching

__all__ = ["MatchingApi"]


class MatchingApi:
    _matching: Matching

    def _init_matching(self, ctx: CommerceContext) -> None:
        self._matching = Matching(ctx)

    def CreatePost(  # noqa: N802
        self,
        request: commerce_pb2.CreatePostRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CreatePostResponse:
        post = self._matching.create_post(convert.create_post(request), current_visibility())
        return commerce_pb2.CreatePostResponse(post=convert.post_pb(post))

    def ListPosts(  # noqa: N802
        self,
        request: commerce_pb2.ListPostsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListPostsResponse:
        posts, token = self._matching.list_posts(
            convert.list_posts(request), current_visibility(), request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListPostsResponse(
            posts=[convert.post_pb(p) for p in posts],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )

    def FindMatches(  # noqa: N802
        self,
        request: commerce_pb2.FindMatchesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.FindMatchesResponse:
        ranked = self._matching.find_matches(convert.find_matches(request), current_visibility())
        return commerce_pb2.FindMatchesResponse(matches=[convert.ranked_pb(r) for r in ranked])

    def ExpressInterest(  # noqa: N802
        self,
        request: commerce_pb2.ExpressInterestRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ExpressInterestResponse:
        match = self._matching.express_interest(convert.express_interest(request), current_visibility())
        return commerce_pb2.ExpressInterestResponse(match=convert.match_pb(match))

    def AcceptMatch(  # noqa: N802
        self,
        request: commerce_pb2.AcceptMatchRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.AcceptMatchResponse:
        match = self._matching.accept_match(convert.accept_match(request), current_visibility())
        return commerce_pb2.AcceptMatchResponse(match=convert.match_pb(match))

    def ListMatches(  # noqa: N802
        self,
        request: commerce_pb2.ListMatchesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListMatchesResponse:
        matches, token = self._matching.list_matches(
            convert.list_matches(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return commerce_pb2.ListMatchesResponse(
            matches=[convert.match_pb(m) for m in matches],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )
