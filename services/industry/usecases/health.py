"""The service's clock-driven rules (:class:`HealthMonitor`), run every few seconds by one replica at a
time: raise an offline alert for each device not heard from for longer than the silence threshold, and
publish the figures of finished hours (UtilisationRolledUp) once the late-data delay has passed."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

from services.industry import mapping
from services.industry.adapters.device_directory import DeviceDirectory
from services.industry.domain.model import AlertKind, Severity
from services.industry.domain.records import NewAlert
from services.industry.usecases.common import Clock, IndustryConfig, IndustryStore, utc_now
from services.platform.logs import get_logger
from services.platform.periodic import repeat
from services.platform.uow import Transaction, UnitOfWork

__all__ = ["HealthMonitor"]

log = get_logger()


class HealthMonitor:
    def __init__(
        self,
        uow: UnitOfWork[IndustryStore],
        directory: DeviceDirectory,
        config: IndustryConfig,
        *,
        interval_s: float,
        clock: Clock = utc_now,
        batch_limit: int = 1000,
    ) -> None:
        self._uow = uow
        self._directory = directory
        self._silence = config.silence_after
        self._publish_delay = config.rollup_publish_delay
        self._interval = interval_s
        self._clock = clock
        self._limit = batch_limit

    def tick(self) -> tuple[int, int]:
        """One round; returns (offline alerts raised, hourly rollups published)."""
        now = self._clock()
        with self._uow.transaction() as tx:
            if not tx.repo.try_health_lock():
                return 0, 0
            raised = self._raise_offline(tx, now)
            published = self._publish_rollups(tx, now)
        if raised or published:
            log.info("health_tick", offline_alerts_raised=raised, rollups_published=published)
        return raised, published

    def _raise_offline(self, tx: Transaction[IndustryStore], now: datetime) -> int:
        silent = tx.repo.lock_silent_devices(now - self._silence, self._limit)
        if not silent:
            return 0
        profiles = self._directory.resolve([s.device_id for s in silent])
        for item in silent:
            device = profiles.get(item.device_id)
            if device is None:
                continue
            alert_id = str(uuid.uuid4())
            tx.repo.add_alert(
                NewAlert(alert_id, device, AlertKind.OFFLINE, Severity.MEDIUM, item.last_seen_at, now)
            )
            tx.repo.set_offline_alert(item.device_id, alert_id)
            tx.publish(
                key=item.device_id,
                subject=item.device_id,
                message=mapping.alert_raised(
                    alert_id,
                    device,
                    AlertKind.OFFLINE,
                    severity=Severity.MEDIUM,
                    since=item.last_seen_at,
                    at=now,
                ),
            )
        return len(silent)

    def _publish_rollups(self, tx: Transaction[IndustryStore], now: datetime) -> int:
        due = tx.repo.lock_due_rollups(now - self._publish_delay - timedelta(hours=1), self._limit)
        if not due:
            return 0
        profiles = self._directory.resolve([d.device_id for d in due])
        for row in due:
            tx.publish(
                key=row.device_id,
                subject=row.device_id,
                message=mapping.utilisation_rolled_up(
                    row.device_id, profiles.get(row.device_id), row.hour_start, row.totals
                ),
            )
        tx.repo.mark_rollups_published([(d.device_id, d.hour_start) for d in due])
        return len(due)

    def run(self, stop: threading.Event) -> None:
        repeat(
            stop,
            self._interval,
            lambda: any(count >= self._limit for count in self.tick()),
            task="industry-health",
        )
