"""Proto <-> domain for tracking, statistics and people served (answers with nothing personal in them)."""

from __future__ import annotations

from cityhub.govservice.v1 import govservice_pb2

from services.govservice.domain.statistics import PeopleServedQuery, PlaceServed, Statistics, StatisticsQuery
from services.govservice.domain.tracking import TrackApplication, TrackedApplication
from services.govservice.mapping import APPLICATION_STATUS
from services.platform.protoconv import time_range, to_timestamp

__all__ = [
    "people_served_pb",
    "people_served_query",
    "statistics_pb",
    "statistics_query",
    "track_query",
    "tracked_pb",
]


def track_query(request: govservice_pb2.TrackApplicationRequest) -> TrackApplication:
    return TrackApplication(application_no=request.application_no, id_suffix=request.id_suffix)


def tracked_pb(tracked: TrackedApplication) -> govservice_pb2.TrackApplicationResponse:
    """Status, current region, due date and step dates: no token, name, actor or note."""
    return govservice_pb2.TrackApplicationResponse(
        application_no=tracked.application_no,
        item_code=tracked.item_code,
        status=APPLICATION_STATUS.to_proto(tracked.status),
        current_region=tracked.current_region,
        due_date=tracked.due_date.isoformat() if tracked.due_date else "",
        steps=[
            govservice_pb2.TrackedStep(
                status=APPLICATION_STATUS.to_proto(step.status), region=step.region, at=to_timestamp(step.at)
            )
            for step in tracked.steps
        ],
    )


def statistics_query(request: govservice_pb2.GetStatisticsRequest) -> StatisticsQuery:
    start, end = time_range(request.period)
    return StatisticsQuery(request.division_code, request.item_code, start, end)


def statistics_pb(statistics: Statistics) -> govservice_pb2.GetStatisticsResponse:
    return govservice_pb2.GetStatisticsResponse(
        statistics=govservice_pb2.Statistics(
            filed=statistics.filed,
            completed=statistics.completed,
            on_time_rate=statistics.on_time_rate,
            mean_working_days=statistics.mean_working_days,
            overdue_now=statistics.overdue_now,
        )
    )


def people_served_query(request: govservice_pb2.GetPeopleServedRequest) -> PeopleServedQuery:
    start, end = time_range(request.period)
    return PeopleServedQuery(start, end)


def people_served_pb(places: list[PlaceServed]) -> govservice_pb2.GetPeopleServedResponse:
    return govservice_pb2.GetPeopleServedResponse(
        places=[
            govservice_pb2.PlaceServed(
                division_code=p.division_code, name=p.name, people=p.people, applications=p.applications
            )
            for p in places
        ]
    )
