"""Conversions between protobuf well-known types and Python values that every servicer needs.

A Timestamp a caller sends may be no Timestamp at all (seconds beyond 9999-12-31 or before 0001-01-01,
nanos outside 0..999,999,999): :func:`datetime_of` and :func:`time_range` refuse it with
INVALID_ARGUMENT naming the field's path, never a ValueError that would answer INTERNAL. How early or late a
valid time may be is each field's rule (:mod:`services.platform.validation`: event times, query periods).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from cityhub.common.v1 import common_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.errors import FieldViolation, InvalidArgumentError
from services.platform.validation import timestamp_problem

__all__ = [
    "EnumMap",
    "datetime_of",
    "optional_timestamp",
    "time_range",
    "to_timestamp",
]


def to_timestamp(moment: datetime) -> Timestamp:
    """A Timestamp for an aware datetime (any zone; stored as UTC)."""
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def optional_timestamp(moment: datetime | None) -> Timestamp | None:
    """As :func:`to_timestamp`, with None left unset in the message."""
    return None if moment is None else to_timestamp(moment)


def datetime_of(message: Any, field: str, *, path: str | None = None) -> datetime | None:
    """The aware UTC datetime in ``message.<field>``, or None when the field is not set (proto3 presence).
    A value that is no Timestamp is INVALID_ARGUMENT naming ``path`` (default: ``field``)."""
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    problem = timestamp_problem(stamp.seconds, stamp.nanos)
    if problem is not None:
        raise InvalidArgumentError.of(path or field, problem)
    seconds, nanos = stamp.seconds, stamp.nanos
    # Microseconds: what a datetime holds (rounding down keeps 9999-12-31T23:59:59.999999999 in range).
    return datetime.fromtimestamp(0, UTC) + timedelta(seconds=seconds, microseconds=nanos // 1000)


def time_range(
    period: common_pb2.TimeRange, *, path: str = "period"
) -> tuple[datetime | None, datetime | None]:
    """The (start, end) of a TimeRange; an unset bound is None (open). Both bounds that are no Timestamp
    are named at once (``<path>.start_time``, ``<path>.end_time``), and so is an end before the start."""
    bad: list[FieldViolation] = []
    bounds: list[datetime | None] = []
    for name in ("start_time", "end_time"):
        try:
            bounds.append(datetime_of(period, name, path=f"{path}.{name}"))
        except InvalidArgumentError as error:
            bad.extend(error.violations)
            bounds.append(None)
    start, end = bounds
    if start is not None and end is not None and end < start:
        bad.append(FieldViolation(f"{path}.end_time", f"must not be before {path}.start_time"))
    if bad:
        raise InvalidArgumentError(bad)
    return start, end


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
