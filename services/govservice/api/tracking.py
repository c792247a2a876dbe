"""CrossRegionService methods of the tracking family: TrackApplication (the applicant, public role),
GetStatistics and GetPeopleServed (the programme office; statistics also clerks, for their regions)."""

from __future__ import annotations

import grpc
from cityhub.govservice.v1 import govservice_pb2

from services.govservice.api import current_visibility
from services.govservice.mapping import tracking as mapping
from services.govservice.usecases.common import GovServiceContext
from services.govservice.usecases.statistics import GovStatistics
from services.govservice.usecases.tracking import ApplicationTracking
from services.platform.security import current_caller

__all__ = ["TrackingApi"]


class TrackingApi:
    _application_tracking: ApplicationTracking
    _gov_statistics: GovStatistics

    def _init_tracking(self, ctx: GovServiceContext) -> None:
        # One limiter per process (per servicer): replicas each count wrong tries on their own.
        self._application_tracking = ApplicationTracking(ctx)
        self._gov_statistics = GovStatistics(ctx)

    def TrackApplication(  # noqa: N802
        self,
        request: govservice_pb2.TrackApplicationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.TrackApplicationResponse:
        tracked = self._application_tracking.track(mapping.track_query(request), current_caller().sub)
        return mapping.tracked_pb(tracked)

    def GetStatistics(  # noqa: N802
        self,
        request: govservice_pb2.GetStatisticsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.GetStatisticsResponse:
        statistics = self._gov_statistics.statistics(mapping.statistics_query(request), current_visibility())
        return mapping.statistics_pb(statistics)

    def GetPeopleServed(  # noqa: N802
        self,
        request: govservice_pb2.GetPeopleServedRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> govservice_pb2.GetPeopleServedResponse:
        return mapping.people_served_pb(
            self._gov_statistics.people_served(mapping.people_served_query(request))
        )
