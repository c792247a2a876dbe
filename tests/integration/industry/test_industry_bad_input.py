"""Issue #9 part 2 on the industry service: input a tester generated that answered INTERNAL (or was
stored as data) now answers INVALID_ARGUMENT naming the field, concurrent creates with one natural key
answer OK once and ALREADY_EXISTS (or the first result) otherwise, and nothing is stored by a refusal."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.industry.industry_support import Industry, credit_code
from tests.support import violations

pytestmark = pytest.mark.integration

LARGEST = Timestamp(seconds=253_402_300_799, nanos=999_999_999)
BEYOND = Timestamp(seconds=253_402_300_800)
YEAR_1 = Timestamp(seconds=-62_135_596_800)
TABLES = ("parks", "enterprises", "devices", "orders", "order_stage_times", "requests", "outbox")


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture(scope="module")
def world(industry: Industry) -> dict[str, Any]:
    park = industry.park("Bad Input Park")
    code = credit_code(9_091)
    industry.enterprise(code, park.park_id, name="Bad Input Co.")
    device = industry.device(code)
    return {"park": park, "code": code, "device": device}


def _counts(industry: Industry) -> dict[str, int]:
    with industry.runtime.pool.connection() as conn:
        found = {}
        for table in TABLES:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            found[table] = int(row[0]) if row else -1
        return found


@pytest.fixture
def unchanged(industry: Industry) -> Iterator[None]:
    before = _counts(industry)
    yield
    assert _counts(industry) == before


def invalid(industry: Industry, rpc: str, request: Message) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(rpc, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (
        caught.value.code(),
        caught.value.details(),
    )
    return violations(caught.value)


def _period(start: Timestamp, end: Timestamp) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=start, end_time=end)


@pytest.mark.usefixtures("unchanged")
def test_unrepresentable_and_ancient_order_times_are_invalid(
    industry: Industry, world: dict[str, Any]
) -> None:
    for stamp in (BEYOND, Timestamp(seconds=1_700_000_000, nanos=-5), YEAR_1):
        order = industry_pb2.CreateOrderRequest(
            request_id=secrets.token_hex(8),
            credit_code=world["code"],
            customer="Wenling Pump Works",
            product="Valve",
            promised_date="2030-01-01",
            ordered_at=stamp,
        )
        assert "ordered_at" in invalid(industry, "CreateOrder", order)
        advance = industry_pb2.AdvanceOrderRequest(
            order_id="ord-x", stage=industry_pb2.ORDER_STAGE_DESIGN, occurred_at=stamp
        )
        assert "occurred_at" in invalid(industry, "AdvanceOrder", advance)


@pytest.mark.usefixtures("unchanged")
def test_periods_ending_at_the_largest_timestamp_are_invalid_not_an_overflow(
    industry: Industry, world: dict[str, Any]
) -> None:
    subject = industry_pb2.UtilisationSubject(credit_code=world["code"])
    start = _stamp(datetime.now(UTC) - timedelta(days=3))
    get = industry_pb2.GetUtilisationRequest(subject=subject, period=_period(start, LARGEST))
    assert "period.end_time" in invalid(industry, "GetUtilisation", get)
    compare = industry_pb2.CompareUtilisationRequest(
        subject=subject, base_period=_period(start, LARGEST), compare_period=_period(YEAR_1, start)
    )
    bad = invalid(industry, "CompareUtilisation", compare)
    assert {"base_period.end_time", "compare_period.start_time"} <= set(bad), bad
    stats = industry_pb2.GetDeliveryCycleStatsRequest(period=_period(start, BEYOND))
    assert "period.end_time" in invalid(industry, "GetDeliveryCycleStats", stats)


@pytest.mark.usefixtures("unchanged")
def test_text_with_control_characters_newlines_or_unicode_digits_is_invalid(
    industry: Industry, world: dict[str, Any]
) -> None:
    for code in ("\u0663\u0663\u0661\u0660\u0660\u0664", "331004\n"):
        park = industry_pb2.RegisterParkRequest(
            request_id=secrets.token_hex(8), name="Park", division_code=code
        )
        assert "division_code" in invalid(industry, "RegisterPark", park), code
    park = industry_pb2.RegisterParkRequest(
        request_id=secrets.token_hex(8), name="Park\x00", division_code="331004", address="Luqiao\n"
    )
    assert {"name", "address"} <= set(invalid(industry, "RegisterPark", park))
    device = industry_pb2.RegisterDeviceRequest(
        request_id=secrets.token_hex(8),
        serial_number="BOX-1\n",
        credit_code=world["code"],
        workshop="W1\x1b[31m",
        machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
        rated_power_kw=10,
        ideal_cycle_seconds=30,
    )
    assert {"serial_number", "workshop"} <= set(invalid(industry, "RegisterDevice", device))


@pytest.mark.usefixtures("unchanged")
def test_unknown_enum_values_are_invalid(industry: Industry, world: dict[str, Any]) -> None:
    get = industry_pb2.GetUtilisationRequest(
        subject=industry_pb2.UtilisationSubject(credit_code=world["code"]),
        period=_period(_stamp(datetime.now(UTC) - timedelta(days=1)), _stamp(datetime.now(UTC))),
        granularity=77,  # type: ignore[arg-type]
    )
    assert "granularity" in invalid(industry, "GetUtilisation", get)


def _at_once(count: int, call: Callable[[], Any]) -> list[grpc.StatusCode]:
    start = threading.Barrier(count)

    def one() -> grpc.StatusCode:
        start.wait(timeout=10)
        try:
            call()
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=count) as pool:
        return [f.result(timeout=60) for f in [pool.submit(one) for _ in range(count)]]


def test_concurrent_devices_with_one_serial_number_answer_ok_once_and_already_exists_otherwise(
    industry: Industry, world: dict[str, Any]
) -> None:
    serial = f"RACE-{secrets.token_hex(4)}"

    def register() -> Any:
        return industry.call(
            "RegisterDevice",
            industry_pb2.RegisterDeviceRequest(
                request_id=secrets.token_hex(8),
                serial_number=serial,
                credit_code=world["code"],
                workshop="W2",
                machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
                rated_power_kw=10,
                ideal_cycle_seconds=30,
            ),
        )

    codes = _at_once(6, register)
    assert sorted(c.name for c in codes) == ["ALREADY_EXISTS"] * 5 + ["OK"], codes


@pytest.mark.parametrize("rpc", ["RegisterPark", "CreateOrder", "RegisterDevice"])
def test_one_create_sent_several_times_at_once_answers_the_first_result(
    industry: Industry, world: dict[str, Any], rpc: str
) -> None:
    request_id = secrets.token_hex(8)
    requests: dict[str, Message] = {
        "RegisterPark": industry_pb2.RegisterParkRequest(
            request_id=request_id, name="Twice Park", division_code="331004"
        ),
        "CreateOrder": industry_pb2.CreateOrderRequest(
            request_id=request_id,
            credit_code=world["code"],
            customer="Twice Works",
            product="Valve",
            promised_date="2031-05-01",
        ),
        "RegisterDevice": industry_pb2.RegisterDeviceRequest(
            request_id=request_id,
            serial_number=f"TWICE-{request_id}",
            credit_code=world["code"],
            workshop="W3",
            machine_type=industry_pb2.MACHINE_TYPE_INJECTION_MOULDING,
            rated_power_kw=10,
            ideal_cycle_seconds=30,
        ),
    }
    results: list[Message] = []
    lock = threading.Lock()

    def create() -> None:
        response = industry.call(rpc, requests[rpc])
        with lock:
            results.append(response)

    codes = _at_once(6, create)
    assert codes == [grpc.StatusCode.OK] * 6, codes
    assert all(r == results[0] for r in results)
