"""Traceability as pure rules: use-by dates, refusal at the door, the production date against the
receipt date in the district's zone, the retained-sample minimum, and every bad field named by path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.kitchen.domain.trace import (
    Dish,
    IngredientUse,
    ListMealsQuery,
    ReceiveDelivery,
    RecordMeal,
    RefusalReason,
    Sitting,
    TraceLotQuery,
    fully_traced,
    parse_date,
    refusal_reasons,
    use_by,
)
from services.platform.errors import InvalidArgumentError
from services.platform.identifiers import credit_code_check_char

ZONE = ZoneInfo("Asia/Shanghai")
# 2025-03-04 01:00 in Shanghai is still 2025-03-03 in UTC.
NOW = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)
SUPPLIER = "91331004MA2A" + "00001"
SUPPLIER += credit_code_check_char(SUPPLIER)


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def _delivery(**changes: object) -> ReceiveDelivery:
    base = ReceiveDelivery(
        request_id="r-1",
        kitchen_id="kit_1",
        supplier_credit_code=SUPPLIER,
        product="Pork",
        lot_number="L-1",
        quantity=20.0,
        unit="kg",
        production_date="2025-03-02",
        shelf_life_days=3,
        certificate_ref="cert/1",
        received_at=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_production_day_is_the_first_day_of_the_shelf_life() -> None:
    assert use_by(date(2025, 3, 2), 3) == date(2025, 3, 4)
    assert use_by(date(2025, 3, 2), 1) == date(2025, 3, 2)


def test_a_lot_is_refused_when_expired_on_arrival_or_without_a_certificate() -> None:
    assert refusal_reasons(date(2025, 3, 4), date(2025, 3, 4), "cert") == ()
    assert refusal_reasons(date(2025, 3, 3), date(2025, 3, 4), "cert") == (RefusalReason.EXPIRED_ON_ARRIVAL,)
    assert refusal_reasons(date(2025, 3, 3), date(2025, 3, 4), "") == (
        RefusalReason.EXPIRED_ON_ARRIVAL,
        RefusalReason.NO_CERTIFICATE,
    )


def test_the_receipt_date_is_the_district_s_local_date() -> None:
    command = _delivery(production_date="2025-03-04")
    # Local date 2025-03-04: produced today is fine, though the UTC date is still the 3rd.
    command.check(NOW, ZONE)
    assert command.receipt_date(NOW, ZONE) == date(2025, 3, 4)
    with pytest.raises(InvalidArgumentError) as error:
        _delivery(production_date="2025-03-05").check(NOW, ZONE)
    assert _fields(error) == {"production_date"}


def test_a_delivery_names_every_bad_field_at_once() -> None:
    command = _delivery(
        request_id="",
        supplier_credit_code="91331004MA2A000010",
        product="",
        lot_number="",
        quantity=0.0,
        unit="",
        production_date="20250302",
        shelf_life_days=0,
        received_at=NOW + timedelta(minutes=10),
    )
    with pytest.raises(InvalidArgumentError) as error:
        command.check(NOW, ZONE)
    assert _fields(error) == {
        "request_id",
        "supplier_credit_code",
        "product",
        "lot_number",
        "quantity",
        "unit",
        "production_date",
        "shelf_life_days",
        "received_at",
    }


def test_dates_are_exactly_yyyy_mm_dd() -> None:
    assert parse_date("2025-03-04") == date(2025, 3, 4)
    for bad in ("20250304", "2025-W10-2", "2025-02-30", "\uff12\uff10\uff12\uff15-03-04", "2025-3-4", ""):
        assert parse_date(bad) is None


def _meal(*dishes: Dish, **changes: object) -> RecordMeal:
    base = RecordMeal("r-2", "kit_1", "2025-03-04", Sitting.LUNCH, dishes, 120, None)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_dish_sample_below_the_minimum_is_named_by_its_path() -> None:
    good = Dish("Rice", (IngredientUse("dlv_1", 5.0, "kg"),), 125.0)
    small = Dish("Greens", (IngredientUse("dlv_2", 2.0, ""),), 100.0)
    with pytest.raises(InvalidArgumentError) as error:
        _meal(good, small).check(NOW, 125.0)
    assert _fields(error) == {"dishes[1].retained_sample_grams"}
    _meal(good).check(NOW, 125.0)


def test_a_meal_names_every_bad_field_at_once() -> None:
    bad = Dish("", (IngredientUse("", 0.0, ""), IngredientUse("dlv_1", -1.0, "kg")), float("inf"))
    with pytest.raises(InvalidArgumentError) as error:
        _meal(bad, meal_date="2025-13-01", sitting=None, servings=0).check(NOW, 125.0)
    assert _fields(error) == {
        "meal_date",
        "sitting",
        "servings",
        "dishes[0].name",
        "dishes[0].retained_sample_grams",
        "dishes[0].ingredients[0].delivery_id",
        "dishes[0].ingredients[0].quantity",
        "dishes[0].ingredients[1].quantity",
    }
    with pytest.raises(InvalidArgumentError) as error:
        _meal().check(NOW, 125.0)
    assert _fields(error) == {"dishes"}


def test_a_meal_is_fully_traced_only_when_every_dish_names_a_lot() -> None:
    traced = Dish("Rice", (IngredientUse("dlv_1", 5.0, "kg"),), 150.0)
    untraced = Dish("Soup", (), 150.0)
    assert fully_traced((traced,))
    assert not fully_traced((traced, untraced))
    assert not fully_traced(())


def test_meal_periods_and_lot_queries_name_their_fields() -> None:
    assert ListMealsQuery("kit_1", "2025-03-01", "").check() == (date(2025, 3, 1), None)
    with pytest.raises(InvalidArgumentError) as error:
        ListMealsQuery("kit_1", "2025-03-05", "2025-03-01").check()
    assert _fields(error) == {"to_date"}
    with pytest.raises(InvalidArgumentError) as error:
        TraceLotQuery("not-a-code", "").check()
    assert _fields(error) == {"supplier_credit_code", "lot_number"}
