"""SQL for the commerce service (psycopg 3): :class:`CommerceRepository`, bound to one connection (and so
to the transaction the unit of work opened). It returns domain types, never rows.

Each family's SQL is its own module (a :class:`SqlPart`), and the repository is their union over one
connection (ADR 0012), so a use case touching several families (a check-in crediting the ledger, a match
earning points) runs in one transaction. Enumerations are stored as their domain names (TEXT).
"""

from __future__ import annotations

from services.commerce.repository.activities import ActivitiesSql
from services.commerce.repository.codes import CodesSql
from services.commerce.repository.excellence import ExcellenceSql
from services.commerce.repository.federations import FederationsSql
from services.commerce.repository.ledger import LedgerSql
from services.commerce.repository.matching import MatchingSql
from services.commerce.repository.memberships import MembershipsSql
from services.commerce.repository.requests import RequestsSql
from services.commerce.repository.training import TrainingSql
from services.platform.repository import Conn

__all__ = ["CommerceRepository"]


class CommerceRepository(
    FederationsSql,
    CodesSql,
    MembershipsSql,
    ActivitiesSql,
    MatchingSql,
    RequestsSql,
    TrainingSql,
    LedgerSql,
    ExcellenceSql,
):
    def __init__(self, conn: Conn) -> None:
        super().__init__(conn)
