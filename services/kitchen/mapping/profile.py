"""Proto <-> domain for the alert list, the public profile and the statistics."""

from __future__ import annotations

from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.domain.profile import (
    AlertsQuery,
    KitchenStatistics,
    ProfileQuery,
    PublicProfile,
    StatisticsQuery,
)
from services.kitchen.mapping import ALERT_KIND
from services.platform.protoconv import optional_timestamp as ts
from services.platform.protoconv import time_range, to_timestamp

__all__ = [
    "alerts_query",
    "page_pb",
    "profile_pb",
    "profile_query",
    "statistics_pb",
    "statistics_query",
]


def page_pb(next_token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


def _inspection_result(stored: str) -> kitchen_pb2.InspectionResult.ValueType:
    """The inspections family's stored result as the proto enum (unspecified when none)."""
    if not stored:
        return kitchen_pb2.INSPECTION_RESULT_UNSPECIFIED
    try:
        return kitchen_pb2.InspectionResult.Value(f"INSPECTION_RESULT_{stored}")
    except ValueError:
        return kitchen_pb2.INSPECTION_RESULT_UNSPECIFIED


def _violation_kind(stored: str) -> kitchen_pb2.ViolationKind.ValueType:
    """The violations family's stored kind as the proto enum."""
    try:
        return kitchen_pb2.ViolationKind.Value(f"VIOLATION_KIND_{stored}")
    except ValueError:
        return kitchen_pb2.VIOLATION_KIND_UNSPECIFIED


def alerts_query(request: kitchen_pb2.ListKitchenAlertsRequest) -> AlertsQuery:
    start, end = time_range(request.period)
    return AlertsQuery(
        kitchen_id=request.kitchen_id,
        kinds=tuple(ALERT_KIND.from_proto(k) for k in request.kinds),
        open_only=request.open_only,
        start=start,
        end=end,
    )


def profile_query(request: kitchen_pb2.GetPublicProfileRequest) -> ProfileQuery:
    start, end = time_range(request.period)
    return ProfileQuery(request.kitchen_id, start, end)


def statistics_query(request: kitchen_pb2.GetKitchenStatisticsRequest) -> StatisticsQuery:
    start, end = time_range(request.period)
    return StatisticsQuery(request.kitchen_id, start, end)


def profile_pb(profile: PublicProfile) -> kitchen_pb2.PublicProfile:
    checkable = profile.checkable
    return kitchen_pb2.PublicProfile(
        kitchen_id=profile.kitchen_id,
        kitchen_name=profile.kitchen_name,
        site_id=profile.site_id,
        period=common_pb2.TimeRange(
            start_time=to_timestamp(profile.start), end_time=to_timestamp(profile.end)
        ),
        observable=kitchen_pb2.Observable(
            cameras=profile.observable.cameras, camera_coverage=profile.observable.camera_coverage
        ),
        traceable=kitchen_pb2.Traceable(
            meals=profile.traceable.meals,
            fully_traced_meals=profile.traceable.fully_traced_meals,
            traced_share=profile.traceable.traced_share,
        ),
        checkable=kitchen_pb2.Checkable(
            morning_check_completion=checkable.morning_check_completion,
            morning_check_pass_rate=checkable.morning_check_pass_rate,
            open_violations=checkable.open_violations,
            last_inspection_result=_inspection_result(checkable.last_inspection_result),
            last_inspected_at=ts(checkable.last_inspected_at),
        ),
        displayable=kitchen_pb2.Displayable(
            commitment=profile.displayable.commitment,
            staff=profile.displayable.staff,
            staff_with_valid_certificate=profile.displayable.staff_with_valid_certificate,
        ),
        ratable=kitchen_pb2.Ratable(mean_rating=profile.ratable.mean_rating, ratings=profile.ratable.ratings),
        compliance_score=profile.compliance_score,
    )


def statistics_pb(figures: KitchenStatistics) -> kitchen_pb2.KitchenStatistics:
    return kitchen_pb2.KitchenStatistics(
        kitchens=figures.kitchens,
        morning_checks=figures.morning_checks,
        morning_check_pass_rate=figures.morning_check_pass_rate,
        cold_chain_alerts=figures.cold_chain_alerts,
        minutes_out_of_range=figures.minutes_out_of_range,
        violations_by_kind=[
            kitchen_pb2.ViolationCount(kind=_violation_kind(kind), count=count)
            for kind, count in figures.violations_by_kind
        ],
        median_seconds_to_rectify=figures.median_seconds_to_rectify,
        mean_rating=figures.mean_rating,
        ratings=figures.ratings,
    )
