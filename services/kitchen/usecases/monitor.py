"""The equipment monitor: the clock-driven equipment rules, run every few seconds by one replica at a time
(a transaction-scoped advisory lock):

* a unit that sent nothing for its offline window goes OFFLINE with one EQUIPMENT_OFFLINE alert and an
  EquipmentOffline event (the readings consumer clears the alert when a fresh reading arrives);
* a UV lamp's local days that are over are judged once each: a day with fewer running minutes than the
  lamp's daily minimum raises a UV_SHORT alert and an EquipmentViolationFound event. The day of its first
  reading is not judged (the lamp was installed or connected that day: part of it went unobserved). A
  reading arriving late for a day already judged adds to its minutes but does not judge it again.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

from services.kitchen.domain.equipment import Equipment, UnitState, uv_days_to_judge
from services.kitchen.domain.model import AlertKind, KitchenAlert, Severity
from services.kitchen.mapping import equipment as mapping
from services.kitchen.repository.equipment import UnitRow
from services.kitchen.usecases.common import KitchenContext, KitchenTx, new_id
from services.platform.logs import get_logger
from services.platform.periodic import repeat

__all__ = ["EquipmentMonitor"]

log = get_logger()


def _label(equipment: Equipment) -> str:
    return equipment.name or equipment.kind.value.lower().replace("_", " ")


class EquipmentMonitor:
    def __init__(self, ctx: KitchenContext, *, interval_s: float, batch_limit: int = 500) -> None:
        self._ctx = ctx
        self._interval = interval_s
        self._limit = batch_limit

    def tick(self) -> tuple[int, int]:
        """One round; returns (units gone offline, UV lamps judged)."""
        now = self._ctx.clock()
        with self._ctx.uow.transaction() as tx:
            if not tx.repo.try_equipment_monitor_lock():
                return 0, 0
            silent = tx.repo.lock_silent_units(now, self._limit)
            for row in silent:
                self._offline(tx, row)
            today = now.astimezone(self._ctx.config.zone).date()
            lamps = tx.repo.lock_uv_lamps_due(today, self._limit)
            for row in lamps:
                self._judge_uv(tx, row, today)
        if silent or lamps:
            log.info("equipment_monitor_tick", offline=len(silent), uv_lamps_judged=len(lamps))
        return len(silent), len(lamps)

    def _offline(self, tx: KitchenTx, row: UnitRow) -> None:
        now = self._ctx.clock()
        equipment = row.equipment
        state = UnitState.from_json(row.state)
        alert_id = new_id("kal")
        minutes = equipment.limits.offline_after_minutes
        tx.repo.add_alert(
            KitchenAlert(
                alert_id,
                equipment.kitchen_id,
                AlertKind.EQUIPMENT_OFFLINE,
                Severity.MEDIUM,
                equipment.equipment_id,
                f"{_label(equipment)}: no reading for more than {minutes} minutes",
                now,
            )
        )
        state.offline_alert_id = alert_id
        tx.repo.save_state(equipment.equipment_id, state.as_json(), state.status(equipment.kind))
        tx.publish(
            key=equipment.kitchen_id,
            subject=equipment.equipment_id,
            message=mapping.equipment_offline(
                equipment, alert_id, last_reading_at=equipment.last_reading_at, at=now
            ),
        )
        log.info("equipment_offline", equipment_id=equipment.equipment_id, alert_id=alert_id)

    def _judge_uv(self, tx: KitchenTx, row: UnitRow, today: date) -> None:
        now = self._ctx.clock()
        equipment = row.equipment
        state = UnitState.from_json(row.state)
        days = uv_days_to_judge(state.judge_from, today)
        if not days:
            return
        required = equipment.limits.uv_daily_min_minutes or 0
        ran = tx.repo.uv_seconds_of(equipment.equipment_id, days[0], days[-1])
        for day in days:
            minutes = ran.get(day, 0) // 60
            if minutes >= required:
                continue
            alert_id = new_id("kal")
            tx.repo.add_alert(
                KitchenAlert(
                    alert_id,
                    equipment.kitchen_id,
                    AlertKind.UV_SHORT,
                    Severity.MEDIUM,
                    equipment.equipment_id,
                    f"{_label(equipment)}: ran {minutes} of the {required} minutes required"
                    f" on {day.isoformat()}",
                    now,
                )
            )
            tx.publish(
                key=equipment.kitchen_id,
                subject=equipment.equipment_id,
                message=mapping.equipment_violation_found(
                    equipment,
                    alert_id,
                    AlertKind.UV_SHORT,
                    minutes=minutes,
                    min_temperature_c=0.0,
                    day=day,
                    at=now,
                ),
            )
            log.info("uv_lamp_short", equipment_id=equipment.equipment_id, alert_id=alert_id)
        state.judge_from = days[-1] + timedelta(days=1)
        tx.repo.save_state(equipment.equipment_id, state.as_json())

    def run(self, stop: threading.Event) -> None:
        repeat(
            stop,
            self._interval,
            lambda: any(count >= self._limit for count in self.tick()),
            task="kitchen-equipment-monitor",
        )
