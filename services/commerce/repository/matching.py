"""SQL of business matching: posts, counterpart candidates and matches."""

# ruff: noqa: S608 - the statements are assembled from constant fragments; values are always bound

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from services.commerce.domain.access import Visibility
from services.commerce.domain.matching import Candidate, Match, MatchStatus, Post, PostKind, category_key
from services.platform.repository import SqlPart

__all__ = ["MatchingSql"]

_POST_COLUMNS = (
    "p.post_id, p.chamber_id, p.membership_id, p.credit_code, p.kind, p.category, p.division_code,"
    " p.quantity, p.unit, p.description, p.valid_until, p.created_at"
)
_MATCH_COLUMNS = (
    "m.match_id, m.supply_post_id, m.demand_post_id, m.supply_credit_code, m.demand_credit_code, m.status,"
    " m.supply_accepted, m.demand_accepted, m.score, m.proposed_at, m.matched_at"
)


def _post_of(row: dict[str, Any]) -> Post:
    return Post(
        post_id=row["post_id"],
        chamber_id=row["chamber_id"],
        membership_id=row["membership_id"],
        credit_code=row["credit_code"],
        kind=PostKind(row["kind"]),
        category=row["category"],
        division_code=row["division_code"],
        quantity=row["quantity"],
        unit=row["unit"],
        description=row["description"],
        valid_until=row["valid_until"],
        created_at=row["created_at"],
    )


def _match_of(row: dict[str, Any]) -> Match:
    return Match(
        match_id=row["match_id"],
        supply_post_id=row["supply_post_id"],
        demand_post_id=row["demand_post_id"],
        supply_credit_code=row["supply_credit_code"],
        demand_credit_code=row["demand_credit_code"],
        status=MatchStatus(row["status"]),
        supply_accepted=row["supply_accepted"],
        demand_accepted=row["demand_accepted"],
        score=row["score"],
        proposed_at=row["proposed_at"],
        matched_at=row["matched_at"],
    )


def _seen_posts(visibility: Visibility, alias: str, params: dict[str, Any]) -> str:
    """A condition keeping the posts the caller may list (its chambers' or its enterprises')."""
    if visibility.everything:
        return "TRUE"
    params["seen_chambers"] = sorted(visibility.chambers)
    params["seen_enterprises"] = sorted(visibility.enterprises)
    return f"({alias}.chamber_id = ANY(%(seen_chambers)s) OR {alias}.credit_code = ANY(%(seen_enterprises)s))"


class MatchingSql(SqlPart):
    # --- posts -------------------------------------------------------------------------------------

    def add_post(self, post: Post) -> None:
        self._conn.execute(
            "INSERT INTO posts (post_id, chamber_id, membership_id, credit_code, kind, category,"
            " category_key, division_code, quantity, unit, description, valid_until, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                post.post_id,
                post.chamber_id,
                post.membership_id,
                post.credit_code,
                post.kind.value,
                post.category,
                category_key(post.category),
                post.division_code,
                post.quantity,
                post.unit,
                post.description,
                post.valid_until,
                post.created_at,
            ),
        )

    def get_post(self, post_id: str) -> Post | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_POST_COLUMNS} FROM posts p WHERE p.post_id = %s", (post_id,)
            ).fetchone()
        return _post_of(row) if row else None

    def list_posts(
        self,
        visibility: Visibility,
        *,
        chamber_id: str,
        kind: PostKind | None,
        category: str,
        credit_code: str,
        open_on: date | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Post]:
        """Newest first; ``open_on`` keeps only posts still valid that day (None: expired ones too)."""
        params: dict[str, Any] = {"limit": limit}
        where = [_seen_posts(visibility, "p", params)]
        if chamber_id:
            where.append("p.chamber_id = %(chamber_id)s")
            params["chamber_id"] = chamber_id
        if kind is not None:
            where.append("p.kind = %(kind)s")
            params["kind"] = kind.value
        if category:
            where.append("p.category_key = %(category)s")
            params["category"] = category_key(category)
        if credit_code:
            where.append("p.credit_code = %(credit_code)s")
            params["credit_code"] = credit_code
        if open_on is not None:
            where.append("p.valid_until >= %(open_on)s")
            params["open_on"] = open_on
        if after is not None:
            where.append("(p.created_at, p.post_id) < (%(after_at)s, %(after_id)s)")
            params["after_at"], params["after_id"] = after
        sql = (
            f"SELECT {_POST_COLUMNS} FROM posts p WHERE {' AND '.join(where)}"
            " ORDER BY p.created_at DESC, p.post_id DESC LIMIT %(limit)s"
        )
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_post_of(r) for r in cur.execute(sql, params).fetchall()]

    def counterpart_candidates(self, post: Post, open_on: date, limit: int) -> list[Candidate]:
        """Open posts of the opposite kind, of other enterprises with an active membership, whose category
        equals, contains or is contained in the post's: with their chamber's federation and name, and
        whether the two enterprises were matched before. The oldest first, at most ``limit`` (the scorer
        ranks them)."""
        sql = f"""
            SELECT {_POST_COLUMNS}, c.federation_id, c.name AS chamber_name,
                   EXISTS (
                       SELECT 1 FROM matches m
                        WHERE m.status = 'MATCHED'
                          AND ((m.supply_credit_code = %(code)s AND m.demand_credit_code = p.credit_code)
                            OR (m.demand_credit_code = %(code)s AND m.supply_credit_code = p.credit_code))
                   ) AS matched_before
              FROM posts p
              JOIN chambers c ON c.chamber_id = p.chamber_id
              -- A suspended or departed member's posts are offered to no one.
              JOIN memberships ms ON ms.membership_id = p.membership_id AND ms.status = 'ACTIVE'
             WHERE p.kind = %(kind)s AND p.valid_until >= %(open_on)s AND p.credit_code <> %(code)s
               AND (p.category_key = %(key)s OR strpos(p.category_key, %(key)s) > 0
                    OR strpos(%(key)s, p.category_key) > 0)
             ORDER BY p.created_at, p.post_id
             LIMIT %(limit)s
        """
        params = {
            "kind": post.kind.opposite.value,
            "open_on": open_on,
            "code": post.credit_code,
            "key": category_key(post.category),
            "limit": limit,
        }
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, params).fetchall()
        return [
            Candidate(_post_of(r), r["federation_id"], r["chamber_name"], r["matched_before"]) for r in rows
        ]

    def matched_before(self, one: str, other: str) -> bool:
        """Whether the two enterprises (credit codes) were ever matched, either way round."""
        row = self._conn.execute(
            "SELECT 1 FROM matches WHERE status = 'MATCHED' AND ((supply_credit_code = %s AND"
            " demand_credit_code = %s) OR (supply_credit_code = %s AND demand_credit_code = %s)) LIMIT 1",
            (one, other, other, one),
        ).fetchone()
        return row is not None

    def federation_of_chamber(self, chamber_id: str) -> str:
        row = self._conn.execute(
            "SELECT federation_id FROM chambers WHERE chamber_id = %s", (chamber_id,)
        ).fetchone()
        return str(row[0]) if row else ""

    # --- matches -----------------------------------------------------------------------------------

    def add_match(self, match: Match) -> bool:
        """Insert a new match; False when the pair has one already (the caller then joins it)."""
        row = self._conn.execute(
            "INSERT INTO matches (match_id, supply_post_id, demand_post_id, supply_credit_code,"
            " demand_credit_code, status, supply_accepted, demand_accepted, score, proposed_at, matched_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (supply_post_id, demand_post_id) DO NOTHING RETURNING 1",
            (
                match.match_id,
                match.supply_post_id,
                match.demand_post_id,
                match.supply_credit_code,
                match.demand_credit_code,
                match.status.value,
                match.supply_accepted,
                match.demand_accepted,
                match.score,
                match.proposed_at,
                match.matched_at,
            ),
        ).fetchone()
        return row is not None

    def get_match(self, match_id: str, *, for_update: bool = False) -> Match | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_MATCH_COLUMNS} FROM matches m WHERE m.match_id = %s{lock}", (match_id,)
            ).fetchone()
        return _match_of(row) if row else None

    def match_of_pair(
        self, supply_post_id: str, demand_post_id: str, *, for_update: bool = False
    ) -> Match | None:
        lock = " FOR UPDATE" if for_update else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_MATCH_COLUMNS} FROM matches m"
                f" WHERE m.supply_post_id = %s AND m.demand_post_id = %s{lock}",
                (supply_post_id, demand_post_id),
            ).fetchone()
        return _match_of(row) if row else None

    def save_match(self, match: Match) -> None:
        self._conn.execute(
            "UPDATE matches SET status = %s, supply_accepted = %s, demand_accepted = %s, matched_at = %s"
            " WHERE match_id = %s",
            (
                match.status.value,
                match.supply_accepted,
                match.demand_accepted,
                match.matched_at,
                match.match_id,
            ),
        )

    def list_matches(
        self,
        visibility: Visibility,
        *,
        post_id: str,
        credit_code: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Match]:
        """Newest first; a match is listed to whoever may see either of its posts."""
        params: dict[str, Any] = {"limit": limit}
        where: list[str] = []
        if post_id:
            where.append("(m.supply_post_id = %(post_id)s OR m.demand_post_id = %(post_id)s)")
            params["post_id"] = post_id
        if credit_code:
            where.append("(m.supply_credit_code = %(code)s OR m.demand_credit_code = %(code)s)")
            params["code"] = credit_code
        if not visibility.everything:
            where.append(
                "EXISTS (SELECT 1 FROM posts p WHERE p.post_id IN (m.supply_post_id, m.demand_post_id)"
                f" AND {_seen_posts(visibility, 'p', params)})"
            )
        if after is not None:
            where.append("(m.proposed_at, m.match_id) < (%(after_at)s, %(after_id)s)")
            params["after_at"], params["after_id"] = after
        sql = (
            f"SELECT {_MATCH_COLUMNS} FROM matches m WHERE {' AND '.join(where) or 'TRUE'}"
            " ORDER BY m.proposed_at DESC, m.match_id DESC LIMIT %(limit)s"
        )
        with self._conn.cursor(row_factory=dict_row) as cur:
            return [_match_of(r) for r in cur.execute(sql, params).fetchall()]
