"""Kitchens, staff and inspections over real gRPC, PostgreSQL, Kafka and a real safety service: the site
check at registration (unknown, not a school, safety unreachable), idempotent creates, who may see and
run which kitchen, the roster's rules and events, inspections newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2, kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.kitchen.bootstrap import build
from services.platform.identifiers import identity_check_char
from services.platform.security import SecuritySettings, TokenIssuer
from tests.integration.kitchen.conftest import kitchen_settings
from tests.integration.kitchen.kitchen_support import INSPECTOR, Kitchen, credit_code, rid
from tests.kafka_support import delete_topics
from tests.support import free_port, violations, wait_until

MANAGER = ("kitchen_manager",)


def _code(error: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    code: grpc.StatusCode = error.value.code()
    return code


def _details(error: pytest.ExceptionInfo[grpc.RpcError]) -> str:
    details: str = error.value.details() or ""
    return details


def _identity(n: int) -> str:
    first17 = f"33100419920615{n:03d}"
    return first17 + identity_check_char(first17)


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _register_request(site_id: str, **changes: object) -> kitchen_pb2.RegisterKitchenRequest:
    request = kitchen_pb2.RegisterKitchenRequest(
        request_id=rid(),
        site_id=site_id,
        name="No. 3 Primary School kitchen",
        operator=kitchen_pb2.KitchenOperator(
            kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR, name="Fresh Catering Co.", credit_code=credit_code(7)
        ),
        meals_per_day=1200,
        shifts=[
            kitchen_pb2.Shift(name="breakfast", start_time="06:00", end_time="08:30"),
            kitchen_pb2.Shift(name="lunch", start_time="09:00", end_time="13:30"),
        ],
        commitment="Fresh ingredients, open kitchen, every meal sampled.",
    )
    for name, value in changes.items():
        if isinstance(value, Message):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def _registered_events(kitchen: Kitchen, kitchen_id: str) -> list[events_pb2.KitchenRegistered]:
    return [m for _, m in kitchen.events({kitchen_id}) if isinstance(m, events_pb2.KitchenRegistered)]


# --- registration ---------------------------------------------------------------------------------------


def test_a_contractor_kitchen_takes_the_site_town_and_location_and_is_announced(kitchen: Kitchen) -> None:
    site = kitchen.safety.register_site()
    request = _register_request(site.site_id)
    registered = kitchen.call("RegisterKitchen", request, roles=INSPECTOR).kitchen
    assert registered.site_id == site.site_id
    assert (registered.town, registered.division_code) == (site.town, site.division_code)
    assert (registered.location.latitude, registered.location.longitude) == (28.66, 121.42)
    assert [s.name for s in registered.shifts] == ["breakfast", "lunch"]
    assert registered.operator.credit_code == credit_code(7)

    # A replay answers the same kitchen; the same id with another body is refused naming request_id.
    again = kitchen.call("RegisterKitchen", request, roles=INSPECTOR).kitchen
    assert again == registered
    changed = _register_request(site.site_id, request_id=request.request_id, meals_per_day=1300)
    with pytest.raises(grpc.RpcError) as reused:
        kitchen.call("RegisterKitchen", changed, roles=INSPECTOR)
    assert _code(reused) == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(reused.value)) == {"request_id"}

    events = wait_until(
        lambda: _registered_events(kitchen, registered.kitchen_id), timeout_s=20, what="the event"
    )
    assert len(events) == 1
    event = events[0]
    assert (event.site_id, event.operator_credit_code) == (site.site_id, credit_code(7))
    assert event.operator_kind == kitchen_pb2.OPERATOR_KIND_CONTRACTOR
    assert event.town == site.town


def test_an_unknown_site_or_one_that_is_no_school_is_a_failed_precondition(kitchen: Kitchen) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        kitchen.call("RegisterKitchen", _register_request("site-does-not-exist"), roles=INSPECTOR)
    assert _code(unknown) == grpc.StatusCode.FAILED_PRECONDITION
    assert "site_id" in _details(unknown)
    hospital = kitchen.safety.register_site(safety_pb2.SITE_KIND_HOSPITAL)
    with pytest.raises(grpc.RpcError) as not_school:
        kitchen.call("RegisterKitchen", _register_request(hospital.site_id), roles=INSPECTOR)
    assert _code(not_school) == grpc.StatusCode.FAILED_PRECONDITION
    assert "not a school or kindergarten" in _details(not_school)
    listed = kitchen.call(
        "ListKitchens", kitchen_pb2.ListKitchensRequest(site_id=hospital.site_id), roles=INSPECTOR
    )
    assert list(listed.kitchens) == []


def test_bad_registrations_name_every_field_and_store_nothing(kitchen: Kitchen) -> None:
    site = kitchen.safety.register_site()
    request = _register_request(
        site.site_id,
        operator=kitchen_pb2.KitchenOperator(kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR, name="No code Ltd."),
        meals_per_day=0,
    )
    del request.shifts[:]
    request.shifts.add(name="lunch", start_time="13:30", end_time="09:00")
    request.shifts.add(name="lunch", start_time="9:00", end_time="10:00")
    with pytest.raises(grpc.RpcError) as error:
        kitchen.call("RegisterKitchen", request, roles=INSPECTOR)
    assert _code(error) == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error.value)) == {
        "operator.credit_code",
        "meals_per_day",
        "shifts[0].end_time",
        "shifts[1].name",
        "shifts[1].start_time",
    }
    listed = kitchen.call(
        "ListKitchens", kitchen_pb2.ListKitchensRequest(site_id=site.site_id), roles=INSPECTOR
    )
    assert list(listed.kitchens) == []


def test_with_safety_unreachable_registration_is_unavailable_and_nothing_is_stored(
    kitchen: Kitchen, kitchen_security: SecuritySettings
) -> None:
    site = kitchen.safety.register_site()
    settings = kitchen_settings(kitchen.kafka_bootstrap, kitchen.database_url, f"127.0.0.1:{free_port()}")
    runtime = build(settings, configure_logs=False, security=kitchen_security)
    channel = None
    try:
        runtime.start()
        channel = grpc.insecure_channel(runtime.address)
        cut_off = Kitchen(
            runtime,
            settings,
            kitchen_pb2_grpc.KitchenServiceStub(channel),
            TokenIssuer.from_settings(kitchen_security),
            kitchen.kafka_bootstrap,
            kitchen.database_url,
            kitchen.safety,
        )
        with pytest.raises(grpc.RpcError) as error:
            cut_off.call("RegisterKitchen", _register_request(site.site_id), roles=INSPECTOR)
        assert _code(error) == grpc.StatusCode.UNAVAILABLE
        listed = cut_off.call("ListKitchens", kitchen_pb2.ListKitchensRequest(), roles=INSPECTOR)
        assert list(listed.kitchens) == []
        assert cut_off.events() == []
    finally:
        if channel is not None:
            channel.close()
        runtime.close()
        topics = [settings.kitchen_events_topic, settings.kitchen_readings_topic]
        delete_topics(kitchen.kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])


def test_a_manager_sees_and_runs_only_its_own_kitchen(kitchen: Kitchen) -> None:
    mine, theirs = kitchen.register_kitchen(), kitchen.register_kitchen()
    manager: dict[str, Any] = {"roles": MANAGER, "scopes": (f"kitchen:{mine.kitchen_id}",)}
    got = kitchen.call("GetKitchen", kitchen_pb2.GetKitchenRequest(kitchen_id=mine.kitchen_id), **manager)
    assert got.kitchen == mine
    with pytest.raises(grpc.RpcError) as hidden:
        kitchen.call("GetKitchen", kitchen_pb2.GetKitchenRequest(kitchen_id=theirs.kitchen_id), **manager)
    assert _code(hidden) == grpc.StatusCode.NOT_FOUND
    listed = kitchen.call("ListKitchens", kitchen_pb2.ListKitchensRequest(), **manager)
    assert [k.kitchen_id for k in listed.kitchens] == [mine.kitchen_id]
    with pytest.raises(grpc.RpcError) as denied:
        kitchen.call(
            "AddStaff",
            kitchen_pb2.AddStaffRequest(
                request_id=rid(),
                kitchen_id=theirs.kitchen_id,
                name="Li Wei",
                identity_number=_identity(1),
                role=kitchen_pb2.STAFF_ROLE_COOK,
            ),
            **manager,
        )
    assert _code(denied) == grpc.StatusCode.PERMISSION_DENIED


def test_lists_of_kitchens_page_through_every_one(kitchen: Kitchen) -> None:
    site = kitchen.safety.register_site()
    made = {kitchen.register_kitchen(site.site_id).kitchen_id for _ in range(3)}
    seen: list[str] = []
    token = ""
    while True:
        reply = kitchen.call(
            "ListKitchens",
            kitchen_pb2.ListKitchensRequest(
                site_id=site.site_id, page=common_pb2.PageRequest(page_size=2, page_token=token)
            ),
            roles=("public",),
        )
        seen += [k.kitchen_id for k in reply.kitchens]
        token = reply.page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(made)


# --- staff ----------------------------------------------------------------------------------------------


def _add(kitchen_id: str, n: int, **changes: object) -> kitchen_pb2.AddStaffRequest:
    request = kitchen_pb2.AddStaffRequest(
        request_id=rid(),
        kitchen_id=kitchen_id,
        name=f"Cook {n}",
        identity_number=_identity(n),
        role=kitchen_pb2.STAFF_ROLE_COOK,
        health_certificate_number=f"HC-{n:05d}",
        health_certificate_expiry="2099-12-31",
        face_template_ref=f"face/{n}",
        shifts=["lunch"],
    )
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(request, name)[:]
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    return request


def test_staff_are_announced_by_token_and_the_same_person_is_added_once(kitchen: Kitchen) -> None:
    registered = kitchen.register_kitchen()
    added = kitchen.call("AddStaff", _add(registered.kitchen_id, 10)).staff
    assert added.staff_token.startswith("s_")
    # A service caller is not cleared for identity or health data: masked in its answer.
    assert (added.name, added.identity_number, added.health_certificate_number) == ("", "", "")
    assert added.certificate_status == kitchen_pb2.CERTIFICATE_STATUS_VALID
    with pytest.raises(grpc.RpcError) as twice:
        kitchen.call("AddStaff", _add(registered.kitchen_id, 10, name="Cook ten again"))
    assert _code(twice) == grpc.StatusCode.ALREADY_EXISTS

    def staff_events() -> list[events_pb2.StaffAdded]:
        return [m for _, m in kitchen.events({added.staff_id}) if isinstance(m, events_pb2.StaffAdded)]

    events = wait_until(staff_events, timeout_s=20, what="StaffAdded")
    assert len(events) == 1
    assert (events[0].staff_token, events[0].kitchen_id) == (added.staff_token, registered.kitchen_id)
    wire = events[0].SerializeToString()
    for secret in ("Cook 10", _identity(10), "HC-00010"):
        assert secret.encode() not in wire


def test_bad_staff_are_refused_naming_the_field(kitchen: Kitchen) -> None:
    registered = kitchen.register_kitchen()  # one shift: lunch
    with pytest.raises(grpc.RpcError) as unknown_shift:
        kitchen.call("AddStaff", _add(registered.kitchen_id, 20, shifts=["lunch", "dinner"]))
    assert _code(unknown_shift) == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(unknown_shift.value)) == {"shifts[1]"}
    with pytest.raises(grpc.RpcError) as no_expiry:
        kitchen.call("AddStaff", _add(registered.kitchen_id, 21, health_certificate_expiry=""))
    assert set(violations(no_expiry.value)) == {"health_certificate_expiry"}
    bad_identity = _identity(22)[:-1] + ("1" if _identity(22)[-1] != "1" else "2")
    with pytest.raises(grpc.RpcError) as wrong:
        kitchen.call("AddStaff", _add(registered.kitchen_id, 22, identity_number=bad_identity))
    assert set(violations(wrong.value)) == {"identity_number"}
    roster = kitchen.call("ListStaff", kitchen_pb2.ListStaffRequest(kitchen_id=registered.kitchen_id))
    assert list(roster.staff) == []


# --- inspections ----------------------------------------------------------------------------------------


def test_inspections_are_recorded_by_inspectors_and_listed_newest_first(kitchen: Kitchen) -> None:
    registered = kitchen.register_kitchen()
    now = datetime.now(UTC).replace(microsecond=0)
    recorded = []
    for days_ago, result, findings in (
        (20, kitchen_pb2.INSPECTION_RESULT_FAIL, ["rodent droppings in store room", "no sample kept"]),
        (2, kitchen_pb2.INSPECTION_RESULT_PASS, []),
        (9, kitchen_pb2.INSPECTION_RESULT_PASS_WITH_REMARKS, ["hood filter greasy"]),
    ):
        request = kitchen_pb2.RecordInspectionRequest(
            request_id=rid(),
            kitchen_id=registered.kitchen_id,
            inspected_at=_stamp(now - timedelta(days=days_ago)),
            inspector="Inspector Chen (badge 3310-042)",
            findings=findings,
            result=result,
        )
        recorded.append(kitchen.call("RecordInspection", request, roles=INSPECTOR).inspection)
        # A replay stores nothing twice.
        assert kitchen.call("RecordInspection", request, roles=INSPECTOR).inspection == recorded[-1]
    first = kitchen.call(
        "ListInspections",
        kitchen_pb2.ListInspectionsRequest(
            kitchen_id=registered.kitchen_id, page=common_pb2.PageRequest(page_size=2)
        ),
        roles=INSPECTOR,
    )
    rest = kitchen.call(
        "ListInspections",
        kitchen_pb2.ListInspectionsRequest(
            kitchen_id=registered.kitchen_id,
            page=common_pb2.PageRequest(page_size=2, page_token=first.page.next_page_token),
        ),
        roles=INSPECTOR,
    )
    ordered = [*first.inspections, *rest.inspections]
    assert [i.inspection_id for i in ordered] == [
        recorded[1].inspection_id,
        recorded[2].inspection_id,
        recorded[0].inspection_id,
    ]
    assert rest.page.next_page_token == ""
    assert list(ordered[2].findings) == ["rodent droppings in store room", "no sample kept"]

    def inspection_events() -> list[events_pb2.InspectionRecorded]:
        subjects = {i.inspection_id for i in recorded}
        return [m for _, m in kitchen.events(subjects) if isinstance(m, events_pb2.InspectionRecorded)]

    def all_three() -> list[events_pb2.InspectionRecorded] | None:
        found = inspection_events()
        return found if len(found) >= 3 else None

    events = wait_until(all_three, timeout_s=20, what="three InspectionRecorded events")
    assert sorted((e.result, e.findings) for e in events) == sorted(
        [
            (kitchen_pb2.INSPECTION_RESULT_PASS, 0),
            (kitchen_pb2.INSPECTION_RESULT_PASS_WITH_REMARKS, 1),
            (kitchen_pb2.INSPECTION_RESULT_FAIL, 2),
        ]
    )


def test_a_bad_inspection_names_its_fields_and_a_manager_cannot_inspect(kitchen: Kitchen) -> None:
    registered = kitchen.register_kitchen()
    with pytest.raises(grpc.RpcError) as bad:
        kitchen.call(
            "RecordInspection",
            kitchen_pb2.RecordInspectionRequest(
                request_id=rid(),
                kitchen_id=registered.kitchen_id,
                inspected_at=_stamp(datetime.now(UTC) + timedelta(hours=1)),
                inspector="Inspector Chen",
                findings=["ok", ""],
            ),
            roles=INSPECTOR,
        )
    assert _code(bad) == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(bad.value)) == {"inspected_at", "findings[1]", "result"}
    with pytest.raises(grpc.RpcError) as denied:
        kitchen.call(
            "RecordInspection",
            kitchen_pb2.RecordInspectionRequest(
                request_id=rid(),
                kitchen_id=registered.kitchen_id,
                inspected_at=_stamp(datetime.now(UTC)),
                inspector="Self",
                result=kitchen_pb2.INSPECTION_RESULT_PASS,
            ),
            roles=MANAGER,
            scopes=(f"kitchen:{registered.kitchen_id}",),
        )
    assert _code(denied) == grpc.StatusCode.PERMISSION_DENIED
    listed = kitchen.call(
        "ListInspections",
        kitchen_pb2.ListInspectionsRequest(kitchen_id=registered.kitchen_id),
        roles=INSPECTOR,
    )
    assert list(listed.inspections) == []
