"""Keeps secrets and sensitive values out of log lines.

A structlog processor (registered with :func:`services.platform.logs.add_redaction_processor`, so it runs
on every line just before rendering) replaces

- values under secret-looking keys (``authorization``, ``password``, ``private_key``, ...) and under the
  names of proto fields marked sensitive (``identity_number``, ``psychiatric_history``, ...);
- anything inside a string that looks like a JWT, a bearer credential, a PEM private key or a resident
  identity number, wherever it appears (an exception text, an f-string someone wrote);
- protobuf messages, which are rendered with every sensitive field masked.

This is the safety net; the first rule is still not to log such values at all.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from google.protobuf import text_format
from google.protobuf.message import Message
from structlog.typing import EventDict, WrappedLogger

from services.platform.logs import add_redaction_processor
from services.platform.security.masking import mask_all

__all__ = [
    "REDACTED",
    "install_redaction",
    "redact_event",
    "redact_text",
    "redact_value",
    "register_sensitive_keys",
]

REDACTED = "[REDACTED]"

_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "service_token",
        "bearer",
        "jwt",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "private_key",
        "api_key",
        "cookie",
        "set_cookie",
        "identity_number",
        "id_number",
        "id_card",
        "resident_id",
    }
)
# Any key containing one of these is secret whatever its prefix: jwt_private_key, db_password, ...
_SECRET_FRAGMENTS = ("password", "secret", "private_key", "authorization", "api_key", "credential")
_extra_keys: set[str] = set()
_extra_lock = threading.Lock()

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
)
# GB 11643 resident identity number: region, birth date 18xx-20xx, sequence, check digit or X.
_IDENTITY_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
)


def _normal(key: str) -> str:
    return key.lower().replace("-", "_")


def register_sensitive_keys(names: Iterable[str]) -> None:
    """Also redact values logged under these keys (the guard registers every sensitive proto field name)."""
    with _extra_lock:
        _extra_keys.update(_normal(name) for name in names)


def _secret_key(key: str) -> bool:
    normal = _normal(key)
    return normal in _SECRET_KEYS or normal in _extra_keys or any(f in normal for f in _SECRET_FRAGMENTS)


def redact_text(text: str) -> str:
    """``text`` with tokens, private keys and identity numbers replaced."""
    if not text:
        return text
    text = _PEM_PRIVATE.sub("[REDACTED_PRIVATE_KEY]", text)
    text = _JWT.sub("[REDACTED_JWT]", text)
    text = _BEARER.sub(r"\1 [REDACTED]", text)
    return _IDENTITY_NUMBER.sub("[REDACTED_ID]", text)


def redact_value(value: Any, depth: int = 0) -> Any:
    """``value`` with secrets replaced, looking inside containers and protobuf messages."""
    redacted: Any = value
    if isinstance(value, str):
        redacted = redact_text(value)
    elif depth > 8:
        redacted = REDACTED  # deeper than anything we log on purpose: do not guess, hide it
    elif isinstance(value, Message):
        redacted = redact_text(text_format.MessageToString(mask_all(value), as_one_line=True))
    elif isinstance(value, dict):
        redacted = {
            k: REDACTED if isinstance(k, str) and _secret_key(k) else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    elif isinstance(value, list | tuple | set | frozenset):
        redacted = [redact_value(item, depth + 1) for item in value]
    elif isinstance(value, bytes):
        redacted = REDACTED if _JWT.search(value.decode("latin-1")) else value
    return redacted


def redact_event(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The structlog processor."""
    for key, value in list(event.items()):
        if _secret_key(key):
            event[key] = REDACTED
        elif value is not None and not isinstance(value, bool | int | float):
            event[key] = redact_value(value)
    return event


_installed = threading.Event()


def install_redaction() -> None:
    """Register the processor with the platform's logging (idempotent)."""
    # Registering again would make the platform rebuild its logging configuration each time.
    if not _installed.is_set():
        add_redaction_processor(redact_event)
        _installed.set()
