"""Proto <-> domain for ratings (the rater id goes in, never out)."""

from __future__ import annotations

from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.kitchen.domain.ratings import RateMeal, Rating, RatingsQuery
from services.platform.protoconv import time_range, to_timestamp

__all__ = ["rate_meal", "rating_pb", "rating_recorded", "ratings_query"]


def rate_meal(request: kitchen_pb2.RateMealRequest) -> RateMeal:
    return RateMeal(
        request_id=request.request_id,
        meal_id=request.meal_id,
        rater_id=request.rater_id,
        score=request.score,
        comment=request.comment,
    )


def ratings_query(request: kitchen_pb2.ListRatingsRequest) -> RatingsQuery:
    start, end = time_range(request.period)
    return RatingsQuery(request.kitchen_id, start, end)


def rating_pb(rating: Rating) -> kitchen_pb2.Rating:
    return kitchen_pb2.Rating(
        rating_id=rating.rating_id,
        meal_id=rating.meal_id,
        kitchen_id=rating.kitchen_id,
        score=rating.score,
        comment=rating.comment,
        rated_at=to_timestamp(rating.rated_at),
    )


def rating_recorded(rating: Rating) -> events_pb2.RatingRecorded:
    """The event: the meal, the score and when, never who rated (nor the comment: free text may name)."""
    return events_pb2.RatingRecorded(
        kitchen_id=rating.kitchen_id,
        meal_id=rating.meal_id,
        rating_id=rating.rating_id,
        score=rating.score,
        rated_at=to_timestamp(rating.rated_at),
    )
