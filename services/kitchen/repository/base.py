"""What every part of the kitchen repository shares: the connection it is bound to."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["Conn", "SqlPart"]

Conn = psycopg.Connection[Any]


class SqlPart:
    """Base of each family's SQL (kitchens, staff, equipment, ...): :class:`KitchenRepository` combines
    them over one connection, so one transaction spans every family a use case touches."""

    _conn: Conn

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
