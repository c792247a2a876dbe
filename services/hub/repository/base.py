"""The connection every part of the hub repository is bound to (the platform's :class:`SqlPart`)."""

from __future__ import annotations

from services.platform.repository import Conn, SqlPart

__all__ = ["Conn", "SqlPart"]
