"""Traceability over real gRPC, PostgreSQL and Kafka: a recalled lot delivered to two kitchens and used
across three meals traced to exactly those kitchens, meals and servings; a meal traced back to every lot
and supplier; lots refused at the door recorded and published; bad deliveries and meals refused with
nothing stored or published."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.platform.protoconv import to_timestamp
from tests.integration.kitchen.kitchen_support import INSPECTOR, Kitchen, credit_code, rid
from tests.support import violations, wait_until

PUBLIC = ("public",)
ZONE = ZoneInfo("Asia/Shanghai")


def _error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _supplier() -> str:
    return credit_code(secrets.randbelow(10**6))


def _deliver(
    kitchen: Kitchen,
    kitchen_id: str,
    supplier: str,
    lot: str,
    *,
    received_at: datetime,
    produced: date | None = None,
    shelf_life_days: int = 5,
    certificate_ref: str = "cert/ok",
    product: str = "Pork shoulder",
    request_id: str = "",
) -> kitchen_pb2.Delivery:
    produced = produced or received_at.astimezone(ZONE).date()
    request = kitchen_pb2.ReceiveDeliveryRequest(
        request_id=request_id or rid(),
        kitchen_id=kitchen_id,
        supplier_credit_code=supplier,
        product=product,
        lot_number=lot,
        quantity=40.0,
        unit="kg",
        production_date=produced.isoformat(),
        shelf_life_days=shelf_life_days,
        certificate_ref=certificate_ref,
        received_at=to_timestamp(received_at),
    )
    reply: kitchen_pb2.ReceiveDeliveryResponse = kitchen.call("ReceiveDelivery", request)
    return reply.delivery


def _dish(name: str, *delivery_ids: str, grams: float = 150.0) -> kitchen_pb2.Dish:
    return kitchen_pb2.Dish(
        name=name,
        ingredients=[kitchen_pb2.IngredientUse(delivery_id=d, quantity=3.5, unit="kg") for d in delivery_ids],
        retained_sample_grams=grams,
    )


def _meal_request(
    kitchen_id: str, served_at: datetime, servings: int, *dishes: kitchen_pb2.Dish
) -> kitchen_pb2.RecordMealRequest:
    return kitchen_pb2.RecordMealRequest(
        request_id=rid(),
        kitchen_id=kitchen_id,
        meal_date=served_at.astimezone(ZONE).date().isoformat(),
        sitting=kitchen_pb2.SITTING_LUNCH,
        dishes=list(dishes),
        servings=servings,
        served_at=to_timestamp(served_at),
    )


def _meal(
    kitchen: Kitchen, kitchen_id: str, served_at: datetime, servings: int, *dishes: kitchen_pb2.Dish
) -> kitchen_pb2.Meal:
    reply: kitchen_pb2.RecordMealResponse = kitchen.call(
        "RecordMeal", _meal_request(kitchen_id, served_at, servings, *dishes)
    )
    return reply.meal


def _deliveries(
    kitchen: Kitchen,
    kitchen_id: str,
    status: kitchen_pb2.DeliveryStatus.ValueType = kitchen_pb2.DELIVERY_STATUS_UNSPECIFIED,
) -> list[kitchen_pb2.Delivery]:
    request = kitchen_pb2.ListDeliveriesRequest(kitchen_id=kitchen_id, status=status)
    return list(kitchen.call("ListDeliveries", request).deliveries)


def _meals(kitchen: Kitchen, kitchen_id: str) -> list[kitchen_pb2.Meal]:
    return list(kitchen.call("ListMeals", kitchen_pb2.ListMealsRequest(kitchen_id=kitchen_id)).meals)


def _count(found: list[Any], count: int) -> list[Any] | None:
    """``found`` once it holds ``count`` items (for wait_until)."""
    return found if len(found) >= count else None


def _events_of(kitchen: Kitchen, kind: type[Any], kitchen_id: str) -> list[Any]:
    return [m for _, m in kitchen.events() if isinstance(m, kind) and m.kitchen_id == kitchen_id]


def test_a_recalled_lot_is_traced_to_exactly_its_kitchens_meals_and_servings(kitchen: Kitchen) -> None:
    a = kitchen.register_kitchen().kitchen_id
    b = kitchen.register_kitchen().kitchen_id
    c = kitchen.register_kitchen().kitchen_id
    supplier, rice_supplier = _supplier(), _supplier()
    lot = f"LOT-{secrets.token_hex(4)}"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    pork_a = _deliver(kitchen, a, supplier, lot, received_at=base)
    pork_b = _deliver(kitchen, b, supplier, lot, received_at=base + timedelta(minutes=10))
    # The same lot came to a third kitchen without its certificate: refused there, so never served.
    refused_c = _deliver(
        kitchen, c, supplier, lot, received_at=base + timedelta(minutes=20), certificate_ref=""
    )
    rice_a = _deliver(
        kitchen, a, rice_supplier, "RICE-1", received_at=base + timedelta(minutes=5), product="Rice"
    )
    assert (pork_a.status, refused_c.status) == (
        kitchen_pb2.DELIVERY_STATUS_ACCEPTED,
        kitchen_pb2.DELIVERY_STATUS_REFUSED,
    )

    meal_a1 = _meal(
        kitchen,
        a,
        base + timedelta(hours=1),
        300,
        _dish("Braised pork", pork_a.delivery_id),
        _dish("Steamed rice", rice_a.delivery_id),
    )
    meal_b1 = _meal(
        kitchen, b, base + timedelta(hours=2), 180, _dish("Pork stew", pork_b.delivery_id), _dish("Greens")
    )
    meal_a2 = _meal(
        kitchen,
        a,
        base + timedelta(hours=3),
        250,
        _dish("Fried rice", rice_a.delivery_id),
        _dish("Pork dumplings", pork_a.delivery_id, rice_a.delivery_id),
    )
    # A meal of kitchen A without the lot: not part of the recall.
    porridge = _meal(kitchen, a, base + timedelta(hours=4), 90, _dish("Rice porridge", rice_a.delivery_id))

    trace = kitchen.call(
        "TraceLot",
        kitchen_pb2.TraceLotRequest(supplier_credit_code=supplier, lot_number=lot),
        roles=INSPECTOR,
    )
    assert [d.delivery_id for d in trace.deliveries] == [
        pork_a.delivery_id,
        pork_b.delivery_id,
        refused_c.delivery_id,
    ]
    assert list(trace.kitchen_ids) == [a, b]
    assert [(m.meal_id, m.kitchen_id, m.servings, list(m.dishes)) for m in trace.meals] == [
        (meal_a1.meal_id, a, 300, ["Braised pork"]),
        (meal_b1.meal_id, b, 180, ["Pork stew"]),
        (meal_a2.meal_id, a, 250, ["Pork dumplings"]),
    ]
    assert trace.meals[0].sitting == kitchen_pb2.SITTING_LUNCH
    assert trace.total_servings == 730

    unknown = _error(
        lambda: kitchen.call(
            "TraceLot",
            kitchen_pb2.TraceLotRequest(supplier_credit_code=rice_supplier, lot_number=lot),
            roles=INSPECTOR,
        )
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND

    back = kitchen.call("TraceMeal", kitchen_pb2.TraceMealRequest(meal_id=meal_a1.meal_id), roles=INSPECTOR)
    assert back.meal == meal_a1
    assert [d.delivery_id for d in back.deliveries] == [pork_a.delivery_id, rice_a.delivery_id]
    assert list(back.supplier_credit_codes) == [supplier, rice_supplier]
    back_b = kitchen.call(
        "TraceMeal",
        kitchen_pb2.TraceMealRequest(meal_id=meal_b1.meal_id),
        roles=("kitchen_manager",),
        scopes=(f"kitchen:{b}",),
    )
    assert [d.lot_number for d in back_b.deliveries] == [lot]
    assert list(back_b.supplier_credit_codes) == [supplier]
    # Kitchen A's manager cannot see kitchen B's meal.
    hidden = _error(
        lambda: kitchen.call(
            "TraceMeal",
            kitchen_pb2.TraceMealRequest(meal_id=meal_b1.meal_id),
            roles=("kitchen_manager",),
            scopes=(f"kitchen:{a}",),
        )
    )
    assert hidden.code() == grpc.StatusCode.NOT_FOUND

    # Menus are public; the retained samples are kept 48 hours from service.
    public = kitchen.call("GetMeal", kitchen_pb2.GetMealRequest(meal_id=meal_a2.meal_id), roles=PUBLIC).meal
    assert [d.name for d in public.dishes] == ["Fried rice", "Pork dumplings"]
    assert [i.delivery_id for i in public.dishes[1].ingredients] == [pork_a.delivery_id, rice_a.delivery_id]
    assert public.samples_kept_until.ToDatetime(UTC) - public.served_at.ToDatetime(UTC) == timedelta(hours=48)
    assert [m.meal_id for m in _meals(kitchen, a)] == [
        meal_a1.meal_id,
        meal_a2.meal_id,
        porridge.meal_id,
    ]
    day = meal_b1.meal_date
    listed = kitchen.call(
        "ListMeals", kitchen_pb2.ListMealsRequest(kitchen_id=b, from_date=day, to_date=day), roles=PUBLIC
    ).meals
    assert [m.meal_id for m in listed] == [meal_b1.meal_id]

    served = wait_until(
        lambda: _events_of(kitchen, events_pb2.MealServed, b), timeout_s=20, what="MealServed of kitchen B"
    )
    assert [(m.meal_id, m.servings, m.dishes, m.fully_traced, list(m.delivery_ids)) for m in served] == [
        (meal_b1.meal_id, 180, 2, False, [pork_b.delivery_id])
    ]
    served_a = wait_until(
        lambda: _count(_events_of(kitchen, events_pb2.MealServed, a), 3),
        timeout_s=20,
        what="three MealServed of kitchen A",
    )
    assert sorted(m.meal_id for m in served_a) == sorted([meal_a1.meal_id, meal_a2.meal_id, porridge.meal_id])
    assert all(m.fully_traced for m in served_a)


def test_lots_expired_on_arrival_or_without_certificate_are_refused_and_recorded(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    supplier = _supplier()
    arrived = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    today = arrived.astimezone(ZONE).date()

    accepted = _deliver(
        kitchen, kitchen_id, supplier, "L-OK", received_at=arrived, produced=today - timedelta(days=2)
    )
    assert accepted.status == kitchen_pb2.DELIVERY_STATUS_ACCEPTED
    assert accepted.use_by_date == (today + timedelta(days=2)).isoformat()
    assert list(accepted.refusal_reasons) == []
    # Produced ten days ago with a five-day shelf life: its last day was five days ago.
    expired = _deliver(
        kitchen,
        kitchen_id,
        supplier,
        "L-OLD",
        received_at=arrived + timedelta(minutes=1),
        produced=today - timedelta(days=10),
    )
    assert expired.status == kitchen_pb2.DELIVERY_STATUS_REFUSED
    assert expired.use_by_date == (today - timedelta(days=6)).isoformat()
    assert list(expired.refusal_reasons) == [kitchen_pb2.REFUSAL_REASON_EXPIRED_ON_ARRIVAL]
    # Its last day is today: still accepted.
    last_day = _deliver(
        kitchen,
        kitchen_id,
        supplier,
        "L-EDGE",
        received_at=arrived + timedelta(minutes=2),
        produced=today - timedelta(days=4),
    )
    assert (last_day.status, last_day.use_by_date) == (
        kitchen_pb2.DELIVERY_STATUS_ACCEPTED,
        today.isoformat(),
    )
    uncertified = _deliver(
        kitchen,
        kitchen_id,
        supplier,
        "L-NOCERT",
        received_at=arrived + timedelta(minutes=3),
        certificate_ref="",
    )
    assert list(uncertified.refusal_reasons) == [kitchen_pb2.REFUSAL_REASON_NO_CERTIFICATE]

    refused = _deliveries(kitchen, kitchen_id, kitchen_pb2.DELIVERY_STATUS_REFUSED)
    # Newest first.
    assert [d.delivery_id for d in refused] == [uncertified.delivery_id, expired.delivery_id]
    assert len(_deliveries(kitchen, kitchen_id)) == 4

    events = wait_until(
        lambda: _count(
            kitchen.events({d.delivery_id for d in (accepted, expired, last_day, uncertified)}), 4
        ),
        timeout_s=20,
        what="four delivery events",
    )
    assert len(events) == 4
    by_delivery = {m.delivery_id: m for _, m in events}
    assert isinstance(by_delivery[accepted.delivery_id], events_pb2.DeliveryReceived)
    assert by_delivery[accepted.delivery_id].use_by_date == accepted.use_by_date
    refused_event = by_delivery[expired.delivery_id]
    assert isinstance(refused_event, events_pb2.DeliveryRefused)
    assert list(refused_event.reasons) == [kitchen_pb2.REFUSAL_REASON_EXPIRED_ON_ARRIVAL]
    assert list(by_delivery[uncertified.delivery_id].reasons) == [kitchen_pb2.REFUSAL_REASON_NO_CERTIFICATE]

    # A replay answers the first delivery and stores nothing twice.
    request_id = rid()
    first = _deliver(kitchen, kitchen_id, supplier, "L-R", received_at=arrived, request_id=request_id)
    again = _deliver(kitchen, kitchen_id, supplier, "L-R", received_at=arrived, request_id=request_id)
    assert again == first
    assert len(_deliveries(kitchen, kitchen_id)) == 5


def test_a_production_date_after_receipt_is_refused_and_nothing_is_stored(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    arrived = datetime.now(UTC) - timedelta(hours=1)
    _deliver(kitchen, kitchen_id, _supplier(), "L-1", received_at=arrived)
    before = _deliveries(kitchen, kitchen_id)

    error = _error(
        lambda: _deliver(
            kitchen,
            kitchen_id,
            _supplier(),
            "L-FUTURE",
            received_at=arrived,
            produced=arrived.astimezone(ZONE).date() + timedelta(days=1),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"production_date"}
    bad = _error(
        lambda: kitchen.call(
            "ReceiveDelivery",
            kitchen_pb2.ReceiveDeliveryRequest(
                request_id=rid(),
                kitchen_id=kitchen_id,
                supplier_credit_code="91331004MA2A00000X",
                quantity=-1,
                production_date="2025/03/01",
            ),
        )
    )
    assert set(violations(bad)) == {
        "supplier_credit_code",
        "product",
        "lot_number",
        "quantity",
        "unit",
        "production_date",
        "shelf_life_days",
    }
    assert _deliveries(kitchen, kitchen_id) == before


def test_a_meal_naming_a_bad_lot_or_too_small_a_sample_stores_and_publishes_nothing(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    other_kitchen = kitchen.register_kitchen().kitchen_id
    supplier = _supplier()
    now = datetime.now(UTC).replace(microsecond=0)
    arrived = now - timedelta(days=3)
    good = _deliver(kitchen, kitchen_id, supplier, "L-GOOD", received_at=arrived)
    refused = _deliver(kitchen, kitchen_id, supplier, "L-REF", received_at=arrived, certificate_ref="")
    elsewhere = _deliver(kitchen, other_kitchen, supplier, "L-ELSE", received_at=arrived)
    # Accepted three days ago with a one-day shelf life: past its use-by date today.
    stale = _deliver(kitchen, kitchen_id, supplier, "L-STALE", received_at=arrived, shelf_life_days=1)
    served = now - timedelta(minutes=30)

    unknown = _error(
        lambda: _meal(kitchen, kitchen_id, served, 100, _dish("Rice", good.delivery_id, "dlv_missing"))
    )
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(unknown)) == {"dishes[0].ingredients[1].delivery_id"}

    several = _error(
        lambda: _meal(
            kitchen,
            kitchen_id,
            served,
            100,
            _dish("Rice", good.delivery_id),
            _dish("Stew", refused.delivery_id, elsewhere.delivery_id),
            _dish("Salad", stale.delivery_id),
        )
    )
    assert set(violations(several)) == {
        "dishes[1].ingredients[0].delivery_id",
        "dishes[1].ingredients[1].delivery_id",
        "dishes[2].ingredients[0].delivery_id",
    }
    assert "refused" in violations(several)["dishes[1].ingredients[0].delivery_id"]

    small = _error(
        lambda: _meal(kitchen, kitchen_id, served, 100, _dish("Rice", good.delivery_id, grams=100.0))
    )
    assert small.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(small)) == {"dishes[0].retained_sample_grams"}

    assert _meals(kitchen, kitchen_id) == []

    # A good meal afterwards: once its event is on the topic, the refused ones (same key, so the same
    # partition, published before it had they been stored) provably never were.
    meal = _meal(kitchen, kitchen_id, served, 100, _dish("Rice", good.delivery_id), _dish("Soup"))
    assert [m.meal_id for m in _meals(kitchen, kitchen_id)] == [meal.meal_id]
    published = wait_until(
        lambda: _events_of(kitchen, events_pb2.MealServed, kitchen_id), timeout_s=20, what="MealServed"
    )
    assert [(m.meal_id, m.fully_traced) for m in published] == [(meal.meal_id, False)]
    # An empty unit takes the delivery's.
    request = _meal_request(kitchen_id, served, 50, _dish("Rice", good.delivery_id))
    request.dishes[0].ingredients[0].unit = ""
    recorded = kitchen.call("RecordMeal", request).meal
    assert recorded.dishes[0].ingredients[0].unit == "kg"
