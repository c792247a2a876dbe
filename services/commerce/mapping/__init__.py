"""The commerce service's proto <-> domain translation: the only modules that build or read *_pb2
messages (responses and events). One module per family; the enum maps every family shares live here."""

from __future__ import annotations

from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2

from services.commerce.domain.model import (
    ChamberKind,
    EnterpriseLookup,
    FederationLevel,
    GeoPoint,
    JoinRule,
    MembershipStatus,
    PointSource,
)
from services.platform.protoconv import EnumMap

__all__ = [
    "CHAMBER_KIND",
    "ENTERPRISE_LOOKUP",
    "FEDERATION_LEVEL",
    "JOIN_RULE",
    "MEMBERSHIP_STATUS",
    "POINT_SOURCE",
    "geo_of",
    "geo_pb",
]

FEDERATION_LEVEL = EnumMap(FederationLevel, commerce_pb2.FederationLevel, "FEDERATION_LEVEL")
CHAMBER_KIND = EnumMap(ChamberKind, commerce_pb2.ChamberKind, "CHAMBER_KIND")
JOIN_RULE = EnumMap(JoinRule, commerce_pb2.JoinRule, "JOIN_RULE")
MEMBERSHIP_STATUS = EnumMap(MembershipStatus, commerce_pb2.MembershipStatus, "MEMBERSHIP_STATUS")
ENTERPRISE_LOOKUP = EnumMap(EnterpriseLookup, commerce_pb2.EnterpriseLookup, "ENTERPRISE_LOOKUP")
POINT_SOURCE = EnumMap(PointSource, commerce_pb2.PointSource, "POINT_SOURCE")


def geo_pb(point: GeoPoint | None) -> common_pb2.GeoPoint | None:
    return None if point is None else common_pb2.GeoPoint(latitude=point.latitude, longitude=point.longitude)


def geo_of(message: common_pb2.GeoPoint, present: bool) -> GeoPoint | None:
    return GeoPoint(message.latitude, message.longitude) if present else None
