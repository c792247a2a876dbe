"""The escalation of unacknowledged inbox items, run by bootstrap as a background task — the one place
the inbox uses the wall clock.

An OPEN item not acknowledged within its severity's deadline (``config.escalate_after[severity]`` from
its opening) is escalated: InboxItemEscalated round 1, the severity one level up (capped at CRITICAL),
routed to the district operator (the item is flagged escalated and reaches every district operator's
watch). Every ``config.reminder_interval`` after the previous round another InboxItemEscalated with the
next round follows, until the item is acknowledged (or resolved). The escalator only publishes: the
projection applies the events (escalated flag, effective severity, round), so a rebuild by replay comes
out the same. Each round is recorded in the transaction that publishes it (inbox_escalations, keyed by
item and round) so none is published twice, and replicas take turns through an advisory lock.
"""

from __future__ import annotations

import threading

from services.hub.domain.inbox import ItemStatus, escalated_severity, next_escalation
from services.hub.mapping import inbox as mapping
from services.hub.usecases.common import HubContext
from services.platform.logs import get_logger
from services.platform.periodic import repeat

__all__ = ["BATCH", "Escalator"]

log = get_logger()
# Items looked at per round; a full batch runs the next round at once.
BATCH = 500


class Escalator:
    def __init__(self, ctx: HubContext, *, interval_s: float) -> None:
        self._ctx = ctx
        self._interval = interval_s

    def run(self, stop: threading.Event) -> None:
        repeat(stop, self._interval, self.run_once, task="hub-escalation")

    def run_once(self) -> bool:
        """Publish the rounds due now; True when the batch was full (more may be due)."""
        config = self._ctx.config
        now = self._ctx.clock()
        earliest = min(config.escalate_after.values())
        published = 0
        with self._ctx.uow.transaction() as tx:
            if not tx.repo.try_escalation_lock():
                return False  # another replica is escalating right now
            candidates = tx.repo.escalation_candidates(
                now,
                {name: after.total_seconds() for name, after in config.escalate_after.items()},
                config.reminder_interval.total_seconds(),
                BATCH,
            )
            for candidate in candidates:
                item = candidate.item
                deadline = config.escalate_after.get(item.severity.value, earliest)
                round_, due = next_escalation(
                    item.opened_at,
                    deadline,
                    config.reminder_interval,
                    candidate.last_round,
                    candidate.last_at,
                )
                if due > now:
                    continue
                locked = tx.repo.inbox_item(item.item_id, for_update=True)
                if locked is None or locked.status is not ItemStatus.OPEN:
                    continue
                severity = escalated_severity(item.severity)
                if not tx.repo.record_inbox_escalation(item.item_id, round_, severity, now):
                    continue
                tx.publish(
                    key=item.item_id,
                    subject=item.item_id,
                    message=mapping.item_escalated(item.item_id, severity, round_, now),
                    topic=self._ctx.events_topic,
                    time=now,
                )
                published += 1
                log.info("inbox_item_escalated", item_id=item.item_id, round=round_, severity=severity.value)
        return len(candidates) >= BATCH
