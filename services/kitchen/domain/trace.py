"""Traceability (食材溯源): deliveries of lots (accepted or refused at the door), meals with the lots
their dishes used and their retained samples (留样), and the traces forward (a lot to every kitchen, meal
and serving) and backward (a meal to every lot and supplier). Pure: no grpc, psycopg or kafka."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.platform.errors import Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code
from services.platform.validation import check_event_time, check_query_period, parse_date, text_problem

__all__ = [
    "MAX_SHELF_LIFE_DAYS",
    "Delivery",
    "DeliveryStatus",
    "Dish",
    "IngredientUse",
    "ListDeliveriesQuery",
    "ListMealsQuery",
    "LotTrace",
    "Meal",
    "MealTrace",
    "ReceiveDelivery",
    "RecordMeal",
    "RefusalReason",
    "Sitting",
    "TraceLotQuery",
    "TracedMeal",
    "fully_traced",
    "parse_date",
    "refusal_reasons",
    "use_by",
]

# Ten years: beyond that a shelf life is a typing mistake (and date arithmetic stays far from year 9999).
MAX_SHELF_LIFE_DAYS = 3650
# Meal dates outside these are typing mistakes, not menus.
_EARLIEST_DATE, _LATEST_DATE = date(2000, 1, 1), date(2999, 12, 31)
# A meal's shape: generous for any school menu, small enough to answer every bad field.
MAX_DISHES = 100
MAX_INGREDIENTS = 200
_MAX_TEXT = 500
_MAX_ID = 128


class DeliveryStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    REFUSED = "REFUSED"


class RefusalReason(StrEnum):
    EXPIRED_ON_ARRIVAL = "EXPIRED_ON_ARRIVAL"
    NO_CERTIFICATE = "NO_CERTIFICATE"


class Sitting(StrEnum):
    BREAKFAST = "BREAKFAST"
    LUNCH = "LUNCH"
    DINNER = "DINNER"
    SNACK = "SNACK"


def use_by(production: date, shelf_life_days: int) -> date:
    """The last date a lot may be used: the production day counts as the first day of its shelf life."""
    return production + timedelta(days=shelf_life_days - 1)


def refusal_reasons(use_by_date: date, receipt_date: date, certificate_ref: str) -> tuple[RefusalReason, ...]:
    """Why a lot must be refused at the door (empty: accepted). Expired on arrival: its use-by date is
    before the local date it arrived on."""
    reasons: list[RefusalReason] = []
    if use_by_date < receipt_date:
        reasons.append(RefusalReason.EXPIRED_ON_ARRIVAL)
    if not certificate_ref:
        reasons.append(RefusalReason.NO_CERTIFICATE)
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    kitchen_id: str
    supplier_credit_code: str
    product: str
    lot_number: str
    quantity: float
    unit: str
    production_date: date
    shelf_life_days: int
    use_by_date: date
    certificate_ref: str
    received_at: datetime
    status: DeliveryStatus
    refusal_reasons: tuple[RefusalReason, ...]


@dataclass(frozen=True, slots=True)
class IngredientUse:
    delivery_id: str
    quantity: float
    unit: str


@dataclass(frozen=True, slots=True)
class Dish:
    name: str
    ingredients: tuple[IngredientUse, ...]
    retained_sample_grams: float


def fully_traced(dishes: tuple[Dish, ...]) -> bool:
    """Every dish names at least one lot (the 可溯 promise); a meal without dishes traces nothing."""
    return bool(dishes) and all(dish.ingredients for dish in dishes)


@dataclass(frozen=True, slots=True)
class Meal:
    meal_id: str
    kitchen_id: str
    meal_date: date
    sitting: Sitting
    dishes: tuple[Dish, ...]
    servings: int
    served_at: datetime
    samples_kept_until: datetime
    fully_traced: bool

    @property
    def delivery_ids(self) -> tuple[str, ...]:
        """The deliveries the dishes used, each once, in the order the dishes name them."""
        return tuple(dict.fromkeys(i.delivery_id for d in self.dishes for i in d.ingredients))


@dataclass(frozen=True, slots=True)
class TracedMeal:
    meal_id: str
    kitchen_id: str
    meal_date: date
    sitting: Sitting
    servings: int
    served_at: datetime
    dishes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LotTrace:
    deliveries: tuple[Delivery, ...]
    kitchen_ids: tuple[str, ...]
    meals: tuple[TracedMeal, ...]

    @property
    def total_servings(self) -> int:
        return sum(m.servings for m in self.meals)


@dataclass(frozen=True, slots=True)
class MealTrace:
    meal: Meal
    deliveries: tuple[Delivery, ...]

    @property
    def supplier_credit_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.supplier_credit_code for d in self.deliveries))


def _text(v: Violations, field: str, value: str, limit: int, *, required: bool) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    elif value:
        v.add_if(text_problem(value, max_chars=limit), field)


def _positive(v: Violations, field: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        v.add(field, "must be greater than 0")


@dataclass(frozen=True, slots=True)
class ReceiveDelivery:
    request_id: str
    kitchen_id: str
    supplier_credit_code: str
    product: str
    lot_number: str
    quantity: float
    unit: str
    production_date: str
    shelf_life_days: int
    certificate_ref: str
    # None: received now.
    received_at: datetime | None

    def check(self, now: datetime, zone: ZoneInfo) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "kitchen_id", self.kitchen_id, _MAX_ID, required=True)
        if not self.supplier_credit_code:
            v.add("supplier_credit_code", "is required")
        else:
            v.add_if(invalid_credit_code(self.supplier_credit_code), "supplier_credit_code")
        _text(v, "product", self.product, _MAX_TEXT, required=True)
        _text(v, "lot_number", self.lot_number, _MAX_TEXT, required=True)
        _positive(v, "quantity", self.quantity)
        _text(v, "unit", self.unit, 32, required=True)
        _text(v, "certificate_ref", self.certificate_ref, _MAX_TEXT, required=False)
        if not 1 <= self.shelf_life_days <= MAX_SHELF_LIFE_DAYS:
            v.add("shelf_life_days", f"must be between 1 and {MAX_SHELF_LIFE_DAYS}")
        check_event_time(v, "received_at", self.received_at, now, required=False)
        produced = parse_date(self.production_date)
        if produced is None:
            v.add("production_date", "must be a date as YYYY-MM-DD")
        elif produced > self.receipt_date(now, zone):
            v.add("production_date", "must not be after the date the lot was received")
        v.check()

    def arrived_at(self, now: datetime) -> datetime:
        return self.received_at or now

    def receipt_date(self, now: datetime, zone: ZoneInfo) -> date:
        """The district's local date the lot arrived on."""
        return self.arrived_at(now).astimezone(zone).date()

    @property
    def produced(self) -> date:
        """The production date (call after :meth:`check`)."""
        parsed = parse_date(self.production_date)
        assert parsed is not None, "ReceiveDelivery.produced before check()"
        return parsed


@dataclass(frozen=True, slots=True)
class RecordMeal:
    request_id: str
    kitchen_id: str
    meal_date: str
    sitting: Sitting | None
    dishes: tuple[Dish, ...]
    servings: int
    # None: served now.
    served_at: datetime | None

    def check(self, now: datetime, sample_min_grams: float) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "kitchen_id", self.kitchen_id, _MAX_ID, required=True)
        day = parse_date(self.meal_date)
        if day is None:
            v.add("meal_date", "must be a date as YYYY-MM-DD")
        elif not _EARLIEST_DATE <= day <= _LATEST_DATE:
            v.add("meal_date", "must be between 2000-01-01 and 2999-12-31")
        if self.sitting is None:
            v.add("sitting", "is required")
        if self.servings < 1:
            v.add("servings", "must be at least 1")
        check_event_time(v, "served_at", self.served_at, now, required=False)
        if not self.dishes:
            v.add("dishes", "must name at least one dish")
        elif len(self.dishes) > MAX_DISHES:
            v.add("dishes", f"must be at most {MAX_DISHES}")
        else:
            for i, dish in enumerate(self.dishes):
                self._check_dish(v, i, dish, sample_min_grams)
        v.check()

    @staticmethod
    def _check_dish(v: Violations, i: int, dish: Dish, sample_min_grams: float) -> None:
        path = f"dishes[{i}]"
        _text(v, f"{path}.name", dish.name, _MAX_TEXT, required=True)
        if not (math.isfinite(dish.retained_sample_grams) and dish.retained_sample_grams >= sample_min_grams):
            v.add(f"{path}.retained_sample_grams", f"must be at least {sample_min_grams:g} g (留样)")
        if len(dish.ingredients) > MAX_INGREDIENTS:
            v.add(f"{path}.ingredients", f"must be at most {MAX_INGREDIENTS}")
            return
        for j, use in enumerate(dish.ingredients):
            at = f"{path}.ingredients[{j}]"
            _text(v, f"{at}.delivery_id", use.delivery_id, _MAX_ID, required=True)
            _positive(v, f"{at}.quantity", use.quantity)
            _text(v, f"{at}.unit", use.unit, 32, required=False)

    @property
    def day(self) -> date:
        """The meal date (call after :meth:`check`)."""
        parsed = parse_date(self.meal_date)
        assert parsed is not None, "RecordMeal.day before check()"
        return parsed


@dataclass(frozen=True, slots=True)
class ListDeliveriesQuery:
    kitchen_id: str
    # None: both.
    status: DeliveryStatus | None
    start: datetime | None
    end: datetime | None

    def check(self) -> None:
        v = Violations()
        _text(v, "kitchen_id", self.kitchen_id, _MAX_ID, required=True)
        check_query_period(v, "period", self.start, self.end, required=False)
        v.check()


@dataclass(frozen=True, slots=True)
class ListMealsQuery:
    kitchen_id: str
    from_date: str
    to_date: str

    def check(self) -> tuple[date | None, date | None]:
        """The inclusive bounds (None: open)."""
        v = Violations()
        _text(v, "kitchen_id", self.kitchen_id, _MAX_ID, required=True)
        bounds: list[date | None] = []
        for field, value in (("from_date", self.from_date), ("to_date", self.to_date)):
            parsed = parse_date(value) if value else None
            if value and parsed is None:
                v.add(field, "must be a date as YYYY-MM-DD")
            bounds.append(parsed)
        first, last = bounds
        if first is not None and last is not None and last < first:
            v.add("to_date", "must not be before from_date")
        v.check()
        return first, last


@dataclass(frozen=True, slots=True)
class TraceLotQuery:
    supplier_credit_code: str
    lot_number: str

    def check(self) -> None:
        v = Violations()
        if not self.supplier_credit_code:
            v.add("supplier_credit_code", "is required")
        else:
            v.add_if(invalid_credit_code(self.supplier_credit_code), "supplier_credit_code")
        _text(v, "lot_number", self.lot_number, _MAX_TEXT, required=True)
        v.check()
