"""Traceability (食材溯源): receive a delivery (accepted, or refused and recorded as refused), record a
meal naming the lots its dishes used with its retained samples, and trace a lot forward (the recall
question) or a meal backward."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from services.kitchen.domain.access import Visibility
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
    TraceLotQuery,
    fully_traced,
    parse_date,
    refusal_reasons,
    use_by,
)
from services.kitchen.mapping import trace as mapping
from services.kitchen.usecases.common import KitchenContext, KitchenTx, new_id, require_kitchen
from services.platform.errors import InvalidArgumentError, NotFoundError, Violations, shown
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["Traceability"]

log = get_logger()
_RECEIVE = "receive_delivery"
_MEAL = "record_meal"


class Traceability:
    def __init__(self, ctx: KitchenContext) -> None:
        self._uow = ctx.uow
        self._clock = ctx.clock
        self._config = ctx.config

    # --- deliveries -----------------------------------------------------------------------------------

    def receive(self, command: ReceiveDelivery, visibility: Visibility) -> Delivery:
        """The stored delivery: ACCEPTED, or REFUSED with its reasons (an answer, not an error: the
        refusal is a record the kitchen must keep)."""
        now = self._clock()
        zone = self._config.zone
        command.check(now, zone)
        with self._uow.transaction() as tx:
            replay = tx.claim(_RECEIVE, command.request_id, command)
            if replay is not None:
                stored = tx.repo.get_delivery(replay["delivery_id"])
                assert stored is not None, "a remembered delivery is never deleted"
                return stored
            require_kitchen(tx, command.kitchen_id, visibility)
            last_day = use_by(command.produced, command.shelf_life_days)
            reasons = refusal_reasons(last_day, command.receipt_date(now, zone), command.certificate_ref)
            delivery = Delivery(
                delivery_id=new_id("dlv"),
                kitchen_id=command.kitchen_id,
                supplier_credit_code=command.supplier_credit_code,
                product=command.product,
                lot_number=command.lot_number,
                quantity=command.quantity,
                unit=command.unit,
                production_date=command.produced,
                shelf_life_days=command.shelf_life_days,
                use_by_date=last_day,
                certificate_ref=command.certificate_ref,
                received_at=command.arrived_at(now),
                status=DeliveryStatus.REFUSED if reasons else DeliveryStatus.ACCEPTED,
                refusal_reasons=reasons,
            )
            tx.repo.add_delivery(delivery)
            tx.publish(
                key=delivery.kitchen_id,
                subject=delivery.delivery_id,
                message=mapping.delivery_event(delivery),
            )
            tx.remember(_RECEIVE, command.request_id, {"delivery_id": delivery.delivery_id})
        log.info(
            "delivery_received",
            kitchen_id=delivery.kitchen_id,
            delivery_id=delivery.delivery_id,
            status=delivery.status.value,
        )
        return delivery

    def list_deliveries(
        self, query: ListDeliveriesQuery, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Delivery], str]:
        query.check()
        page = page_of(page_size, page_token)
        before = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            require_kitchen(tx, query.kitchen_id, visibility)
            found = tx.repo.list_deliveries(
                query.kitchen_id,
                status=query.status,
                start=query.start,
                end=query.end,
                before=before,
                limit=page.size + 1,
            )
        return paginate(found, page, lambda d: (d.received_at, d.delivery_id))

    # --- meals ----------------------------------------------------------------------------------------

    def record_meal(self, command: RecordMeal, visibility: Visibility) -> Meal:
        now = self._clock()
        command.check(now, self._config.sample_min_grams)
        assert command.sitting is not None, "checked"
        with self._uow.transaction() as tx:
            replay = tx.claim(_MEAL, command.request_id, command)
            if replay is not None:
                return self._meal(tx, replay["meal_id"], visibility)
            require_kitchen(tx, command.kitchen_id, visibility)
            # Every lot is checked before anything is written; a bad one raises here and the transaction
            # (the request id's claim included) rolls back: nothing stored or published.
            dishes = self._resolve_lots(tx, command)
            served_at = command.served_at or now
            meal = Meal(
                meal_id=new_id("meal"),
                kitchen_id=command.kitchen_id,
                meal_date=command.day,
                sitting=command.sitting,
                dishes=dishes,
                servings=command.servings,
                served_at=served_at,
                samples_kept_until=served_at + timedelta(hours=self._config.sample_keep_hours),
                fully_traced=fully_traced(dishes),
            )
            tx.repo.add_meal(meal)
            tx.publish(key=meal.kitchen_id, subject=meal.meal_id, message=mapping.meal_served(meal))
            tx.remember(_MEAL, command.request_id, {"meal_id": meal.meal_id})
        log.info(
            "meal_recorded",
            kitchen_id=meal.kitchen_id,
            meal_id=meal.meal_id,
            dishes=len(meal.dishes),
            fully_traced=meal.fully_traced,
        )
        return meal

    @staticmethod
    def _resolve_lots(tx: KitchenTx, command: RecordMeal) -> tuple[Dish, ...]:
        """The dishes with every ingredient's unit filled from its delivery when the request left it
        empty; INVALID_ARGUMENT naming every ingredient whose lot is not an accepted, unexpired delivery
        of this kitchen on the meal date."""
        wanted = {use.delivery_id for dish in command.dishes for use in dish.ingredients}
        lots = tx.repo.deliveries_by_id(wanted)
        v = Violations()
        for i, dish in enumerate(command.dishes):
            for j, use in enumerate(dish.ingredients):
                path = f"dishes[{i}].ingredients[{j}].delivery_id"
                lot = lots.get(use.delivery_id)
                if lot is None or lot.kitchen_id != command.kitchen_id:
                    v.add(path, "is not a delivery received by this kitchen")
                elif lot.status != DeliveryStatus.ACCEPTED:
                    v.add(path, "names a refused delivery: a refused lot is never used in a meal")
                elif lot.use_by_date < command.day:
                    v.add(
                        path, f"the lot's use-by date {lot.use_by_date.isoformat()} is before the meal date"
                    )
        v.check()
        return tuple(
            replace(
                dish,
                ingredients=tuple(
                    IngredientUse(u.delivery_id, u.quantity, u.unit or lots[u.delivery_id].unit)
                    for u in dish.ingredients
                ),
            )
            for dish in command.dishes
        )

    def get_meal(self, meal_id: str, visibility: Visibility) -> Meal:
        with self._uow.transaction() as tx:
            return self._meal(tx, meal_id, visibility)

    def list_meals(
        self, query: ListMealsQuery, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Meal], str]:
        first, last = query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str, datetime, str)
        # The cursor's date goes back into SQL as a date: one this service did not write is refused here,
        # not by PostgreSQL.
        if after is not None and parse_date(after[0]) is None:
            raise InvalidArgumentError.of("page.page_token", "is not a token this service issued")
        with self._uow.transaction() as tx:
            require_kitchen(tx, query.kitchen_id, visibility)
            found = tx.repo.list_meals(
                query.kitchen_id, first=first, last=last, after=after, limit=page.size + 1
            )
        return paginate(found, page, lambda m: (m.meal_date.isoformat(), m.served_at, m.meal_id))

    # --- traces ---------------------------------------------------------------------------------------

    def trace_lot(self, query: TraceLotQuery, visibility: Visibility) -> LotTrace:
        """Every delivery of the lot, the kitchens that accepted it, and every meal that used it."""
        query.check()
        with self._uow.transaction() as tx:
            deliveries = tx.repo.deliveries_of_lot(query.supplier_credit_code, query.lot_number, visibility)
            if not deliveries:
                raise NotFoundError(
                    f"no delivery of lot {shown(query.lot_number)} from {query.supplier_credit_code}"
                )
            accepted = [d for d in deliveries if d.status == DeliveryStatus.ACCEPTED]
            meals = tx.repo.meals_using([d.delivery_id for d in accepted], visibility)
        return LotTrace(
            deliveries=tuple(deliveries),
            kitchen_ids=tuple(dict.fromkeys(d.kitchen_id for d in accepted)),
            meals=tuple(meals),
        )

    def trace_meal(self, meal_id: str, visibility: Visibility) -> MealTrace:
        with self._uow.transaction() as tx:
            meal = self._meal(tx, meal_id, visibility)
            lots = tx.repo.deliveries_by_id(meal.delivery_ids)
        return MealTrace(meal, tuple(lots[i] for i in meal.delivery_ids if i in lots))

    @staticmethod
    def _meal(tx: KitchenTx, meal_id: str, visibility: Visibility) -> Meal:
        """The meal, or NOT_FOUND when it does not exist or its kitchen is outside the caller's view."""
        meal = tx.repo.get_meal(meal_id) if meal_id else None
        if meal is None:
            raise NotFoundError(f"no meal {shown(meal_id)}")
        kitchen = tx.repo.get_kitchen(meal.kitchen_id)
        if kitchen is None or not visibility.sees(kitchen.kitchen_id, kitchen.site_id):
            raise NotFoundError(f"no meal {shown(meal_id)}")
        return meal
