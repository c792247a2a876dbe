"""SQL for the kitchen service (psycopg 3): :class:`KitchenRepository`, bound to one connection (and so to
the transaction the unit of work or the consumer opened). It returns domain types, never rows.

The service has eight families of data; each family's SQL is its own module (a :class:`SqlPart`), and the
repository is their union over one connection, so a use case touching several families (a meal naming
deliveries, a barred check raising an alert) still runs in one transaction. Enumerations are stored as
their domain names (TEXT).
"""

from __future__ import annotations

from services.kitchen.repository.alerts import AlertsSql
from services.kitchen.repository.equipment import EquipmentSql
from services.kitchen.repository.inspections import InspectionsSql
from services.kitchen.repository.kitchens import KitchensSql
from services.kitchen.repository.profile import ProfileSql
from services.kitchen.repository.ratings import RatingsSql
from services.kitchen.repository.staff import StaffSql
from services.kitchen.repository.trace import TraceSql
from services.kitchen.repository.violations import ViolationsSql
from services.platform.repository import Conn

__all__ = ["KitchenRepository"]


class KitchenRepository(
    KitchensSql,
    StaffSql,
    AlertsSql,
    EquipmentSql,
    ViolationsSql,
    TraceSql,
    RatingsSql,
    InspectionsSql,
    ProfileSql,
):
    def __init__(self, conn: Conn) -> None:
        super().__init__(conn)
