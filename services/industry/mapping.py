"""Translation between the industry domain and its contract: the only module that builds or reads
``*_pb2`` messages (commands from requests, responses, events). Incoming enums are translated leniently:
UNSPECIFIED or a value this build does not know becomes ``None``, which the commands' checks then name."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import events_pb2, industry_pb2, telemetry_pb2

from services.industry.domain import commands
from services.industry.domain.model import (
    DEFAULT_SAMPLE_INTERVAL_MS,
    Alert,
    AlertKind,
    CycleStats,
    Device,
    DeviceState,
    DeviceStatus,
    Enterprise,
    Granularity,
    MachineType,
    OrderStage,
    Park,
    Sector,
    Severity,
    Subject,
)
from services.industry.domain.orders import OrderView
from services.industry.domain.telemetry import STATE_OF_CODE, DeviceProfile, Rejection, RejectionReason
from services.industry.domain.utilisation import Change, Totals
from services.industry.domain.workshops import WorkshopCoverage
from services.platform.protoconv import EnumMap, datetime_of, time_range, to_timestamp
from services.platform.protoconv import optional_timestamp as ts

SECTOR = EnumMap(Sector, industry_pb2.Sector, "SECTOR")
MACHINE_TYPE = EnumMap(MachineType, industry_pb2.MachineType, "MACHINE_TYPE")
ORDER_STAGE = EnumMap(OrderStage, industry_pb2.OrderStage, "ORDER_STAGE")
DEVICE_STATE = EnumMap(DeviceState, telemetry_pb2.DeviceState, "DEVICE_STATE")
ALERT_KIND = EnumMap(AlertKind, industry_pb2.DeviceAlertKind, "DEVICE_ALERT_KIND")
SEVERITY = EnumMap(Severity, common_pb2.Severity, "SEVERITY")
REJECTION_REASON = EnumMap(RejectionReason, industry_pb2.RejectionReason, "REJECTION_REASON")
GRANULARITY = EnumMap(Granularity, industry_pb2.Granularity, "GRANULARITY")


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# --- requests -> commands -------------------------------------------------------------------------------


def register_park(request: industry_pb2.RegisterParkRequest) -> commands.RegisterPark:
    return commands.RegisterPark(request.request_id, request.name, request.division_code, request.address)


def onboard_enterprise(request: industry_pb2.OnboardEnterpriseRequest) -> commands.OnboardEnterprise:
    return commands.OnboardEnterprise(
        request_id=request.request_id,
        credit_code=request.credit_code,
        name=request.name,
        sector=SECTOR.from_proto(request.sector),
        park_id=request.park_id,
        address=request.address,
    )


def register_device(request: industry_pb2.RegisterDeviceRequest) -> commands.RegisterDevice:
    return commands.RegisterDevice(
        request_id=request.request_id,
        serial_number=request.serial_number,
        credit_code=request.credit_code,
        workshop=request.workshop.strip(),
        machine_type=MACHINE_TYPE.from_proto(request.machine_type),
        rated_power_kw=request.rated_power_kw,
        ideal_cycle_seconds=request.ideal_cycle_seconds,
        sample_interval_ms=request.sample_interval_ms or DEFAULT_SAMPLE_INTERVAL_MS,
    )


def list_devices(request: industry_pb2.ListDevicesRequest) -> commands.ListDevices:
    return commands.ListDevices(request.credit_code, request.workshop, request.park_id)


def subject(message: industry_pb2.UtilisationSubject) -> Subject:
    which = message.WhichOneof("subject")
    if which == "device_id":
        return Subject(device_id=message.device_id)
    if which == "workshop":
        return Subject(credit_code=message.workshop.credit_code, workshop=message.workshop.workshop)
    if which == "credit_code":
        return Subject(credit_code=message.credit_code)
    if which == "park_id":
        return Subject(park_id=message.park_id)
    return Subject()


def utilisation_query(request: industry_pb2.GetUtilisationRequest) -> commands.UtilisationQuery:
    return commands.UtilisationQuery(
        subject(request.subject),
        time_range(request.period),
        GRANULARITY.from_proto(request.granularity),
        request.time_zone,
    )


def compare_utilisation(request: industry_pb2.CompareUtilisationRequest) -> commands.CompareUtilisation:
    return commands.CompareUtilisation(
        subject(request.subject),
        time_range(request.base_period, path="base_period"),
        time_range(request.compare_period, path="compare_period"),
    )


def create_order(request: industry_pb2.CreateOrderRequest) -> commands.CreateOrder:
    return commands.CreateOrder(
        request_id=request.request_id,
        credit_code=request.credit_code,
        customer=request.customer.strip(),
        product=request.product.strip(),
        customisation=request.customisation,
        promised_date=request.promised_date,
        ordered_at=datetime_of(request, "ordered_at"),
    )


def advance_order(request: industry_pb2.AdvanceOrderRequest) -> commands.AdvanceOrder:
    return commands.AdvanceOrder(
        request.order_id,
        ORDER_STAGE.from_proto(request.stage),
        datetime_of(request, "occurred_at"),
        request_id=request.request_id,
    )


def cycle_stats_query(request: industry_pb2.GetDeliveryCycleStatsRequest) -> commands.CycleStatsQuery:
    return commands.CycleStatsQuery(request.credit_code, time_range(request.period))


def compare_cycles(request: industry_pb2.CompareDeliveryCycleRequest) -> commands.CompareCycles:
    return commands.CompareCycles(
        request.credit_code,
        time_range(request.base_period, path="base_period"),
        time_range(request.compare_period, path="compare_period"),
    )


def digital_workshops_query(
    request: industry_pb2.ListDigitalWorkshopsRequest,
) -> commands.DigitalWorkshopsQuery:
    return commands.DigitalWorkshopsQuery(request.park_id, request.digital_only)


# --- responses ------------------------------------------------------------------------------------------


def page(next_token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


def park_pb(park: Park) -> industry_pb2.Park:
    return industry_pb2.Park(
        park_id=park.park_id,
        name=park.name,
        division_code=park.division_code,
        address=park.address,
        registered_at=ts(park.registered_at),
    )


def enterprise_pb(enterprise: Enterprise) -> industry_pb2.Enterprise:
    return industry_pb2.Enterprise(
        credit_code=enterprise.credit_code,
        name=enterprise.name,
        sector=SECTOR.to_proto(enterprise.sector),
        park_id=enterprise.park_id or "",
        address=enterprise.address,
        onboarded_at=ts(enterprise.onboarded_at),
    )


def device_pb(device: Device, status: DeviceStatus | None = None) -> industry_pb2.Device:
    return industry_pb2.Device(
        device_id=device.device_id,
        serial_number=device.serial_number,
        credit_code=device.credit_code,
        park_id=device.park_id or "",
        workshop=device.workshop,
        machine_type=MACHINE_TYPE.to_proto(device.machine_type),
        rated_power_kw=device.rated_power_kw,
        ideal_cycle_seconds=device.ideal_cycle_seconds,
        sample_interval_ms=device.sample_interval_ms,
        registered_at=ts(device.registered_at),
        state=DEVICE_STATE.to_proto(status.state if status else None),
        last_sample_at=ts(status.last_sample_at) if status else None,
        reporting=status.reporting if status else False,
    )


def rejection_pb(rejection: Rejection) -> industry_pb2.RejectedSample:
    return industry_pb2.RejectedSample(
        index=rejection.index,
        device_id=rejection.device_id,
        reason=REJECTION_REASON.to_proto(rejection.reason),
        field=rejection.field,
        description=rejection.description,
    )


def ingest_response(
    accepted: int, rejections: Sequence[Rejection], duplicates: int
) -> industry_pb2.IngestTelemetryResponse:
    return industry_pb2.IngestTelemetryResponse(
        accepted_count=accepted,
        rejected_count=len(rejections),
        rejections=[rejection_pb(r) for r in rejections],
        duplicate_count=duplicates,
    )


def ingest_digest(request: industry_pb2.IngestTelemetryRequest) -> str:
    """What identifies an ingest request's content for the request log: a hash of its bytes (re-serialized
    deterministically, ~0.1 us a sample; a field-by-field fingerprint of 20,000 samples would cost far
    more). The request id is part of it, which is harmless: a replay carries the same id by definition."""
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


def figures_pb(totals: Totals) -> industry_pb2.UtilisationFigures:
    return industry_pb2.UtilisationFigures(
        running_seconds=totals.running_ms / 1000,
        idle_seconds=totals.idle_ms / 1000,
        stopped_seconds=totals.stopped_ms / 1000,
        fault_seconds=totals.fault_ms / 1000,
        planned_seconds=totals.planned_ms / 1000,
        good_count=totals.good_count,
        reject_count=totals.reject_count,
        ideal_seconds=totals.ideal_ms / 1000,
        availability=totals.availability,
        performance=totals.performance,
        quality=totals.quality,
        oee=totals.oee,
    )


def bucket_pb(start: datetime, end: datetime, totals: Totals) -> industry_pb2.UtilisationBucket:
    return industry_pb2.UtilisationBucket(start_at=ts(start), end_at=ts(end), figures=figures_pb(totals))


def change_pb(change: Change) -> industry_pb2.UtilisationChange:
    return industry_pb2.UtilisationChange(
        availability=change.availability,
        performance=change.performance,
        quality=change.quality,
        oee=change.oee,
        running_seconds=change.running,
        good_count=change.good_count,
    )


def alert_pb(alert: Alert) -> industry_pb2.DeviceAlert:
    return industry_pb2.DeviceAlert(
        alert_id=alert.alert_id,
        device_id=alert.device_id,
        credit_code=alert.credit_code,
        park_id=alert.park_id or "",
        kind=ALERT_KIND.to_proto(alert.kind),
        severity=SEVERITY.to_proto(alert.severity),
        raised_at=ts(alert.raised_at),
        cleared_at=ts(alert.cleared_at),
    )


def order_pb(view: OrderView) -> industry_pb2.Order:
    order = view.order
    return industry_pb2.Order(
        order_id=order.order_id,
        credit_code=order.credit_code,
        customer=order.customer,
        product=order.product,
        customisation=order.customisation,
        promised_date=order.promised_date.isoformat(),
        stage=ORDER_STAGE.to_proto(order.stage),
        ordered_at=ts(order.ordered_at),
        stage_times=[
            industry_pb2.StageTime(stage=ORDER_STAGE.to_proto(stage), entered_at=ts(at))
            for stage, at in order.stage_times
        ],
        late=view.late,
        delivery_cycle_days=view.delivery_cycle_days,
    )


def stats_pb(stats: CycleStats) -> industry_pb2.DeliveryCycleStats:
    return industry_pb2.DeliveryCycleStats(
        delivered_count=stats.delivered_count,
        mean_days=stats.mean_days,
        p50_days=stats.p50_days,
        p90_days=stats.p90_days,
        p95_days=stats.p95_days,
        min_days=stats.min_days,
        max_days=stats.max_days,
        late_count=stats.late_count,
    )


def workshop_pb(coverage: WorkshopCoverage, digital: bool) -> industry_pb2.DigitalWorkshop:
    return industry_pb2.DigitalWorkshop(
        workshop=industry_pb2.WorkshopRef(credit_code=coverage.credit_code, workshop=coverage.workshop),
        park_id=coverage.park_id or "",
        device_count=coverage.device_count,
        reporting_count=coverage.reporting_count,
        reporting_share=coverage.share,
        digital=digital,
    )


# --- events ---------------------------------------------------------------------------------------------


def park_registered(park: Park) -> events_pb2.ParkRegistered:
    return events_pb2.ParkRegistered(
        park_id=park.park_id, division_code=park.division_code, registered_at=ts(park.registered_at)
    )


def enterprise_onboarded(enterprise: Enterprise) -> events_pb2.EnterpriseOnboarded:
    return events_pb2.EnterpriseOnboarded(
        credit_code=enterprise.credit_code,
        sector=SECTOR.to_proto(enterprise.sector),
        park_id=enterprise.park_id or "",
        division_code=enterprise.division_code,
        onboarded_at=ts(enterprise.onboarded_at),
    )


def device_registered(device: Device) -> events_pb2.DeviceRegistered:
    return events_pb2.DeviceRegistered(
        device_id=device.device_id,
        credit_code=device.credit_code,
        park_id=device.park_id or "",
        workshop=device.workshop,
        machine_type=MACHINE_TYPE.to_proto(device.machine_type),
        rated_power_kw=device.rated_power_kw,
        ideal_cycle_seconds=device.ideal_cycle_seconds,
        sample_interval_ms=device.sample_interval_ms,
        registered_at=ts(device.registered_at),
    )


def device_state_changed(
    device: DeviceProfile, previous_code: int, state_code: int, at_ms: int
) -> events_pb2.DeviceStateChanged:
    """From the wire's state codes (0: none before)."""
    return events_pb2.DeviceStateChanged(
        device_id=device.device_id,
        credit_code=device.credit_code,
        park_id=device.park_id or "",
        previous_state=DEVICE_STATE.to_proto(STATE_OF_CODE.get(previous_code)),
        state=DEVICE_STATE.to_proto(STATE_OF_CODE.get(state_code)),
        changed_at=to_timestamp(_ms_to_dt(at_ms)),
    )


def alert_raised(
    alert_id: str,
    device: DeviceProfile,
    kind: AlertKind,
    *,
    severity: Severity,
    since: datetime,
    at: datetime,
) -> events_pb2.DeviceAlertRaised:
    return events_pb2.DeviceAlertRaised(
        alert_id=alert_id,
        device_id=device.device_id,
        credit_code=device.credit_code,
        park_id=device.park_id or "",
        kind=ALERT_KIND.to_proto(kind),
        severity=SEVERITY.to_proto(severity),
        raised_at=ts(at),
        condition_since_at=ts(since),
    )


def alert_cleared(
    alert_id: str, device: DeviceProfile, kind: AlertKind, raised_at: datetime, cleared_at: datetime
) -> events_pb2.DeviceAlertCleared:
    return events_pb2.DeviceAlertCleared(
        alert_id=alert_id,
        device_id=device.device_id,
        credit_code=device.credit_code,
        park_id=device.park_id or "",
        kind=ALERT_KIND.to_proto(kind),
        raised_at=ts(raised_at),
        cleared_at=ts(max(cleared_at, raised_at)),
    )


def order_stage_changed(
    view: OrderView, previous: OrderStage | None, at: datetime
) -> events_pb2.OrderStageChanged:
    order = view.order
    return events_pb2.OrderStageChanged(
        order_id=order.order_id,
        credit_code=order.credit_code,
        previous_stage=ORDER_STAGE.to_proto(previous),
        stage=ORDER_STAGE.to_proto(order.stage),
        changed_at=ts(at),
        ordered_at=ts(order.ordered_at),
        promised_date=order.promised_date.isoformat(),
        delivery_cycle_days=view.delivery_cycle_days,
        late=view.late,
    )


def utilisation_rolled_up(
    device_id: str, device: DeviceProfile | None, hour_start: datetime, totals: Totals
) -> events_pb2.UtilisationRolledUp:
    return events_pb2.UtilisationRolledUp(
        device_id=device_id,
        credit_code=device.credit_code if device else "",
        park_id=(device.park_id or "") if device else "",
        workshop=device.workshop if device else "",
        hour_started_at=ts(hour_start),
        figures=figures_pb(totals),
    )


# --- telemetry records ----------------------------------------------------------------------------------

TELEMETRY_BATCH_TYPE = telemetry_pb2.TelemetryBatch.DESCRIPTOR.full_name


def telemetry_batch(message: object) -> telemetry_pb2.TelemetryBatch | None:
    """The record as a TelemetryBatch, None when it is something else."""
    return message if isinstance(message, telemetry_pb2.TelemetryBatch) else None
