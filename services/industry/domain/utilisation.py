"""Utilisation: availability, performance, quality and OEE from summed times and counts.

Definitions (the district's "equipment utilisation" is OEE; all four are reported):

* planned production time = running + idle + fault. ``stopped`` is planned downtime (no shift, a planned
  stop, maintenance) and is left out, so a machine is not blamed for hours nobody meant it to work.
* availability = running / planned
* performance  = (ideal cycle time x parts made) / running, where parts = good + reject
* quality      = good / (good + reject)
* OEE          = availability x performance x quality  (= ideal time of good parts / planned time)

Sums are aggregated first and the ratios computed from the sums, so a workshop's figure weighs each
machine by its time and output (never an average of ratios).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Change", "Totals", "compare", "relative_change"]


@dataclass(frozen=True, slots=True)
class Totals:
    running_ms: int = 0
    idle_ms: int = 0
    stopped_ms: int = 0
    fault_ms: int = 0
    good_count: int = 0
    reject_count: int = 0
    ideal_ms: float = 0.0

    @property
    def planned_ms(self) -> int:
        return self.running_ms + self.idle_ms + self.fault_ms

    @property
    def part_count(self) -> int:
        return self.good_count + self.reject_count

    @property
    def availability(self) -> float:
        return self.running_ms / self.planned_ms if self.planned_ms else 0.0

    @property
    def performance(self) -> float:
        return self.ideal_ms / self.running_ms if self.running_ms else 0.0

    @property
    def quality(self) -> float:
        return self.good_count / self.part_count if self.part_count else 0.0

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.running_ms + other.running_ms,
            self.idle_ms + other.idle_ms,
            self.stopped_ms + other.stopped_ms,
            self.fault_ms + other.fault_ms,
            self.good_count + other.good_count,
            self.reject_count + other.reject_count,
            self.ideal_ms + other.ideal_ms,
        )


def relative_change(base: float, compare_value: float) -> float:
    """(compare - base) / base: 0.35 is +35%. 0 when the base is 0 (no reference to compare with)."""
    return (compare_value - base) / base if base else 0.0


@dataclass(frozen=True, slots=True)
class Change:
    availability: float
    performance: float
    quality: float
    oee: float
    running: float
    good_count: float


def compare(base: Totals, later: Totals) -> Change:
    return Change(
        availability=relative_change(base.availability, later.availability),
        performance=relative_change(base.performance, later.performance),
        quality=relative_change(base.quality, later.quality),
        oee=relative_change(base.oee, later.oee),
        running=relative_change(base.running_ms, later.running_ms),
        good_count=relative_change(base.good_count, later.good_count),
    )
