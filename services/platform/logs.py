"""structlog set-up: JSON lines to stdout in production, a console renderer on a TTY.

Context (service, rpc or topic, request id, trace id, event id) is bound through contextvars so that
every line written while handling one RPC or one Kafka record carries it without passing loggers around.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["add_redaction_processor", "bind_context", "clear_context", "configure_logging", "get_logger"]

# Processors added by other platform modules (the security layer adds its redactor) run before rendering.
_extra_processors: list[Processor] = []
_configured: dict[str, Any] = {}


def add_redaction_processor(processor: Callable[[WrappedLogger, str, EventDict], EventDict]) -> None:
    """Register a processor that runs on every log line just before it is rendered."""
    if processor not in _extra_processors:
        _extra_processors.append(processor)
    if _configured:
        configure_logging(**_configured)


def configure_logging(
    service: str, level: str = "info", fmt: str = "auto", *, to_stderr: bool = False
) -> None:
    """Configure structlog (and the stdlib root logger, which kafka-python and grpc log through).

    Services log to stdout (what container runtimes collect); a command-line tool passes ``to_stderr``
    because its stdout is its output (``cityhub events tail`` prints JSON lines there)."""
    _configured.update(service=service, level=level, fmt=fmt, to_stderr=to_stderr)
    out_name = "stderr" if to_stderr else "stdout"
    numeric = logging.getLevelName(level.upper())
    render_json = fmt == "json" or (fmt == "auto" and not getattr(sys, out_name).isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        *_extra_processors,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if render_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No file given: each logger writes to whatever sys.stdout is when it is made (tests swap it).
        logger_factory=_CurrentStreamLoggerFactory(out_name),
        cache_logger_on_first_use=False,
    )
    # Library loggers (kafka-python, grpc, psycopg_pool) go through the same processors — context,
    # redaction, one format — so no line on stdout escapes the redactor. They are noisy at INFO (kafka-python
    # logs every connection), so they start at WARNING.
    handler = _CurrentStreamHandler(out_name)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)


class _CurrentStreamLoggerFactory:
    """structlog PrintLoggers on the current ``sys.stdout``/``sys.stderr`` at the time each is made."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *_args: Any) -> structlog.PrintLogger:
        return structlog.PrintLogger(getattr(sys, self._name))


class _CurrentStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stdout or sys.stderr, not the one at set-up: tests swap and close them."""

    def __init__(self, stream_name: str) -> None:
        self._stream_name = stream_name
        super().__init__()

    @property
    def stream(self) -> Any:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, _value: Any) -> None:
        return  # StreamHandler.__init__ assigns one; the current one is looked up at each write


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)


def bind_context(**values: Any) -> Mapping[str, Any]:
    return structlog.contextvars.bind_contextvars(**values)


def clear_context(keys: Iterable[str]) -> None:
    structlog.contextvars.unbind_contextvars(*keys)
