"""Digital workshops: a workshop counts as digital when at least a set share of its machines is
connected and reporting (has sent telemetry within the silence threshold)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkshopCoverage"]


@dataclass(frozen=True, slots=True)
class WorkshopCoverage:
    credit_code: str
    workshop: str
    park_id: str | None
    device_count: int
    reporting_count: int

    @property
    def share(self) -> float:
        return self.reporting_count / self.device_count if self.device_count else 0.0

    def is_digital(self, threshold: float) -> bool:
        # Compared as integers so 4 of 5 machines at a 0.8 threshold is digital despite float rounding.
        return (
            self.device_count > 0
            and self.reporting_count * 1_000_000 >= round(threshold * 1_000_000) * self.device_count
        )
