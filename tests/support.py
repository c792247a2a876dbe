"""Helpers shared by tests (import as ``from tests.support import ...``)."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["free_port", "unique_name", "violations", "wait_until"]

T = TypeVar("T")


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str) -> str:
    """A name no other test (or earlier run) uses: lower-case, valid as a SQL identifier and a topic."""
    return f"{prefix}_{secrets.token_hex(4)}"


def wait_until(check: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` once ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last value: {last!r})")
        time.sleep(interval_s)


def violations(error: grpc.RpcError) -> dict[str, str]:
    """The BadRequest field violations of an INVALID_ARGUMENT error, by field."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no rich status on the error"
    found: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found
