"""The enterprise brain's order flow: sales -> customisation -> design -> production -> delivery ->
after-sales -> closed, one stage at a time, never backwards; delivery cycle and lateness.

The delivery cycle runs from the moment the order was taken to the moment it entered the delivery stage
(the goods handed over for delivery). An order is late when it was delivered after its promised date, or
when the promised date has passed and it is not yet delivered; dates are the district's calendar days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from services.industry.domain.model import Order, OrderStage
from services.platform.errors import FailedPreconditionError

__all__ = ["OrderView", "check_advance", "cycle_days", "is_late", "parse_promised_date", "view_of"]

# ASCII digits, the whole value (``\d`` takes any script's digits, ``$`` a trailing line break).
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY_S = 86_400.0


def parse_promised_date(text: str) -> date | None:
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def check_advance(current: OrderStage, wanted: OrderStage) -> OrderStage:
    """``wanted`` if it is exactly the stage after ``current``; otherwise FAILED_PRECONDITION naming
    ``stage`` and saying whether it goes backwards, stays, or skips a stage (the request is well-formed,
    the order's state does not allow it)."""
    if current == OrderStage.CLOSED:
        raise FailedPreconditionError("stage: the order is closed; it moves no further")
    if wanted == current:
        raise FailedPreconditionError(f"stage: the order is already in {current.label}")
    if wanted.position < current.position:
        raise FailedPreconditionError(
            f"stage: cannot move an order backwards, from {current.label} to {wanted.label}"
        )
    following = list(OrderStage)[current.position + 1]
    if wanted != following:
        raise FailedPreconditionError(
            f"stage: cannot move past a stage: from {current.label} the next stage is {following.label}, "
            f"not {wanted.label}"
        )
    return wanted


def cycle_days(ordered_at: datetime, delivered_at: datetime) -> float:
    return (delivered_at - ordered_at).total_seconds() / _DAY_S


def is_late(promised: date, delivered_at: datetime | None, now: datetime, zone: tzinfo) -> bool:
    if delivered_at is not None:
        return delivered_at.astimezone(zone).date() > promised
    return now.astimezone(zone).date() > promised


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as answered and published: with whether it is late now and its delivery cycle."""

    order: Order
    late: bool
    delivery_cycle_days: float


def view_of(order: Order, now: datetime, zone: tzinfo) -> OrderView:
    days = cycle_days(order.ordered_at, order.delivered_at) if order.delivered_at else 0.0
    return OrderView(order, is_late(order.promised_date, order.delivered_at, now, zone), days)
