"""Proto <-> domain for applications: requests to commands, the Application message, and the lifecycle's
events (persons by token only: no identity number, name or phone ever goes into an event)."""

from __future__ import annotations

from datetime import datetime

from cityhub.govservice.v1 import events_pb2, govservice_pb2
from google.protobuf.message import Message

from services.govservice.domain.applications import (
    Application,
    ApplicationStep,
    ApplicationView,
    EnterpriseApplicant,
    FileApplication,
    ListApplications,
    PersonApplicant,
    Step,
)
from services.govservice.domain.model import ApplicantKind
from services.govservice.mapping import APPLICANT_KIND, APPLICATION_STATUS, VERIFICATION
from services.govservice.mapping.trail import step_pb
from services.platform.protoconv import time_range, to_timestamp

__all__ = [
    "application_filed",
    "application_overdue",
    "application_pb",
    "file_application",
    "list_applications",
    "step_command",
    "step_event",
]


# --- requests -> commands ------------------------------------------------------------------------


def file_application(request: govservice_pb2.FileApplicationRequest) -> FileApplication:
    person = (
        PersonApplicant(
            identity_number=request.person.identity_number,
            name=request.person.name,
            phone=request.person.phone,
        )
        if request.HasField("person")
        else None
    )
    enterprise = (
        EnterpriseApplicant(
            credit_code=request.enterprise.credit_code,
            name=request.enterprise.name,
            sector=request.enterprise.sector,
            town=request.enterprise.town,
        )
        if request.HasField("enterprise")
        else None
    )
    return FileApplication(
        request_id=request.request_id,
        item_code=request.item_code,
        filing_region=request.filing_region,
        handling_region=request.handling_region,
        person=person,
        enterprise=enterprise,
        materials=tuple(request.materials),
    )


def step_command(application_no: str, step: Step, text: str = "") -> ApplicationStep:
    return ApplicationStep(application_no=application_no, step=step, text=text)


def list_applications(request: govservice_pb2.ListApplicationsRequest) -> ListApplications:
    start, end = time_range(request.period) if request.HasField("period") else (None, None)
    return ListApplications(
        division_code=request.division_code,
        statuses=tuple(APPLICATION_STATUS.from_proto(s) for s in request.statuses),
        overdue_only=request.overdue_only,
        filed_from=start,
        filed_to=end,
    )


# --- domain -> responses -------------------------------------------------------------------------


def application_pb(view: ApplicationView) -> govservice_pb2.Application:
    a = view.application
    message = govservice_pb2.Application(
        application_no=a.application_no,
        item_code=a.item_code,
        filing_region=a.filing_region,
        handling_region=a.handling_region,
        applicant_kind=APPLICANT_KIND.to_proto(a.applicant_kind),
        applicant_token=a.applicant_token,
        materials=list(a.materials),
        status=APPLICATION_STATUS.to_proto(a.status),
        current_region=a.current_region,
        due_date=a.due_date.isoformat() if a.due_date else "",
        working_days_used=view.working_days_used,
        overdue=a.overdue,
        steps=[step_pb(s) for s in view.steps],
        filed_at=to_timestamp(a.filed_at),
    )
    if view.person is not None:
        message.person.CopyFrom(
            govservice_pb2.PersonApplicant(
                identity_number=view.person.identity_number, name=view.person.name, phone=view.person.phone
            )
        )
    if a.enterprise is not None:
        message.enterprise.CopyFrom(
            govservice_pb2.EnterpriseApplicant(
                credit_code=a.enterprise.credit_code,
                name=a.enterprise.name,
                sector=a.enterprise.sector,
                town=a.enterprise.town,
                verification=VERIFICATION.to_proto(a.enterprise.verification),
            )
        )
    return message


# --- events --------------------------------------------------------------------------------------


def application_filed(application: Application) -> events_pb2.ApplicationFiled:
    a = application
    credit_code = a.enterprise.credit_code if a.enterprise else ""
    return events_pb2.ApplicationFiled(
        application_no=a.application_no,
        item_code=a.item_code,
        filing_region=a.filing_region,
        handling_region=a.handling_region,
        applicant_kind=APPLICANT_KIND.to_proto(a.applicant_kind),
        # A person by token; an enterprise by its credit code (the hub's join key).
        applicant_token=a.applicant_token if a.applicant_kind is ApplicantKind.PERSON else credit_code,
        credit_code=credit_code,
        verification=VERIFICATION.to_proto(a.enterprise.verification if a.enterprise else None),
        at=to_timestamp(a.filed_at),
    )


def step_event(  # noqa: PLR0911 - one event per step, each its own message type
    application: Application, step: Step, *, region: str, text: str, at: datetime, on_time: bool
) -> Message:
    """The event of ``step`` just taken by ``region`` (``application`` as it is after the step)."""
    a, stamp = application, to_timestamp(at)
    due = a.due_date.isoformat() if a.due_date else ""
    if step is Step.RECEIVE:
        return events_pb2.ApplicationReceived(application_no=a.application_no, region=region, at=stamp)
    if step is Step.FORWARD:
        return events_pb2.ApplicationForwarded(
            application_no=a.application_no,
            from_region=a.filing_region,
            to_region=a.handling_region,
            at=stamp,
        )
    if step is Step.ACCEPT:
        return events_pb2.ApplicationAccepted(
            application_no=a.application_no, region=region, due_date=due, at=stamp
        )
    if step is Step.REQUEST_SUPPLEMENT:
        return events_pb2.SupplementRequested(application_no=a.application_no, region=region, at=stamp)
    if step is Step.SUBMIT_SUPPLEMENT:
        return events_pb2.ApplicationSupplemented(
            application_no=a.application_no, region=region, due_date=due, at=stamp
        )
    if step is Step.COMPLETE:
        return events_pb2.ApplicationCompleted(
            application_no=a.application_no,
            item_code=a.item_code,
            handling_region=a.handling_region,
            on_time=on_time,
            working_days_used=a.working_days_used,
            at=stamp,
        )
    return events_pb2.ApplicationRejected(
        application_no=a.application_no, region=region, reason=text, at=stamp
    )


def application_overdue(application: Application, at: datetime) -> events_pb2.ApplicationOverdue:
    return events_pb2.ApplicationOverdue(
        application_no=application.application_no,
        item_code=application.item_code,
        handling_region=application.handling_region,
        due_date=application.due_date.isoformat() if application.due_date else "",
        at=to_timestamp(at),
    )
