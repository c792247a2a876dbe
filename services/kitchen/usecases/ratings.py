"""Rating a meal (one rating per rater per meal, the rater kept only as a keyed digest) and listing a
kitchen's ratings."""

from __future__ import annotations

from datetime import datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.ratings import ALREADY_RATED, RateMeal, Rating, RatingsQuery, rater_material
from services.kitchen.mapping.ratings import rating_recorded
from services.kitchen.usecases.common import KitchenContext, new_id, require_kitchen
from services.platform.errors import InvalidArgumentError, NotFoundError, shown
from services.platform.logs import get_logger
from services.platform.paging import Page, decode_cursor, paginate

__all__ = ["MealRatings"]

log = get_logger()
_OPERATION = "rate_meal"


class MealRatings:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx

    def rate(self, command: RateMeal, visibility: Visibility) -> Rating:
        command.check()
        digest = self._ctx.vault.mac(rater_material(command.rater_id))
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim(_OPERATION, command.request_id, command)
            if replay is not None:
                first = tx.repo.get_rating(replay["rating_id"])
                assert first is not None
                return first
            kitchen_id = tx.repo.rated_meal_kitchen(command.meal_id)
            if kitchen_id is None:
                raise NotFoundError(f"no meal {shown(command.meal_id)!r}")
            require_kitchen(tx, kitchen_id, visibility)
            if tx.repo.has_rated(command.meal_id, digest):
                raise InvalidArgumentError.of("rater_id", ALREADY_RATED)
            rating = Rating(
                rating_id=new_id("rat"),
                meal_id=command.meal_id,
                kitchen_id=kitchen_id,
                score=command.score,
                comment=command.comment,
                rated_at=self._ctx.clock(),
            )
            # A concurrent rating by the same rater got in between: the same answer as the check above.
            if not tx.repo.add_rating(rating, digest):
                raise InvalidArgumentError.of("rater_id", ALREADY_RATED)
            tx.publish(key=kitchen_id, subject=rating.rating_id, message=rating_recorded(rating))
            tx.remember(_OPERATION, command.request_id, {"rating_id": rating.rating_id})
        log.info("meal_rated", rating_id=rating.rating_id, kitchen_id=kitchen_id, meal_id=rating.meal_id)
        return rating

    def list_ratings(
        self, query: RatingsQuery, page: Page, visibility: Visibility
    ) -> tuple[list[Rating], str]:
        query.check()
        before = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            require_kitchen(tx, query.kitchen_id, visibility)
            found = tx.repo.list_ratings(
                query.kitchen_id, start=query.start, end=query.end, before=before, limit=page.size + 1
            )
        return paginate(found, page, lambda r: (r.rated_at, r.rating_id))
