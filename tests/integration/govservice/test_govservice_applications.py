"""Applications over real gRPC, PostgreSQL, Kafka and a real commerce service.

The story of the issue runs on a second govservice built on a schema of its own whose clock is set by the
test (2026-09-28 onwards): the real date cannot be moved, and on the module's schema the service's own
sweep, on the real clock, would flag every application due in October 2026 as overdue. Both services
write to the module's events topic, so the events are read back in one place.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from cityhub.govservice.v1 import events_pb2, govservice_pb2, govservice_pb2_grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.govservice.adapters.calendar import HolidayCalendar
from services.govservice.bootstrap import build, config_of
from services.govservice.repository import GovServiceRepository
from services.govservice.usecases.common import GovServiceContext, MemberInfo
from services.govservice.usecases.overdue import OverdueSweeper
from services.platform.security import SecuritySettings
from services.platform.vault import Vault
from tests.integration.govservice.conftest import govservice_settings
from tests.integration.govservice.govservice_support import (
    GovService,
    clerk,
    credit_code,
    identity_number,
    rid,
)
from tests.support import free_port, violations, wait_until

P = govservice_pb2
EVENTS = "cityhub.govservice.v1."
ZONE = ZoneInfo("Asia/Shanghai")
DISTRICT, RONGJIANG, ELSEWHERE = "331004", "522632", "411422"
SOCIAL, LICENCE = "social_insurance_transfer", "business_licence_change"
SOCIAL_MATERIALS = ("id_card_copy", "insurance_record")
PURPOSE = "handling the applicant's cross-region file"
NUMBER = re.compile(r"GS-331004-(\d{8})-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}")
# Every identity number, name and phone this module files: none may ever appear in an event.
PERSONAL: set[str] = set()


class SettableClock:
    """The story's clock: the district's local time the test says it is."""

    def __init__(self, local: str) -> None:
        self.now = _local(local)

    def __call__(self) -> datetime:
        return self.now

    def set(self, local: str) -> None:
        self.now = _local(local)


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


@dataclass
class Story:
    service: GovService
    clock: SettableClock


@pytest.fixture(scope="module")
def story(govservice: GovService, govservice_security: SecuritySettings) -> Iterator[Story]:
    clock = SettableClock("2026-09-28T08:30")
    settings = govservice_settings(
        govservice.kafka_bootstrap,
        govservice.database_url,
        govservice.commerce.runtime.address,
        govservice_events_topic=govservice.settings.govservice_events_topic,
    )
    runtime = build(settings, configure_logs=False, security=govservice_security, clock=clock)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        service = GovService(
            runtime,
            settings,
            govservice_pb2_grpc.CrossRegionServiceStub(channel),
            govservice.issuer,
            govservice.kafka_bootstrap,
            govservice.database_url,
            govservice.commerce,
        )
        _catalogue(service)
        yield Story(service, clock)
    finally:
        channel.close()
        runtime.close()


@pytest.fixture(scope="module")
def district(govservice: GovService) -> GovService:
    """The module's service (real clock) with the catalogue loaded."""
    _catalogue(govservice)
    return govservice


def _catalogue(service: GovService) -> None:
    for code, name, province, home in (
        (DISTRICT, "Huangyan District", "Zhejiang", True),
        (RONGJIANG, "Rongjiang County", "Guizhou", False),
        (ELSEWHERE, "Xiayi County", "Henan", False),
    ):
        service.call(
            "RegisterRegion",
            P.RegisterRegionRequest(
                request_id=rid(), division_code=code, name=name, province=province, home=home
            ),
        )
    items = (
        P.Item(
            code=SOCIAL,
            name="Social-insurance relationship transfer",
            materials=[
                P.Material(code="id_card_copy", name="Copy of the identity card"),
                P.Material(code="insurance_record", name="Social-insurance payment record"),
            ],
            authority_level=P.AUTHORITY_LEVEL_COUNTY,
            promised_working_days=5,
            applicant_kinds=[P.APPLICANT_KIND_PERSON],
        ),
        P.Item(
            code=LICENCE,
            name="Business-licence change",
            materials=[P.Material(code="licence_original", name="Original business licence")],
            authority_level=P.AUTHORITY_LEVEL_COUNTY,
            promised_working_days=10,
            applicant_kinds=[P.APPLICANT_KIND_ENTERPRISE],
        ),
    )
    for item in items:
        service.call("DefineItem", P.DefineItemRequest(request_id=rid(), item=item))
    service.call(
        "SetPartnership",
        P.SetPartnershipRequest(
            request_id=rid(),
            partnership=P.Partnership(
                region_a=DISTRICT,
                region_b=RONGJIANG,
                items=[
                    P.PartnershipItem(item_code=SOCIAL, direction=P.DIRECTION_BOTH),
                    # The district's entrepreneurs file at home for their business in the partner county.
                    P.PartnershipItem(item_code=LICENCE, direction=P.DIRECTION_A_TO_B),
                ],
                start_date="2026-01-01",
            ),
        ),
    )


def _person(name: str = "Wu Lan", phone: str = "138 0000 0017") -> P.PersonApplicant:
    person = P.PersonApplicant(identity_number=identity_number(RONGJIANG), name=name, phone=phone)
    PERSONAL.update({person.identity_number, person.name, person.phone})
    return person


def _as_clerk(service: GovService, region: str, rpc: str, request: Message) -> Any:
    return service.call(rpc, request, purpose=PURPOSE, **clerk(region))


def _file_person(
    service: GovService, person: P.PersonApplicant | None = None, **changes: Any
) -> P.Application:
    values: dict[str, Any] = {
        "request_id": rid(),
        "item_code": SOCIAL,
        "filing_region": DISTRICT,
        "handling_region": RONGJIANG,
        "person": person or _person(),
        "materials": list(SOCIAL_MATERIALS),
        **changes,
    }
    filed: P.Application = _as_clerk(
        service, values["filing_region"], "FileApplication", P.FileApplicationRequest(**values)
    ).application
    return filed


def _step(service: GovService, region: str, rpc: str, number: str, **text: str) -> P.Application:
    request = getattr(P, f"{rpc}Request")(application_no=number, **text)
    moved: P.Application = _as_clerk(service, region, rpc, request).application
    return moved


def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    code: grpc.StatusCode = error.value.code()
    return code


def _refused(call: Any) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    return violations(error.value)


def _events(service: GovService, numbers: set[str]) -> list[tuple[str, Message]]:
    return service.events(numbers)


def _strings(message: Message) -> Iterator[str]:
    """Every string value anywhere in ``message``."""
    for field, value in message.ListFields():
        values = value if field.is_repeated else [value]
        for one in values:
            if field.type == FieldDescriptor.TYPE_STRING:
                yield one
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                yield from _strings(one)


def _assert_nothing_personal(found: list[tuple[str, Message]]) -> None:
    assert found
    for kind, message in found:
        for text in _strings(message):
            for secret in PERSONAL:
                assert secret not in text, f"{kind} carries personal data"


# --- the story -----------------------------------------------------------------------------------


def test_a_migrant_workers_transfer_is_completed_on_time_across_the_national_day(story: Story) -> None:
    service, clock = story.service, story.clock
    worker = _person("Yang Mei", "139 0855 0001")

    # Monday 28 September, at the district's window.
    clock.set("2026-09-28T09:00")
    filed = _file_person(service, worker)
    number = filed.application_no
    shape = NUMBER.fullmatch(number)
    assert shape is not None
    assert shape.group(1) == "20260928"
    assert (filed.status, filed.current_region) == (P.APPLICATION_STATUS_SUBMITTED, DISTRICT)
    # The district's clerk sees the applicant (stated purpose, audited); events only see a token.
    assert filed.person.identity_number == worker.identity_number
    assert filed.applicant_token.startswith("a_")
    assert [(s.sequence, s.status, s.region) for s in filed.steps] == [
        (0, P.APPLICATION_STATUS_SUBMITTED, DISTRICT)
    ]
    late = _file_person(service)
    paused = _file_person(service)

    clock.set("2026-09-28T10:00")
    for application in (filed, late, paused):
        received = _step(service, DISTRICT, "ReceiveApplication", application.application_no)
        assert received.status == P.APPLICATION_STATUS_RECEIVED
    # Rongjiang cannot forward what the district holds; accepting before it is forwarded is out of order.
    assert (
        _code(lambda: _step(service, RONGJIANG, "ForwardApplication", number))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        _code(lambda: _step(service, RONGJIANG, "AcceptApplication", number))
        == grpc.StatusCode.FAILED_PRECONDITION
    )
    clock.set("2026-09-28T11:00")
    for application in (filed, late, paused):
        forwarded = _step(service, DISTRICT, "ForwardApplication", application.application_no)
        assert (forwarded.status, forwarded.current_region) == (P.APPLICATION_STATUS_FORWARDED, RONGJIANG)
    # Now it is Rongjiang's turn: the district's clerk may not accept; a third place's clerk sees nothing.
    assert (
        _code(lambda: _step(service, DISTRICT, "AcceptApplication", number))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert _code(lambda: _step(service, ELSEWHERE, "AcceptApplication", number)) == grpc.StatusCode.NOT_FOUND
    assert (
        _code(
            lambda: _as_clerk(
                service, ELSEWHERE, "GetApplication", P.GetApplicationRequest(application_no=number)
            )
        )
        == grpc.StatusCode.NOT_FOUND
    )

    # Tuesday 29 September, Rongjiang accepts: five working days are 30 Sep, then (after 1-7 October off)
    # 8, 9, Saturday 10 (an adjusted working day) and 12 October.
    clock.set("2026-09-29T09:30")
    for application in (filed, late, paused):
        accepted = _step(service, RONGJIANG, "AcceptApplication", application.application_no)
        assert (accepted.status, accepted.due_date) == (P.APPLICATION_STATUS_ACCEPTED, "2026-10-12")
        assert accepted.person.name == application.person.name  # Rongjiang's clerk sees the applicant too

    # Thursday 8 October: a supplement is asked for; two working days used (30 Sep, 8 Oct); the clock stops.
    clock.set("2026-10-08T15:00")
    for application in (filed, paused):
        asked = _step(
            service,
            RONGJIANG,
            "RequestSupplement",
            application.application_no,
            note="The 2025 payment record",
        )
        assert (asked.status, asked.current_region) == (P.APPLICATION_STATUS_SUPPLEMENT_REQUESTED, DISTRICT)
        assert asked.working_days_used == 2
    assert (
        _code(lambda: _step(service, RONGJIANG, "CompleteApplication", number, result_ref="R-1"))
        == grpc.StatusCode.FAILED_PRECONDITION
    )

    # Friday 9 October: the worker brings it; three days left from today: Saturday 10, 12 and 13 October.
    clock.set("2026-10-09T10:00")
    resumed = _step(service, DISTRICT, "SubmitSupplement", number, note="Payment record 2025 handed over")
    assert (resumed.status, resumed.current_region) == (P.APPLICATION_STATUS_SUPPLEMENTED, RONGJIANG)
    assert (resumed.due_date, resumed.working_days_used) == ("2026-10-13", 2)

    _sweep_on_13_october(story, late.application_no, paused.application_no, number)

    clock.set("2026-10-13T16:00")
    done = _step(service, RONGJIANG, "CompleteApplication", number, result_ref="RJ-HRSS-2026-1013")
    assert (done.status, done.current_region, done.working_days_used) == (
        P.APPLICATION_STATUS_COMPLETED,
        DISTRICT,
        5,
    )
    assert [(s.sequence, s.status, s.region) for s in done.steps] == [
        (0, P.APPLICATION_STATUS_SUBMITTED, DISTRICT),
        (1, P.APPLICATION_STATUS_RECEIVED, DISTRICT),
        (2, P.APPLICATION_STATUS_FORWARDED, DISTRICT),
        (3, P.APPLICATION_STATUS_ACCEPTED, RONGJIANG),
        (4, P.APPLICATION_STATUS_SUPPLEMENT_REQUESTED, RONGJIANG),
        (5, P.APPLICATION_STATUS_SUPPLEMENTED, DISTRICT),
        (6, P.APPLICATION_STATUS_COMPLETED, RONGJIANG),
    ]
    assert done.steps[6].note == "RJ-HRSS-2026-1013"
    assert done.steps[6].at.ToDatetime().date() == date(2026, 10, 13)
    assert all(s.previous_hash == p.hash for p, s in zip(done.steps, done.steps[1:], strict=False))

    _story_events_checked(service, filed, late.application_no, paused.application_no)


def _sweep_on_13_october(story: Story, late: str, paused: str, number: str) -> None:
    service, clock = story.service, story.clock
    # Tuesday 13 October: the one left running since 29 September is past its deadline (12 October); the
    # paused one is not (its clock stopped); the story's is due today. Replicas sweep at once.
    extra = [_sweeper(service, clock) for _ in range(3)]
    clock.set("2026-10-13T09:00")
    counts: list[int] = []
    start = threading.Barrier(len(extra))

    def sweep(replica: OverdueSweeper) -> None:
        start.wait()
        counts.append(replica.tick())

    threads = [threading.Thread(target=sweep, args=(r,)) for r in extra]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(counts) <= 1  # the service's own sweep may have been first
    flagged = wait_until(
        lambda: _get(service, RONGJIANG, late).overdue,
        timeout_s=20,
        what="the late one flagged",
    )
    assert flagged
    assert [r.tick() for r in extra] == [0, 0, 0]
    assert not _get(service, RONGJIANG, paused).overdue
    assert not _get(service, RONGJIANG, number).overdue
    listed = _as_clerk(
        service,
        RONGJIANG,
        "ListApplications",
        P.ListApplicationsRequest(division_code=RONGJIANG, overdue_only=True),
    ).applications
    assert [a.application_no for a in listed] == [late]


def _story_events_checked(service: GovService, filed: P.Application, late: str, paused: str) -> None:
    number = filed.application_no

    def story_events() -> list[tuple[str, Message]] | None:
        found = _events(service, {number})
        return found if len(found) == 7 else None

    found = wait_until(story_events, timeout_s=30, what="the story's seven events")
    assert [kind.removeprefix(EVENTS) for kind, _ in found] == [
        "ApplicationFiled",
        "ApplicationReceived",
        "ApplicationForwarded",
        "ApplicationAccepted",
        "SupplementRequested",
        "ApplicationSupplemented",
        "ApplicationCompleted",
    ]
    completed = found[-1][1]
    assert isinstance(completed, events_pb2.ApplicationCompleted)
    assert (completed.on_time, completed.working_days_used) == (True, 5)
    accepted_event, supplemented_event = found[3][1], found[5][1]
    assert isinstance(accepted_event, events_pb2.ApplicationAccepted)
    assert isinstance(supplemented_event, events_pb2.ApplicationSupplemented)
    assert (accepted_event.due_date, supplemented_event.due_date) == ("2026-10-12", "2026-10-13")
    filed_event = found[0][1]
    assert isinstance(filed_event, events_pb2.ApplicationFiled)
    assert filed_event.applicant_token == filed.applicant_token
    assert filed_event.applicant_kind == P.APPLICANT_KIND_PERSON

    # Exactly one overdue event, for the late one, however many replicas swept.
    every = {number, late, paused}
    overdue = [m for k, m in _events(service, every) if k == EVENTS + "ApplicationOverdue"]
    assert len(overdue) == 1
    assert isinstance(overdue[0], events_pb2.ApplicationOverdue)
    assert (overdue[0].application_no, overdue[0].due_date, overdue[0].handling_region) == (
        late,
        "2026-10-12",
        RONGJIANG,
    )
    _assert_nothing_personal(_events(service, every))


def _get(service: GovService, region: str, number: str) -> P.Application:
    found: P.Application = _as_clerk(
        service, region, "GetApplication", P.GetApplicationRequest(application_no=number)
    ).application
    return found


class _NoMembers:
    def get_member(self, credit_code: str) -> MemberInfo | None:  # noqa: ARG002 - never asked
        return None


def _sweeper(service: GovService, clock: SettableClock) -> OverdueSweeper:
    """Another replica of the sweep on the story's schema and outbox, on the story's clock."""
    settings: Any = service.settings
    ctx = GovServiceContext(
        uow=service.runtime.unit_of_work(GovServiceRepository),
        config=config_of(settings),
        vault=Vault(b"\x00" * 32, "govservice"),
        members=_NoMembers(),
        calendar=HolidayCalendar("CN"),
        clock=clock,
    )
    return OverdueSweeper(ctx, interval_s=3600)


# --- filing refused ------------------------------------------------------------------------------


def test_missing_materials_are_named_at_once_and_nothing_is_stored(district: GovService) -> None:
    before = _listed(district)
    found = _refused(lambda: _file_person(district, materials=["id_card_copy"]))
    assert set(found) == {"materials"}
    assert "insurance_record" in found["materials"]
    assert "Social-insurance payment record" in found["materials"]
    none = _refused(lambda: _file_person(district, materials=[]))
    assert "id_card_copy (Copy of the identity card)" in none["materials"]
    assert "insurance_record" in none["materials"]
    assert _listed(district) == before


def _listed(service: GovService) -> list[str]:
    found = service.call("ListApplications", P.ListApplicationsRequest(division_code=DISTRICT))
    return [a.application_no for a in found.applications]


def test_a_wrong_check_digit_is_named(district: GovService) -> None:
    person = _person()
    last = person.identity_number[-1]
    person.identity_number = person.identity_number[:-1] + ("0" if last != "0" else "1")
    found = _refused(lambda: _file_person(district, person))
    assert set(found) == {"person.identity_number"}
    assert "check digit" in found["person.identity_number"]


def test_an_unknown_item_an_unoffered_direction_and_a_non_partner_are_named(district: GovService) -> None:
    assert set(_refused(lambda: _file_person(district, item_code="no_such_item"))) == {"item_code"}
    assert set(_refused(lambda: _file_person(district, handling_region=ELSEWHERE))) == {"handling_region"}
    assert set(_refused(lambda: _file_person(district, handling_region="999999"))) == {"handling_region"}
    # The licence change is offered from the district to Rongjiang only, and to enterprises only.
    reverse = P.FileApplicationRequest(
        request_id=rid(),
        item_code=LICENCE,
        filing_region=RONGJIANG,
        handling_region=DISTRICT,
        enterprise=P.EnterpriseApplicant(credit_code=district.commerce.member()),
        materials=["licence_original"],
    )
    assert set(_refused(lambda: _as_clerk(district, RONGJIANG, "FileApplication", reverse))) == {"item_code"}
    found = _refused(lambda: _file_person(district, item_code=LICENCE, materials=["licence_original"]))
    assert set(found) == {"person"}


def test_only_a_clerk_of_the_filing_region_files(district: GovService) -> None:
    request = P.FileApplicationRequest(
        request_id=rid(),
        item_code=SOCIAL,
        filing_region=DISTRICT,
        handling_region=RONGJIANG,
        person=_person(),
        materials=list(SOCIAL_MATERIALS),
    )
    denied = _code(lambda: _as_clerk(district, RONGJIANG, "FileApplication", request))
    assert denied == grpc.StatusCode.PERMISSION_DENIED
    # A city clerk covers the district under it.
    filed = district.call(
        "FileApplication", request, purpose=PURPOSE, roles=("gov_clerk",), scopes=("region:331000",)
    )
    assert filed.application.filing_region == DISTRICT


def test_filing_is_idempotent_by_request_id(district: GovService) -> None:
    request = P.FileApplicationRequest(
        request_id=rid(),
        item_code=SOCIAL,
        filing_region=DISTRICT,
        handling_region=RONGJIANG,
        person=_person(),
        materials=list(SOCIAL_MATERIALS),
    )
    first = _as_clerk(district, DISTRICT, "FileApplication", request).application
    again = _as_clerk(district, DISTRICT, "FileApplication", request).application
    assert again.application_no == first.application_no
    assert len(again.steps) == 1
    other = P.FileApplicationRequest()
    other.CopyFrom(request)
    other.person.phone = "138 0000 0099"
    PERSONAL.add(other.person.phone)
    assert set(_refused(lambda: _as_clerk(district, DISTRICT, "FileApplication", other))) == {"request_id"}


# --- enterprises and commerce --------------------------------------------------------------------


def _file_enterprise(service: GovService, enterprise: P.EnterpriseApplicant) -> P.Application:
    request = P.FileApplicationRequest(
        request_id=rid(),
        item_code=LICENCE,
        filing_region=DISTRICT,
        handling_region=RONGJIANG,
        enterprise=enterprise,
        materials=["licence_original"],
    )
    filed: P.Application = _as_clerk(service, DISTRICT, "FileApplication", request).application
    return filed


def test_an_enterprise_applicant_is_prefilled_from_commerce(district: GovService) -> None:
    code = district.commerce.member(name="Taizhou Precision Co.", town="Luqiao Street")
    filed = _file_enterprise(district, P.EnterpriseApplicant(credit_code=code))
    assert filed.enterprise.verification == P.VERIFICATION_VERIFIED
    assert (filed.enterprise.name, filed.enterprise.town) == ("Taizhou Precision Co.", "Luqiao Street")
    assert filed.applicant_kind == P.APPLICANT_KIND_ENTERPRISE
    assert not filed.HasField("person")
    assert filed.applicant_token == ""

    def filed_event() -> list[Message]:
        return [m for k, m in district.events({filed.application_no}) if k == EVENTS + "ApplicationFiled"]

    event = wait_until(filed_event, timeout_s=20, what="ApplicationFiled")[0]
    assert isinstance(event, events_pb2.ApplicationFiled)
    assert (event.credit_code, event.applicant_token, event.verification) == (
        code,
        code,
        P.VERIFICATION_VERIFIED,
    )


def test_an_enterprise_commerce_does_not_know_needs_its_name(district: GovService) -> None:
    code = credit_code(123_456_789)
    found = _refused(lambda: _file_enterprise(district, P.EnterpriseApplicant(credit_code=code)))
    assert set(found) == {"enterprise.name"}
    filed = _file_enterprise(district, P.EnterpriseApplicant(credit_code=code, name="Newcomer Trading Co."))
    assert (filed.enterprise.verification, filed.enterprise.name) == (
        P.VERIFICATION_UNKNOWN,
        "Newcomer Trading Co.",
    )


def test_an_enterprise_filed_while_commerce_is_unreachable_is_stored_not_verified(
    district: GovService, govservice_security: SecuritySettings
) -> None:
    # A second replica on the module's schema (and its person key) whose commerce is a port nothing
    # listens on.
    key = district.settings.govservice_person_key
    assert key is not None
    settings = govservice_settings(
        district.kafka_bootstrap,
        district.database_url,
        f"127.0.0.1:{free_port()}",
        service_name=district.settings.service_name,
        govservice_person_key=key.get_secret_value(),
        govservice_events_topic=district.settings.govservice_events_topic,
        peer_call_timeout_s=0.5,
        peer_max_attempts=2,
    )
    runtime = build(settings, configure_logs=False, security=govservice_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        cut_off = GovService(
            runtime,
            settings,
            govservice_pb2_grpc.CrossRegionServiceStub(channel),
            district.issuer,
            district.kafka_bootstrap,
            district.database_url,
            district.commerce,
        )
        code = district.commerce.member(name="Known But Unreachable Co.")
        filed = _file_enterprise(
            cut_off, P.EnterpriseApplicant(credit_code=code, name="As Told At The Window")
        )
    finally:
        channel.close()
        runtime.close()
    assert filed.enterprise.verification == P.VERIFICATION_NOT_VERIFIED
    stored = _get(district, DISTRICT, filed.application_no)
    assert (stored.enterprise.verification, stored.enterprise.name) == (
        P.VERIFICATION_NOT_VERIFIED,
        "As Told At The Window",
    )
    assert stored.status == P.APPLICATION_STATUS_SUBMITTED


# --- reads, rejection ----------------------------------------------------------------------------


def test_who_sees_the_applicant(district: GovService) -> None:
    worker = _person("Pan Xiu", "187 8555 0002")
    number = _file_person(district, worker).application_no
    # Rongjiang's clerk (the other region of the application) and a Guizhou province clerk see them.
    assert _get(district, RONGJIANG, number).person.identity_number == worker.identity_number
    province = district.call(
        "GetApplication",
        P.GetApplicationRequest(application_no=number),
        purpose=PURPOSE,
        roles=("gov_clerk",),
        scopes=("region:520000",),
    ).application
    assert province.person.name == worker.name
    # The programme office reads the application, never the person.
    office = district.call("GetApplication", P.GetApplicationRequest(application_no=number)).application
    assert office.application_no == number
    assert (office.person.identity_number, office.person.name, office.person.phone) == ("", "", "")
    assert office.applicant_token.startswith("a_")
    # A clerk must say why.
    denied = _code(
        lambda: district.call(
            "GetApplication", P.GetApplicationRequest(application_no=number), **clerk(DISTRICT)
        )
    )
    assert denied == grpc.StatusCode.PERMISSION_DENIED
    assert set(_refused(lambda: _get(district, DISTRICT, "GS-1"))) == {"application_no"}
    assert _code(lambda: _get(district, DISTRICT, "GS-331004-20261201-ZZZZZZ")) == grpc.StatusCode.NOT_FOUND


def test_lists_are_newest_first_paged_and_filtered(district: GovService) -> None:
    numbers = [_file_person(district).application_no for _ in range(3)]
    _step(district, DISTRICT, "ReceiveApplication", numbers[0])
    first = _as_clerk(
        district,
        RONGJIANG,
        "ListApplications",
        _list_request(RONGJIANG, 2),
    )
    assert [a.application_no for a in first.applications] == [numbers[2], numbers[1]]
    assert first.page.next_page_token
    received = _as_clerk(
        district,
        DISTRICT,
        "ListApplications",
        P.ListApplicationsRequest(division_code=DISTRICT, statuses=[P.APPLICATION_STATUS_RECEIVED]),
    ).applications
    assert numbers[0] in [a.application_no for a in received]
    assert all(a.status == P.APPLICATION_STATUS_RECEIVED for a in received)
    assert received[0].person.identity_number  # the district's clerk sees its applicants
    denied = _code(
        lambda: _as_clerk(
            district, ELSEWHERE, "ListApplications", P.ListApplicationsRequest(division_code=DISTRICT)
        )
    )
    assert denied == grpc.StatusCode.PERMISSION_DENIED
    mine = _as_clerk(district, ELSEWHERE, "ListApplications", P.ListApplicationsRequest()).applications
    assert list(mine) == []


def _list_request(region: str, size: int) -> P.ListApplicationsRequest:
    request = P.ListApplicationsRequest(division_code=region)
    request.page.page_size = size
    return request


def test_whoever_s_turn_it_is_rejects_with_a_reason(district: GovService) -> None:
    number = _file_person(district).application_no
    assert (
        _code(lambda: _step(district, RONGJIANG, "RejectApplication", number, reason="Not ours"))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert set(_refused(lambda: _step(district, DISTRICT, "RejectApplication", number, reason=""))) == {
        "reason"
    }
    rejected = _step(district, DISTRICT, "RejectApplication", number, reason="Materials are not legible")
    assert (rejected.status, rejected.steps[-1].note) == (
        P.APPLICATION_STATUS_REJECTED,
        "Materials are not legible",
    )
    again = _code(lambda: _step(district, DISTRICT, "RejectApplication", number, reason="Again"))
    assert again == grpc.StatusCode.FAILED_PRECONDITION


def test_no_event_carries_an_identity_number_name_or_phone(district: GovService) -> None:
    _file_person(district)
    _assert_nothing_personal(wait_until(district.events, timeout_s=20, what="events"))
