"""Proto <-> domain for service requests and their events (opened, overdue, resolved)."""

from __future__ import annotations

from datetime import datetime

from cityhub.commerce.v1 import commerce_pb2, events_pb2

from services.commerce.domain import requests as rules
from services.commerce.domain.requests import ServiceRequest, ServiceRequestStatus, ServiceType
from services.platform.protoconv import EnumMap, optional_timestamp, to_timestamp

__all__ = [
    "SERVICE_REQUEST_STATUS",
    "SERVICE_TYPE",
    "assign_service_request",
    "list_service_requests",
    "rate_service_request",
    "resolve_service_request",
    "service_request_opened",
    "service_request_overdue",
    "service_request_pb",
    "service_request_resolved",
    "submit_service_request",
]

SERVICE_TYPE = EnumMap(ServiceType, commerce_pb2.ServiceType, "SERVICE_TYPE")
SERVICE_REQUEST_STATUS = EnumMap(
    ServiceRequestStatus, commerce_pb2.ServiceRequestStatus, "SERVICE_REQUEST_STATUS"
)


# --- requests -> commands ------------------------------------------------------------------------


def submit_service_request(request: commerce_pb2.SubmitServiceRequestRequest) -> rules.SubmitServiceRequest:
    return rules.SubmitServiceRequest(
        request_id=request.request_id,
        membership_id=request.membership_id,
        type=SERVICE_TYPE.from_proto(request.type),
        subject=request.subject,
        description=request.description,
    )


def assign_service_request(request: commerce_pb2.AssignServiceRequestRequest) -> rules.AssignServiceRequest:
    return rules.AssignServiceRequest(
        service_request_id=request.service_request_id, staff_id=request.staff_id
    )


def resolve_service_request(
    request: commerce_pb2.ResolveServiceRequestRequest,
) -> rules.ResolveServiceRequest:
    return rules.ResolveServiceRequest(
        service_request_id=request.service_request_id, resolution=request.resolution
    )


def rate_service_request(request: commerce_pb2.RateServiceRequestRequest) -> rules.RateServiceRequest:
    return rules.RateServiceRequest(
        service_request_id=request.service_request_id, satisfaction=request.satisfaction
    )


def list_service_requests(request: commerce_pb2.ListServiceRequestsRequest) -> rules.ListServiceRequests:
    return rules.ListServiceRequests(
        chamber_id=request.chamber_id, credit_code=request.credit_code, overdue_only=request.overdue_only
    )


# --- domain -> responses and events --------------------------------------------------------------


def service_request_pb(request: ServiceRequest) -> commerce_pb2.ServiceRequest:
    return commerce_pb2.ServiceRequest(
        service_request_id=request.service_request_id,
        chamber_id=request.chamber_id,
        membership_id=request.membership_id,
        credit_code=request.credit_code,
        type=SERVICE_TYPE.to_proto(request.type),
        subject=request.subject,
        description=request.description,
        status=SERVICE_REQUEST_STATUS.to_proto(request.status),
        assigned_to=request.assigned_to,
        submitted_at=to_timestamp(request.submitted_at),
        due_at=to_timestamp(request.due_at),
        overdue=request.overdue,
        resolved_at=optional_timestamp(request.resolved_at),
        resolution=request.resolution,
        satisfaction=request.satisfaction,
    )


def service_request_opened(request: ServiceRequest) -> events_pb2.ServiceRequestOpened:
    return events_pb2.ServiceRequestOpened(
        service_request_id=request.service_request_id,
        chamber_id=request.chamber_id,
        credit_code=request.credit_code,
        type=SERVICE_TYPE.to_proto(request.type),
        due_at=to_timestamp(request.due_at),
        at=to_timestamp(request.submitted_at),
    )


def service_request_overdue(request: ServiceRequest, at: datetime) -> events_pb2.ServiceRequestOverdue:
    return events_pb2.ServiceRequestOverdue(
        service_request_id=request.service_request_id,
        chamber_id=request.chamber_id,
        credit_code=request.credit_code,
        type=SERVICE_TYPE.to_proto(request.type),
        due_at=to_timestamp(request.due_at),
        at=to_timestamp(at),
    )


def service_request_resolved(request: ServiceRequest, on_time: bool) -> events_pb2.ServiceRequestResolved:
    assert request.resolved_at is not None, "a resolved request has its time"
    return events_pb2.ServiceRequestResolved(
        service_request_id=request.service_request_id,
        chamber_id=request.chamber_id,
        credit_code=request.credit_code,
        type=SERVICE_TYPE.to_proto(request.type),
        on_time=on_time,
        at=to_timestamp(request.resolved_at),
    )
