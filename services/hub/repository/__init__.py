"""SQL for the hub (psycopg 3): :class:`HubRepository`, the union of one :class:`SqlPart` per family over
one connection (ADR 0012), so one event's projections into entities, inbox and dashboard are applied in
the consumer's one transaction. Enumerations are stored as their domain names (TEXT)."""

from __future__ import annotations

from services.hub.repository.dashboard import DashboardSql
from services.hub.repository.entities import EntitiesSql
from services.hub.repository.inbox import InboxSql
from services.hub.repository.sign_in import SignInSql
from services.platform.repository import Conn

__all__ = ["HubRepository"]


class HubRepository(EntitiesSql, InboxSql, DashboardSql, SignInSql):
    def __init__(self, conn: Conn) -> None:
        super().__init__(conn)
