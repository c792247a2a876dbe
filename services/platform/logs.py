"""structlog set-up: JSON lines to stdout in production, a console renderer on a TTY.

Context (service, rpc or topic, request id, trace id, event id) is bound through contextvars so that
every line written while handling one RPC or one Kafka record carries it without passing loggers around.

Two writers share the stream: structlog (the service's own lines) and the stdlib handler (library lines).
Each record is written as one ``write`` of the whole line, newline included, under one lock that both
take, so lines from concurrent threads never interleave. (structlog's PrintLogger writes the text and
the newline separately under a lock of its own, and the stdlib handler under another: a library line
could land between them, leaving two records on one line.)
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["add_redaction_processor", "bind_context", "clear_context", "configure_logging", "get_logger"]

# Processors added by other platform modules (the security layer adds its redactor) run before rendering.
_extra_processors: list[Processor] = []
_configured: dict[str, Any] = {}
# Every log record written to stdout/stderr takes this lock. Re-entrant: a signal handler that logs while
# its thread is writing must not deadlock (both lines stay whole: each is a single write).
_write_lock = threading.RLock()


def _write_line(stream: Any, line: str) -> None:
    """One record: one write of the line and its newline, flushed, serialised with every other writer."""
    with _write_lock:
        stream.write(line + "\n")
        stream.flush()


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
        # No file given: each line goes to whatever sys.stdout is when it is written (tests swap it).
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


class _LineLogger:
    """structlog's final logger: each rendered record goes out through :func:`_write_line` to the stream
    ``sys.<name>`` is when the record is written (tests swap and close them)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def msg(self, message: str) -> None:
        _write_line(getattr(sys, self._name), message)

    # structlog calls the method named after the level; every level is one line the same way.
    log = debug = info = warn = warning = error = err = critical = fatal = exception = failure = msg


class _CurrentStreamLoggerFactory:
    """Line loggers on ``sys.stdout``/``sys.stderr``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __call__(self, *_args: Any) -> _LineLogger:
        return _LineLogger(self._name)


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

    def emit(self, record: logging.LogRecord) -> None:
        # StreamHandler.emit holds only this handler's lock; structlog's lines must be kept out too.
        try:
            _write_line(self.stream, self.format(record))
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's contract: report through handleError, never raise
            self.handleError(record)


def get_logger(**initial: Any) -> Any:
    return structlog.get_logger(**initial)


def bind_context(**values: Any) -> Mapping[str, Any]:
    return structlog.contextvars.bind_contextvars(**values)


def clear_context(keys: Iterable[str]) -> None:
    structlog.contextvars.unbind_contextvars(*keys)
