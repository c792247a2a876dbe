"""KitchenService methods of the alert list, the public profile (五个可) and the statistics."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import alert_pb
from services.kitchen.mapping import profile as mapping
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.profile import ProfileQueries
from services.platform.paging import page_of

__all__ = ["ProfileApi"]


class ProfileApi:
    _profile_queries: ProfileQueries

    def _init_profile(self, ctx: KitchenContext) -> None:
        self._profile_queries = ProfileQueries(ctx)

    def ListKitchenAlerts(  # noqa: N802
        self,
        request: kitchen_pb2.ListKitchenAlertsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListKitchenAlertsResponse:
        page = page_of(request.page.page_size, request.page.page_token)
        alerts, token = self._profile_queries.list_alerts(
            mapping.alerts_query(request), page, current_visibility()
        )
        return kitchen_pb2.ListKitchenAlertsResponse(
            alerts=[alert_pb(a) for a in alerts], page=mapping.page_pb(token)
        )

    def GetPublicProfile(  # noqa: N802
        self,
        request: kitchen_pb2.GetPublicProfileRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.GetPublicProfileResponse:
        profile = self._profile_queries.public_profile(mapping.profile_query(request), current_visibility())
        return kitchen_pb2.GetPublicProfileResponse(profile=mapping.profile_pb(profile))

    def GetKitchenStatistics(  # noqa: N802
        self,
        request: kitchen_pb2.GetKitchenStatisticsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.GetKitchenStatisticsResponse:
        figures = self._profile_queries.statistics(mapping.statistics_query(request), current_visibility())
        return kitchen_pb2.GetKitchenStatisticsResponse(statistics=mapping.statistics_pb(figures))
