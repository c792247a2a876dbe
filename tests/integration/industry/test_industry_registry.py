"""Parks, enterprises and devices over gRPC; telemetry ingest with its rejections; who sees what.

Bad input answers INVALID_ARGUMENT naming the field (or, inside an ingest batch, a rejection naming the
sample's field) and nothing of it is stored or published."""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import events_pb2, industry_pb2, telemetry_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.kafka import decode_payload, envelope_from_record
from tests.integration.industry.industry_support import Industry, credit_code, read_to_end
from tests.support import violations, wait_until

pytestmark = pytest.mark.integration

ENTERPRISE_USER = ("enterprise_user",)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _sample(device_id: str, moment_ms: int, **overrides: Any) -> telemetry_pb2.TelemetrySample:
    values: dict[str, Any] = {
        "device_id": device_id,
        "time_unix_ms": moment_ms,
        "state": telemetry_pb2.DEVICE_STATE_RUNNING,
        "good_count": 1,
        "reject_count": 0,
        "power_kw": 7.5,
        "spindle_load_pct": 40.0,
        "temperature_c": 45.0,
    }
    values.update(overrides)
    return telemetry_pb2.TelemetrySample(**values)


def _telemetry_records(industry: Industry, request_id: str) -> list[telemetry_pb2.TelemetryBatch]:
    """Every TelemetryBatch on the service's telemetry topic that came from ``request_id``."""
    batches: list[telemetry_pb2.TelemetryBatch] = []
    for record in read_to_end(industry.kafka_bootstrap, industry.settings.industry_telemetry_topic):
        envelope = envelope_from_record(record)
        batch = decode_payload(envelope.type, envelope.payload)
        assert isinstance(batch, telemetry_pb2.TelemetryBatch)
        if batch.request_id == request_id:
            batches.append(batch)
    return batches


@pytest.fixture(scope="module")
def world(industry: Industry) -> dict[str, Any]:
    """A park with two enterprises and their machines, and an enterprise outside any park."""
    park = industry.park()
    other_park = industry.park("Jinqing park")
    first = industry.enterprise(credit_code(101), park.park_id, "Luqiao Moulds Co.")
    second = industry.enterprise(credit_code(102), park.park_id, "Luqiao Auto Parts Co.")
    elsewhere = industry.enterprise(credit_code(103), other_park.park_id, "Jinqing Valves Co.")
    return {
        "park": park,
        "other_park": other_park,
        "first": first,
        "second": second,
        "elsewhere": elsewhere,
        "cnc": industry.device(first.credit_code, rated_power_kw=15.0),
        "press": industry.device(
            second.credit_code, machine_type=industry_pb2.MACHINE_TYPE_STAMPING_PRESS, rated_power_kw=40.0
        ),
        "valve_lathe": industry.device(elsewhere.credit_code, machine_type=industry_pb2.MACHINE_TYPE_LATHE),
    }


# --- registration -----------------------------------------------------------------------------------


def test_onboarding_publishes_an_event_without_the_name(industry: Industry, world: dict[str, Any]) -> None:
    code = world["first"].credit_code
    found = industry.wait_for_events({code}, lambda evs: len(evs) >= 1, what="EnterpriseOnboarded")
    assert [t for t, _ in found] == ["cityhub.industry.v1.EnterpriseOnboarded"]
    event = found[0][1]
    assert isinstance(event, events_pb2.EnterpriseOnboarded)
    assert event.credit_code == code
    assert event.park_id == world["park"].park_id
    assert event.division_code == "331004"
    assert "Moulds" not in str(event)


def test_onboarding_is_idempotent_by_request_id(industry: Industry, world: dict[str, Any]) -> None:
    request = industry_pb2.OnboardEnterpriseRequest(
        request_id=secrets.token_hex(8),
        credit_code=credit_code(150),
        name="Repeat Co.",
        sector=industry_pb2.SECTOR_ELECTRONICS,
        park_id=world["park"].park_id,
    )
    first = industry.call("OnboardEnterprise", request).enterprise
    again = industry.call("OnboardEnterprise", request).enterprise
    assert first == again
    events = industry.wait_for_events({first.credit_code}, lambda evs: len(evs) >= 1, what="onboarding")
    industry.outbox_drained()
    assert len(industry.events({first.credit_code})) == len(events) == 1


def test_concurrent_onboardings_with_one_request_id_answer_the_same_enterprise(
    industry: Industry, world: dict[str, Any]
) -> None:
    request = industry_pb2.OnboardEnterpriseRequest(
        request_id=secrets.token_hex(8),
        credit_code=credit_code(151),
        name="Race Co.",
        sector=industry_pb2.SECTOR_METAL_PRODUCTS,
        park_id=world["park"].park_id,
    )
    start = threading.Barrier(2)

    def onboard() -> industry_pb2.Enterprise:
        start.wait(timeout=10)
        return industry.call("OnboardEnterprise", request).enterprise  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = (f.result(timeout=30) for f in [pool.submit(onboard), pool.submit(onboard)])
    assert first == second
    assert first.credit_code == request.credit_code
    industry.outbox_drained()
    assert len(industry.events({request.credit_code})) == 1
    # The same request id with another body is a different request: refused, nothing stored.
    other = industry_pb2.OnboardEnterpriseRequest()
    other.CopyFrom(request)
    other.credit_code = credit_code(152)
    with pytest.raises(grpc.RpcError) as caught:
        industry.call("OnboardEnterprise", other)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"request_id"}
    with pytest.raises(grpc.RpcError) as missing:
        industry.call("GetEnterprise", industry_pb2.GetEnterpriseRequest(credit_code=other.credit_code))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_credit_code_with_a_wrong_check_character_is_refused_and_nothing_is_stored(
    industry: Industry, world: dict[str, Any]
) -> None:
    good = credit_code(160)
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "OnboardEnterprise",
            industry_pb2.OnboardEnterpriseRequest(
                request_id=secrets.token_hex(8),
                credit_code=wrong,
                name="Typo Co.",
                sector=industry_pb2.SECTOR_MACHINERY,
                park_id=world["park"].park_id,
            ),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == {"credit_code": "has a wrong check character"}
    with pytest.raises(grpc.RpcError) as missing:
        industry.call("GetEnterprise", industry_pb2.GetEnterpriseRequest(credit_code=wrong))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert industry.events({wrong}) == []


def test_a_second_enterprise_with_the_same_code_already_exists(
    industry: Industry, world: dict[str, Any]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        industry.enterprise(world["first"].credit_code, world["park"].park_id)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_devices_are_registered_and_listed_by_workshop(industry: Industry, world: dict[str, Any]) -> None:
    first = world["first"].credit_code
    extra = industry.device(first, workshop="W2", machine_type=industry_pb2.MACHINE_TYPE_INJECTION_MOULDING)
    listed = industry.call("ListDevices", industry_pb2.ListDevicesRequest(credit_code=first)).devices
    assert {d.device_id for d in listed} == {world["cnc"].device_id, extra.device_id}
    in_w2 = industry.call(
        "ListDevices", industry_pb2.ListDevicesRequest(credit_code=first, workshop="W2")
    ).devices
    assert [d.device_id for d in in_w2] == [extra.device_id]
    assert in_w2[0].machine_type == industry_pb2.MACHINE_TYPE_INJECTION_MOULDING
    assert in_w2[0].park_id == world["park"].park_id
    registered = industry.wait_for_events(
        {extra.device_id}, lambda evs: len(evs) >= 1, what="DeviceRegistered"
    )
    event = registered[0][1]
    assert isinstance(event, events_pb2.DeviceRegistered)
    assert (event.credit_code, event.workshop, event.park_id) == (first, "W2", world["park"].park_id)


def test_a_device_for_an_unknown_enterprise_is_refused(industry: Industry) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        industry.device(credit_code(999))
    # The request is well-formed; the enterprise it refers to is not on the platform.
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(caught.value.details()).startswith("credit_code: ")


# --- telemetry ingest ---------------------------------------------------------------------------------


def test_good_samples_are_kept_and_each_bad_one_is_named(industry: Industry, world: dict[str, Any]) -> None:
    cnc = world["cnc"].device_id
    now = _now_ms()
    samples = [
        _sample(cnc, now - 60_000),  # 0 good
        _sample("dev-does-not-exist", now),  # 1 unknown device
        _sample(cnc, now - 59_000, good_count=-1),  # 2 negative count
        _sample(cnc, now - 58_000, reject_count=-3),  # 3 negative count
        _sample(cnc, now - 57_000, power_kw=31.0),  # 4 above 2 x the rated 15 kW
        _sample(cnc, now - 56_000, power_kw=-0.5),  # 5 negative power
        _sample(cnc, now - 55_000, temperature_c=900.0),  # 6 hotter than any machine
        _sample(cnc, now - 54_000, temperature_c=-80.0),  # 7 colder than any workshop
        _sample(cnc, now + 6 * 60_000),  # 8 more than 5 minutes ahead
        _sample(cnc, now - 30_000),  # 9 good
    ]
    request_id = secrets.token_hex(8)
    response = industry.call(
        "IngestTelemetry", industry_pb2.IngestTelemetryRequest(request_id=request_id, samples=samples)
    )
    assert response.accepted_count == 2
    assert response.rejected_count == 8
    rejected = {r.index: (r.reason, r.field) for r in response.rejections}
    reasons = industry_pb2
    assert rejected == {
        1: (reasons.REJECTION_REASON_UNKNOWN_DEVICE, "samples[1].device_id"),
        2: (reasons.REJECTION_REASON_OUT_OF_RANGE, "samples[2].good_count"),
        3: (reasons.REJECTION_REASON_OUT_OF_RANGE, "samples[3].reject_count"),
        4: (reasons.REJECTION_REASON_OUT_OF_RANGE, "samples[4].power_kw"),
        5: (reasons.REJECTION_REASON_OUT_OF_RANGE, "samples[5].power_kw"),
        6: (reasons.REJECTION_REASON_OUT_OF_RANGE, "samples[6].temperature_c"),
        7: (reasons.REJECTION_REASON_OUT_OF_RANGE, "samples[7].temperature_c"),
        8: (reasons.REJECTION_REASON_TIME_SKEW, "samples[8].time_unix_ms"),
    }
    batches = _telemetry_records(industry, request_id)
    published = [(s.device_id, s.time_unix_ms) for b in batches for s in b.samples]
    assert sorted(published) == [(cnc, now - 60_000), (cnc, now - 30_000)]


def test_all_or_nothing_refuses_the_batch_naming_every_bad_sample(
    industry: Industry, world: dict[str, Any]
) -> None:
    cnc = world["cnc"].device_id
    now = _now_ms()
    request_id = secrets.token_hex(8)
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "IngestTelemetry",
            industry_pb2.IngestTelemetryRequest(
                request_id=request_id,
                all_or_nothing=True,
                samples=[
                    _sample(cnc, now - 1000),
                    _sample(cnc, now + 10 * 60_000),
                    _sample(cnc, now - 2000, good_count=-5),
                    _sample("dev-nope", now - 3000),
                ],
            ),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {
        "samples[1].time_unix_ms",
        "samples[2].good_count",
        "samples[3].device_id",
    }
    assert _telemetry_records(industry, request_id) == []


def test_a_device_registered_elsewhere_becomes_known_without_a_restart(
    industry: Industry, world: dict[str, Any]
) -> None:
    # Written straight to the database, as another replica of the service would have: this process's
    # device cache does not know it until it re-checks unknown ids (at most every few seconds).
    device_id = f"dev-{secrets.token_hex(8)}"
    with industry.runtime.pool.connection() as conn, conn.transaction():
        conn.execute(
            """INSERT INTO devices (device_id, serial_number, enterprise_id, park_id, workshop, machine_type,
                                    rated_power_kw, ideal_cycle_seconds, sample_interval_ms, registered_at)
               VALUES (%s, %s, %s, %s, 'W9', 1, 10, 20, 1000, now())""",
            (device_id, f"BOX-{device_id}", world["second"].credit_code, world["park"].park_id),
        )
        conn.execute("INSERT INTO device_status (device_id, last_seen_at) VALUES (%s, now())", (device_id,))

    def accepted() -> bool:
        response = industry.call(
            "IngestTelemetry",
            industry_pb2.IngestTelemetryRequest(
                request_id=secrets.token_hex(8), samples=[_sample(device_id, _now_ms(), power_kw=5.0)]
            ),
        )
        return bool(response.accepted_count == 1)

    wait_until(accepted, timeout_s=10, what="the device to become known", interval_s=0.5)


# --- who sees what -------------------------------------------------------------------------------------


def test_an_enterprise_user_sees_only_its_own_enterprise(industry: Industry, world: dict[str, Any]) -> None:
    own = world["first"].credit_code
    scopes = (f"enterprise:{own}",)
    listed = industry.call(
        "ListEnterprises", industry_pb2.ListEnterprisesRequest(), roles=ENTERPRISE_USER, scopes=scopes
    ).enterprises
    assert [e.credit_code for e in listed] == [own]
    devices = industry.call(
        "ListDevices",
        industry_pb2.ListDevicesRequest(credit_code=own),
        roles=ENTERPRISE_USER,
        scopes=scopes,
    ).devices
    assert world["cnc"].device_id in {d.device_id for d in devices}
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "GetEnterprise",
            industry_pb2.GetEnterpriseRequest(credit_code=world["second"].credit_code),
            roles=ENTERPRISE_USER,
            scopes=scopes,
        )
    # Another enterprise answers as if it did not exist; a list filtered to it is refused by the guard.
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as filtered:
        industry.call(
            "RegisterDevice",
            industry_pb2.RegisterDeviceRequest(
                request_id=secrets.token_hex(8),
                serial_number=f"BOX-{secrets.token_hex(4)}",
                credit_code=world["second"].credit_code,
                workshop="W1",
                machine_type=industry_pb2.MACHINE_TYPE_LATHE,
                rated_power_kw=10,
                ideal_cycle_seconds=10,
            ),
            roles=ENTERPRISE_USER,
            scopes=scopes,
        )
    assert filtered.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_an_enterprise_user_cannot_report_for_another_enterprises_machine(
    industry: Industry, world: dict[str, Any]
) -> None:
    now = _now_ms()
    response = industry.call(
        "IngestTelemetry",
        industry_pb2.IngestTelemetryRequest(
            request_id=secrets.token_hex(8),
            samples=[_sample(world["cnc"].device_id, now), _sample(world["press"].device_id, now)],
        ),
        roles=ENTERPRISE_USER,
        scopes=(f"enterprise:{world['first'].credit_code}",),
    )
    assert response.accepted_count == 1
    assert [(r.index, r.reason) for r in response.rejections] == [
        (1, industry_pb2.REJECTION_REASON_NOT_PERMITTED)
    ]


def test_an_enterprise_user_onboards_its_own_enterprise_and_registers_its_machines(
    industry: Industry, world: dict[str, Any]
) -> None:
    code = credit_code(170)
    scopes = (f"enterprise:{code}",)
    request = industry_pb2.OnboardEnterpriseRequest(
        request_id=secrets.token_hex(8),
        credit_code=code,
        name="Self-service Co.",
        sector=industry_pb2.SECTOR_AUTO_AND_MOTORCYCLE_PARTS,
        park_id=world["park"].park_id,
    )
    enterprise = industry.call("OnboardEnterprise", request, roles=ENTERPRISE_USER, scopes=scopes).enterprise
    assert enterprise.credit_code == code
    device = industry.call(
        "RegisterDevice",
        industry_pb2.RegisterDeviceRequest(
            request_id=secrets.token_hex(8),
            serial_number=f"BOX-{secrets.token_hex(4)}",
            credit_code=code,
            workshop="W1",
            machine_type=industry_pb2.MACHINE_TYPE_DIE_CASTING,
            rated_power_kw=30,
            ideal_cycle_seconds=60,
        ),
        roles=ENTERPRISE_USER,
        scopes=scopes,
    ).device
    assert device.sample_interval_ms == 1000
    other = industry_pb2.OnboardEnterpriseRequest(
        request_id=secrets.token_hex(8),
        credit_code=credit_code(171),
        name="Not mine Co.",
        sector=industry_pb2.SECTOR_OTHER,
    )
    with pytest.raises(grpc.RpcError) as caught:
        industry.call("OnboardEnterprise", other, roles=ENTERPRISE_USER, scopes=scopes)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_park_staff_see_only_their_park(industry: Industry, world: dict[str, Any]) -> None:
    park_id = world["park"].park_id
    scopes = (f"park:{park_id}",)
    listed = industry.call(
        "ListEnterprises", industry_pb2.ListEnterprisesRequest(), scopes=scopes
    ).enterprises
    codes = {e.credit_code for e in listed}
    assert {world["first"].credit_code, world["second"].credit_code} <= codes
    assert world["elsewhere"].credit_code not in codes
    parks = industry.call("ListParks", industry_pb2.ListParksRequest(), scopes=scopes).parks
    assert [p.park_id for p in parks] == [park_id]
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "GetEnterprise",
            industry_pb2.GetEnterpriseRequest(credit_code=world["elsewhere"].credit_code),
            scopes=scopes,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # The bureau (no park scope) sees every park.
    everything = industry.call("ListParks", industry_pb2.ListParksRequest()).parks
    assert {world["park"].park_id, world["other_park"].park_id} <= {p.park_id for p in everything}


def test_a_call_without_a_token_is_unauthenticated(industry: Industry) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        industry.stub.ListParks(industry_pb2.ListParksRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_page_above_500_is_refused_and_tokens_are_opaque(industry: Industry, world: dict[str, Any]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "ListEnterprises",
            industry_pb2.ListEnterprisesRequest(page=common_pb2.PageRequest(page_size=501)),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"page.page_size"}
    first = industry.call(
        "ListEnterprises", industry_pb2.ListEnterprisesRequest(page=common_pb2.PageRequest(page_size=1))
    )
    assert len(first.enterprises) == 1
    assert first.page.next_page_token
    second = industry.call(
        "ListEnterprises",
        industry_pb2.ListEnterprisesRequest(
            page=common_pb2.PageRequest(page_size=1, page_token=first.page.next_page_token)
        ),
    )
    assert second.enterprises[0].credit_code > first.enterprises[0].credit_code
    with pytest.raises(grpc.RpcError) as forged:
        industry.call(
            "ListEnterprises",
            industry_pb2.ListEnterprisesRequest(page=common_pb2.PageRequest(page_token="not-ours")),
        )
    assert set(violations(forged.value)) == {"page.page_token"}


def test_a_role_outside_the_policy_is_refused(industry: Industry) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        industry.call("ListParks", industry_pb2.ListParksRequest(), roles=("kitchen_manager",))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_retried_request_is_counted_once(industry: Industry, world: dict[str, Any]) -> None:
    device = industry.device(world["first"].credit_code, workshop="Retry hall", sample_interval_ms=1000)
    hour_start = (_now_ms() // 3_600_000) * 3_600_000
    moment = max(hour_start, _now_ms() - 60_000)
    request = industry_pb2.IngestTelemetryRequest(
        request_id=secrets.token_hex(8),
        samples=[_sample(device.device_id, moment + i * 1000, good_count=2) for i in range(5)],
    )
    # The client did not see the first answer and sends the same batch again, same request id: the request
    # log answers the first answer again (not "5 duplicates") and nothing is published twice. (A retry
    # after a failed acknowledgement publishes again, under the same record ids, which the rollup skips.)
    first_answer = industry.call("IngestTelemetry", request)
    assert first_answer.accepted_count == 5
    assert industry.call("IngestTelemetry", request) == first_answer
    assert len(_telemetry_records(industry, request.request_id)) == 1

    def counted() -> industry_pb2.UtilisationFigures | None:
        stamp_start, stamp_end = Timestamp(), Timestamp()
        stamp_start.FromMilliseconds(hour_start)
        stamp_end.FromMilliseconds(hour_start + 3_600_000)
        total = industry.call(
            "GetUtilisation",
            industry_pb2.GetUtilisationRequest(
                subject=industry_pb2.UtilisationSubject(device_id=device.device_id),
                period=common_pb2.TimeRange(start_time=stamp_start, end_time=stamp_end),
            ),
        ).total
        return total if total.good_count else None

    first = wait_until(counted, timeout_s=20, what="the rollup")
    industry.telemetry_consumed()  # the repeated records were consumed (and skipped) as well
    again = counted()
    assert again is not None
    assert (first.good_count, first.running_seconds) == (again.good_count, again.running_seconds) == (10, 5.0)
