"""Helpers shared by tests (import as ``from tests.support import ...``)."""

from __future__ import annotations

import secrets

__all__ = ["unique_name"]


def unique_name(prefix: str) -> str:
    """A name no other test (or earlier run) uses: lower-case, valid as a SQL identifier and a topic."""
    return f"{prefix}_{secrets.token_hex(4)}"
