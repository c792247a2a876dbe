"""The overdue sweep, run by bootstrap as a background task: an application whose clock runs (ACCEPTED or
SUPPLEMENTED) and whose due date is before today (the district's local date) is flagged and announced
once (ApplicationOverdue). A paused application (SUPPLEMENT_REQUESTED) is never overdue: its clock is
stopped. Several replicas may sweep at once: the flag is flipped by one conditional UPDATE and only the rows
a replica flipped itself are announced, in the same transaction (the outbox)."""

from __future__ import annotations

import threading

from services.govservice.mapping.applications import application_overdue
from services.govservice.usecases.common import GovServiceContext
from services.platform.logs import get_logger
from services.platform.periodic import repeat

__all__ = ["OverdueSweeper"]

log = get_logger()
# Applications flagged per transaction: a backlog (after an outage) is worked off in bounded batches.
_SWEEP_BATCH = 200


class OverdueSweeper:
    def __init__(self, ctx: GovServiceContext, *, interval_s: float) -> None:
        self._ctx = ctx
        self._interval = interval_s

    def tick(self) -> int:
        """One batch; how many applications this replica flagged."""
        with self._ctx.uow.transaction() as tx:
            now = self._ctx.clock()
            today = now.astimezone(self._ctx.config.zone).date()
            flagged = tx.repo.flag_overdue(today, _SWEEP_BATCH)
            for application in flagged:
                tx.publish(
                    key=application.application_no,
                    subject=application.application_no,
                    message=application_overdue(application, now),
                    time=now,
                )
        for application in flagged:
            log.info(
                "application_overdue",
                application_no=application.application_no,
                handling_region=application.handling_region,
                due_date=str(application.due_date),
            )
        return len(flagged)

    def run(self, stop: threading.Event) -> None:
        repeat(stop, self._interval, lambda: self.tick() >= _SWEEP_BATCH, task="govservice_overdue_sweep")
