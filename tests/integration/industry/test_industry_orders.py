"""The enterprise brain's order flow: every stage in order with its time, delivery-cycle statistics per
period and their change (the district's 35 -> 25 days), late orders flagged; an order moved backwards or
past a stage (or to a time before its current stage) is FAILED_PRECONDITION naming the field, and nothing
changes; a malformed request is INVALID_ARGUMENT naming every bad field."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import events_pb2, industry_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.industry.industry_support import Industry, credit_code
from tests.support import violations

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
BASE_START, SPLIT, COMPARE_END = NOW - timedelta(days=150), NOW - timedelta(days=75), NOW
STAGES = [
    industry_pb2.ORDER_STAGE_CUSTOMISATION,
    industry_pb2.ORDER_STAGE_DESIGN,
    industry_pb2.ORDER_STAGE_PRODUCTION,
    industry_pb2.ORDER_STAGE_DELIVERY,
    industry_pb2.ORDER_STAGE_AFTER_SALES,
    industry_pb2.ORDER_STAGE_CLOSED,
]


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _period(start: datetime, end: datetime) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=_stamp(start), end_time=_stamp(end))


def _create(industry: Industry, code: str, ordered_at: datetime, promised: date) -> industry_pb2.Order:
    return industry.call(  # type: ignore[no-any-return]
        "CreateOrder",
        industry_pb2.CreateOrderRequest(
            request_id=secrets.token_hex(8),
            credit_code=code,
            customer="Wenling Pump Works",
            product="Custom valve body",
            customisation="DN50 flange, brass seat",
            promised_date=promised.isoformat(),
            ordered_at=_stamp(ordered_at),
        ),
    ).order


def _advance(industry: Industry, order_id: str, stage: int, at: datetime | None = None) -> industry_pb2.Order:
    request = industry_pb2.AdvanceOrderRequest(order_id=order_id, stage=stage)  # type: ignore[arg-type]
    if at is not None:
        request.occurred_at.CopyFrom(_stamp(at))
    return industry.call("AdvanceOrder", request).order  # type: ignore[no-any-return]


def _through_every_stage(
    industry: Industry, code: str, ordered_at: datetime, cycle_days: int, promised: date
) -> industry_pb2.Order:
    order = _create(industry, code, ordered_at, promised)
    offsets = [1, 3, 10, cycle_days, cycle_days + 5, cycle_days + 15]
    for stage, offset in zip(STAGES, offsets, strict=True):
        order = _advance(industry, order.order_id, stage, ordered_at + timedelta(days=offset))
    return order


@pytest.fixture(scope="module")
def brain(industry: Industry) -> dict[str, Any]:
    park = industry.park()
    enterprise = industry.enterprise(credit_code(301), park.park_id, "Flexible Manufacturing Co.")
    code = enterprise.credit_code
    base = [
        _through_every_stage(industry, code, BASE_START + timedelta(days=i), days, date(2099, 1, 1))
        for i, days in enumerate((33, 35, 37))
    ]
    later = [
        _through_every_stage(industry, code, SPLIT + timedelta(days=i), days, date(2099, 1, 1))
        for i, days in enumerate((24, 25, 26))
    ]
    # Promised for 20 days after ordering but delivered after 25: late.
    late_ordered = SPLIT + timedelta(days=5)
    promised_early = (late_ordered + timedelta(days=20)).date()
    late = _through_every_stage(industry, code, late_ordered, 25, promised_early)
    # Never delivered and promised for a day that has passed: late too.
    overdue = _create(industry, code, NOW - timedelta(days=10), (NOW - timedelta(days=2)).date())
    return {"code": code, "base": base, "later": later, "late": late, "overdue": overdue}


def test_an_order_passes_every_stage_with_its_time(industry: Industry, brain: dict[str, Any]) -> None:
    order = industry.call("GetOrder", industry_pb2.GetOrderRequest(order_id=brain["base"][1].order_id)).order
    assert order.stage == industry_pb2.ORDER_STAGE_CLOSED
    ordered = order.ordered_at.ToDatetime(tzinfo=UTC)
    assert [(t.stage, (t.entered_at.ToDatetime(tzinfo=UTC) - ordered).days) for t in order.stage_times] == [
        (industry_pb2.ORDER_STAGE_SALES, 0),
        (industry_pb2.ORDER_STAGE_CUSTOMISATION, 1),
        (industry_pb2.ORDER_STAGE_DESIGN, 3),
        (industry_pb2.ORDER_STAGE_PRODUCTION, 10),
        (industry_pb2.ORDER_STAGE_DELIVERY, 35),
        (industry_pb2.ORDER_STAGE_AFTER_SALES, 40),
        (industry_pb2.ORDER_STAGE_CLOSED, 50),
    ]
    assert order.delivery_cycle_days == 35.0
    assert not order.late
    found = industry.wait_for_events({order.order_id}, lambda evs: len(evs) >= 7, what="seven stage events")
    changes = [m for _, m in found if isinstance(m, events_pb2.OrderStageChanged)]
    assert [(c.previous_stage, c.stage) for c in changes] == list(
        zip(
            [industry_pb2.ORDER_STAGE_UNSPECIFIED, industry_pb2.ORDER_STAGE_SALES, *STAGES[:-1]],
            [industry_pb2.ORDER_STAGE_SALES, *STAGES],
            strict=True,
        )
    )
    delivered = changes[4]
    assert delivered.stage == industry_pb2.ORDER_STAGE_DELIVERY
    assert delivered.delivery_cycle_days == 35.0
    assert "Wenling" not in str(delivered)


def test_delivery_cycle_statistics_of_a_period(industry: Industry, brain: dict[str, Any]) -> None:
    stats = industry.call(
        "GetDeliveryCycleStats",
        industry_pb2.GetDeliveryCycleStatsRequest(
            credit_code=brain["code"], period=_period(BASE_START, SPLIT)
        ),
    ).stats
    assert stats.delivered_count == 3
    assert stats.mean_days == pytest.approx(35.0, rel=1e-12)
    assert stats.p50_days == pytest.approx(35.0, rel=1e-12)
    # Linear interpolation between ranks over 33, 35, 37.
    assert stats.p90_days == pytest.approx(36.6, rel=1e-12)
    assert stats.p95_days == pytest.approx(36.8, rel=1e-12)
    assert (stats.min_days, stats.max_days, stats.late_count) == (33.0, 37.0, 0)


def test_the_delivery_cycle_falls_from_35_to_25_days(industry: Industry, brain: dict[str, Any]) -> None:
    response = industry.call(
        "CompareDeliveryCycle",
        industry_pb2.CompareDeliveryCycleRequest(
            credit_code=brain["code"],
            base_period=_period(BASE_START, SPLIT),
            compare_period=_period(SPLIT, COMPARE_END),
        ),
    )
    assert response.base.mean_days == pytest.approx(35.0, rel=1e-12)
    # 24, 25, 26 and the late order's 25.
    assert response.compare.delivered_count == 4
    assert response.compare.mean_days == pytest.approx(25.0, rel=1e-12)
    assert response.compare.late_count == 1
    assert response.mean_days_change == pytest.approx(-10.0, rel=1e-12)
    assert response.mean_days_relative_change == pytest.approx(-10 / 35, rel=1e-12)


def test_late_orders_are_flagged(industry: Industry, brain: dict[str, Any]) -> None:
    late = industry.call(
        "ListOrders", industry_pb2.ListOrdersRequest(credit_code=brain["code"], late_only=True)
    ).orders
    assert {o.order_id for o in late} == {brain["late"].order_id, brain["overdue"].order_id}
    assert all(o.late for o in late)
    every = industry.call("ListOrders", industry_pb2.ListOrdersRequest(credit_code=brain["code"])).orders
    assert len(every) == 8
    assert sum(o.late for o in every) == 2


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (industry_pb2.ORDER_STAGE_SALES, "already in sales"),
        (industry_pb2.ORDER_STAGE_DESIGN, "the next stage is customisation"),
        (industry_pb2.ORDER_STAGE_DELIVERY, "the next stage is customisation"),
    ],
)
def test_an_order_cannot_skip_a_stage(
    industry: Industry, brain: dict[str, Any], target: int, reason: str
) -> None:
    order = _create(industry, brain["code"], NOW - timedelta(days=1), date(2099, 1, 1))
    with pytest.raises(grpc.RpcError) as caught:
        _advance(industry, order.order_id, target)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(caught.value.details()).startswith("stage: ")
    assert reason in str(caught.value.details())
    unchanged = industry.call("GetOrder", industry_pb2.GetOrderRequest(order_id=order.order_id)).order
    assert unchanged.stage == industry_pb2.ORDER_STAGE_SALES
    assert len(unchanged.stage_times) == 1


def test_an_order_cannot_move_backwards(industry: Industry, brain: dict[str, Any]) -> None:
    order = _create(industry, brain["code"], NOW - timedelta(days=3), date(2099, 1, 1))
    for stage in STAGES[:3]:
        _advance(industry, order.order_id, stage)
    events_before = industry.wait_for_events({order.order_id}, lambda evs: len(evs) >= 4, what="four events")
    with pytest.raises(grpc.RpcError) as caught:
        _advance(industry, order.order_id, industry_pb2.ORDER_STAGE_DESIGN)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == "stage: cannot move an order backwards, from production to design"
    order = industry.call("GetOrder", industry_pb2.GetOrderRequest(order_id=order.order_id)).order
    assert order.stage == industry_pb2.ORDER_STAGE_PRODUCTION
    industry.outbox_drained()
    assert len(industry.events({order.order_id})) == len(events_before) == 4


def test_a_closed_order_moves_no_further(industry: Industry, brain: dict[str, Any]) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _advance(industry, brain["base"][0].order_id, industry_pb2.ORDER_STAGE_CLOSED)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in str(caught.value.details())


def test_a_stage_time_before_the_previous_one_is_refused(industry: Industry, brain: dict[str, Any]) -> None:
    ordered = NOW - timedelta(days=5)
    order = _create(industry, brain["code"], ordered, date(2099, 1, 1))
    with pytest.raises(grpc.RpcError) as caught:
        _advance(
            industry, order.order_id, industry_pb2.ORDER_STAGE_CUSTOMISATION, ordered - timedelta(hours=1)
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(caught.value.details()).startswith("occurred_at: ")


def test_an_order_in_the_future_or_without_a_date_is_refused(
    industry: Industry, brain: dict[str, Any]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "CreateOrder",
            industry_pb2.CreateOrderRequest(
                request_id=secrets.token_hex(8),
                credit_code=brain["code"],
                customer="X",
                product="Y",
                promised_date="2099-02-30",
                # From the clock now, not the module's NOW: the session may reach this test minutes later.
                ordered_at=_stamp(datetime.now(UTC) + timedelta(minutes=6)),
            ),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == {"promised_date", "ordered_at"}


def test_an_enterprise_user_manages_only_its_own_orders(industry: Industry, brain: dict[str, Any]) -> None:
    other = industry.enterprise(credit_code(302), "", "Other Co.")
    scopes = (f"enterprise:{other.credit_code}",)
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "GetOrder",
            industry_pb2.GetOrderRequest(order_id=brain["base"][0].order_id),
            roles=("enterprise_user",),
            scopes=scopes,
        )
    # Another enterprise's order answers as if it did not exist.
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as refused:
        industry.call(
            "CreateOrder",
            industry_pb2.CreateOrderRequest(
                request_id=secrets.token_hex(8),
                credit_code=brain["code"],
                customer="X",
                product="Y",
                promised_date="2099-01-01",
            ),
            roles=("enterprise_user",),
            scopes=scopes,
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_retried_move_with_its_request_id_answers_as_the_first(
    industry: Industry, brain: dict[str, Any]
) -> None:
    order = _create(industry, brain["code"], NOW - timedelta(days=2), date(2099, 1, 1))
    request = industry_pb2.AdvanceOrderRequest(
        order_id=order.order_id, stage=industry_pb2.ORDER_STAGE_CUSTOMISATION, request_id=secrets.token_hex(8)
    )
    first = industry.call("AdvanceOrder", request).order
    # The answer was lost, say: the client sends the very same request again.
    again = industry.call("AdvanceOrder", request).order
    assert again == first
    assert again.stage == industry_pb2.ORDER_STAGE_CUSTOMISATION
    assert len(again.stage_times) == 2
    # The id names that move only: reused for another one it is refused, and nothing moves.
    other = industry_pb2.AdvanceOrderRequest()
    other.CopyFrom(request)
    other.stage = industry_pb2.ORDER_STAGE_DESIGN
    with pytest.raises(grpc.RpcError) as caught:
        industry.call("AdvanceOrder", other)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in violations(caught.value)
    industry.outbox_drained()
    changes = [m for _, m in industry.events({order.order_id}) if isinstance(m, events_pb2.OrderStageChanged)]
    assert [c.stage for c in changes] == [
        industry_pb2.ORDER_STAGE_SALES,
        industry_pb2.ORDER_STAGE_CUSTOMISATION,
    ]
    now = industry.call("GetOrder", industry_pb2.GetOrderRequest(order_id=order.order_id)).order
    assert now.stage == industry_pb2.ORDER_STAGE_CUSTOMISATION


def test_a_move_with_a_malformed_request_id_is_refused(industry: Industry, brain: dict[str, Any]) -> None:
    order = _create(industry, brain["code"], NOW - timedelta(days=2), date(2099, 1, 1))
    with pytest.raises(grpc.RpcError) as caught:
        industry.call(
            "AdvanceOrder",
            industry_pb2.AdvanceOrderRequest(
                order_id=order.order_id, stage=industry_pb2.ORDER_STAGE_CUSTOMISATION, request_id="-no spaces"
            ),
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in violations(caught.value)
    unchanged = industry.call("GetOrder", industry_pb2.GetOrderRequest(order_id=order.order_id)).order
    assert unchanged.stage == industry_pb2.ORDER_STAGE_SALES
