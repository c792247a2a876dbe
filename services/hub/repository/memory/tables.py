"""What each in-memory part hands the rebuild at the end: per table, its column names and its rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["Tables"]

# table -> (column names, rows in that column order, as values psycopg writes with COPY)
Tables = dict[str, tuple[tuple[str, ...], Iterable[tuple[Any, ...]]]]
