"""Proto <-> domain for traceability: deliveries, meals, the traces; commands, responses and events."""

from __future__ import annotations

from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.kitchen.domain.trace import (
    Delivery,
    DeliveryStatus,
    Dish,
    IngredientUse,
    ListDeliveriesQuery,
    ListMealsQuery,
    LotTrace,
    Meal,
    MealTrace,
    ReceiveDelivery,
    RecordMeal,
    RefusalReason,
    Sitting,
    TracedMeal,
    TraceLotQuery,
)
from services.platform.protoconv import EnumMap, datetime_of, time_range
from services.platform.protoconv import optional_timestamp as ts

__all__ = [
    "DELIVERY_STATUS",
    "REFUSAL_REASON",
    "SITTING",
    "delivery_event",
    "delivery_pb",
    "list_deliveries",
    "list_meals",
    "lot_trace_pb",
    "meal_pb",
    "meal_served",
    "meal_trace_pb",
    "receive_delivery",
    "record_meal",
    "trace_lot",
]

DELIVERY_STATUS = EnumMap(DeliveryStatus, kitchen_pb2.DeliveryStatus, "DELIVERY_STATUS")
REFUSAL_REASON = EnumMap(RefusalReason, kitchen_pb2.RefusalReason, "REFUSAL_REASON")
SITTING = EnumMap(Sitting, kitchen_pb2.Sitting, "SITTING")


# --- requests -> commands -------------------------------------------------------------------------------


def receive_delivery(request: kitchen_pb2.ReceiveDeliveryRequest) -> ReceiveDelivery:
    return ReceiveDelivery(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        supplier_credit_code=request.supplier_credit_code,
        product=request.product,
        lot_number=request.lot_number,
        quantity=request.quantity,
        unit=request.unit,
        production_date=request.production_date,
        shelf_life_days=request.shelf_life_days,
        certificate_ref=request.certificate_ref,
        received_at=datetime_of(request, "received_at"),
    )


def list_deliveries(request: kitchen_pb2.ListDeliveriesRequest) -> ListDeliveriesQuery:
    start, end = time_range(request.period)
    return ListDeliveriesQuery(request.kitchen_id, DELIVERY_STATUS.from_proto(request.status), start, end)


def record_meal(request: kitchen_pb2.RecordMealRequest) -> RecordMeal:
    return RecordMeal(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        meal_date=request.meal_date,
        sitting=SITTING.from_proto(request.sitting),
        dishes=tuple(
            Dish(
                name=dish.name,
                ingredients=tuple(IngredientUse(u.delivery_id, u.quantity, u.unit) for u in dish.ingredients),
                retained_sample_grams=dish.retained_sample_grams,
            )
            for dish in request.dishes
        ),
        servings=request.servings,
        served_at=datetime_of(request, "served_at"),
    )


def list_meals(request: kitchen_pb2.ListMealsRequest) -> ListMealsQuery:
    return ListMealsQuery(request.kitchen_id, request.from_date, request.to_date)


def trace_lot(request: kitchen_pb2.TraceLotRequest) -> TraceLotQuery:
    return TraceLotQuery(request.supplier_credit_code, request.lot_number)


# --- domain -> responses --------------------------------------------------------------------------------


def delivery_pb(delivery: Delivery) -> kitchen_pb2.Delivery:
    return kitchen_pb2.Delivery(
        delivery_id=delivery.delivery_id,
        kitchen_id=delivery.kitchen_id,
        supplier_credit_code=delivery.supplier_credit_code,
        product=delivery.product,
        lot_number=delivery.lot_number,
        quantity=delivery.quantity,
        unit=delivery.unit,
        production_date=delivery.production_date.isoformat(),
        shelf_life_days=delivery.shelf_life_days,
        use_by_date=delivery.use_by_date.isoformat(),
        certificate_ref=delivery.certificate_ref,
        received_at=ts(delivery.received_at),
        status=DELIVERY_STATUS.to_proto(delivery.status),
        refusal_reasons=[REFUSAL_REASON.to_proto(r) for r in delivery.refusal_reasons],
    )


def _dish_pb(dish: Dish) -> kitchen_pb2.Dish:
    return kitchen_pb2.Dish(
        name=dish.name,
        ingredients=[
            kitchen_pb2.IngredientUse(delivery_id=u.delivery_id, quantity=u.quantity, unit=u.unit)
            for u in dish.ingredients
        ],
        retained_sample_grams=dish.retained_sample_grams,
    )


def meal_pb(meal: Meal) -> kitchen_pb2.Meal:
    return kitchen_pb2.Meal(
        meal_id=meal.meal_id,
        kitchen_id=meal.kitchen_id,
        meal_date=meal.meal_date.isoformat(),
        sitting=SITTING.to_proto(meal.sitting),
        dishes=[_dish_pb(d) for d in meal.dishes],
        servings=meal.servings,
        served_at=ts(meal.served_at),
        samples_kept_until=ts(meal.samples_kept_until),
    )


def _traced_meal_pb(meal: TracedMeal) -> kitchen_pb2.TracedMeal:
    return kitchen_pb2.TracedMeal(
        meal_id=meal.meal_id,
        kitchen_id=meal.kitchen_id,
        meal_date=meal.meal_date.isoformat(),
        sitting=SITTING.to_proto(meal.sitting),
        servings=meal.servings,
        dishes=list(meal.dishes),
    )


def lot_trace_pb(trace: LotTrace) -> kitchen_pb2.TraceLotResponse:
    return kitchen_pb2.TraceLotResponse(
        deliveries=[delivery_pb(d) for d in trace.deliveries],
        kitchen_ids=list(trace.kitchen_ids),
        meals=[_traced_meal_pb(m) for m in trace.meals],
        total_servings=trace.total_servings,
    )


def meal_trace_pb(trace: MealTrace) -> kitchen_pb2.TraceMealResponse:
    return kitchen_pb2.TraceMealResponse(
        meal=meal_pb(trace.meal),
        deliveries=[delivery_pb(d) for d in trace.deliveries],
        supplier_credit_codes=list(trace.supplier_credit_codes),
    )


# --- events ---------------------------------------------------------------------------------------------


def delivery_event(delivery: Delivery) -> events_pb2.DeliveryReceived | events_pb2.DeliveryRefused:
    """DeliveryReceived for an accepted lot, DeliveryRefused for a refused one."""
    if delivery.status == DeliveryStatus.REFUSED:
        return events_pb2.DeliveryRefused(
            kitchen_id=delivery.kitchen_id,
            delivery_id=delivery.delivery_id,
            supplier_credit_code=delivery.supplier_credit_code,
            product=delivery.product,
            lot_number=delivery.lot_number,
            reasons=[REFUSAL_REASON.to_proto(r) for r in delivery.refusal_reasons],
            received_at=ts(delivery.received_at),
        )
    return events_pb2.DeliveryReceived(
        kitchen_id=delivery.kitchen_id,
        delivery_id=delivery.delivery_id,
        supplier_credit_code=delivery.supplier_credit_code,
        product=delivery.product,
        lot_number=delivery.lot_number,
        quantity=delivery.quantity,
        unit=delivery.unit,
        use_by_date=delivery.use_by_date.isoformat(),
        received_at=ts(delivery.received_at),
    )


def meal_served(meal: Meal) -> events_pb2.MealServed:
    return events_pb2.MealServed(
        kitchen_id=meal.kitchen_id,
        meal_id=meal.meal_id,
        meal_date=meal.meal_date.isoformat(),
        sitting=SITTING.to_proto(meal.sitting),
        servings=meal.servings,
        dishes=len(meal.dishes),
        fully_traced=meal.fully_traced,
        delivery_ids=list(meal.delivery_ids),
        served_at=ts(meal.served_at),
    )
