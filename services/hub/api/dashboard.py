"""HubService methods of the dashboard family: GetDashboard (the programme office's; POLICY allows the
district operator and services only, so no scope filtering here)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import grpc
from cityhub.hub.v1 import hub_pb2

from services.hub.mapping import dashboard as mapping
from services.hub.usecases.common import HubContext
from services.hub.usecases.dashboard import DashboardView

__all__ = ["DashboardApi"]


class DashboardApi:
    _dashboard_view: DashboardView
    _dashboard_zone: ZoneInfo

    def _init_dashboard(self, ctx: HubContext) -> None:
        self._dashboard_view = DashboardView(ctx)
        self._dashboard_zone = ctx.config.zone

    def GetDashboard(  # noqa: N802
        self,
        request: hub_pb2.GetDashboardRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> hub_pb2.GetDashboardResponse:
        dashboard = self._dashboard_view.get(mapping.dashboard_query(request))
        return mapping.dashboard_pb(dashboard, self._dashboard_zone)
