"""Service requests' and training's pure rules: deadlines per type, the request's lifecycle, rating once,
completion once, and the commands' checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.commerce.domain.requests import (
    AssignServiceRequest,
    ListServiceRequests,
    RateServiceRequest,
    ResolveServiceRequest,
    ServiceRequest,
    ServiceRequestStatus,
    ServiceType,
    SubmitServiceRequest,
    assigned,
    due_at,
    on_time,
    rated,
    resolved,
)
from services.commerce.domain.training import CreateCourse, Enrolment, completed
from services.commerce.usecases.common import DEFAULT_SERVICE_DAYS
from services.platform.errors import FailedPreconditionError, InvalidArgumentError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _request(kind: ServiceType = ServiceType.LEGAL) -> ServiceRequest:
    return ServiceRequest(
        "sr-1",
        "ch-1",
        "mem-1",
        "code",
        kind,
        "contract review",
        "",
        ServiceRequestStatus.SUBMITTED,
        "",
        T0,
        due_at(T0, kind, DEFAULT_SERVICE_DAYS),
        False,
        None,
        "",
        0,
    )


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        (ServiceType.FINANCING, 10),
        (ServiceType.LEGAL, 7),
        (ServiceType.POLICY_CONSULTATION, 3),
        (ServiceType.TALENT, 14),
    ],
)
def test_the_deadline_is_the_types_promised_days(kind: ServiceType, days: int) -> None:
    assert due_at(T0, kind, DEFAULT_SERVICE_DAYS) == T0 + timedelta(days=days)


def test_assign_resolve_rate() -> None:
    request = assigned(_request(), "staff-1")
    assert (request.status, request.assigned_to) == (ServiceRequestStatus.ASSIGNED, "staff-1")
    # Reassigning an open request to someone else is allowed.
    assert assigned(request, "staff-2").assigned_to == "staff-2"
    with pytest.raises(FailedPreconditionError):
        rated(request, 5)
    done = resolved(request, "reviewed and returned", T0 + timedelta(days=7))
    assert done.status is ServiceRequestStatus.RESOLVED
    assert on_time(done)
    with pytest.raises(FailedPreconditionError):
        resolved(done, "again", T0 + timedelta(days=8))
    with pytest.raises(FailedPreconditionError):
        assigned(done, "staff-2")
    assert rated(done, 4).satisfaction == 4
    with pytest.raises(FailedPreconditionError, match="rated already"):
        rated(rated(done, 4), 5)


def test_a_resolution_after_the_deadline_is_late() -> None:
    late = resolved(_request(), "done", T0 + timedelta(days=7, seconds=1))
    assert not on_time(late)
    assert not on_time(_request())


def test_request_commands_name_every_bad_field() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        SubmitServiceRequest("", "", None, "", "").check()
    assert _fields(error) == {"request_id", "membership_id", "type", "subject"}
    SubmitServiceRequest("r-1", "mem-1", ServiceType.TALENT, "two welders", "").check()
    with pytest.raises(InvalidArgumentError) as error:
        AssignServiceRequest("sr-1", "").check()
    assert _fields(error) == {"staff_id"}
    with pytest.raises(InvalidArgumentError) as error:
        ResolveServiceRequest("sr-1", "").check()
    assert _fields(error) == {"resolution"}
    with pytest.raises(InvalidArgumentError) as error:
        ListServiceRequests("ch-1", "code", overdue_only=False).check()
    assert _fields(error) == {"chamber_id"}


@pytest.mark.parametrize("satisfaction", [0, 6, -1])
def test_satisfaction_is_one_to_five(satisfaction: int) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RateServiceRequest("sr-1", satisfaction).check()
    assert _fields(error) == {"satisfaction"}


def test_courses_and_completion() -> None:
    CreateCourse("r-1", "ch-1", "Export compliance", 1000).check()
    with pytest.raises(InvalidArgumentError) as error:
        CreateCourse("r-1", "ch-1", "", 1001).check()
    assert _fields(error) == {"title", "hours"}
    with pytest.raises(InvalidArgumentError) as error:
        CreateCourse("r-1", "ch-1", "Export", 0).check()
    assert _fields(error) == {"hours"}
    enrolment = Enrolment("enr-1", "course-1", "mem-1", T0, None)
    done = completed(enrolment, T0 + timedelta(days=3))
    assert done == replace(enrolment, completed_at=T0 + timedelta(days=3))
    with pytest.raises(FailedPreconditionError, match="completed already"):
        completed(done, T0 + timedelta(days=4))
