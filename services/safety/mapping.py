"""Translation between the domain's values and the contract's messages, shared by the servicer
(responses) and the use cases (events). Incoming enums are translated leniently: UNSPECIFIED or a value
this build does not know becomes ``None``, which the domain's checks then name as a bad field."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import events_pb2, safety_pb2

from services.platform.protoconv import EnumMap
from services.platform.protoconv import optional_timestamp as ts
from services.safety.domain.model import (
    Alert,
    AlertChangeKind,
    AlertOutcome,
    AlertStatus,
    AlertTrigger,
    Detection,
    DetectionKind,
    DispatchedUnit,
    HazardousItem,
    Inspection,
    InspectionMethod,
    PersonRecord,
    RiskFlag,
    RiskLevel,
    Sensor,
    SensorKind,
    Site,
    SiteKind,
    TimelineKind,
    UnitKind,
    UnitStatus,
)
from services.safety.domain.risk import Assessment
from services.safety.domain.statistics import Figures

SITE_KIND = EnumMap(SiteKind, safety_pb2.SiteKind, "SITE_KIND")
SENSOR_KIND = EnumMap(SensorKind, safety_pb2.SensorKind, "SENSOR_KIND")
RISK_FLAG = EnumMap(RiskFlag, safety_pb2.RiskFlag, "RISK_FLAG")
HAZARDOUS_ITEM = EnumMap(HazardousItem, safety_pb2.HazardousItem, "HAZARDOUS_ITEM")
DETECTION_KIND = EnumMap(DetectionKind, safety_pb2.DetectionKind, "DETECTION_KIND")
RISK_LEVEL = EnumMap(RiskLevel, safety_pb2.RiskLevel, "RISK_LEVEL")
ALERT_STATUS = EnumMap(AlertStatus, safety_pb2.AlertStatus, "ALERT_STATUS")
ALERT_TRIGGER = EnumMap(AlertTrigger, safety_pb2.AlertTrigger, "ALERT_TRIGGER")
ALERT_OUTCOME = EnumMap(AlertOutcome, safety_pb2.AlertOutcome, "ALERT_OUTCOME")
ALERT_CHANGE = EnumMap(AlertChangeKind, safety_pb2.AlertChange, "ALERT_CHANGE")
UNIT_KIND = EnumMap(UnitKind, safety_pb2.UnitKind, "UNIT_KIND")
UNIT_STATUS = EnumMap(UnitStatus, safety_pb2.UnitStatus, "UNIT_STATUS")
TIMELINE_KIND = EnumMap(TimelineKind, safety_pb2.TimelineEntryKind, "TIMELINE_ENTRY_KIND")
INSPECTION_METHOD = EnumMap(InspectionMethod, safety_pb2.InspectionMethod, "INSPECTION_METHOD")

_SEVERITY_OF_LEVEL = {
    RiskLevel.LOW: common_pb2.SEVERITY_LOW,
    RiskLevel.ELEVATED: common_pb2.SEVERITY_MEDIUM,
    RiskLevel.HIGH: common_pb2.SEVERITY_HIGH,
    RiskLevel.CRITICAL: common_pb2.SEVERITY_CRITICAL,
}


def severity_of(level: RiskLevel) -> Any:
    return _SEVERITY_OF_LEVEL[level]


def severity_name(number: int) -> str | None:
    """``SEVERITY_HIGH`` -> ``"high"``; None for UNSPECIFIED or unknown."""
    if number == 0:
        return None
    try:
        return common_pb2.Severity.Name(number).removeprefix("SEVERITY_").lower()  # type: ignore[arg-type]
    except ValueError:
        return None


def severity_number(name: str) -> Any:
    return common_pb2.Severity.Value(f"SEVERITY_{name.upper()}")


def _location(site: Site) -> common_pb2.GeoPoint | None:
    if site.latitude is None or site.longitude is None:
        return None
    return common_pb2.GeoPoint(latitude=site.latitude, longitude=site.longitude)


def site_pb(site: Site) -> safety_pb2.Site:
    return safety_pb2.Site(
        site_id=site.site_id,
        name=site.name,
        kind=SITE_KIND.to_proto(site.kind),
        address=site.address,
        division_code=site.division_code,
        town=site.town,
        duty_room=safety_pb2.DutyRoomContact(name=site.duty_room_name, phone=site.duty_room_phone),
        registered_at=ts(site.registered_at),
        location=_location(site),
    )


def sensor_pb(sensor: Sensor) -> safety_pb2.Sensor:
    return safety_pb2.Sensor(
        sensor_id=sensor.sensor_id,
        site_id=sensor.site_id,
        kind=SENSOR_KIND.to_proto(sensor.kind),
        zone=sensor.zone,
        name=sensor.name,
        device_code=sensor.device_code,
        registered_at=ts(sensor.registered_at),
    )


def detection_pb(detection: Detection) -> safety_pb2.Detection:
    return safety_pb2.Detection(
        detection_id=detection.detection_id,
        site_id=detection.site_id,
        sensor_id=detection.sensor_id,
        zone=detection.zone,
        kind=DETECTION_KIND.to_proto(detection.kind),
        detected_at=ts(detection.detected_at),
        confidence=detection.confidence,
        snapshot_ref=detection.snapshot_ref,
        label=detection.label,
        person_token=detection.person_token,
        plate=detection.plate,
    )


def unit_pb(unit: DispatchedUnit) -> safety_pb2.DispatchedUnit:
    return safety_pb2.DispatchedUnit(
        unit_id=unit.unit_id,
        kind=UNIT_KIND.to_proto(unit.kind),
        name=unit.name,
        status=UNIT_STATUS.to_proto(unit.status),
        notified_at=ts(unit.notified_at),
        en_route_at=ts(unit.en_route_at),
        arrived_at=ts(unit.arrived_at),
        done_at=ts(unit.done_at),
    )


def alert_pb(alert: Alert) -> safety_pb2.Alert:
    return safety_pb2.Alert(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        site_name=alert.site_name,
        status=ALERT_STATUS.to_proto(alert.status),
        level=RISK_LEVEL.to_proto(alert.level),
        severity=severity_of(alert.level),
        reasons=list(alert.reasons),
        trigger=ALERT_TRIGGER.to_proto(alert.trigger),
        detection_kinds=[DETECTION_KIND.to_proto(k) for k in alert.detection_kinds],
        person_tokens=list(alert.person_tokens),
        occurrences=alert.occurrences,
        raised_at=ts(alert.raised_at),
        acknowledged_at=ts(alert.acknowledged_at),
        dispatched_at=ts(alert.dispatched_at),
        on_scene_at=ts(alert.on_scene_at),
        closed_at=ts(alert.closed_at),
        updated_at=ts(alert.updated_at),
        joint_response=alert.joint_response,
        resolution_note=alert.resolution_note,
        units=[unit_pb(u) for u in alert.units],
        detections=[detection_pb(d) for d in alert.detections],
        timeline=[
            safety_pb2.TimelineEntry(
                at=ts(e.at), kind=TIMELINE_KIND.to_proto(e.kind), actor=e.actor, detail=e.detail
            )
            for e in alert.timeline
        ],
    )


def person_pb(person: PersonRecord) -> safety_pb2.Person:
    return safety_pb2.Person(
        person_token=person.person_token,
        identity_number=person.identity_number,
        name=person.name,
        risk_flags=[RISK_FLAG.to_proto(f) for f in person.risk_flags],
        purchases=[
            safety_pb2.HazardousPurchase(
                purchase_id=p.purchase_id,
                person_token=p.person_token,
                item=HAZARDOUS_ITEM.to_proto(p.item),
                description=p.description,
                quantity=p.quantity,
                unit=p.unit,
                purchased_at=ts(p.purchased_at),
                place=p.place,
            )
            for p in person.purchases
        ],
        recorded_at=ts(person.recorded_at),
        updated_at=ts(person.updated_at),
    )


def inspection_pb(inspection: Inspection) -> safety_pb2.Inspection:
    return safety_pb2.Inspection(
        inspection_id=inspection.inspection_id,
        site_id=inspection.site_id,
        method=INSPECTION_METHOD.to_proto(inspection.method),
        inspector=inspection.inspector,
        inspected_at=ts(inspection.inspected_at),
        sensor_id=inspection.sensor_id,
        summary=inspection.summary,
        findings=[
            safety_pb2.InspectionFinding(
                category=f.category, description=f.description, severity=severity_number(f.severity)
            )
            for f in inspection.findings
        ],
        recorded_at=ts(inspection.recorded_at),
    )


def figures_pb(figures: Figures) -> safety_pb2.SafetyStatistics:
    return safety_pb2.SafetyStatistics(
        site_id=figures.site_id,
        period=common_pb2.TimeRange(start_time=ts(figures.period_start), end_time=ts(figures.period_end)),
        warnings_raised=figures.warnings_raised,
        critical_warnings=figures.critical_warnings,
        joint_responses=figures.joint_responses,
        false_alarms=figures.false_alarms,
        mean_seconds_to_acknowledge=figures.to_acknowledge.value,
        mean_seconds_to_dispatch=figures.to_dispatch.value,
        mean_seconds_to_arrive=figures.to_arrive.value,
    )


# --- events ---------------------------------------------------------------------------------------


def site_registered(site: Site) -> events_pb2.SiteRegistered:
    return events_pb2.SiteRegistered(
        site_id=site.site_id,
        name=site.name,
        kind=SITE_KIND.to_proto(site.kind),
        address=site.address,
        division_code=site.division_code,
        town=site.town,
        registered_at=ts(site.registered_at),
        location=_location(site),
    )


def sensor_registered(sensor: Sensor) -> events_pb2.SensorRegistered:
    return events_pb2.SensorRegistered(
        sensor_id=sensor.sensor_id,
        site_id=sensor.site_id,
        kind=SENSOR_KIND.to_proto(sensor.kind),
        zone=sensor.zone,
        registered_at=ts(sensor.registered_at),
    )


def risk_assessed(
    assessment_id: str,
    site_id: str,
    assessment: Assessment,
    *,
    detection_count: int,
    alert_id: str,
    at: datetime,
) -> events_pb2.RiskAssessed:
    return events_pb2.RiskAssessed(
        assessment_id=assessment_id,
        site_id=site_id,
        level=RISK_LEVEL.to_proto(assessment.level),
        severity=severity_of(assessment.level),
        reasons=list(assessment.reasons),
        detection_kinds=[DETECTION_KIND.to_proto(k) for k in assessment.detection_kinds],
        detection_count=detection_count,
        person_tokens=list(assessment.person_tokens),
        flag_categories=[RISK_FLAG.to_proto(f) for f in assessment.flag_categories],
        alert_id=alert_id,
        assessed_at=ts(at),
    )


def alert_raised(alert: Alert) -> events_pb2.AlertRaised:
    return events_pb2.AlertRaised(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        level=RISK_LEVEL.to_proto(alert.level),
        severity=severity_of(alert.level),
        reasons=list(alert.reasons),
        trigger=ALERT_TRIGGER.to_proto(alert.trigger),
        detection_kinds=[DETECTION_KIND.to_proto(k) for k in alert.detection_kinds],
        person_tokens=list(alert.person_tokens),
        raised_at=ts(alert.raised_at),
    )


def alert_updated(alert: Alert) -> events_pb2.AlertUpdated:
    return events_pb2.AlertUpdated(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        level=RISK_LEVEL.to_proto(alert.level),
        severity=severity_of(alert.level),
        reasons=list(alert.reasons),
        detection_kinds=[DETECTION_KIND.to_proto(k) for k in alert.detection_kinds],
        person_tokens=list(alert.person_tokens),
        occurrences=alert.occurrences,
        updated_at=ts(alert.updated_at),
    )


def alert_acknowledged(alert: Alert, actor: str) -> events_pb2.AlertAcknowledged:
    return events_pb2.AlertAcknowledged(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        acknowledged_by=actor,
        acknowledged_at=ts(alert.acknowledged_at),
    )


def alert_dispatched(
    alert: Alert, units: Iterable[DispatchedUnit], at: datetime
) -> events_pb2.AlertDispatched:
    return events_pb2.AlertDispatched(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        units=[
            events_pb2.DispatchedUnitRef(unit_id=u.unit_id, kind=UNIT_KIND.to_proto(u.kind), name=u.name)
            for u in units
        ],
        alert_status=ALERT_STATUS.to_proto(alert.status),
        dispatched_at=ts(at),
    )


def unit_status_changed(alert: Alert, unit: DispatchedUnit, at: datetime) -> events_pb2.UnitStatusChanged:
    return events_pb2.UnitStatusChanged(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        unit_id=unit.unit_id,
        unit_kind=UNIT_KIND.to_proto(unit.kind),
        status=UNIT_STATUS.to_proto(unit.status),
        alert_status=ALERT_STATUS.to_proto(alert.status),
        changed_at=ts(at),
    )


def alert_resolved(alert: Alert) -> events_pb2.AlertResolved:
    arrived = sorted({u.kind for u in alert.units if u.arrived_at is not None}, key=lambda k: k.value)
    return events_pb2.AlertResolved(
        alert_id=alert.alert_id,
        site_id=alert.site_id,
        outcome=ALERT_OUTCOME.to_proto(alert.outcome),
        joint_response=alert.joint_response,
        arrived_unit_kinds=[UNIT_KIND.to_proto(k) for k in arrived],
        level=RISK_LEVEL.to_proto(alert.level),
        raised_at=ts(alert.raised_at),
        resolved_at=ts(alert.closed_at),
    )


def inspection_recorded(inspection: Inspection) -> events_pb2.InspectionRecorded:
    order = ("info", "low", "medium", "high", "critical")
    worst = max((order.index(f.severity) for f in inspection.findings), default=-1)
    return events_pb2.InspectionRecorded(
        inspection_id=inspection.inspection_id,
        site_id=inspection.site_id,
        method=INSPECTION_METHOD.to_proto(inspection.method),
        finding_count=len(inspection.findings),
        worst_severity=severity_number(order[worst]) if worst >= 0 else common_pb2.SEVERITY_UNSPECIFIED,
        inspected_at=ts(inspection.inspected_at),
    )
