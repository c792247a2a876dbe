"""KitchenService methods of the ratings family."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import ratings as mapping
from services.kitchen.mapping.profile import page_pb
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.ratings import MealRatings
from services.platform.paging import page_of

__all__ = ["RatingsApi"]


class RatingsApi:
    _meal_ratings: MealRatings

    def _init_ratings(self, ctx: KitchenContext) -> None:
        self._meal_ratings = MealRatings(ctx)

    def RateMeal(  # noqa: N802
        self,
        request: kitchen_pb2.RateMealRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RateMealResponse:
        rating = self._meal_ratings.rate(mapping.rate_meal(request), current_visibility())
        return kitchen_pb2.RateMealResponse(rating=mapping.rating_pb(rating))

    def ListRatings(  # noqa: N802
        self,
        request: kitchen_pb2.ListRatingsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListRatingsResponse:
        page = page_of(request.page.page_size, request.page.page_token)
        ratings, token = self._meal_ratings.list_ratings(
            mapping.ratings_query(request), page, current_visibility()
        )
        return kitchen_pb2.ListRatingsResponse(
            ratings=[mapping.rating_pb(r) for r in ratings], page=page_pb(token)
        )
