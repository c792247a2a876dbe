"""The member map (一图展示): active members with a location in a box or a circle, by sector and chamber,
with the per-town counts of every matching member for a map layer."""

from __future__ import annotations

from dataclasses import dataclass

from services.commerce.domain.access import Visibility
from services.commerce.domain.memberships import MapQuery
from services.commerce.domain.model import Membership
from services.commerce.usecases.common import CommerceContext
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["MapResult", "MemberMap"]


@dataclass(frozen=True, slots=True)
class MapResult:
    members: list[Membership]
    # (town, members), most members first, then by town name; every match counted, not only the page.
    towns: list[tuple[str, int]]
    next_token: str


class MemberMap:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    def search(self, query: MapQuery, visibility: Visibility, page_size: int, page_token: str) -> MapResult:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str)
        with self._ctx.uow.transaction() as tx:
            # One transaction: the page and the counts describe the same moment.
            members = tx.repo.map_members(query, visibility, after[0] if after else "", page.size + 1)
            towns = tx.repo.map_town_counts(query, visibility)
        shown, token = paginate(members, page, lambda m: (m.membership_id,))
        return MapResult(shown, towns, token)
