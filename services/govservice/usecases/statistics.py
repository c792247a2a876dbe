"""Figures per region, item and period, and the people each partner place had served (domain/statistics.py):
counts only, never anyone's identity."""

from __future__ import annotations

from services.govservice.domain.access import Visibility
from services.govservice.domain.statistics import (
    PeopleServedQuery,
    PlaceServed,
    Statistics,
    StatisticsQuery,
    division_pattern,
    statistics_scope,
)
from services.govservice.usecases.common import GovServiceContext
from services.platform.errors import InvalidArgumentError

__all__ = ["GovStatistics"]


class GovStatistics:
    def __init__(self, ctx: GovServiceContext) -> None:
        self._ctx = ctx

    def statistics(self, query: StatisticsQuery, visibility: Visibility) -> Statistics:
        query.check()
        patterns = statistics_scope(visibility, query.division_code)
        # Both bounds are required by check().
        assert query.start is not None
        assert query.end is not None
        with self._ctx.uow.transaction() as tx:
            if query.item_code and not tx.repo.item_defined(query.item_code):
                raise InvalidArgumentError.of("item_code", "is not an item of the catalogue")
            counts = tx.repo.statistics_counts(
                patterns=patterns,
                item_code=query.item_code,
                start=query.start,
                end=query.end,
                zone=self._ctx.config.zone.key,
            )
        return Statistics.of(counts)

    def people_served(self, query: PeopleServedQuery) -> list[PlaceServed]:
        """Every partner place, by code, with the people it had served in the period (zero included)."""
        query.check()
        # Both bounds are required by check().
        assert query.start is not None
        assert query.end is not None
        with self._ctx.uow.transaction() as tx:
            places = [
                (code, name, pattern)
                for code, name in tx.repo.partner_regions()
                if (pattern := division_pattern(code)) is not None
            ]
            return tx.repo.people_served(places, start=query.start, end=query.end)
