"""Helpers shared by tests (import as ``from tests.support import ...``)."""

from __future__ import annotations

import random
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

__all__ = ["free_port", "unique_name", "violations", "wait_until"]

T = TypeVar("T")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_PORTS_FROM = 20000
_handed_out: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now, for a process started later to listen on.

    Chosen below the kernel's ephemeral range: a port from inside it (what binding port 0 gives) can be
    taken as the local end of any outgoing connection — a Kafka or PostgreSQL client's — between the pick
    and the child's bind, or between a drilled process's crash and its restart on the same port; a drill
    once failed so ("Address already in use"). Each port is handed out once per test process."""
    low, _high = _ephemeral_range()
    candidates = range(_PORTS_FROM, low)
    if len(candidates) < 1000:  # an unusual kernel setting: fall back to what the kernel picks
        candidates = range(1)
    for _ in range(500):
        port = random.choice(candidates)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 in {candidates}")


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
