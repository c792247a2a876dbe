"""Translation between the domain's values and the contract's messages: requests into commands (for the
servicer), domain records into responses (for the servicer) and events (for the use cases). The only
module that reads or builds ``*_pb2`` messages. Incoming enums are translated leniently: UNSPECIFIED or a
value this build does not know becomes ``None``, which the domain's checks then name as a bad field."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import events_pb2, safety_pb2

from services.platform.errors import InvalidArgumentError, Violations
from services.platform.paging import Page, page_of
from services.platform.protoconv import EnumMap, datetime_of, time_range
from services.platform.protoconv import optional_timestamp as ts
from services.platform.validation import check_query_period
from services.safety.domain.commands import (
    Acknowledge,
    Dispatch,
    FindingInput,
    RaiseAlarm,
    RecordInspection,
    RecordPerson,
    RecordPurchase,
    RecordVehicle,
    RegisterSensor,
    RegisterSite,
    RemoveVehicle,
    ReportDetections,
    ReportedDetection,
    Resolve,
    StatisticsQuery,
    UnitInput,
    UpdateUnit,
)
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
    VehicleRecord,
)
from services.safety.domain.risk import Assessment
from services.safety.domain.statistics import Figures

if TYPE_CHECKING:  # the use cases import this module for their events
    from services.safety.usecases.detections import SiteAssessment

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


# --- requests -------------------------------------------------------------------------------------


def page(request: common_pb2.PageRequest) -> Page:
    return page_of(request.page_size, request.page_token)


def register_site(request: safety_pb2.RegisterSiteRequest) -> RegisterSite:
    has_location = request.HasField("location")
    return RegisterSite(
        request_id=request.request_id,
        name=request.name,
        kind=SITE_KIND.from_proto(request.kind),
        address=request.address,
        division_code=request.division_code,
        town=request.town,
        latitude=request.location.latitude if has_location else None,
        longitude=request.location.longitude if has_location else None,
        duty_room_name=request.duty_room.name,
        duty_room_phone=request.duty_room.phone,
    )


def register_sensor(request: safety_pb2.RegisterSensorRequest) -> RegisterSensor:
    return RegisterSensor(
        request_id=request.request_id,
        site_id=request.site_id,
        kind=SENSOR_KIND.from_proto(request.kind),
        zone=request.zone,
        name=request.name,
        device_code=request.device_code,
    )


def record_person(request: safety_pb2.RecordPersonRequest) -> RecordPerson:
    return RecordPerson(
        request_id=request.request_id,
        identity_number=request.identity_number,
        name=request.name,
        risk_flags=tuple(RISK_FLAG.from_proto(f) for f in request.risk_flags),
    )


def record_purchase(request: safety_pb2.RecordHazardousPurchaseRequest) -> RecordPurchase:
    return RecordPurchase(
        request_id=request.request_id,
        person_token=request.person_token,
        item=HAZARDOUS_ITEM.from_proto(request.item),
        description=request.description,
        quantity=request.quantity,
        unit=request.unit,
        purchased_at=datetime_of(request, "purchased_at"),
        place=request.place,
    )


def record_vehicle(request: safety_pb2.RecordVehicleOfConcernRequest) -> RecordVehicle:
    return RecordVehicle(
        request_id=request.request_id, plate=request.plate, person_token=request.person_token
    )


def remove_vehicle(request: safety_pb2.RemoveVehicleOfConcernRequest) -> RemoveVehicle:
    return RemoveVehicle(request_id=request.request_id, vehicle_token=request.vehicle_token)


def report_detections(request: safety_pb2.ReportDetectionsRequest) -> ReportDetections:
    return ReportDetections(
        request_id=request.request_id,
        detections=tuple(
            ReportedDetection(
                sensor_id=d.sensor_id,
                kind=DETECTION_KIND.from_proto(d.kind),
                detected_at=datetime_of(d, "detected_at", path=f"detections[{index}].detected_at"),
                confidence=d.confidence,
                snapshot_ref=d.snapshot_ref,
                label=d.label,
                person_token=d.person_token,
                plate=d.plate,
            )
            for index, d in enumerate(request.detections)
        ),
    )


def raise_alarm(request: safety_pb2.RaiseAlarmRequest) -> RaiseAlarm:
    return RaiseAlarm(
        request_id=request.request_id,
        site_id=request.site_id,
        sensor_id=request.sensor_id,
        pressed_at=datetime_of(request, "pressed_at"),
        note=request.note,
    )


def alert_statuses(numbers: Iterable[int]) -> list[AlertStatus]:
    """ListAlerts' status filter; an unknown value is a bad field, not "no filter"."""
    statuses: list[AlertStatus] = []
    for index, number in enumerate(numbers):
        status = ALERT_STATUS.from_proto(number)
        if status is None:
            raise InvalidArgumentError.of(f"statuses[{index}]", "is not a known alert status")
        statuses.append(status)
    return statuses


def raised_between(request: safety_pb2.ListAlertsRequest) -> tuple[datetime | None, datetime | None]:
    """ListAlerts' period: open ends allowed, a given end within the platform's query range."""
    start, end = time_range(request.raised, path="raised")
    v = Violations()
    check_query_period(v, "raised", start, end, required=False)
    v.check()
    return start, end


def acknowledge(request: safety_pb2.AcknowledgeAlertRequest) -> Acknowledge:
    return Acknowledge(request_id=request.request_id, alert_id=request.alert_id, note=request.note)


def dispatch(request: safety_pb2.DispatchUnitsRequest) -> Dispatch:
    return Dispatch(
        request_id=request.request_id,
        alert_id=request.alert_id,
        units=tuple(UnitInput(UNIT_KIND.from_proto(u.kind), u.name) for u in request.units),
    )


def update_unit(request: safety_pb2.UpdateUnitStatusRequest) -> UpdateUnit:
    return UpdateUnit(
        request_id=request.request_id,
        alert_id=request.alert_id,
        unit_id=request.unit_id,
        status=UNIT_STATUS.from_proto(request.status),
    )


def resolve(request: safety_pb2.ResolveAlertRequest) -> Resolve:
    return Resolve(
        request_id=request.request_id,
        alert_id=request.alert_id,
        outcome=ALERT_OUTCOME.from_proto(request.outcome),
        note=request.note,
    )


def record_inspection(request: safety_pb2.RecordInspectionRequest) -> RecordInspection:
    return RecordInspection(
        request_id=request.request_id,
        site_id=request.site_id,
        method=INSPECTION_METHOD.from_proto(request.method),
        inspector=request.inspector,
        inspected_at=datetime_of(request, "inspected_at"),
        sensor_id=request.sensor_id,
        summary=request.summary,
        findings=tuple(
            FindingInput(f.category, f.description, severity_name(f.severity)) for f in request.findings
        ),
    )


_BUCKETS: dict[int, str | None] = {
    safety_pb2.STATISTICS_BUCKET_UNSPECIFIED: None,
    safety_pb2.STATISTICS_BUCKET_DAY: "day",
    safety_pb2.STATISTICS_BUCKET_MONTH: "month",
}


def statistics_query(request: safety_pb2.GetStatisticsRequest) -> StatisticsQuery:
    if request.bucket not in _BUCKETS:
        raise InvalidArgumentError.of("bucket", "is not a known bucket")
    start, end = time_range(request.period)
    return StatisticsQuery(site_id=request.site_id, start=start, end=end, bucket=_BUCKETS[request.bucket])


# --- responses ------------------------------------------------------------------------------------


def page_response(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token, total_size=-1)


def assessment_pb(assessment: SiteAssessment) -> safety_pb2.RiskAssessment:
    return safety_pb2.RiskAssessment(
        site_id=assessment.site_id,
        level=RISK_LEVEL.to_proto(assessment.level),
        reasons=list(assessment.reasons),
        alert_id=assessment.alert_id,
        alert_raised=assessment.alert_raised,
        assessed_at=ts(assessment.assessed_at),
    )


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
        # Detection.plate stays empty: the plate read is kept only as its token.
        vehicle_token=detection.vehicle_token,
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
                occurred_at=ts(e.at), kind=TIMELINE_KIND.to_proto(e.kind), actor=e.actor, detail=e.detail
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


def vehicle_pb(vehicle: VehicleRecord) -> safety_pb2.VehicleOfConcern:
    return safety_pb2.VehicleOfConcern(
        vehicle_token=vehicle.vehicle_token,
        plate=vehicle.plate,
        person_token=vehicle.person_token,
        recorded_at=ts(vehicle.recorded_at),
        updated_at=ts(vehicle.updated_at),
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
