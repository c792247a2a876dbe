"""Equipment: registration (idempotent by request id), the kitchen's units with their live status, and
their figures per day."""

from __future__ import annotations

from datetime import date, datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.equipment import (
    Equipment,
    EquipmentDay,
    EquipmentStatus,
    ListEquipment,
    ListEquipmentDays,
    RegisterEquipment,
    effective_limits,
)
from services.kitchen.usecases.common import KitchenContext, new_id, require_kitchen
from services.platform.errors import InvalidArgumentError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["EquipmentRegistry"]

log = get_logger()
_REGISTER = "RegisterEquipment"


class EquipmentRegistry:
    def __init__(self, ctx: KitchenContext) -> None:
        self._uow = ctx.uow
        self._clock = ctx.clock

    def register(self, command: RegisterEquipment, visibility: Visibility) -> Equipment:
        command.check()
        assert command.kind is not None, "checked"
        with self._uow.transaction() as tx:
            require_kitchen(tx, command.kitchen_id, visibility)
            replay = tx.claim(_REGISTER, command.request_id, command)
            if replay is not None:
                found = tx.repo.get_equipment(replay["equipment_id"])
                assert found is not None, "a remembered unit is never deleted"
                return found
            equipment = Equipment(
                equipment_id=new_id("eq"),
                kitchen_id=command.kitchen_id,
                kind=command.kind,
                name=command.name,
                limits=effective_limits(command.kind, command.limits),
                status=EquipmentStatus.AWAITING,
                last_reading_at=None,
                last_temperature_c=None,
                registered_at=self._clock(),
            )
            tx.repo.add_equipment(equipment)
            tx.remember(_REGISTER, command.request_id, {"equipment_id": equipment.equipment_id})
        log.info("equipment_registered", equipment_id=equipment.equipment_id, kind=equipment.kind.value)
        return equipment

    def list_units(
        self, query: ListEquipment, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Equipment], str]:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            require_kitchen(tx, query.kitchen_id, visibility)
            units = tx.repo.list_equipment(query.kitchen_id, query.kind, after, page.size + 1)
        return paginate(units, page, lambda e: (e.registered_at, e.equipment_id))

    def list_days(
        self, query: ListEquipmentDays, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[EquipmentDay], str]:
        first, last = query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str, str)
        if after is not None:
            try:
                after = (date.fromisoformat(after[0]), after[1])
            except ValueError:
                raise InvalidArgumentError.of(
                    "page.page_token", "is not a token this service issued"
                ) from None
        with self._uow.transaction() as tx:
            require_kitchen(tx, query.kitchen_id, visibility)
            days = tx.repo.list_equipment_days(
                query.kitchen_id,
                equipment_id=query.equipment_id,
                first=first,
                last=last,
                after=after,
                limit=page.size + 1,
            )
        return paginate(days, page, lambda d: (d.day.isoformat(), d.equipment_id))
