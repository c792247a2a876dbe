"""The kitchen service's proto <-> domain translation: the only modules that build or read *_pb2
messages (responses and events). One module per family; shared pieces (kitchens, alerts, enums every
family uses) here."""

from __future__ import annotations

from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.domain.model import AlertKind, GeoPoint, Kitchen, KitchenAlert, OperatorKind, Severity
from services.platform.protoconv import EnumMap
from services.platform.protoconv import optional_timestamp as ts

__all__ = [
    "ALERT_KIND",
    "OPERATOR_KIND",
    "SEVERITY",
    "alert_pb",
    "geo_of",
    "geo_pb",
    "kitchen_pb",
]

OPERATOR_KIND = EnumMap(OperatorKind, kitchen_pb2.OperatorKind, "OPERATOR_KIND")
ALERT_KIND = EnumMap(AlertKind, kitchen_pb2.AlertKind, "ALERT_KIND")
SEVERITY = EnumMap(Severity, common_pb2.Severity, "SEVERITY")


def geo_pb(point: GeoPoint | None) -> common_pb2.GeoPoint | None:
    return None if point is None else common_pb2.GeoPoint(latitude=point.latitude, longitude=point.longitude)


def geo_of(message: common_pb2.GeoPoint, present: bool) -> GeoPoint | None:
    return GeoPoint(message.latitude, message.longitude) if present else None


def kitchen_pb(kitchen: Kitchen) -> kitchen_pb2.Kitchen:
    return kitchen_pb2.Kitchen(
        kitchen_id=kitchen.kitchen_id,
        site_id=kitchen.site_id,
        name=kitchen.name,
        operator=kitchen_pb2.KitchenOperator(
            kind=OPERATOR_KIND.to_proto(kitchen.operator.kind),
            name=kitchen.operator.name,
            credit_code=kitchen.operator.credit_code,
        ),
        meals_per_day=kitchen.meals_per_day,
        location=geo_pb(kitchen.location),
        town=kitchen.town,
        division_code=kitchen.division_code,
        shifts=[
            kitchen_pb2.Shift(name=s.name, start_time=s.start_time, end_time=s.end_time)
            for s in kitchen.shifts
        ],
        commitment=kitchen.commitment,
        registered_at=ts(kitchen.registered_at),
    )


def alert_pb(alert: KitchenAlert) -> kitchen_pb2.KitchenAlert:
    return kitchen_pb2.KitchenAlert(
        alert_id=alert.alert_id,
        kitchen_id=alert.kitchen_id,
        kind=ALERT_KIND.to_proto(alert.kind),
        severity=SEVERITY.to_proto(alert.severity),
        subject_id=alert.subject_id,
        message=alert.message,
        raised_at=ts(alert.raised_at),
        cleared_at=ts(alert.cleared_at),
    )
