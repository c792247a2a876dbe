"""Service requests and training against the real service: a request past its deadline raises its
ServiceRequestOverdue event exactly once however many replicas sweep; assignment, resolution and the
member's rating (points); a course enrolment completed (CourseCompleted, points once).

The overdue sweep is the service's own ``OverdueSweeper``, run here as extra replicas on the service's
schema and outbox whose clock is four days ahead: a three-day policy consultation is overdue for them and
for nobody else, so the test needs no knob and writes nothing behind the service's back."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2, events_pb2

from services.commerce.bootstrap import config_of
from services.commerce.repository import CommerceRepository
from services.commerce.usecases.common import CommerceContext, EnterpriseInfo, utc_now
from services.commerce.usecases.requests import OverdueSweeper
from services.platform.vault import Vault
from tests.integration.commerce.commerce_support import Commerce, rid
from tests.support import violations, wait_until

pytestmark = pytest.mark.integration
P = commerce_pb2
EVENTS = "cityhub.commerce.v1."


@dataclass
class Member:
    membership_id: str
    chamber_id: str
    credit_code: str

    @property
    def as_user(self) -> dict[str, tuple[str, ...]]:
        return {"roles": ("enterprise_user",), "scopes": (f"enterprise:{self.credit_code}",)}


class _NoDirectory:
    def get_enterprise(self, credit_code: str) -> EnterpriseInfo | None:  # noqa: ARG002 - never asked
        return None


def _member(commerce: Commerce, chamber_id: str) -> Member:
    code = commerce.industry.onboard()
    membership = commerce.call(
        "ApplyForMembership",
        P.ApplyForMembershipRequest(request_id=rid(), chamber_id=chamber_id, credit_code=code),
    ).membership
    assert membership.status == P.MEMBERSHIP_STATUS_ACTIVE
    return Member(membership.membership_id, chamber_id, code)


def _staff(chamber_id: str) -> dict[str, tuple[str, ...]]:
    return {"roles": ("chamber_staff",), "scopes": (f"chamber:{chamber_id}",)}


def _submit(commerce: Commerce, member: Member, kind: int, subject: str) -> P.ServiceRequest:
    request = P.SubmitServiceRequestRequest(
        request_id=rid(),
        membership_id=member.membership_id,
        type=kind,  # type: ignore[arg-type]
        subject=subject,
        description="Details\nover two lines",
    )
    found: P.ServiceRequest = commerce.call("SubmitServiceRequest", request, **member.as_user).service_request
    return found


def _sweeper(commerce: Commerce, ahead: timedelta) -> OverdueSweeper:
    """Another replica of the service's sweep, on the service's schema and outbox, its clock ``ahead``."""
    ctx = CommerceContext(
        uow=commerce.runtime.unit_of_work(CommerceRepository),
        config=config_of(commerce.settings),
        vault=Vault(secrets.token_bytes(32), "commerce"),
        enterprises=_NoDirectory(),
        clock=lambda: utc_now() + ahead,
    )
    return OverdueSweeper(ctx, interval_s=3600)


def _ledger(commerce: Commerce, membership_id: str) -> list[tuple[int, str, int]]:
    ledger = commerce.call("ListLedger", P.ListLedgerRequest(membership_id=membership_id))
    return [(e.source, e.source_id, e.points) for e in ledger.entries]


def test_an_overdue_request_raises_its_event_exactly_once(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    member = _member(commerce, chamber.chamber_id)
    before = datetime.now(UTC)
    late = _submit(commerce, member, P.SERVICE_TYPE_POLICY_CONSULTATION, "Which subsidies apply to us?")
    assert late.status == P.SERVICE_REQUEST_STATUS_SUBMITTED
    submitted = late.submitted_at.ToDatetime(UTC)
    assert before - timedelta(seconds=1) <= submitted <= datetime.now(UTC)
    # Policy consultation: three days promised.
    assert late.due_at.ToDatetime(UTC) - submitted == timedelta(days=3)
    opened = wait_until(
        lambda: commerce.events({late.service_request_id}), timeout_s=20, what="ServiceRequestOpened"
    )
    assert [kind for kind, _ in opened] == [EVENTS + "ServiceRequestOpened"]

    # The service's own sweep (real clock) has nothing to flag; the request is not overdue yet.
    overdue_list = P.ListServiceRequestsRequest(chamber_id=chamber.chamber_id, overdue_only=True)
    assert (
        list(
            commerce.call("ListServiceRequests", overdue_list, **_staff(chamber.chamber_id)).service_requests
        )
        == []
    )

    # Four replicas four days ahead sweep at once: exactly one of them flags it.
    replicas = [_sweeper(commerce, timedelta(days=4)) for _ in range(4)]
    counts: list[int] = []
    start = threading.Barrier(len(replicas))

    def sweep(replica: OverdueSweeper) -> None:
        start.wait()
        counts.append(replica.tick())

    threads = [threading.Thread(target=sweep, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(counts) == [0, 0, 0, 1]
    assert [r.tick() for r in replicas] == [0, 0, 0, 0]

    flagged = commerce.call(
        "ListServiceRequests", overdue_list, **_staff(chamber.chamber_id)
    ).service_requests
    assert [(r.service_request_id, r.overdue) for r in flagged] == [(late.service_request_id, True)]

    def overdue_events() -> list[events_pb2.ServiceRequestOverdue]:
        return [
            message  # type: ignore[misc]
            for kind, message in commerce.events({late.service_request_id})
            if kind == EVENTS + "ServiceRequestOverdue"
        ]

    found = wait_until(overdue_events, timeout_s=20, what="ServiceRequestOverdue on Kafka")
    assert len(found) == 1
    event = found[0]
    assert (event.service_request_id, event.chamber_id, event.credit_code, event.type) == (
        late.service_request_id,
        chamber.chamber_id,
        member.credit_code,
        P.SERVICE_TYPE_POLICY_CONSULTATION,
    )
    assert event.due_at == late.due_at


def test_assign_resolve_and_rate_a_request(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    _, other_chamber = commerce.federation_and_chamber()
    member = _member(commerce, chamber.chamber_id)
    staff = _staff(chamber.chamber_id)
    officer = commerce.call(
        "AddChamberStaff",
        P.AddChamberStaffRequest(
            request_id=rid(),
            chamber_id=chamber.chamber_id,
            subject="officer-zhou",
            name="Zhou Min",
            role=P.STAFF_ROLE_OFFICER,
        ),
    ).staff
    outsider = commerce.call(
        "AddChamberStaff",
        P.AddChamberStaffRequest(
            request_id=rid(),
            chamber_id=other_chamber.chamber_id,
            subject="officer-qian",
            name="Qian Li",
            role=P.STAFF_ROLE_OFFICER,
        ),
    ).staff
    request = _submit(commerce, member, P.SERVICE_TYPE_FINANCING, "Working-capital loan of 2 million")
    assert request.due_at.ToDatetime(UTC) - request.submitted_at.ToDatetime(UTC) == timedelta(days=10)

    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "AssignServiceRequest",
            P.AssignServiceRequestRequest(
                service_request_id=request.service_request_id, staff_id=outsider.staff_id
            ),
            **staff,
        )
    assert set(violations(error.value)) == {"staff_id"}
    # Another chamber's staff cannot see the request at all.
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "AssignServiceRequest",
            P.AssignServiceRequestRequest(
                service_request_id=request.service_request_id, staff_id=officer.staff_id
            ),
            **_staff(other_chamber.chamber_id),
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND

    assigned = commerce.call(
        "AssignServiceRequest",
        P.AssignServiceRequestRequest(
            service_request_id=request.service_request_id, staff_id=officer.staff_id
        ),
        **staff,
    ).service_request
    assert (assigned.status, assigned.assigned_to) == (P.SERVICE_REQUEST_STATUS_ASSIGNED, officer.staff_id)

    rate = P.RateServiceRequestRequest(service_request_id=request.service_request_id, satisfaction=5)
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("RateServiceRequest", rate, **member.as_user)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "ResolveServiceRequest",
            P.ResolveServiceRequestRequest(service_request_id=request.service_request_id),
            **staff,
        )
    assert set(violations(error.value)) == {"resolution"}
    resolved = commerce.call(
        "ResolveServiceRequest",
        P.ResolveServiceRequestRequest(
            service_request_id=request.service_request_id, resolution="Introduced to two banks; loan approved"
        ),
        **staff,
    ).service_request
    assert resolved.status == P.SERVICE_REQUEST_STATUS_RESOLVED
    assert resolved.resolution == "Introduced to two banks; loan approved"
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "ResolveServiceRequest",
            P.ResolveServiceRequestRequest(service_request_id=request.service_request_id, resolution="again"),
            **staff,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "RateServiceRequest",
            P.RateServiceRequestRequest(service_request_id=request.service_request_id, satisfaction=6),
            **member.as_user,
        )
    assert set(violations(error.value)) == {"satisfaction"}
    rated = commerce.call("RateServiceRequest", rate, **member.as_user).service_request
    assert rated.satisfaction == 5
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("RateServiceRequest", rate, **member.as_user)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Five satisfaction points at two each.
    assert _ledger(commerce, member.membership_id) == [
        (P.POINT_SOURCE_SERVICE_RATING, request.service_request_id, 10)
    ]

    events = wait_until(
        lambda: [e for e in commerce.events({request.service_request_id}) if e[0].endswith("Resolved")],
        timeout_s=20,
        what="ServiceRequestResolved",
    )
    resolved_event = events[0][1]
    assert isinstance(resolved_event, events_pb2.ServiceRequestResolved)
    assert (resolved_event.on_time, resolved_event.type, resolved_event.credit_code) == (
        True,
        P.SERVICE_TYPE_FINANCING,
        member.credit_code,
    )
    mine = commerce.call(
        "ListServiceRequests", P.ListServiceRequestsRequest(credit_code=member.credit_code), **member.as_user
    ).service_requests
    assert [(r.service_request_id, r.status, r.satisfaction) for r in mine] == [
        (request.service_request_id, P.SERVICE_REQUEST_STATUS_RESOLVED, 5)
    ]


def test_a_request_needs_an_active_membership_and_its_fields(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber(P.JOIN_RULE_STAFF_REVIEW)
    code = commerce.industry.onboard()
    pending = commerce.call(
        "ApplyForMembership",
        P.ApplyForMembershipRequest(request_id=rid(), chamber_id=chamber.chamber_id, credit_code=code),
    ).membership
    assert pending.status == P.MEMBERSHIP_STATUS_PENDING
    applicant = Member(pending.membership_id, chamber.chamber_id, code)
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "SubmitServiceRequest",
            P.SubmitServiceRequestRequest(
                request_id=rid(),
                membership_id=pending.membership_id,
                type=P.SERVICE_TYPE_LEGAL,
                subject="Lease",
            ),
            **applicant.as_user,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "SubmitServiceRequest",
            P.SubmitServiceRequestRequest(request_id=rid(), membership_id=pending.membership_id),
            **applicant.as_user,
        )
    assert set(violations(error.value)) == {"type", "subject"}
    listed = commerce.call(
        "ListServiceRequests", P.ListServiceRequestsRequest(chamber_id=chamber.chamber_id)
    ).service_requests
    assert list(listed) == []


def test_a_course_enrolment_completed_earns_points_once(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    member, classmate = _member(commerce, chamber.chamber_id), _member(commerce, chamber.chamber_id)
    staff = _staff(chamber.chamber_id)
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "CreateCourse",
            P.CreateCourseRequest(request_id=rid(), chamber_id=chamber.chamber_id, title="", hours=0),
            **staff,
        )
    assert set(violations(error.value)) == {"title", "hours"}
    course = commerce.call(
        "CreateCourse",
        P.CreateCourseRequest(
            request_id=rid(), chamber_id=chamber.chamber_id, title="Export compliance", hours=16
        ),
        **staff,
    ).course
    assert (course.title, course.hours, course.enrolled, course.completed) == ("Export compliance", 16, 0, 0)

    enrol = P.EnrolInCourseRequest(
        request_id=rid(), course_id=course.course_id, membership_id=member.membership_id
    )
    enrolment = commerce.call("EnrolInCourse", enrol, **member.as_user).enrolment
    assert commerce.call("EnrolInCourse", enrol, **member.as_user).enrolment == enrolment
    again = P.EnrolInCourseRequest(
        request_id=rid(), course_id=course.course_id, membership_id=member.membership_id
    )
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("EnrolInCourse", again, **member.as_user)
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS
    commerce.call(
        "EnrolInCourse",
        P.EnrolInCourseRequest(
            request_id=rid(), course_id=course.course_id, membership_id=classmate.membership_id
        ),
        **classmate.as_user,
    )

    done = commerce.call(
        "CompleteCourse", P.CompleteCourseRequest(enrolment_id=enrolment.enrolment_id), **staff
    )
    assert done.enrolment.HasField("completed_at")
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("CompleteCourse", P.CompleteCourseRequest(enrolment_id=enrolment.enrolment_id), **staff)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _ledger(commerce, member.membership_id) == [
        (P.POINT_SOURCE_COURSE_COMPLETED, course.course_id, 20)
    ]

    listed = commerce.call(
        "ListCourses", P.ListCoursesRequest(chamber_id=chamber.chamber_id), **member.as_user
    )
    assert [(c.course_id, c.enrolled, c.completed) for c in listed.courses] == [(course.course_id, 2, 1)]
    events = wait_until(
        lambda: commerce.events({enrolment.enrolment_id}), timeout_s=20, what="CourseCompleted on Kafka"
    )
    assert [kind for kind, _ in events] == [EVENTS + "CourseCompleted"]
    completed = events[0][1]
    assert isinstance(completed, events_pb2.CourseCompleted)
    assert (completed.course_id, completed.chamber_id, completed.membership_id, completed.credit_code) == (
        course.course_id,
        chamber.chamber_id,
        member.membership_id,
        member.credit_code,
    )
