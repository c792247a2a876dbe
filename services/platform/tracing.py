"""W3C trace context (traceparent) and request ids, carried across gRPC metadata and Kafka headers.

We propagate the header faithfully rather than run a tracer: any OpenTelemetry collector placed in front
later sees connected traces, and log lines carry the trace id today."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["TraceContext", "current_trace", "new_request_id", "parse_traceparent", "set_current_trace"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class TraceContext:
    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace: what we send downstream (to Kafka or another service)."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)

    @classmethod
    def new(cls) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8))


def parse_traceparent(value: str | None) -> TraceContext | None:
    """Parse a traceparent header; malformed or all-zero values are ignored, as the spec asks."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if not match:
        return None
    trace_id, span_id, flags = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


_current: ContextVar[TraceContext | None] = ContextVar("cityhub_trace", default=None)


def current_trace() -> TraceContext | None:
    return _current.get()


def set_current_trace(trace: TraceContext | None) -> None:
    _current.set(trace)


def new_request_id() -> str:
    return secrets.token_hex(8)
