"""Proto <-> domain for the dashboard family."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2

from services.hub.domain.dashboard import DashboardQuery, Granularity, Period
from services.hub.usecases.dashboard import Dashboard
from services.platform.protoconv import EnumMap, to_timestamp

__all__ = ["GRANULARITY", "dashboard_pb", "dashboard_query"]

GRANULARITY = EnumMap(Granularity, hub_pb2.Granularity, "GRANULARITY")


def dashboard_query(request: hub_pb2.GetDashboardRequest) -> DashboardQuery:
    return DashboardQuery(
        town=request.town, granularity=GRANULARITY.from_proto(request.granularity), date=request.date
    )


def _range(period: Period, zone: ZoneInfo) -> common_pb2.TimeRange:
    start, end = period.bounds(zone)
    return common_pb2.TimeRange(start_time=to_timestamp(start), end_time=to_timestamp(end))


def dashboard_pb(dashboard: Dashboard, zone: ZoneInfo) -> hub_pb2.GetDashboardResponse:
    return hub_pb2.GetDashboardResponse(
        town=dashboard.town,
        granularity=GRANULARITY.to_proto(dashboard.granularity),
        period=_range(dashboard.period, zone),
        previous_period=_range(dashboard.previous, zone),
        figures=[
            hub_pb2.Figure(
                name=f.name, value=f.value, previous=f.previous, change=f.change, change_ratio=f.change_ratio
            )
            for f in dashboard.figures
        ],
    )
