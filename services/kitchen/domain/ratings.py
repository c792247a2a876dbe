"""Ratings of meals by parents and pupils: 1-5 with an optional comment, one rating per rater per meal.
The rater is kept only as a keyed digest; no answer or event ever names who rated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.validation import check_query_period, text_problem

__all__ = [
    "ALREADY_RATED",
    "MAX_COMMENT_CHARS",
    "MAX_RATER_ID_CHARS",
    "MAX_SCORE",
    "MIN_SCORE",
    "RateMeal",
    "Rating",
    "RatingsQuery",
    "rater_material",
]

MIN_SCORE = 1
MAX_SCORE = 5
MAX_COMMENT_CHARS = 500
MAX_RATER_ID_CHARS = 128
ALREADY_RATED = "has already rated this meal"


def rater_material(rater_id: str) -> bytes:
    """What the rater digest is a keyed MAC of (domain-separated from request fingerprints)."""
    return b"rater|" + rater_id.encode()


@dataclass(frozen=True, slots=True)
class Rating:
    rating_id: str
    meal_id: str
    kitchen_id: str
    score: int
    comment: str
    rated_at: datetime


@dataclass(frozen=True, slots=True)
class RateMeal:
    request_id: str
    meal_id: str
    # The rater's account id in the rating app; only its keyed digest is stored.
    rater_id: str
    score: int
    comment: str

    def check(self) -> None:
        violations = Violations()
        check_request_id(violations, self.request_id)
        if not self.meal_id:
            violations.add("meal_id", "is required")
        if not self.rater_id:
            violations.add("rater_id", "is required")
        else:
            violations.add_if(text_problem(self.rater_id, max_chars=MAX_RATER_ID_CHARS), "rater_id")
        if not MIN_SCORE <= self.score <= MAX_SCORE:
            violations.add("score", f"must be {MIN_SCORE} to {MAX_SCORE}")
        violations.add_if(text_problem(self.comment, max_chars=MAX_COMMENT_CHARS, free_text=True), "comment")
        violations.check()


@dataclass(frozen=True, slots=True)
class RatingsQuery:
    """ListRatings: a kitchen's ratings given in a period (open bounds), newest first."""

    kitchen_id: str
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        violations = Violations()
        if not self.kitchen_id:
            violations.add("kitchen_id", "is required")
        check_query_period(violations, "period", self.start, self.end, required=False)
        violations.check()
