"""SQL of traceability: deliveries (lots), meals with their dishes and the lots each used, and the traces
forward (a lot to its meals) and backward (a meal to its lots)."""

# Queries are composed only from this module's constant fragments; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.trace import (
    Delivery,
    DeliveryStatus,
    Dish,
    IngredientUse,
    Meal,
    RefusalReason,
    Sitting,
    TracedMeal,
)
from services.kitchen.repository.kitchens import visibility_clause
from services.platform.repository import SqlPart

__all__ = ["TraceSql"]

_DELIVERY = (
    "d.delivery_id, d.kitchen_id, d.supplier_credit_code, d.product, d.lot_number, d.quantity, d.unit, "
    "d.production_date, d.shelf_life_days, d.use_by_date, d.certificate_ref, d.received_at, d.status, "
    "d.refusal_reasons"
)
_MEAL = (
    "m.meal_id, m.kitchen_id, m.meal_date, m.sitting, m.servings, m.served_at, m.samples_kept_until, "
    "m.fully_traced"
)


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        delivery_id=row["delivery_id"],
        kitchen_id=row["kitchen_id"],
        supplier_credit_code=row["supplier_credit_code"],
        product=row["product"],
        lot_number=row["lot_number"],
        quantity=row["quantity"],
        unit=row["unit"],
        production_date=row["production_date"],
        shelf_life_days=row["shelf_life_days"],
        use_by_date=row["use_by_date"],
        certificate_ref=row["certificate_ref"],
        received_at=row["received_at"],
        status=DeliveryStatus(row["status"]),
        refusal_reasons=tuple(RefusalReason(r) for r in row["refusal_reasons"]),
    )


class TraceSql(SqlPart):
    # --- deliveries -----------------------------------------------------------------------------------

    def add_delivery(self, delivery: Delivery) -> None:
        self._conn.execute(
            "INSERT INTO deliveries (delivery_id, kitchen_id, supplier_credit_code, product, lot_number,"
            " quantity, unit, production_date, shelf_life_days, use_by_date, certificate_ref, received_at,"
            " status, refusal_reasons) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                delivery.delivery_id,
                delivery.kitchen_id,
                delivery.supplier_credit_code,
                delivery.product,
                delivery.lot_number,
                delivery.quantity,
                delivery.unit,
                delivery.production_date,
                delivery.shelf_life_days,
                delivery.use_by_date,
                delivery.certificate_ref,
                delivery.received_at,
                delivery.status.value,
                [r.value for r in delivery.refusal_reasons],
            ),
        )

    def get_delivery(self, delivery_id: str) -> Delivery | None:
        found = self.deliveries_by_id([delivery_id])
        return found.get(delivery_id)

    def deliveries_by_id(self, delivery_ids: Collection[str]) -> dict[str, Delivery]:
        if not delivery_ids:
            return {}
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_DELIVERY} FROM deliveries d WHERE d.delivery_id = ANY(%s)", (list(delivery_ids),)
            ).fetchall()
        return {row["delivery_id"]: _delivery(row) for row in rows}

    def list_deliveries(
        self,
        kitchen_id: str,
        *,
        status: DeliveryStatus | None,
        start: datetime | None,
        end: datetime | None,
        before: tuple[Any, ...] | None,
        limit: int,
    ) -> list[Delivery]:
        clauses = ["d.kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if status is not None:
            clauses.append("d.status = %s")
            params.append(status.value)
        if start is not None:
            clauses.append("d.received_at >= %s")
            params.append(start)
        if end is not None:
            clauses.append("d.received_at < %s")
            params.append(end)
        if before is not None:
            clauses.append("(d.received_at, d.delivery_id) < (%s, %s)")
            params.extend(before)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_DELIVERY} FROM deliveries d WHERE {' AND '.join(clauses)} "
                "ORDER BY d.received_at DESC, d.delivery_id DESC LIMIT %s",
                params,
            ).fetchall()
        return [_delivery(row) for row in rows]

    def deliveries_of_lot(
        self, supplier_credit_code: str, lot_number: str, visibility: Visibility
    ) -> list[Delivery]:
        """Every delivery of the lot to a kitchen ``visibility`` sees, in the order they arrived."""
        where, params = visibility_clause(visibility, "k")
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_DELIVERY} FROM deliveries d JOIN kitchens k ON k.kitchen_id = d.kitchen_id "
                f"WHERE d.supplier_credit_code = %s AND d.lot_number = %s AND {where} "
                "ORDER BY d.received_at, d.delivery_id",
                [supplier_credit_code, lot_number, *params],
            ).fetchall()
        return [_delivery(row) for row in rows]

    # --- meals ----------------------------------------------------------------------------------------

    def add_meal(self, meal: Meal) -> None:
        self._conn.execute(
            "INSERT INTO meals (meal_id, kitchen_id, meal_date, sitting, servings, served_at,"
            " samples_kept_until, fully_traced) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                meal.meal_id,
                meal.kitchen_id,
                meal.meal_date,
                meal.sitting.value,
                meal.servings,
                meal.served_at,
                meal.samples_kept_until,
                meal.fully_traced,
            ),
        )
        with self._conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meal_dishes (meal_id, position, name, retained_sample_grams)"
                " VALUES (%s, %s, %s, %s)",
                [(meal.meal_id, i, d.name, d.retained_sample_grams) for i, d in enumerate(meal.dishes)],
            )
            ingredients = [
                (meal.meal_id, i, j, use.delivery_id, use.quantity, use.unit)
                for i, dish in enumerate(meal.dishes)
                for j, use in enumerate(dish.ingredients)
            ]
            if ingredients:
                cur.executemany(
                    "INSERT INTO meal_ingredients (meal_id, dish_position, position, delivery_id, quantity,"
                    " unit) VALUES (%s, %s, %s, %s, %s, %s)",
                    ingredients,
                )

    def get_meal(self, meal_id: str) -> Meal | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(f"SELECT {_MEAL} FROM meals m WHERE m.meal_id = %s", (meal_id,)).fetchone()
        return self._meals([row])[0] if row else None

    def list_meals(
        self,
        kitchen_id: str,
        *,
        first: date | None,
        last: date | None,
        after: tuple[Any, ...] | None,
        limit: int,
    ) -> list[Meal]:
        clauses = ["m.kitchen_id = %s"]
        params: list[Any] = [kitchen_id]
        if first is not None:
            clauses.append("m.meal_date >= %s")
            params.append(first)
        if last is not None:
            clauses.append("m.meal_date <= %s")
            params.append(last)
        if after is not None:
            clauses.append("(m.meal_date, m.served_at, m.meal_id) > (%s::date, %s, %s)")
            params.extend(after)
        params.append(limit)
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_MEAL} FROM meals m WHERE {' AND '.join(clauses)} "
                "ORDER BY m.meal_date, m.served_at, m.meal_id LIMIT %s",
                params,
            ).fetchall()
        return self._meals(rows)

    def meals_using(self, delivery_ids: Collection[str], visibility: Visibility) -> list[TracedMeal]:
        """Every meal (of a kitchen ``visibility`` sees) with a dish that used one of ``delivery_ids``, in
        time order, with the names of those dishes."""
        if not delivery_ids:
            return []
        where, params = visibility_clause(visibility, "k")
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_MEAL}, md.position AS dish_position, md.name AS dish_name "
                "FROM meals m JOIN kitchens k ON k.kitchen_id = m.kitchen_id "
                "JOIN meal_dishes md ON md.meal_id = m.meal_id "
                f"WHERE {where} AND EXISTS (SELECT 1 FROM meal_ingredients mi WHERE mi.meal_id = md.meal_id "
                "AND mi.dish_position = md.position AND mi.delivery_id = ANY(%s)) "
                "ORDER BY m.served_at, m.meal_id, md.position",
                [*params, list(delivery_ids)],
            ).fetchall()
        meals: dict[str, dict[str, Any]] = {}
        dishes: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            meals.setdefault(row["meal_id"], row)
            dishes[row["meal_id"]].append(row["dish_name"])
        return [
            TracedMeal(
                meal_id=row["meal_id"],
                kitchen_id=row["kitchen_id"],
                meal_date=row["meal_date"],
                sitting=Sitting(row["sitting"]),
                servings=row["servings"],
                served_at=row["served_at"],
                dishes=tuple(dishes[meal_id]),
            )
            for meal_id, row in meals.items()
        ]

    def _meals(self, rows: list[dict[str, Any]]) -> list[Meal]:
        """The meals of ``rows`` with their dishes and ingredients, in position order."""
        ids = [row["meal_id"] for row in rows]
        dishes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        uses: dict[tuple[str, int], list[IngredientUse]] = defaultdict(list)
        if ids:
            with self._conn.cursor(row_factory=dict_row) as cur:
                dishes_rows = cur.execute(
                    "SELECT meal_id, position, name, retained_sample_grams FROM meal_dishes "
                    "WHERE meal_id = ANY(%s) ORDER BY meal_id, position",
                    (ids,),
                ).fetchall()
                for d in dishes_rows:
                    dishes[d["meal_id"]].append(d)
                for u in cur.execute(
                    "SELECT meal_id, dish_position, delivery_id, quantity, unit FROM meal_ingredients "
                    "WHERE meal_id = ANY(%s) ORDER BY meal_id, dish_position, position",
                    (ids,),
                ).fetchall():
                    uses[(u["meal_id"], u["dish_position"])].append(
                        IngredientUse(u["delivery_id"], u["quantity"], u["unit"])
                    )
        return [
            Meal(
                meal_id=row["meal_id"],
                kitchen_id=row["kitchen_id"],
                meal_date=row["meal_date"],
                sitting=Sitting(row["sitting"]),
                dishes=tuple(
                    Dish(d["name"], tuple(uses[(row["meal_id"], d["position"])]), d["retained_sample_grams"])
                    for d in dishes[row["meal_id"]]
                ),
                servings=row["servings"],
                served_at=row["served_at"],
                samples_kept_until=row["samples_kept_until"],
                fully_traced=row["fully_traced"],
            )
            for row in rows
        ]
