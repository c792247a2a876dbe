"""Inspections by food inspectors (market supervision): record one, list a kitchen's, newest first."""

from __future__ import annotations

from datetime import datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.kitchens import Inspection, RecordInspection
from services.kitchen.mapping.inspections import inspection_recorded
from services.kitchen.usecases.common import KitchenContext, new_id, require_kitchen
from services.platform.errors import InvalidArgumentError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["InspectionBook"]

log = get_logger()
_OPERATION = "record_inspection"


class InspectionBook:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx

    def record(self, command: RecordInspection, visibility: Visibility) -> Inspection:
        now = self._ctx.clock()
        command.check(now)
        assert command.inspected_at is not None, "checked"
        assert command.result is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            kitchen = require_kitchen(tx, command.kitchen_id, visibility)
            replay = tx.claim(_OPERATION, command.request_id, command)
            if replay is not None:
                found = tx.repo.get_inspection(str(replay["inspection_id"]))
                assert found is not None, "a remembered inspection is never deleted"
                return found
            inspection = Inspection(
                inspection_id=new_id("ins"),
                kitchen_id=kitchen.kitchen_id,
                inspected_at=command.inspected_at,
                inspector=command.inspector,
                findings=command.findings,
                result=command.result,
                recorded_at=now,
            )
            tx.repo.add_inspection(inspection)
            tx.publish(
                key=kitchen.kitchen_id,
                subject=inspection.inspection_id,
                message=inspection_recorded(inspection),
            )
            tx.remember(_OPERATION, command.request_id, {"inspection_id": inspection.inspection_id})
        log.info(
            "inspection_recorded",
            kitchen_id=kitchen.kitchen_id,
            inspection_id=inspection.inspection_id,
            result=inspection.result.value,
        )
        return inspection

    def list(
        self, kitchen_id: str, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Inspection], str]:
        if not kitchen_id:
            raise InvalidArgumentError.of("kitchen_id", "is required")
        page = page_of(page_size, page_token)
        before = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            require_kitchen(tx, kitchen_id, visibility)
            rows = tx.repo.list_inspections(kitchen_id, before=before, limit=page.size + 1)
        return paginate(rows, page, lambda i: (i.inspected_at, i.inspection_id))
