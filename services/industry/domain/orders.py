"""The enterprise brain's order flow: sales -> customisation -> design -> production -> delivery ->
after-sales -> closed, one stage at a time, never backwards; delivery cycle and lateness.

The delivery cycle runs from the moment the order was taken to the moment it entered the delivery stage
(the goods handed over for delivery). An order is late when it was delivered after its promised date, or
when the promised date has passed and it is not yet delivered; dates are the district's calendar days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import IntEnum

from services.platform.errors import InvalidArgumentError, Violations

__all__ = [
    "OrderSpec",
    "OrderStage",
    "check_advance",
    "check_occurred_at",
    "check_order",
    "cycle_days",
    "is_late",
    "parse_promised_date",
]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAY_S = 86_400.0


class OrderStage(IntEnum):
    SALES = 1
    CUSTOMISATION = 2
    DESIGN = 3
    PRODUCTION = 4
    DELIVERY = 5
    AFTER_SALES = 6
    CLOSED = 7

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True, slots=True)
class OrderSpec:
    enterprise_id: str
    customer: str
    product: str
    customisation: str
    promised_date: str
    ordered_at: datetime | None


def parse_promised_date(text: str) -> date | None:
    if not _DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def check_occurred_at(
    violations: Violations, field: str, moment: datetime | None, now: datetime, max_future: timedelta
) -> None:
    if moment is not None and moment > now + max_future:
        violations.add(field, f"is more than {int(max_future.total_seconds())} s in the future")


def check_order(
    spec: OrderSpec, now: datetime, max_future: timedelta, request_id_problem: str | None
) -> date:
    """Validate a new order; returns the promised date."""
    violations = Violations()
    violations.add_if(request_id_problem, "request_id")
    if not spec.enterprise_id:
        violations.add("enterprise_id", "is required")
    for name, value, limit in (("customer", spec.customer, 200), ("product", spec.product, 200)):
        if not value.strip():
            violations.add(name, "is required")
        elif len(value) > limit:
            violations.add(name, f"must be at most {limit} characters")
    if len(spec.customisation) > 2000:
        violations.add("customisation", "must be at most 2000 characters")
    promised = parse_promised_date(spec.promised_date)
    if promised is None:
        violations.add("promised_date", "must be a date as YYYY-MM-DD")
    check_occurred_at(violations, "ordered_at", spec.ordered_at, now, max_future)
    violations.check()
    assert promised is not None
    return promised


def check_advance(current: OrderStage, target: int) -> OrderStage:
    """The stage ``target`` if it is exactly the one after ``current``; otherwise INVALID_ARGUMENT on
    ``stage`` saying whether it goes backwards, stays, or skips a stage."""
    try:
        wanted = OrderStage(target)
    except ValueError:
        raise InvalidArgumentError.of("stage", "must be one of the OrderStage values") from None
    if current == OrderStage.CLOSED:
        raise InvalidArgumentError.of("stage", "the order is closed; it moves no further")
    if wanted == current:
        raise InvalidArgumentError.of("stage", f"the order is already in {current.label}")
    if wanted < current:
        raise InvalidArgumentError.of(
            "stage", f"cannot move an order backwards, from {current.label} to {wanted.label}"
        )
    following = OrderStage(current + 1)
    if wanted != following:
        raise InvalidArgumentError.of(
            "stage",
            f"cannot move past a stage: from {current.label} the next stage is {following.label}, "
            f"not {wanted.label}",
        )
    return wanted


def cycle_days(ordered_at: datetime, delivered_at: datetime) -> float:
    return (delivered_at - ordered_at).total_seconds() / _DAY_S


def is_late(promised: date, delivered_at: datetime | None, now: datetime, zone: tzinfo) -> bool:
    if delivered_at is not None:
        return delivered_at.astimezone(zone).date() > promised
    return now.astimezone(zone).date() > promised
