"""Statistics per site (and day or month of the district's calendar): warnings, critical warnings,
joint responses, false alarms and mean response times, with their exact total."""

from __future__ import annotations

from services.safety.domain.access import Viewer
from services.safety.domain.commands import StatisticsQuery
from services.safety.domain.statistics import Figures, Mean, total
from services.safety.usecases.common import SafetyUnitOfWork

__all__ = ["StatisticsUseCases"]


class StatisticsUseCases:
    def __init__(self, uow: SafetyUnitOfWork, *, time_zone: str) -> None:
        self._uow = uow
        self._time_zone = time_zone

    def statistics(self, query: StatisticsQuery, viewer: Viewer) -> tuple[list[Figures], Figures]:
        query.check()
        assert query.start is not None
        assert query.end is not None
        sites = viewer.sites_for(query.site_id)
        with self._uow.transaction() as tx:
            rows = tx.repo.statistics(
                site_ids=sites,
                start=query.start,
                end=query.end,
                bucket=query.bucket,
                timezone=self._time_zone,
            )
        figures = [
            Figures(
                site_id=r.site_id,
                # A bucket cut by the requested period shows only the part inside it.
                period_start=max(r.bucket_start, query.start) if r.bucket_start else query.start,
                period_end=min(r.bucket_end, query.end) if r.bucket_end else query.end,
                warnings_raised=r.warnings,
                critical_warnings=r.critical,
                joint_responses=r.joint,
                false_alarms=r.false_alarms,
                to_acknowledge=Mean(r.ack_seconds, r.ack_count),
                to_dispatch=Mean(r.dispatch_seconds, r.dispatch_count),
                to_arrive=Mean(r.arrive_seconds, r.arrive_count),
            )
            for r in rows
        ]
        return figures, total(figures, query.start, query.end)
