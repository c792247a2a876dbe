"""The alert list, the public profile (五个可) with its compliance score, and the statistics."""

from __future__ import annotations

from datetime import datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.model import KitchenAlert
from services.kitchen.domain.profile import (
    AlertsQuery,
    KitchenStatistics,
    ProfileQuery,
    PublicProfile,
    StatisticsQuery,
    period_days,
    profile_period,
)
from services.kitchen.usecases.common import KitchenContext, require_kitchen
from services.platform.paging import Page, decode_cursor, paginate

__all__ = ["ProfileQueries"]


class ProfileQueries:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx

    def list_alerts(
        self, query: AlertsQuery, page: Page, visibility: Visibility
    ) -> tuple[list[KitchenAlert], str]:
        """Newest first; one kitchen the caller sees (NOT_FOUND otherwise) or every kitchen it sees."""
        query.check()
        before = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            if query.kitchen_id:
                require_kitchen(tx, query.kitchen_id, visibility)
            if visibility.sees_nothing:
                return [], ""
            found = tx.repo.list_alerts(
                visibility,
                kitchen_id=query.kitchen_id,
                kinds=query.kind_set,
                open_only=query.open_only,
                start=query.start,
                end=query.end,
                before=before,
                limit=page.size + 1,
            )
        return paginate(found, page, lambda a: (a.raised_at, a.alert_id))

    def public_profile(self, query: ProfileQuery, visibility: Visibility) -> PublicProfile:
        query.check()
        now = self._ctx.clock()
        start, end = profile_period(query.start, query.end, now)
        zone = self._ctx.config.zone
        first_day, last_day = period_days(start, end, zone)
        with self._ctx.uow.transaction() as tx:
            kitchen = require_kitchen(tx, query.kitchen_id, visibility)
            repo = tx.repo
            return PublicProfile(
                kitchen_id=kitchen.kitchen_id,
                kitchen_name=kitchen.name,
                site_id=kitchen.site_id,
                start=start,
                end=end,
                observable=repo.profile_observable(kitchen.kitchen_id, first_day, last_day),
                traceable=repo.profile_traceable(kitchen.kitchen_id, start, end),
                checkable=repo.profile_checkable(kitchen.kitchen_id, start, end),
                # Certificates are valid or not today, whatever the period: the profile shows the kitchen
                # as it stands.
                displayable=repo.profile_displayable(
                    kitchen.kitchen_id, kitchen.commitment, now.astimezone(zone).date()
                ),
                ratable=repo.profile_ratable([kitchen.kitchen_id], start, end),
            )

    def statistics(self, query: StatisticsQuery, visibility: Visibility) -> KitchenStatistics:
        query.check()
        assert query.start is not None
        assert query.end is not None
        first_day, last_day = period_days(query.start, query.end, self._ctx.config.zone)
        with self._ctx.uow.transaction() as tx:
            if query.kitchen_id:
                kitchen_ids = [require_kitchen(tx, query.kitchen_id, visibility).kitchen_id]
            elif visibility.sees_nothing:
                kitchen_ids = []
            else:
                kitchen_ids = tx.repo.visible_kitchen_ids(visibility)
            return tx.repo.kitchen_statistics(kitchen_ids, query.start, query.end, first_day, last_day)
