"""Alerts: the one-click alarm, reading and listing, the response lifecycle (acknowledge, dispatch, unit
progress, resolve) and the live feed of changes. Every change writes its state, its timeline entry, its
event (outbox) and its notification to watchers in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from services.platform.errors import NotFoundError, shown
from services.platform.logs import get_logger
from services.platform.paging import Page, decode_cursor, paginate
from services.safety import mapping
from services.safety.alert_feed import CLOSED, RESYNC, AlertFeed, Update
from services.safety.domain import alerts as rules
from services.safety.domain.access import Viewer
from services.safety.domain.commands import Acknowledge, Dispatch, RaiseAlarm, Resolve, UpdateUnit
from services.safety.domain.model import (
    Alert,
    AlertChangeKind,
    AlertOutcome,
    AlertStatus,
    AlertTrigger,
    DispatchedUnit,
    SensorKind,
    TimelineEntry,
    TimelineKind,
    UnitStatus,
)
from services.safety.domain.risk import panic_assessment
from services.safety.usecases.common import (
    UNIT_LABEL,
    Clock,
    Preconditions,
    SafetyConfig,
    SafetyUnitOfWork,
    full_alert,
    locked_alert,
    new_id,
    publish_alert_change,
    require_id,
    utc_now,
)
from services.safety.usecases.raising import absorb, absorbing_alert, raise_alert

__all__ = ["AlertUseCases", "read_changed_alerts"]

log = get_logger()
_ALARM_SENSORS = frozenset({SensorKind.PANIC_BUTTON, SensorKind.PATROL_APP})


async def _nothing() -> None:
    return None


class AlertUseCases:
    def __init__(
        self, uow: SafetyUnitOfWork, config: SafetyConfig, *, feed: AlertFeed | None, clock: Clock = utc_now
    ) -> None:
        self._uow = uow
        self._config = config
        self._feed = feed
        self._clock = clock

    def raise_alarm(self, command: RaiseAlarm, viewer: Viewer) -> tuple[Alert, bool]:
        """The one-click alarm: a critical alert at once, or an open alert at the site made critical."""
        now = self._clock()
        command.check(now)
        with self._uow.transaction() as tx:
            replay = tx.claim("raise_alarm", command.request_id, command)
            if replay is not None:
                return full_alert(tx.repo, replay["alert_id"], viewer), bool(replay["raised"])
            refused = Preconditions()
            if tx.repo.get_site(command.site_id) is None:
                refused.add("site_id", f"site {command.site_id} does not exist")
            sensor = tx.repo.get_sensors([command.sensor_id]).get(command.sensor_id)
            if sensor is None:
                refused.add("sensor_id", f"sensor {command.sensor_id} does not exist")
            elif sensor.site_id != command.site_id:
                refused.add("sensor_id", f"belongs to another site, not {command.site_id}")
            elif sensor.kind not in _ALARM_SENSORS:
                refused.add("sensor_id", "is not a panic button or patrol app")
            refused.check()
            assert sensor is not None
            at = command.pressed_at or now
            assessment = panic_assessment(sensor.zone)
            tx.repo.lock_site_alerts(command.site_id)
            target = absorbing_alert(tx, self._config, command.site_id, assessment, at, panic=True)
            if target is not None:
                note = f" (note: {' '.join(command.note.split())})" if command.note.strip() else ""
                entry = TimelineEntry(now, TimelineKind.UPDATED, viewer.actor, assessment.reasons[0] + note)
                alert = absorb(tx, self._config, target, assessment, at=at, now=now, entry=entry)
                raised = False
            else:
                alert = raise_alert(
                    tx,
                    self._config,
                    command.site_id,
                    assessment,
                    trigger=AlertTrigger.PANIC_BUTTON,
                    at=at,
                    now=now,
                    actor=viewer.actor,
                    note=command.note,
                )
                raised = True
            tx.remember("raise_alarm", command.request_id, {"alert_id": alert.alert_id, "raised": raised})
            return full_alert(tx.repo, alert.alert_id, viewer), raised

    def get_alert(self, alert_id: str, viewer: Viewer) -> Alert:
        require_id("alert_id", alert_id)
        with self._uow.transaction() as tx:
            return full_alert(tx.repo, alert_id, viewer)

    def list_alerts(
        self,
        viewer: Viewer,
        site_id: str,
        *,
        statuses: Sequence[AlertStatus],
        raised_from: datetime | None,
        raised_until: datetime | None,
        page: Page,
    ) -> tuple[list[Alert], str]:
        sites = viewer.sites_for(site_id)
        before = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            found = tx.repo.list_alerts(
                site_ids=sites,
                statuses=statuses,
                raised_from=raised_from,
                raised_until=raised_until,
                before=before,
                limit=page.size + 1,
            )
        return paginate(found, page, lambda a: (a.raised_at, a.alert_id))

    def acknowledge(self, command: Acknowledge, viewer: Viewer) -> Alert:
        command.check()
        with self._uow.transaction() as tx:
            if tx.claim("acknowledge", command.request_id, command) is not None:
                return full_alert(tx.repo, command.alert_id, viewer)
            alert = locked_alert(tx.repo, command.alert_id, viewer)
            rules.check_acknowledge(alert)
            now = self._clock()
            tx.repo.set_alert_status(alert.alert_id, AlertStatus.ACKNOWLEDGED, now, acknowledged_at=now)
            detail = "acknowledged" + (f": {' '.join(command.note.split())}" if command.note.strip() else "")
            tx.repo.add_timeline(
                alert.alert_id, [TimelineEntry(now, TimelineKind.ACKNOWLEDGED, viewer.actor, detail)]
            )
            changed = replace(alert, status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now, updated_at=now)
            publish_alert_change(
                tx,
                self._config.alert_channel,
                changed,
                AlertChangeKind.ACKNOWLEDGED,
                mapping.alert_acknowledged(changed, viewer.actor),
            )
            tx.remember("acknowledge", command.request_id, {"alert_id": alert.alert_id})
            log.info("alert_acknowledged", alert_id=alert.alert_id)
            return full_alert(tx.repo, alert.alert_id, viewer)

    def dispatch(self, command: Dispatch, viewer: Viewer) -> tuple[Alert, list[str]]:
        command.check()
        with self._uow.transaction() as tx:
            replay = tx.claim("dispatch", command.request_id, command)
            if replay is not None:
                return full_alert(tx.repo, command.alert_id, viewer), list(replay["unit_ids"])
            alert = locked_alert(tx.repo, command.alert_id, viewer)
            status = rules.status_after_dispatch(alert)
            now = self._clock()
            units = []
            for unit in command.units:
                assert unit.kind is not None
                name = " ".join(unit.name.split()) or UNIT_LABEL[unit.kind.value]
                units.append(DispatchedUnit(new_id("unit"), unit.kind, name, UnitStatus.NOTIFIED, now))
            tx.repo.insert_units(alert.alert_id, units)
            stamps = {"dispatched_at": now} if alert.dispatched_at is None else {}
            tx.repo.set_alert_status(alert.alert_id, status, now, **stamps)
            tx.repo.add_timeline(
                alert.alert_id,
                [
                    TimelineEntry(
                        now,
                        TimelineKind.UNIT_DISPATCHED,
                        viewer.actor,
                        f"{UNIT_LABEL[u.kind.value]} {u.name}: notified",
                    )
                    for u in units
                ],
            )
            changed = replace(alert, status=status, updated_at=now)
            publish_alert_change(
                tx,
                self._config.alert_channel,
                changed,
                AlertChangeKind.DISPATCHED,
                mapping.alert_dispatched(changed, units, now),
            )
            unit_ids = [u.unit_id for u in units]
            tx.remember("dispatch", command.request_id, {"alert_id": alert.alert_id, "unit_ids": unit_ids})
            log.info("alert_dispatched", alert_id=alert.alert_id, units=[u.kind.value for u in units])
            return full_alert(tx.repo, alert.alert_id, viewer), unit_ids

    def update_unit(self, command: UpdateUnit, viewer: Viewer) -> Alert:
        command.check()
        assert command.status is not None
        with self._uow.transaction() as tx:
            if tx.claim("update_unit", command.request_id, command) is not None:
                return full_alert(tx.repo, command.alert_id, viewer)
            alert = locked_alert(tx.repo, command.alert_id, viewer)
            unit = next((u for u in alert.units if u.unit_id == command.unit_id), None)
            if unit is None:
                raise NotFoundError(f"unit {shown(command.unit_id)} not found in alert {alert.alert_id}")
            viewer.require_may_move(unit.kind)
            rules.check_unit_step(alert, unit, command.status)
            status = rules.status_after_unit_step(alert, command.status)
            now = self._clock()
            tx.repo.set_unit_status(unit.unit_id, command.status, now)
            step = command.status.value.replace("_", " ")
            entries = [
                TimelineEntry(
                    now,
                    TimelineKind.UNIT_STATUS_CHANGED,
                    viewer.actor,
                    f"{UNIT_LABEL[unit.kind.value]} {unit.name}: {step}",
                )
            ]
            stamps: dict[str, Any] = {}
            if status is not alert.status:
                stamps["on_scene_at"] = now
                entries.append(
                    TimelineEntry(
                        now, TimelineKind.ON_SCENE, viewer.actor, f"on scene: {unit.name} arrived first"
                    )
                )
            tx.repo.set_alert_status(alert.alert_id, status, now, **stamps)
            tx.repo.add_timeline(alert.alert_id, entries)
            changed_unit = replace(unit, status=command.status)
            changed = replace(alert, status=status, updated_at=now)
            publish_alert_change(
                tx,
                self._config.alert_channel,
                changed,
                AlertChangeKind.UNIT_STATUS_CHANGED,
                mapping.unit_status_changed(changed, changed_unit, now),
            )
            tx.remember("update_unit", command.request_id, {"alert_id": alert.alert_id})
            log.info(
                "unit_status_changed",
                alert_id=alert.alert_id,
                unit_id=unit.unit_id,
                status=command.status.value,
            )
            return full_alert(tx.repo, alert.alert_id, viewer)

    def resolve(self, command: Resolve, viewer: Viewer) -> Alert:
        command.check()
        assert command.outcome is not None
        with self._uow.transaction() as tx:
            if tx.claim("resolve", command.request_id, command) is not None:
                return full_alert(tx.repo, command.alert_id, viewer)
            alert = locked_alert(tx.repo, command.alert_id, viewer)
            status = rules.check_close(alert, command.outcome)
            joint = rules.is_joint_response(command.outcome, alert.units)
            now = self._clock()
            note = " ".join(command.note.split())
            tx.repo.set_alert_status(
                alert.alert_id,
                status,
                now,
                closed_at=now,
                outcome=command.outcome.value,
                joint_response=joint,
                resolution_note=note,
            )
            resolved = command.outcome is AlertOutcome.RESOLVED
            kind = TimelineKind.RESOLVED if resolved else TimelineKind.FALSE_ALARM
            detail = ("resolved as a joint response" if joint else kind.value.replace("_", " ")) + (
                f": {note}" if note else ""
            )
            tx.repo.add_timeline(alert.alert_id, [TimelineEntry(now, kind, viewer.actor, detail)])
            closed = replace(
                alert,
                status=status,
                closed_at=now,
                outcome=command.outcome,
                joint_response=joint,
                updated_at=now,
            )
            publish_alert_change(
                tx,
                self._config.alert_channel,
                closed,
                AlertChangeKind.RESOLVED,
                mapping.alert_resolved(closed),
            )
            tx.remember("resolve", command.request_id, {"alert_id": alert.alert_id})
            log.info(
                "alert_resolved", alert_id=alert.alert_id, outcome=command.outcome.value, joint_response=joint
            )
            return full_alert(tx.repo, alert.alert_id, viewer)

    async def watch_alerts(
        self,
        viewer: Viewer,
        site_id: str,
        *,
        include_open: bool,
        on_live: Callable[[], Awaitable[None]] = _nothing,
    ) -> AsyncIterator[tuple[AlertChangeKind, Alert]]:
        """Alerts in the caller's scope as they change, until the client goes or the service stops.

        Runs on the gRPC server's event loop: waiting costs no thread, and database reads go to a worker
        thread. Subscribes before reading the open alerts, so nothing committed in between is missed (it
        may be sent twice: a watcher keys by alert id). ``on_live`` runs once the subscription is listening.
        """
        if self._feed is None:
            raise RuntimeError("this AlertUseCases was built without an alert feed")
        sites = viewer.sites_for(site_id)
        if site_id:
            await asyncio.to_thread(self._require_site, site_id)
        async with self._feed.subscribe(sites) as subscription:
            await on_live()
            if include_open:
                for pair in await asyncio.to_thread(self._open_alerts, sites, viewer):
                    yield pair
            while True:
                item = await subscription.get()
                if item is CLOSED:
                    return
                if item is RESYNC:
                    for pair in await asyncio.to_thread(self._open_alerts, sites, viewer):
                        yield pair
                    continue
                if isinstance(item, Update) and viewer.sees(item.alert.site_id):
                    yield AlertChangeKind(item.change), item.alert

    def _require_site(self, site_id: str) -> None:
        with self._uow.transaction() as tx:
            if tx.repo.get_site(site_id) is None:
                raise NotFoundError("site not found")

    def _open_alerts(
        self, sites: frozenset[str] | None, viewer: Viewer
    ) -> list[tuple[AlertChangeKind, Alert]]:
        with self._uow.transaction() as tx:
            ids = [a.alert_id for a in tx.repo.open_alerts(sites)]
            found = [tx.repo.get_alert(alert_id, full=True) for alert_id in ids]
        return [
            (AlertChangeKind.OPEN, alert)
            for alert in found
            if alert is not None and viewer.sees(alert.site_id)
        ]


def read_changed_alerts(uow: SafetyUnitOfWork, alert_ids: Sequence[str]) -> dict[str, Alert]:
    """The alerts a batch of notifications names, as committed: the alert feed's ``load``, which reads
    each changed alert once for every watcher."""
    with uow.transaction() as tx:
        found = {alert_id: tx.repo.get_alert(alert_id, full=True) for alert_id in alert_ids}
    return {alert_id: alert for alert_id, alert in found.items() if alert is not None}
