"""Service requests (financing, legal, policy consultation, talent): a member asks, staff are assigned and
resolve it within the type's promised days, the member rates the service 1-5.

A request is overdue once its ``due_at`` passed while unresolved; the flag stays set after a late
resolution (the showcase counts requests resolved on time: ``resolved_at <= due_at``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.platform.errors import FailedPreconditionError, Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code
from services.platform.validation import text_problem

__all__ = [
    "MAX_SATISFACTION",
    "AssignServiceRequest",
    "ListServiceRequests",
    "RateServiceRequest",
    "ResolveServiceRequest",
    "ServiceRequest",
    "ServiceRequestStatus",
    "ServiceType",
    "SubmitServiceRequest",
    "assigned",
    "due_at",
    "on_time",
    "rated",
    "resolved",
]

MAX_SATISFACTION = 5
_MAX_SUBJECT = 200
_MAX_DESCRIPTION = 2000
_MAX_RESOLUTION = 500


class ServiceType(StrEnum):
    FINANCING = "FINANCING"
    LEGAL = "LEGAL"
    POLICY_CONSULTATION = "POLICY_CONSULTATION"
    TALENT = "TALENT"


class ServiceRequestStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    ASSIGNED = "ASSIGNED"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    service_request_id: str
    chamber_id: str
    membership_id: str
    credit_code: str
    type: ServiceType
    subject: str
    description: str
    status: ServiceRequestStatus
    # The staff_id it is assigned to ("" before).
    assigned_to: str
    submitted_at: datetime
    due_at: datetime
    overdue: bool
    resolved_at: datetime | None
    resolution: str
    # 1-5, 0 before the member rated.
    satisfaction: int


def due_at(submitted_at: datetime, kind: ServiceType, service_days: Mapping[str, int]) -> datetime:
    """When the type's promised (calendar) days from submission run out."""
    return submitted_at + timedelta(days=service_days[kind.value])


def on_time(request: ServiceRequest) -> bool:
    return request.resolved_at is not None and request.resolved_at <= request.due_at


def assigned(request: ServiceRequest, staff_id: str) -> ServiceRequest:
    if request.status is ServiceRequestStatus.RESOLVED:
        raise FailedPreconditionError(f"service request {request.service_request_id} is resolved already")
    return replace(request, status=ServiceRequestStatus.ASSIGNED, assigned_to=staff_id)


def resolved(request: ServiceRequest, resolution: str, now: datetime) -> ServiceRequest:
    if request.status is ServiceRequestStatus.RESOLVED:
        raise FailedPreconditionError(f"service request {request.service_request_id} is resolved already")
    return replace(request, status=ServiceRequestStatus.RESOLVED, resolved_at=now, resolution=resolution)


def rated(request: ServiceRequest, satisfaction: int) -> ServiceRequest:
    if request.status is not ServiceRequestStatus.RESOLVED:
        raise FailedPreconditionError(
            f"service request {request.service_request_id} is {request.status.value}: only a resolved"
            " request is rated"
        )
    if request.satisfaction:
        raise FailedPreconditionError(f"service request {request.service_request_id} was rated already")
    return replace(request, satisfaction=satisfaction)


# --- commands ------------------------------------------------------------------------------------


def _text(v: Violations, field: str, value: str, limit: int, *, required: bool, free: bool = False) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    elif value:
        v.add_if(text_problem(value, max_chars=limit, free_text=free), field)


@dataclass(frozen=True, slots=True)
class SubmitServiceRequest:
    request_id: str
    membership_id: str
    type: ServiceType | None
    subject: str
    description: str

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        if not self.membership_id:
            v.add("membership_id", "is required")
        if self.type is None:
            v.add("type", "must be one of FINANCING, LEGAL, POLICY_CONSULTATION, TALENT")
        _text(v, "subject", self.subject, _MAX_SUBJECT, required=True)
        _text(v, "description", self.description, _MAX_DESCRIPTION, required=False, free=True)
        v.check()


@dataclass(frozen=True, slots=True)
class AssignServiceRequest:
    service_request_id: str
    staff_id: str

    def check(self) -> None:
        v = Violations()
        if not self.service_request_id:
            v.add("service_request_id", "is required")
        if not self.staff_id:
            v.add("staff_id", "is required")
        v.check()


@dataclass(frozen=True, slots=True)
class ResolveServiceRequest:
    service_request_id: str
    resolution: str

    def check(self) -> None:
        v = Violations()
        if not self.service_request_id:
            v.add("service_request_id", "is required")
        _text(v, "resolution", self.resolution, _MAX_RESOLUTION, required=True)
        v.check()


@dataclass(frozen=True, slots=True)
class RateServiceRequest:
    service_request_id: str
    satisfaction: int

    def check(self) -> None:
        v = Violations()
        if not self.service_request_id:
            v.add("service_request_id", "is required")
        if not 1 <= self.satisfaction <= MAX_SATISFACTION:
            v.add("satisfaction", f"must be 1-{MAX_SATISFACTION}")
        v.check()


@dataclass(frozen=True, slots=True)
class ListServiceRequests:
    chamber_id: str
    credit_code: str
    overdue_only: bool

    def check(self) -> None:
        v = Violations()
        if bool(self.chamber_id) == bool(self.credit_code):
            v.add("chamber_id", "name exactly one of chamber_id and credit_code")
        elif self.credit_code:
            v.add_if(invalid_credit_code(self.credit_code), "credit_code")
        v.check()
