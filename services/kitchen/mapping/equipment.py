"""Proto <-> domain for the equipment family: units, limits, days, reading batches and the events the
readings rules publish (no person data in any of them: these are machines)."""

from __future__ import annotations

from datetime import date, datetime

from cityhub.kitchen.v1 import events_pb2, kitchen_pb2, readings_pb2

from services.kitchen.domain.equipment import (
    Equipment,
    EquipmentDay,
    EquipmentKind,
    EquipmentLimits,
    EquipmentStatus,
    LimitOverrides,
    Reading,
    ReadingInput,
)
from services.kitchen.domain.model import AlertKind
from services.kitchen.mapping import ALERT_KIND
from services.platform.errors import InvalidArgumentError
from services.platform.protoconv import EnumMap, datetime_of, to_timestamp
from services.platform.protoconv import optional_timestamp as ts

__all__ = [
    "EQUIPMENT_KIND",
    "EQUIPMENT_STATUS",
    "READING_BATCH_TYPE",
    "cold_chain_alert_cleared",
    "cold_chain_alert_raised",
    "equipment_day_pb",
    "equipment_offline",
    "equipment_pb",
    "equipment_violation_found",
    "limits_pb",
    "overrides_of",
    "reading_batch",
    "reading_input",
    "reading_of",
]

EQUIPMENT_KIND = EnumMap(EquipmentKind, kitchen_pb2.EquipmentKind, "EQUIPMENT_KIND")
EQUIPMENT_STATUS = EnumMap(EquipmentStatus, kitchen_pb2.EquipmentStatus, "EQUIPMENT_STATUS")
READING_BATCH_TYPE = readings_pb2.ReadingBatch.DESCRIPTOR.full_name

_OVERRIDABLE = (
    "max_temperature_c",
    "min_temperature_c",
    "alert_after_minutes",
    "clear_after_minutes",
    "hysteresis_c",
    "cycle_min_minutes",
    "cycle_min_temperature_c",
    "uv_daily_min_minutes",
    "offline_after_minutes",
)


def overrides_of(request: kitchen_pb2.RegisterEquipmentRequest) -> LimitOverrides:
    """The limits the request set (proto3 optional: a field is an override only when present)."""
    if not request.HasField("limits"):
        return LimitOverrides()
    limits = request.limits
    return LimitOverrides(
        **{name: getattr(limits, name) for name in _OVERRIDABLE if limits.HasField(name)}  # type: ignore[arg-type]
    )


def limits_pb(limits: EquipmentLimits) -> kitchen_pb2.EquipmentLimits:
    message = kitchen_pb2.EquipmentLimits()
    for name, value in limits.as_json().items():
        setattr(message, name, value)
    return message


def equipment_pb(equipment: Equipment) -> kitchen_pb2.Equipment:
    return kitchen_pb2.Equipment(
        equipment_id=equipment.equipment_id,
        kitchen_id=equipment.kitchen_id,
        kind=EQUIPMENT_KIND.to_proto(equipment.kind),
        name=equipment.name,
        limits=limits_pb(equipment.limits),
        status=EQUIPMENT_STATUS.to_proto(equipment.status),
        last_reading_at=ts(equipment.last_reading_at),
        last_temperature_c=equipment.last_temperature_c or 0.0,
        registered_at=ts(equipment.registered_at),
    )


def equipment_day_pb(day: EquipmentDay) -> kitchen_pb2.EquipmentDay:
    return kitchen_pb2.EquipmentDay(
        equipment_id=day.equipment_id,
        kitchen_id=day.kitchen_id,
        kind=EQUIPMENT_KIND.to_proto(day.kind),
        date=day.day.isoformat(),
        minutes_out_of_range=day.seconds_out_of_range // 60,
        cycles=day.cycles,
        short_cycles=day.short_cycles,
        uv_minutes=day.uv_seconds // 60,
        online_service_minutes=day.online_service_seconds // 60,
        service_minutes=day.service_seconds // 60,
        readings=day.readings,
    )


def reading_input(message: kitchen_pb2.EquipmentReading, index: int) -> ReadingInput:
    """One reading of an ingest request as screening sees it (a read_at that is no timestamp is carried
    as a problem: readings are screened one by one, never refused as a request)."""
    problem = ""
    try:
        read_at = datetime_of(message, "read_at", path=f"readings[{index}].read_at")
    except InvalidArgumentError as error:
        read_at, problem = None, error.violations[0].description
    return ReadingInput(message.equipment_id, read_at, message.temperature_c, message.running, problem)


def reading_of(message: kitchen_pb2.EquipmentReading) -> Reading | None:
    """An accepted reading read back from the readings topic (None: no usable read_at)."""
    try:
        read_at = datetime_of(message, "read_at")
    except InvalidArgumentError:
        return None
    if read_at is None:
        return None
    return Reading(message.equipment_id, read_at, message.temperature_c, message.running)


def reading_batch(
    kitchen_id: str, readings: list[kitchen_pb2.EquipmentReading], request_id: str, received_ms: int
) -> readings_pb2.ReadingBatch:
    return readings_pb2.ReadingBatch(
        kitchen_id=kitchen_id, readings=readings, request_id=request_id, received_unix_ms=received_ms
    )


# --- events ------------------------------------------------------------------------------------------


def cold_chain_alert_raised(
    equipment: Equipment,
    alert_id: str,
    *,
    since: datetime,
    limit_c: float,
    temperature_c: float,
    at: datetime,
) -> events_pb2.ColdChainAlertRaised:
    return events_pb2.ColdChainAlertRaised(
        kitchen_id=equipment.kitchen_id,
        equipment_id=equipment.equipment_id,
        kind=EQUIPMENT_KIND.to_proto(equipment.kind),
        alert_id=alert_id,
        out_of_range_since=to_timestamp(since),
        limit_c=limit_c,
        temperature_c=temperature_c,
        raised_at=to_timestamp(at),
    )


def cold_chain_alert_cleared(
    equipment: Equipment, alert_id: str, *, minutes_out_of_range: int, at: datetime
) -> events_pb2.ColdChainAlertCleared:
    return events_pb2.ColdChainAlertCleared(
        kitchen_id=equipment.kitchen_id,
        equipment_id=equipment.equipment_id,
        alert_id=alert_id,
        minutes_out_of_range=minutes_out_of_range,
        cleared_at=to_timestamp(at),
    )


def equipment_offline(
    equipment: Equipment, alert_id: str, *, last_reading_at: datetime | None, at: datetime
) -> events_pb2.EquipmentOffline:
    return events_pb2.EquipmentOffline(
        kitchen_id=equipment.kitchen_id,
        equipment_id=equipment.equipment_id,
        kind=EQUIPMENT_KIND.to_proto(equipment.kind),
        alert_id=alert_id,
        last_reading_at=ts(last_reading_at),
        at=to_timestamp(at),
    )


def equipment_violation_found(
    equipment: Equipment,
    alert_id: str,
    alert_kind: AlertKind,
    *,
    minutes: int,
    min_temperature_c: float,
    day: date | None,
    at: datetime,
) -> events_pb2.EquipmentViolationFound:
    return events_pb2.EquipmentViolationFound(
        kitchen_id=equipment.kitchen_id,
        equipment_id=equipment.equipment_id,
        kind=EQUIPMENT_KIND.to_proto(equipment.kind),
        alert_kind=ALERT_KIND.to_proto(alert_kind),
        alert_id=alert_id,
        minutes=minutes,
        min_temperature_c=min_temperature_c,
        date=day.isoformat() if day else "",
        at=to_timestamp(at),
    )
