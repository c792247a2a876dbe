"""Statistics arithmetic: figures per site and period from sums and counts, and their exact total.

Means are kept as (sum, count) until shown, so totals over sites and buckets are exact means over the
alerts, not means of means.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Figures", "Mean", "total"]


@dataclass(frozen=True, slots=True)
class Mean:
    seconds: float = 0.0
    count: int = 0

    @property
    def value(self) -> float:
        return self.seconds / self.count if self.count else 0.0

    def __add__(self, other: Mean) -> Mean:
        return Mean(self.seconds + other.seconds, self.count + other.count)


@dataclass(frozen=True, slots=True)
class Figures:
    # "" for the total row.
    site_id: str
    period_start: datetime
    period_end: datetime
    warnings_raised: int = 0
    critical_warnings: int = 0
    joint_responses: int = 0
    false_alarms: int = 0
    to_acknowledge: Mean = Mean()
    to_dispatch: Mean = Mean()
    to_arrive: Mean = Mean()


def total(rows: Iterable[Figures], start: datetime, end: datetime) -> Figures:
    result = Figures("", start, end)
    for row in rows:
        result = Figures(
            "",
            start,
            end,
            result.warnings_raised + row.warnings_raised,
            result.critical_warnings + row.critical_warnings,
            result.joint_responses + row.joint_responses,
            result.false_alarms + row.false_alarms,
            result.to_acknowledge + row.to_acknowledge,
            result.to_dispatch + row.to_dispatch,
            result.to_arrive + row.to_arrive,
        )
    return result
