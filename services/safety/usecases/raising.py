"""Opening an alert from an assessment, or folding the assessment into an open alert at the site: the
steps detections and the one-click alarm share. Each runs inside the caller's transaction, after the
caller took the site's alert lock (``repo.lock_site_alerts``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.platform.logs import get_logger
from services.safety import mapping
from services.safety.domain import alerts as rules
from services.safety.domain.model import (
    Alert,
    AlertChangeKind,
    AlertStatus,
    AlertTrigger,
    TimelineEntry,
    TimelineKind,
)
from services.safety.domain.risk import Assessment
from services.safety.usecases.common import (
    SafetyConfig,
    SafetyTransaction,
    new_id,
    publish_alert_change,
    site_of,
)

__all__ = ["absorb", "absorbing_alert", "raise_alert"]

log = get_logger()


def absorbing_alert(
    tx: SafetyTransaction,
    config: SafetyConfig,
    site_id: str,
    assessment: Assessment,
    at: datetime,
    *,
    panic: bool,
) -> Alert | None:
    """The open alert at the site that this assessment updates instead of opening another, if any."""
    if not panic and not assessment.detection_kinds:
        return None
    # Locked: an alert resolved meanwhile must not absorb the batch after it closed.
    candidates = tx.repo.open_alerts([site_id], for_update=True)
    for alert in reversed(candidates):  # the newest open alert first
        if rules.absorbs(alert, assessment.detection_kinds, at, config.dedup_window, panic=panic):
            return alert
    return None


def raise_alert(
    tx: SafetyTransaction,
    config: SafetyConfig,
    site_id: str,
    assessment: Assessment,
    *,
    trigger: AlertTrigger,
    at: datetime,
    now: datetime,
    actor: str,
    note: str = "",
) -> Alert:
    site = site_of(tx.repo, site_id)
    alert = Alert(
        alert_id=new_id("alert"),
        site_id=site_id,
        site_name=site.name,
        status=AlertStatus.RAISED,
        level=assessment.level,
        trigger=trigger,
        reasons=assessment.reasons,
        detection_kinds=assessment.detection_kinds,
        person_tokens=assessment.person_tokens,
        occurrences=1,
        first_detected_at=at,
        last_detected_at=at,
        raised_at=now,
        updated_at=now,
    )
    tx.repo.insert_alert(alert)
    detail = f"{assessment.level.value}: " + "; ".join(assessment.reasons)
    if note.strip():
        detail += f" (note: {' '.join(note.split())})"
    tx.repo.add_timeline(alert.alert_id, [TimelineEntry(now, TimelineKind.RAISED, actor, detail)])
    publish_alert_change(tx, config.alert_channel, alert, AlertChangeKind.RAISED, mapping.alert_raised(alert))
    log.info(
        "alert_raised",
        alert_id=alert.alert_id,
        site_id=site_id,
        level=alert.level.value,
        trigger=trigger.value,
    )
    return alert


def absorb(
    tx: SafetyTransaction,
    config: SafetyConfig,
    alert: Alert,
    assessment: Assessment,
    *,
    at: datetime,
    now: datetime,
    entry: TimelineEntry,
) -> Alert:
    merged = rules.merge(alert, assessment, at)
    updated = replace(
        alert,
        level=merged.level,
        reasons=merged.reasons,
        detection_kinds=merged.detection_kinds,
        person_tokens=merged.person_tokens,
        first_detected_at=merged.first_detected_at,
        last_detected_at=merged.last_detected_at,
        occurrences=merged.occurrences,
        updated_at=now,
    )
    tx.repo.update_alert_assessment(updated)
    tx.repo.add_timeline(alert.alert_id, [entry])
    publish_alert_change(
        tx, config.alert_channel, updated, AlertChangeKind.UPDATED, mapping.alert_updated(updated)
    )
    log.info(
        "alert_updated", alert_id=alert.alert_id, level=merged.level.value, occurrences=merged.occurrences
    )
    return updated
