"""The safety service's use cases, one module per family; each command is one unit-of-work transaction."""

from __future__ import annotations

from dataclasses import dataclass

from services.safety.usecases.alerts import AlertUseCases
from services.safety.usecases.detections import DetectionUseCases
from services.safety.usecases.inspections import InspectionUseCases
from services.safety.usecases.persons import PersonUseCases
from services.safety.usecases.sites import SiteUseCases
from services.safety.usecases.statistics import StatisticsUseCases
from services.safety.usecases.vehicles import VehicleUseCases

__all__ = [
    "AlertUseCases",
    "DetectionUseCases",
    "InspectionUseCases",
    "PersonUseCases",
    "SafetyUseCases",
    "SiteUseCases",
    "StatisticsUseCases",
    "VehicleUseCases",
]


@dataclass(frozen=True, slots=True)
class SafetyUseCases:
    """Every family, as the servicer takes them."""

    sites: SiteUseCases
    persons: PersonUseCases
    vehicles: VehicleUseCases
    detections: DetectionUseCases
    alerts: AlertUseCases
    inspections: InspectionUseCases
    statistics: StatisticsUseCases
