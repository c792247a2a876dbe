"""Alert rules: when an assessment opens an alert or updates an open one, the lifecycle, unit progress
and what counts as a joint response. Pure functions; use cases apply what they decide.

Lifecycle::

    raised -> acknowledged -> dispatched -> on scene -> resolved
                   \\______________\\____________\\-----> false alarm

- acknowledge: only a raised alert (the duty room has seen it);
- dispatch: an acknowledged alert becomes dispatched; dispatching to a dispatched or on-scene alert
  sends reinforcements and keeps the status;
- the first unit to arrive puts a dispatched alert on scene;
- resolve: only from on scene (somebody must have been there); false alarm: any time after
  acknowledgement (somebody must have looked);
- a unit moves notified -> en route -> arrived -> done, one step at a time, while its alert is open.

Any other move skips or repeats a step and is refused with FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.platform.errors import FailedPreconditionError
from services.safety.domain.model import (
    Alert,
    AlertOutcome,
    AlertStatus,
    AlertTrigger,
    DetectionKind,
    DispatchedUnit,
    RiskLevel,
    UnitKind,
    UnitStatus,
)
from services.safety.domain.risk import Assessment

__all__ = [
    "JOINT_RESPONSE_MIN_KINDS",
    "Merge",
    "absorbs",
    "check_acknowledge",
    "check_close",
    "check_dispatch",
    "check_unit_step",
    "is_joint_response",
    "merge",
    "status_after_dispatch",
    "status_after_unit_step",
]

# A joint response brings at least this many different kinds of outside units to the scene.
JOINT_RESPONSE_MIN_KINDS = 2
# The site's own guards are there in any case; "joint" means outside forces working together.
_NOT_JOINT = frozenset({UnitKind.SITE_GUARDS})

_UNIT_NEXT: dict[UnitStatus, UnitStatus] = {
    UnitStatus.NOTIFIED: UnitStatus.EN_ROUTE,
    UnitStatus.EN_ROUTE: UnitStatus.ARRIVED,
    UnitStatus.ARRIVED: UnitStatus.DONE,
}


def absorbs(
    alert: Alert, kinds: Iterable[DetectionKind], at: datetime, window: timedelta, *, panic: bool = False
) -> bool:
    """Does the open ``alert`` take these detections (or a panic press) instead of a new alert opening?

    Yes when it is still open, its detections are within ``window`` of ``at``, and it is about the same
    thing: it shares a detection kind, or either side is a panic press (a press at a site with an open
    alert is about that incident; detections at a site whose alarm was pressed are evidence for it).
    """
    if not alert.status.is_open:
        return False
    if at - alert.last_detected_at > window or alert.first_detected_at - at > window:
        return False
    if panic or alert.trigger is AlertTrigger.PANIC_BUTTON:
        return True
    return bool(set(kinds) & set(alert.detection_kinds))


def _union(first: Sequence[str], second: Iterable[str]) -> tuple[str, ...]:
    seen = dict.fromkeys(first)
    for item in second:
        seen.setdefault(item, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class Merge:
    """An open alert after absorbing an assessment."""

    level: RiskLevel
    reasons: tuple[str, ...]
    detection_kinds: tuple[DetectionKind, ...]
    person_tokens: tuple[str, ...]
    first_detected_at: datetime
    last_detected_at: datetime
    occurrences: int


def merge(alert: Alert, assessment: Assessment, at: datetime) -> Merge:
    """The level never drops while an alert is open (a calmer minute does not make the bat go away);
    reasons, kinds and persons accumulate in first-seen order."""
    level = assessment.level if assessment.level.rank > alert.level.rank else alert.level
    kinds = _union([k.value for k in alert.detection_kinds], (k.value for k in assessment.detection_kinds))
    return Merge(
        level=level,
        reasons=_union(alert.reasons, assessment.reasons),
        detection_kinds=tuple(DetectionKind(k) for k in kinds),
        person_tokens=_union(alert.person_tokens, assessment.person_tokens),
        first_detected_at=min(alert.first_detected_at, at),
        last_detected_at=max(alert.last_detected_at, at),
        occurrences=alert.occurrences + 1,
    )


def _refuse(alert: Alert, action: str, needs: str) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"alert {alert.alert_id} is {alert.status.value.replace('_', ' ')}; {action} needs {needs}"
    )


def check_acknowledge(alert: Alert) -> None:
    if alert.status is not AlertStatus.RAISED:
        raise _refuse(alert, "acknowledging", "a raised alert")


def check_dispatch(alert: Alert) -> None:
    if alert.status not in (AlertStatus.ACKNOWLEDGED, AlertStatus.DISPATCHED, AlertStatus.ON_SCENE):
        needs = (
            "the alert to be acknowledged first" if alert.status is AlertStatus.RAISED else "an open alert"
        )
        raise _refuse(alert, "dispatching", needs)


def status_after_dispatch(alert: Alert) -> AlertStatus:
    check_dispatch(alert)
    return AlertStatus.DISPATCHED if alert.status is AlertStatus.ACKNOWLEDGED else alert.status


def check_unit_step(alert: Alert, unit: DispatchedUnit, wanted: UnitStatus) -> None:
    if alert.status not in (AlertStatus.DISPATCHED, AlertStatus.ON_SCENE):
        raise _refuse(alert, "moving a unit", "a dispatched or on-scene alert")
    expected = _UNIT_NEXT.get(unit.status)
    if expected is not wanted:
        after = expected.value.replace("_", " ") if expected else "nothing (it is done)"
        raise FailedPreconditionError(
            f"unit {unit.unit_id} is {unit.status.value.replace('_', ' ')}; the next status is {after}, "
            f"not {wanted.value.replace('_', ' ')}"
        )


def status_after_unit_step(alert: Alert, wanted: UnitStatus) -> AlertStatus:
    """The first arrival puts a dispatched alert on scene."""
    if wanted is UnitStatus.ARRIVED and alert.status is AlertStatus.DISPATCHED:
        return AlertStatus.ON_SCENE
    return alert.status


def check_close(alert: Alert, outcome: AlertOutcome) -> AlertStatus:
    """The status closing with ``outcome`` leads to, or FailedPreconditionError."""
    if outcome is AlertOutcome.RESOLVED:
        if alert.status is not AlertStatus.ON_SCENE:
            raise _refuse(alert, "resolving", "an alert with a unit on scene")
        return AlertStatus.RESOLVED
    if alert.status not in (AlertStatus.ACKNOWLEDGED, AlertStatus.DISPATCHED, AlertStatus.ON_SCENE):
        needs = (
            "the alert to be acknowledged first" if alert.status is AlertStatus.RAISED else "an open alert"
        )
        raise _refuse(alert, "declaring a false alarm", needs)
    return AlertStatus.FALSE_ALARM


def is_joint_response(outcome: AlertOutcome, units: Iterable[DispatchedUnit]) -> bool:
    """Resolved (not a false alarm) with outside units of at least two different kinds on scene."""
    if outcome is not AlertOutcome.RESOLVED:
        return False
    arrived = {u.kind for u in units if u.arrived_at is not None and u.kind not in _NOT_JOINT}
    return len(arrived) >= JOINT_RESPONSE_MIN_KINDS
