"""SQL for the govservice service (psycopg 3): :class:`GovServiceRepository`, the union of one
:class:`SqlPart` per family over one connection (ADR 0012), so a step that moves an application and
appends its signed hand-off is one transaction. Enumerations are stored as their domain names (TEXT)."""

from __future__ import annotations

from services.govservice.repository.applications import ApplicationsSql
from services.govservice.repository.catalogue import CatalogueSql
from services.govservice.repository.regions import RegionsSql
from services.govservice.repository.tracking import TrackingSql
from services.govservice.repository.trail import TrailSql
from services.platform.repository import Conn

__all__ = ["GovServiceRepository"]


class GovServiceRepository(RegionsSql, CatalogueSql, ApplicationsSql, TrailSql, TrackingSql):
    def __init__(self, conn: Conn) -> None:
        super().__init__(conn)
