"""Alert rules: which detections update an open alert, the lifecycle, units, joint response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.platform.errors import FailedPreconditionError
from services.safety.domain import alerts as rules
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

T0 = datetime(2026, 3, 16, 15, 40, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def alert(status: AlertStatus = AlertStatus.RAISED, **changes: object) -> Alert:
    base = Alert(
        alert_id="alert_1",
        site_id="site_1",
        site_name="Luqiao No. 1 Primary School",
        status=status,
        level=RiskLevel.HIGH,
        trigger=AlertTrigger.RISK_ASSESSMENT,
        reasons=("perimeter breach at north wall", "carrying a baseball bat"),
        detection_kinds=(DetectionKind.PERIMETER_BREACH, DetectionKind.WEAPON),
        person_tokens=(),
        occurrences=1,
        first_detected_at=T0,
        last_detected_at=T0,
        raised_at=T0,
        updated_at=T0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def unit(kind: UnitKind, status: UnitStatus = UnitStatus.NOTIFIED, arrived: bool = False) -> DispatchedUnit:
    return DispatchedUnit(
        unit_id=f"unit_{kind.value}",
        kind=kind,
        name=kind.value,
        status=status,
        notified_at=T0,
        arrived_at=T0 + timedelta(minutes=6) if arrived else None,
    )


def assessment(level: RiskLevel, *kinds: DetectionKind, reasons: tuple[str, ...] = ()) -> Assessment:
    return Assessment(level, 0, reasons, kinds, (), ())


# --- dedup ---------------------------------------------------------------------------------------


def test_same_kind_at_the_same_site_within_the_window_updates_the_open_alert() -> None:
    assert rules.absorbs(alert(), [DetectionKind.PERIMETER_BREACH], T0 + timedelta(minutes=5), WINDOW)


def test_a_different_kind_opens_another_alert() -> None:
    assert not rules.absorbs(alert(), [DetectionKind.CROWDING], T0 + timedelta(minutes=5), WINDOW)


def test_outside_the_window_opens_another_alert() -> None:
    assert not rules.absorbs(
        alert(), [DetectionKind.PERIMETER_BREACH], T0 + WINDOW + timedelta(seconds=1), WINDOW
    )


@pytest.mark.parametrize("status", [AlertStatus.RESOLVED, AlertStatus.FALSE_ALARM])
def test_a_closed_alert_absorbs_nothing(status: AlertStatus) -> None:
    assert not rules.absorbs(alert(status), [DetectionKind.PERIMETER_BREACH], T0, WINDOW)


def test_a_panic_press_joins_any_open_alert_at_the_site_and_detections_join_a_panic_alert() -> None:
    assert rules.absorbs(alert(), [], T0 + timedelta(minutes=1), WINDOW, panic=True)
    panic_alert = alert(trigger=AlertTrigger.PANIC_BUTTON, detection_kinds=())
    assert rules.absorbs(panic_alert, [DetectionKind.LOITERING], T0 + timedelta(minutes=1), WINDOW)


def test_merging_never_lowers_the_level_and_accumulates_reasons() -> None:
    open_alert = alert(level=RiskLevel.CRITICAL)
    merged = rules.merge(
        open_alert,
        assessment(RiskLevel.HIGH, DetectionKind.LOITERING, reasons=("loitering at main gate",)),
        T0 + timedelta(minutes=2),
    )
    assert merged.level is RiskLevel.CRITICAL
    assert merged.reasons == (*open_alert.reasons, "loitering at main gate")
    assert merged.detection_kinds == (*open_alert.detection_kinds, DetectionKind.LOITERING)
    assert merged.occurrences == 2
    assert merged.last_detected_at == T0 + timedelta(minutes=2)


def test_merging_raises_the_level_when_things_get_worse() -> None:
    merged = rules.merge(alert(), assessment(RiskLevel.CRITICAL, DetectionKind.WEAPON), T0)
    assert merged.level is RiskLevel.CRITICAL


# --- lifecycle -----------------------------------------------------------------------------------


def test_the_happy_path_through_the_lifecycle() -> None:
    rules.check_acknowledge(alert(AlertStatus.RAISED))
    assert rules.status_after_dispatch(alert(AlertStatus.ACKNOWLEDGED)) is AlertStatus.DISPATCHED
    dispatched = alert(AlertStatus.DISPATCHED, units=(unit(UnitKind.POLICE_STATION, UnitStatus.EN_ROUTE),))
    assert rules.status_after_unit_step(dispatched, UnitStatus.ARRIVED) is AlertStatus.ON_SCENE
    assert rules.check_close(alert(AlertStatus.ON_SCENE), AlertOutcome.RESOLVED) is AlertStatus.RESOLVED


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (AlertStatus.ACKNOWLEDGED, "acknowledge"),
        (AlertStatus.RAISED, "dispatch"),  # skips acknowledgement
        (AlertStatus.RESOLVED, "dispatch"),
        (AlertStatus.RAISED, "resolve"),  # skips everything
        (AlertStatus.ACKNOWLEDGED, "resolve"),  # nobody went there
        (AlertStatus.DISPATCHED, "resolve"),  # nobody arrived yet
        (AlertStatus.RAISED, "false_alarm"),  # nobody looked
        (AlertStatus.FALSE_ALARM, "false_alarm"),
    ],
)
def test_skipping_or_repeating_a_step_is_refused(status: AlertStatus, action: str) -> None:
    actions: dict[str, Callable[[Alert], object]] = {
        "acknowledge": rules.check_acknowledge,
        "dispatch": rules.check_dispatch,
        "resolve": lambda a: rules.check_close(a, AlertOutcome.RESOLVED),
        "false_alarm": lambda a: rules.check_close(a, AlertOutcome.FALSE_ALARM),
    }
    with pytest.raises(FailedPreconditionError):
        actions[action](alert(status))


@pytest.mark.parametrize("status", [AlertStatus.ACKNOWLEDGED, AlertStatus.DISPATCHED, AlertStatus.ON_SCENE])
def test_a_false_alarm_may_be_declared_once_someone_has_looked(status: AlertStatus) -> None:
    assert rules.check_close(alert(status), AlertOutcome.FALSE_ALARM) is AlertStatus.FALSE_ALARM


def test_reinforcements_keep_the_status() -> None:
    assert rules.status_after_dispatch(alert(AlertStatus.ON_SCENE)) is AlertStatus.ON_SCENE


@pytest.mark.parametrize(
    ("current", "wanted", "allowed"),
    [
        (UnitStatus.NOTIFIED, UnitStatus.EN_ROUTE, True),
        (UnitStatus.EN_ROUTE, UnitStatus.ARRIVED, True),
        (UnitStatus.ARRIVED, UnitStatus.DONE, True),
        (UnitStatus.NOTIFIED, UnitStatus.ARRIVED, False),
        (UnitStatus.EN_ROUTE, UnitStatus.DONE, False),
        (UnitStatus.DONE, UnitStatus.DONE, False),
        (UnitStatus.ARRIVED, UnitStatus.EN_ROUTE, False),
    ],
)
def test_units_move_one_step_at_a_time(current: UnitStatus, wanted: UnitStatus, allowed: bool) -> None:
    subject = unit(UnitKind.PATROL_SWAT, current)
    on_scene = alert(AlertStatus.ON_SCENE, units=(subject,))
    if allowed:
        rules.check_unit_step(on_scene, subject, wanted)
    else:
        with pytest.raises(FailedPreconditionError):
            rules.check_unit_step(on_scene, subject, wanted)


def test_units_of_a_closed_alert_cannot_move() -> None:
    subject = unit(UnitKind.PATROL_SWAT, UnitStatus.ARRIVED)
    with pytest.raises(FailedPreconditionError):
        rules.check_unit_step(alert(AlertStatus.RESOLVED, units=(subject,)), subject, UnitStatus.DONE)


# --- joint response ------------------------------------------------------------------------------


def test_two_kinds_of_outside_units_on_scene_make_a_joint_response() -> None:
    units = [unit(UnitKind.POLICE_STATION, arrived=True), unit(UnitKind.POLICE_DRONE, arrived=True)]
    assert rules.is_joint_response(AlertOutcome.RESOLVED, units)


def test_one_kind_or_units_that_never_arrived_are_not_a_joint_response() -> None:
    assert not rules.is_joint_response(AlertOutcome.RESOLVED, [unit(UnitKind.POLICE_STATION, arrived=True)])
    assert not rules.is_joint_response(
        AlertOutcome.RESOLVED, [unit(UnitKind.POLICE_STATION, arrived=True), unit(UnitKind.PATROL_SWAT)]
    )


def test_the_sites_own_guards_do_not_make_a_response_joint() -> None:
    units = [unit(UnitKind.POLICE_STATION, arrived=True), unit(UnitKind.SITE_GUARDS, arrived=True)]
    assert not rules.is_joint_response(AlertOutcome.RESOLVED, units)


def test_a_false_alarm_is_never_a_joint_response() -> None:
    units = [unit(UnitKind.POLICE_STATION, arrived=True), unit(UnitKind.POLICE_DRONE, arrived=True)]
    assert not rules.is_joint_response(AlertOutcome.FALSE_ALARM, units)
