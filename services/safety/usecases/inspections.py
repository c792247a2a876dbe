"""Inspections of religious venues (video, drone or the mobile app) and their findings."""

from __future__ import annotations

from datetime import datetime

from services.platform.logs import get_logger
from services.platform.paging import Page, decode_cursor, paginate
from services.safety import mapping
from services.safety.domain.commands import RecordInspection
from services.safety.domain.model import Inspection, InspectionFinding, SiteKind
from services.safety.usecases.common import (
    Clock,
    Preconditions,
    SafetyUnitOfWork,
    new_id,
    require_id,
    utc_now,
)

__all__ = ["InspectionUseCases"]

log = get_logger()


class InspectionUseCases:
    def __init__(self, uow: SafetyUnitOfWork, *, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    def record_inspection(self, command: RecordInspection) -> Inspection:
        command.check(self._clock())
        assert command.method is not None
        assert command.inspected_at is not None
        with self._uow.transaction() as tx:
            replay = tx.claim("record_inspection", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_inspection(replay["inspection_id"])
                assert found is not None
                return found
            refused = Preconditions()
            site = tx.repo.get_site(command.site_id)
            if site is None:
                refused.add("site_id", f"site {command.site_id} does not exist")
            elif site.kind is not SiteKind.RELIGIOUS_VENUE:
                refused.add("site_id", f"is a {site.kind.value.replace('_', ' ')}, not a religious venue")
            if command.sensor_id:
                sensor = tx.repo.get_sensors([command.sensor_id]).get(command.sensor_id)
                if sensor is None or sensor.site_id != command.site_id:
                    refused.add("sensor_id", f"sensor {command.sensor_id} does not exist at this site")
            refused.check()
            inspection = Inspection(
                inspection_id=new_id("inspection"),
                site_id=command.site_id,
                method=command.method,
                inspector=command.inspector.strip(),
                inspected_at=command.inspected_at,
                sensor_id=command.sensor_id,
                summary=command.summary.strip(),
                findings=tuple(
                    InspectionFinding(f.category.strip(), f.description.strip(), f.severity or "info")
                    for f in command.findings
                ),
                recorded_at=self._clock(),
            )
            tx.repo.insert_inspection(inspection)
            tx.publish(
                key=inspection.inspection_id,
                subject=inspection.inspection_id,
                message=mapping.inspection_recorded(inspection),
            )
            tx.remember("record_inspection", command.request_id, {"inspection_id": inspection.inspection_id})
        log.info("inspection_recorded", inspection_id=inspection.inspection_id, site_id=inspection.site_id)
        return inspection

    def list_inspections(self, site_id: str, page: Page) -> tuple[list[Inspection], str]:
        require_id("site_id", site_id)
        before = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            found = tx.repo.list_inspections(site_id, before, page.size + 1)
        return paginate(found, page, lambda i: (i.inspected_at, i.inspection_id))
