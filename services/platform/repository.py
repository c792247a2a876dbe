"""What every service's repository shares: the connection it is bound to.

A repository is bound to one connection, and so to the transaction the unit of work (or a consumer) opened
on it. A large service composes its repository from one :class:`SqlPart` per family of data (ADR 0012), so
a use case touching several families still runs in one transaction."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["Conn", "SqlPart"]

Conn = psycopg.Connection[Any]


class SqlPart:
    """Base of one family's SQL; the service's repository class inherits every family's part."""

    _conn: Conn

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
