"""Conversions between protobuf well-known types and Python values that every servicer needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cityhub.common.v1 import common_pb2
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["datetime_of", "optional_timestamp", "time_range", "to_timestamp"]


def to_timestamp(moment: datetime) -> Timestamp:
    """A Timestamp for an aware datetime (any zone; stored as UTC)."""
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def optional_timestamp(moment: datetime | None) -> Timestamp | None:
    """As :func:`to_timestamp`, with None left unset in the message."""
    return None if moment is None else to_timestamp(moment)


def datetime_of(message: Any, field: str) -> datetime | None:
    """The aware UTC datetime in ``message.<field>``, or None when the field is not set (proto3 presence)."""
    if not message.HasField(field):
        return None
    return getattr(message, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def time_range(period: common_pb2.TimeRange) -> tuple[datetime | None, datetime | None]:
    """The (start, end) of a TimeRange; an unset bound is None (open)."""
    return datetime_of(period, "start_time"), datetime_of(period, "end_time")
