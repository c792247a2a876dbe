"""Industry's story: the collection boxes' telemetry and the enterprise brain's orders."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.simulator.actions import LOCAL, TELEMETRY_EVERY_S, Draft, Ref, Schedule, stamp
from services.simulator.district import District

__all__ = ["ORDER_STAGES", "orders", "telemetry"]

ORDER_STAGES = (
    "ORDER_STAGE_CUSTOMISATION",
    "ORDER_STAGE_DESIGN",
    "ORDER_STAGE_PRODUCTION",
    "ORDER_STAGE_DELIVERY",
    "ORDER_STAGE_AFTER_SALES",
    "ORDER_STAGE_CLOSED",
)


# Per device and minute: a fault (alerted after 10 minutes) or a silence (offline after 5) now and then, a
# few an hour district-wide at scale 1.
_FAULT_PER_MINUTE = 6 / (60 * 7200)


_SILENCE_PER_MINUTE = 3 / (60 * 7200)


_STATE_CHANGE_PER_MINUTE = 0.02


@dataclass
class _Machine:
    key: str
    rated_kw: float
    state: str = "DEVICE_STATE_RUNNING"
    fault_until: datetime | None = None
    silent_until: datetime | None = None


def telemetry(schedule: Schedule, district: District, start: datetime, rng: random.Random) -> None:
    """Each enterprise's collection box sends every machine's sample once a simulated minute, in one
    IngestTelemetry batch; machines change state now and then, a few fault or fall silent."""
    boxes = [
        (enterprise, [_Machine(d.key, d.rated_power_kw) for d in enterprise.devices])
        for enterprise in district.enterprises
    ]
    choices = ("DEVICE_STATE_RUNNING", "DEVICE_STATE_IDLE", "DEVICE_STATE_STOPPED")

    def tick(at: datetime) -> None:
        minute_ms = int((at - timedelta(seconds=TELEMETRY_EVERY_S)).timestamp() * 1000)
        for _enterprise, machines in boxes:
            samples = []
            for n, machine in enumerate(machines):
                if machine.fault_until is not None and at >= machine.fault_until:
                    machine.fault_until, machine.state = None, "DEVICE_STATE_RUNNING"
                if machine.silent_until is not None and at >= machine.silent_until:
                    machine.silent_until = None
                draw = rng.random()
                if machine.fault_until is None and machine.silent_until is None:
                    if draw < _FAULT_PER_MINUTE:
                        machine.fault_until = at + timedelta(minutes=rng.randint(12, 25))
                        machine.state = "DEVICE_STATE_FAULT"
                    elif draw < _FAULT_PER_MINUTE + _SILENCE_PER_MINUTE:
                        machine.silent_until = at + timedelta(minutes=rng.randint(8, 20))
                    elif draw < _STATE_CHANGE_PER_MINUTE:
                        machine.state = rng.choices(choices, weights=(7, 2, 1))[0]
                if machine.silent_until is not None:
                    continue
                samples.append(_sample(machine, minute_ms + (n * 137) % 59_000, rng))
            if samples:
                schedule.add(
                    Draft(
                        at,
                        "industry",
                        "IngestTelemetry",
                        {"samples": samples},
                        needs=tuple(m.key for m in machines),
                        family="telemetry",
                    )
                )

    schedule.every(start + timedelta(seconds=TELEMETRY_EVERY_S), lambda: TELEMETRY_EVERY_S, tick)


def _sample(machine: _Machine, at_ms: int, rng: random.Random) -> dict[str, Any]:
    running = machine.state == "DEVICE_STATE_RUNNING"
    load = {"DEVICE_STATE_RUNNING": 0.72, "DEVICE_STATE_IDLE": 0.12, "DEVICE_STATE_STOPPED": 0.0}
    sample: dict[str, Any] = {
        "device_id": Ref(machine.key, "device.device_id"),
        "time_unix_ms": str(at_ms),
        "state": machine.state,
        "power_kw": round(machine.rated_kw * load.get(machine.state, 0.05) * rng.uniform(0.9, 1.1), 2),
        "spindle_load_pct": round(rng.uniform(55, 75), 1) if running else 0.0,
        "temperature_c": round(rng.uniform(38, 48) if running else rng.uniform(22, 30), 1),
    }
    if running:
        sample["good_count"] = rng.randint(1, 2)
        if rng.random() < 0.03:
            sample["reject_count"] = 1
    return sample


def orders(schedule: Schedule, district: District, start: datetime, rng: random.Random) -> None:
    """Orders through the enterprise brain: sales → customisation → design → production → delivery →
    after-sales → closed, one stage every tens of minutes."""
    numbers = itertools.count()

    def new_order(at: datetime) -> None:
        n = next(numbers)
        enterprise = rng.choice(district.enterprises)
        key = f"order{n}"
        promised = at.astimezone(LOCAL).date() + timedelta(days=rng.randint(20, 40))
        schedule.add(
            Draft(
                at,
                "industry",
                "CreateOrder",
                {
                    "credit_code": enterprise.credit_code,
                    "customer": f"Customer {rng.randint(100, 999)}",
                    "product": enterprise.product,
                    "customisation": rng.choice(
                        ("standard", "custom flange", "anodised finish", "long stroke")
                    ),
                    "promised_date": promised.isoformat(),
                    "ordered_at": stamp(at),
                },
                key=key,
                needs=(enterprise.key,),
                family="orders",
            )
        )
        moment, previous = at, key
        for stage in ORDER_STAGES:
            moment += timedelta(minutes=rng.randint(15, 90))
            step_key = f"{key}.{stage.rsplit('_', 1)[1].lower()}"
            schedule.add(
                Draft(
                    moment,
                    "industry",
                    "AdvanceOrder",
                    {"order_id": Ref(key, "order.order_id"), "stage": stage, "occurred_at": stamp(moment)},
                    key=step_key,
                    needs=(previous,),
                    family="orders",
                )
            )
            previous = step_key

    interval = 180.0 / district.scale
    schedule.every(start + timedelta(seconds=rng.uniform(20, 60)), lambda: interval, new_order)
