"""What the store hands back besides the domain's own records: silent devices, hours due for publishing,
utilisation sums per bucket, and alerts about to be raised. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.industry.domain.model import AlertKind, Severity
from services.industry.domain.telemetry import DeviceProfile
from services.industry.domain.utilisation import Totals

__all__ = ["Bucket", "DueRollup", "NewAlert", "SilentDevice"]


@dataclass(frozen=True, slots=True)
class SilentDevice:
    device_id: str
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class DueRollup:
    device_id: str
    hour_start: datetime
    totals: Totals


@dataclass(frozen=True, slots=True)
class Bucket:
    """Sums of one bucket (an hour, a local day), or of the whole period when ``start`` is None."""

    start: datetime | None
    totals: Totals


@dataclass(frozen=True, slots=True)
class NewAlert:
    alert_id: str
    device: DeviceProfile
    kind: AlertKind
    severity: Severity
    condition_since: datetime
    raised_at: datetime
