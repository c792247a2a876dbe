"""The school kitchens' days."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from services.simulator.actions import LOCAL, Draft, Ref, Schedule, days_of, local_time, stamp
from services.simulator.district import District, Kitchen, credit_code

__all__ = ["READINGS_EVERY_S", "play"]

READINGS_EVERY_S = 600


def play(  # noqa: PLR0917 - the planner's common arguments and the catch-up it fills
    schedule: Schedule,
    district: District,
    start: datetime,
    end: datetime,
    rng: random.Random,
    catch_up: dict[str, list[Draft]],
) -> None:
    """Each kitchen's day: the UV lamp before work, a delivery, every staff member's morning check at the
    screen, lunch cooked from the day's lots and rated by parents, tableware disinfected after; fridge and
    freezer read every ten minutes (a fridge now and then too warm); an AI capture now and then.

    What a kitchen did earlier on the first day is sent with its registration (``catch_up``), its times
    unchanged: a district started at noon has had its morning, and staff without a morning check once the
    shift has started are barred (NO_CHECK) by the kitchen service's sweep."""
    settle = start + timedelta(seconds=30)
    warm: dict[tuple[str, date], tuple[datetime, datetime]] = {}
    for day in days_of(start, end):
        for kitchen in district.kitchens:
            if rng.random() < 0.05:
                begins = local_time(day, rng.randint(8, 16), rng.choice((0, 20, 40)))
                warm[(kitchen.key, day)] = (begins, begins + timedelta(minutes=rng.randint(30, 60)))
            for draft in _kitchen_day(kitchen, day, rng):
                if draft.at >= settle:
                    schedule.add(draft)
                else:
                    draft.at, draft.story = start, True
                    catch_up.setdefault(kitchen.key, []).append(draft)

    def readings(at: datetime) -> None:
        local = at.astimezone(LOCAL)
        minutes = local.hour * 60 + local.minute
        for kitchen in district.kitchens:
            window = warm.get((kitchen.key, local.date()))
            too_warm = window is not None and window[0] <= at < window[1]
            units = {kind: key for key, kind, _ in kitchen.equipment}
            uv_on = 6 * 60 <= minutes < 6 * 60 + 50
            cabinet_on = 13 * 60 + 40 <= minutes < 14 * 60 + 10
            rows = [
                _reading(
                    units["EQUIPMENT_KIND_FRIDGE"],
                    at,
                    rng.uniform(9.5, 11.0) if too_warm else rng.uniform(2.5, 5.5),
                ),
                _reading(units["EQUIPMENT_KIND_FREEZER"], at, rng.uniform(-20.0, -16.0)),
                _reading(units["EQUIPMENT_KIND_UV_LAMP"], at, 24.0, running=uv_on),
                _reading(
                    units["EQUIPMENT_KIND_DISINFECTION_CABINET"],
                    at,
                    rng.uniform(122.0, 128.0) if cabinet_on else 26.0,
                    running=cabinet_on,
                ),
            ]
            schedule.add(
                Draft(
                    at,
                    "kitchen",
                    "IngestReadings",
                    {"readings": rows},
                    needs=(kitchen.key,),
                    family="kitchen",
                )
            )

    first = start + timedelta(seconds=READINGS_EVERY_S - start.timestamp() % READINGS_EVERY_S)
    schedule.every(first, lambda: READINGS_EVERY_S, readings)


def _reading(unit: str, at: datetime, temperature: float, *, running: bool = False) -> dict[str, Any]:
    reading: dict[str, Any] = {
        "equipment_id": Ref(unit, "equipment.equipment_id"),
        "read_at": stamp(at),
        "temperature_c": round(temperature, 1),
    }
    if running:
        reading["running"] = True
    return reading


def _kitchen_day(kitchen: Kitchen, day: date, rng: random.Random) -> Iterator[Draft]:
    kid = Ref(kitchen.key, "kitchen.kitchen_id")
    stem = f"{kitchen.key}.{day:%Y%m%d}"
    lots = []
    for n, (product, quantity, unit, shelf) in enumerate(
        (("Rice", 50.0, "kg", 365), ("Green vegetables", 30.0, "kg", 3), ("Pork", 20.0, "kg", 2))
    ):
        at = local_time(day, 7, 0, n * 90)
        key = f"{stem}.lot{n}"
        lots.append((key, product))
        yield Draft(
            at,
            "kitchen",
            "ReceiveDelivery",
            {
                "kitchen_id": kid,
                "supplier_credit_code": credit_code(rng),
                "product": product,
                "lot_number": f"LOT-{day:%Y%m%d}-{kitchen.key[7:]}-{n}",
                "quantity": quantity,
                "unit": unit,
                "production_date": (day - timedelta(days=1)).isoformat(),
                "shelf_life_days": shelf,
                "certificate_ref": f"cert/{stem}/{n}",
                "received_at": stamp(at),
            },
            key=key,
            family="kitchen",
        )
    for n, (key, _name, _identity, _role) in enumerate(kitchen.staff):
        at = local_time(day, 7, 30, n * 60 + rng.uniform(0, 50))
        fever = rng.random() < 0.01
        yield Draft(
            at,
            "kitchen",
            "RecordMorningCheck",
            {
                "kitchen_id": kid,
                "staff_id": Ref(key, "staff.staff_id"),
                "shift_date": day.isoformat(),
                "shift": "lunch",
                "checked_at": stamp(at),
                "face_match_score": round(rng.uniform(0.9, 0.99), 2),
                "temperature_c": round(rng.uniform(37.6, 38.2) if fever else rng.uniform(36.2, 36.9), 1),
            },
            family="kitchen",
        )
    served = local_time(day, 11, 30)
    meal = f"{stem}.lunch"
    yield Draft(
        served,
        "kitchen",
        "RecordMeal",
        {
            "kitchen_id": kid,
            "meal_date": day.isoformat(),
            "sitting": "SITTING_LUNCH",
            "dishes": [
                {
                    "name": "Steamed rice",
                    "ingredients": [
                        {
                            "delivery_id": Ref(lots[0][0], "delivery.delivery_id"),
                            "quantity": 30.0,
                            "unit": "kg",
                        }
                    ],
                    "retained_sample_grams": 125.0,
                },
                {
                    "name": "Stir-fried greens with pork",
                    "ingredients": [
                        {
                            "delivery_id": Ref(lots[1][0], "delivery.delivery_id"),
                            "quantity": 20.0,
                            "unit": "kg",
                        },
                        {
                            "delivery_id": Ref(lots[2][0], "delivery.delivery_id"),
                            "quantity": 12.0,
                            "unit": "kg",
                        },
                    ],
                    "retained_sample_grams": 125.0,
                },
            ],
            "servings": 560 + rng.randint(0, 40),
            "served_at": stamp(served),
        },
        key=meal,
        family="kitchen",
    )
    # Two different parents: the kitchen accepts one rating per parent and meal (a repeat drawn from 400
    # parents failed one kitchen's rating on about one day in seven).
    for n, parent in enumerate(rng.sample(range(1, 401), 2)):
        yield Draft(
            local_time(day, 12, 40, n * 300),
            "kitchen",
            "RateMeal",
            {
                "meal_id": Ref(meal, "meal.meal_id"),
                "rater_id": f"parent-{kitchen.key[7:]}-{parent}",
                "score": rng.choice((3, 4, 4, 5, 5, 5)),
                "comment": rng.choice(("", "tasty", "a bit salty", "good portions")),
            },
            family="kitchen",
        )
    if rng.random() < 0.1:
        at = local_time(day, rng.randint(8, 12), rng.randint(0, 59))
        yield Draft(
            at,
            "kitchen",
            "ReportCapture",
            {
                "kitchen_id": kid,
                "camera_id": Ref(f"{kitchen.key}.camera", "equipment.equipment_id"),
                "kind": rng.choice(
                    ("VIOLATION_KIND_NO_HAT", "VIOLATION_KIND_NO_MASK", "VIOLATION_KIND_PHONE_USE")
                ),
                "captured_at": stamp(at),
                "snapshot_ref": f"snap/{kitchen.key}/{int(at.timestamp())}",
                "confidence": round(rng.uniform(0.8, 0.97), 2),
            },
            family="kitchen",
        )
