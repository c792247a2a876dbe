"""GetDashboard: the district's figures for one town (or the whole district) in the period of a
granularity containing a date, each against the previous period of the same length."""

from __future__ import annotations

from dataclasses import dataclass

from services.hub.domain.dashboard import (
    CUMULATIVE,
    FIGURES,
    FLOWS,
    DashboardQuery,
    Figure,
    Granularity,
    Metric,
    Period,
    figure,
    local_day,
    period_of,
    previous_of,
)
from services.hub.usecases.common import HubContext

__all__ = ["Dashboard", "DashboardView"]


@dataclass(frozen=True, slots=True)
class Dashboard:
    town: str
    granularity: Granularity
    period: Period
    previous: Period
    figures: list[Figure]


class DashboardView:
    def __init__(self, ctx: HubContext) -> None:
        self._uow = ctx.uow
        self._zone = ctx.config.zone
        self._clock = ctx.clock

    def get(self, query: DashboardQuery) -> Dashboard:
        query.check()
        granularity = query.granularity or Granularity.DAY  # never None once checked
        period = period_of(granularity, query.day(local_day(self._clock(), self._zone)))
        previous = previous_of(granularity, period)
        metrics = (*CUMULATIVE, Metric.MEMBERS_JOINED, Metric.MEMBERS_LEFT, *FLOWS)
        with self._uow.transaction() as tx:
            counts = tx.repo.metric_counts(query.town, metrics, period, previous)
            devices = tx.repo.device_figures(query.town, period)
            devices_before = tx.repo.device_figures(query.town, previous)
        values: dict[str, Figure] = {}
        for metric in CUMULATIVE:
            c = counts[metric]
            values[metric.value] = figure(metric.value, c.to_end, c.to_previous_end)
        joined, left = counts[Metric.MEMBERS_JOINED], counts[Metric.MEMBERS_LEFT]
        values["chamber_members"] = figure(
            "chamber_members", joined.to_end - left.to_end, joined.to_previous_end - left.to_previous_end
        )
        values["new_joins"] = figure("new_joins", joined.in_period, joined.in_previous)
        for metric in FLOWS:
            c = counts[metric]
            values[metric.value] = figure(metric.value, c.in_period, c.in_previous)
        completed, on_time = counts[Metric.APPLICATIONS_COMPLETED], counts[Metric.APPLICATIONS_ON_TIME]
        values["applications_on_time_rate"] = figure(
            "applications_on_time_rate",
            _ratio(on_time.in_period, completed.in_period),
            _ratio(on_time.in_previous, completed.in_previous),
        )
        values["devices_reporting"] = figure("devices_reporting", devices.reporting, devices_before.reporting)
        values["utilisation"] = figure("utilisation", devices.utilisation, devices_before.utilisation)
        values["oee"] = figure("oee", devices.oee, devices_before.oee)
        return Dashboard(
            town=query.town,
            granularity=granularity,
            period=period,
            previous=previous,
            figures=[values[name] for name in FIGURES],
        )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
