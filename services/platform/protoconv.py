"""Conversions between protobuf well-known types and Python values that every servicer needs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from cityhub.common.v1 import common_pb2
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["EnumMap", "datetime_of", "optional_timestamp", "time_range", "to_timestamp"]


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


E = TypeVar("E", bound=StrEnum)


class EnumMap(Generic[E]):
    """A domain StrEnum <-> a proto enum whose value names are ``<PREFIX>_<MEMBER NAME>``."""

    def __init__(self, domain: type[E], wrapper: Any, prefix: str) -> None:
        self._domain = domain
        self._wrapper = wrapper
        self._prefix = prefix
        known = wrapper.DESCRIPTOR.values_by_name
        missing = [m.name for m in domain if f"{prefix}_{m.name}" not in known]
        if missing:
            raise ValueError(f"{wrapper.DESCRIPTOR.full_name} lacks {missing}")

    def to_proto(self, value: E | None) -> Any:
        return 0 if value is None else self._wrapper.Value(f"{self._prefix}_{value.name}")

    def from_proto(self, number: int) -> E | None:
        if number == 0:
            return None
        try:
            name = self._wrapper.Name(number)
        except ValueError:
            return None
        return self._domain[name.removeprefix(self._prefix + "_")]
