"""Idempotent creates: the memory of client request ids, one table (``requests``) in every service's schema.

A create that carries a ``request_id`` claims it inside the transaction that makes the entity:

- the first request with an id inserts its row and goes on; its result (the ids it made) is stored in the
  same transaction, so an id is remembered exactly when its entity exists;
- a replay (same operation, same id, same body) gets the stored result back, and the use case answers with
  the entity it names: the same answer as the first time, nothing stored twice;
- a concurrent duplicate waits on the primary key until the first commits, then is a replay; if the first
  rolled back, the duplicate becomes the first (``ON CONFLICT DO NOTHING`` at READ COMMITTED);
- the same id with a different body is refused with INVALID_ARGUMENT naming ``request_id``.

Fingerprints are digests of everything in the command but the request id. A command holding identity
numbers must be digested with a *keyed* MAC (a plain hash of an 18-digit identity number can be reversed
by trying every plausible one), so a service passes its own :data:`Fingerprint` function in that case.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from services.platform.errors import InvalidArgumentError, Violations
from services.platform.logs import get_logger

__all__ = [
    "Fingerprint",
    "RequestLog",
    "check_request_id",
    "fingerprint_material",
    "sha256_fingerprint",
]

log = get_logger()
Fingerprint = Callable[[bytes], str]
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def check_request_id(violations: Violations, value: str, *, required: bool = True) -> None:
    """A request id is 1-128 characters of letters, digits and ``._:-`` (a UUID fits)."""
    if not value:
        if required:
            violations.add("request_id", "is required (a client-chosen id that makes the create idempotent)")
        return
    if not _REQUEST_ID.fullmatch(value):
        violations.add("request_id", "must be 1-128 letters, digits or ._:- starting with a letter or digit")


def fingerprint_material(command: object) -> bytes:
    """What a replay must repeat exactly: every field of the command (a dataclass) but its request id."""
    if not is_dataclass(command) or isinstance(command, type):
        raise TypeError("fingerprint_material takes a dataclass instance")
    values = [(f.name, getattr(command, f.name)) for f in fields(command) if f.name != "request_id"]
    return f"{type(command).__name__}:{values!r}".encode()


def sha256_fingerprint(material: bytes) -> str:
    """The default digest, for commands without sensitive fields."""
    return hashlib.sha256(material).hexdigest()


class RequestLog:
    """Claim and remember request ids in the current transaction of ``conn`` (see the module text)."""

    def __init__(self, conn: psycopg.Connection[Any], fingerprint: Fingerprint = sha256_fingerprint) -> None:
        self._conn = conn
        self._fingerprint = fingerprint

    def claim(
        self, operation: str, request_id: str, command: object, *, resumable: bool = False
    ) -> dict[str, Any] | None:
        """None when this request is the first with its id (or has none); the first's result otherwise.

        ``resumable``: the claim is committed on its own, before work outside the database (a Kafka
        send), and the result remembered in a later transaction; a repeat that finds the claim without a
        result (the first attempt failed, or is still under way) goes ahead too. Only for work that is
        harmless to repeat with the same body — records whose ids derive from the request, which consumers
        drop as duplicates."""
        if not request_id:
            return None
        fingerprint = self._fingerprint(fingerprint_material(command))
        inserted = self._conn.execute(
            "INSERT INTO requests (operation, request_id, fingerprint) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            (operation, request_id, fingerprint),
        ).fetchone()
        if inserted is not None:
            return None
        row = self._conn.execute(
            "SELECT fingerprint, result FROM requests WHERE operation = %s AND request_id = %s",
            (operation, request_id),
        ).fetchone()
        if row is None:  # pragma: no cover - a conflicting row cannot vanish before our statement
            raise RuntimeError(f"request {operation}/{request_id} vanished")
        if resumable and row[1] is None and row[0] == fingerprint:
            return None
        return replayed(operation, request_id, fingerprint, row[0], row[1])

    def remember(self, operation: str, request_id: str, result: dict[str, Any]) -> None:
        """Store what the first request made, in its own transaction (call after ``claim`` returned None)."""
        if request_id:
            self._conn.execute(
                "UPDATE requests SET result = %s WHERE operation = %s AND request_id = %s",
                (Jsonb(result), operation, request_id),
            )


def replayed(
    operation: str, request_id: str, fingerprint: str, stored_fingerprint: str, result: dict[str, Any] | None
) -> dict[str, Any]:
    """The stored result for a replay, or INVALID_ARGUMENT when the id was used for another request."""
    if stored_fingerprint != fingerprint:
        raise InvalidArgumentError.of("request_id", "was already used for a different request")
    if result is None:
        # claim and remember run in one transaction, so a committed claim always has its result; a row
        # without one means a use case forgot remember(), which is a bug, not the caller's fault.
        raise RuntimeError(f"request {operation}/{request_id} was claimed but its result never stored")
    log.info("request_replayed", operation=operation, request_id=request_id)
    return result
