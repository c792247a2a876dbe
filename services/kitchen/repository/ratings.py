"""SQL of the ratings (the rater kept only as its keyed digest, never returned)."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from services.kitchen.domain.ratings import Rating
from services.platform.repository import SqlPart

__all__ = ["RatingsSql"]

# Never the rater's digest: nothing read back from this table says who rated.
_COLUMNS = "rating_id, meal_id, kitchen_id, score, comment, rated_at"


def _rating(row: dict[str, Any]) -> Rating:
    return Rating(
        rating_id=row["rating_id"],
        meal_id=row["meal_id"],
        kitchen_id=row["kitchen_id"],
        score=row["score"],
        comment=row["comment"],
        rated_at=row["rated_at"],
    )


class RatingsSql(SqlPart):
    def rated_meal_kitchen(self, meal_id: str) -> str | None:
        """The kitchen that served the meal, or None when there is no such meal."""
        row = self._conn.execute("SELECT kitchen_id FROM meals WHERE meal_id = %s", (meal_id,)).fetchone()
        return row[0] if row else None

    def has_rated(self, meal_id: str, rater_digest: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM ratings WHERE meal_id = %s AND rater_digest = %s", (meal_id, rater_digest)
        ).fetchone()
        return row is not None

    def add_rating(self, rating: Rating, rater_digest: str) -> bool:
        """Store the rating; False when the rater already rated the meal (a concurrent rating included:
        the insert waits for it and then does nothing)."""
        row = self._conn.execute(
            f"INSERT INTO ratings ({_COLUMNS}, rater_digest) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (meal_id, rater_digest) DO NOTHING RETURNING 1",
            (
                rating.rating_id,
                rating.meal_id,
                rating.kitchen_id,
                rating.score,
                rating.comment,
                rating.rated_at,
                rater_digest,
            ),
        ).fetchone()
        return row is not None

    def get_rating(self, rating_id: str) -> Rating | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"SELECT {_COLUMNS} FROM ratings WHERE rating_id = %s", (rating_id,)).fetchone()
        return _rating(row) if row else None

    def list_ratings(
        self,
        kitchen_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        before: tuple[Any, ...] | None,
        limit: int,
    ) -> list[Rating]:
        clauses = ["kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if start is not None:
            clauses.append("rated_at >= %s")
            params.append(start)
        if end is not None:
            clauses.append("rated_at < %s")
            params.append(end)
        if before is not None:
            clauses.append("(rated_at, rating_id) < (%s, %s)")
            params.extend(before)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM ratings WHERE {' AND '.join(clauses)}"
                " ORDER BY rated_at DESC, rating_id DESC LIMIT %s",
                params,
            ).fetchall()
        return [_rating(row) for row in rows]
