"""One paging rule for every list RPC (see docs/status-codes.md).

- ``page_size`` 0 means the default (50); above 500 is refused with INVALID_ARGUMENT naming
  ``page.page_size`` rather than silently clamped, so a caller never believes it got everything.
- ``page_token`` is opaque: URL-safe base64 of a JSON array of the last item's sort key. A token that this
  format cannot decode, or whose shape differs from what the list expects, is INVALID_ARGUMENT naming
  ``page.page_token``.
- A list fetches ``size + 1`` rows; :func:`paginate` cuts the page and makes the next token from the last
  item shown ("" on the last page).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from services.platform.errors import InvalidArgumentError, Violations

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "page_of",
    "paginate",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Generous for any sort key this project uses; a longer token cannot be one we issued.
_MAX_TOKEN_LENGTH = 512

T = TypeVar("T")
CursorPart = str | int | datetime


@dataclass(frozen=True, slots=True)
class Page:
    """A checked page request: ``size`` is always 1..MAX_PAGE_SIZE."""

    size: int
    token: str = ""


def page_of(page_size: int, page_token: str, field: str = "page") -> Page:
    """Check a ``PageRequest``'s fields; ``field`` is the request's path to it."""
    violations = Violations()
    if page_size < 0:
        violations.add(f"{field}.page_size", "must not be negative")
    elif page_size > MAX_PAGE_SIZE:
        violations.add(f"{field}.page_size", f"must be at most {MAX_PAGE_SIZE}")
    if len(page_token) > _MAX_TOKEN_LENGTH:
        violations.add(f"{field}.page_token", "is not a token this service issued")
    violations.check()
    return Page(page_size or DEFAULT_PAGE_SIZE, page_token)


def _jsonable(part: CursorPart) -> Any:
    return {"t": part.isoformat()} if isinstance(part, datetime) else part


def encode_cursor(*parts: CursorPart) -> str:
    """The token for a sort key (strings, integers and aware datetimes)."""
    raw = json.dumps([_jsonable(p) for p in parts], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _part(value: Any, kind: type) -> CursorPart:
    if kind is datetime:
        if not (isinstance(value, dict) and isinstance(value.get("t"), str)):
            raise ValueError("not a time")
        at = datetime.fromisoformat(value["t"])
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError("wrong part")


def decode_cursor(token: str, *shape: type, field: str = "page.page_token") -> tuple[Any, ...] | None:
    """The sort key in ``token`` as a tuple of ``shape`` (e.g. ``datetime, str``); None for ""."""
    if not token:
        return None
    refused = InvalidArgumentError.of(field, "is not a token this service issued")
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if not isinstance(parts, list) or len(parts) != len(shape):
        raise refused
    try:
        return tuple(_part(value, kind) for value, kind in zip(parts, shape, strict=True))
    except (ValueError, TypeError):
        raise refused from None


def paginate(
    items: Sequence[T], page: Page, key: Callable[[T], tuple[CursorPart, ...]]
) -> tuple[list[T], str]:
    """``items`` fetched with ``page.size + 1``: the page and the next token ("" on the last page)."""
    if len(items) > page.size:
        shown = list(items[: page.size])
        return shown, encode_cursor(*key(shown[-1]))
    return list(items), ""
