"""The gRPC server bootstrap every service uses.

One interceptor wraps every handler: it binds request id and trace context, runs the registered guards
(authentication, policy, masking — see :mod:`services.platform.security`), maps domain errors to status
codes in one place, records metrics and writes one canonical log line per call. Health reports SERVING
only once every readiness check (PostgreSQL, Kafka) passes; reflection lists every service.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from services.platform import errors
from services.platform.logs import bind_context, clear_context, get_logger
from services.platform.metrics import RPC_LATENCY, RPC_TOTAL
from services.platform.tracing import TraceContext, new_request_id, parse_traceparent, set_current_trace

__all__ = [
    "OPEN_SERVICES",
    "CallInfo",
    "GrpcServer",
    "Guard",
    "ReadinessCheck",
    "current_call",
    "status_for",
]

log = get_logger()

# Health and reflection answer without credentials: probes and tools must work before anyone logs in.
OPEN_SERVICES = frozenset(
    {health.SERVICE_NAME, reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection"}
)

ReadinessCheck = Callable[[], bool]


@dataclass(slots=True)
class CallInfo:
    """What the platform knows about the call being handled; handlers read it via :func:`current_call`."""

    method: str  # /package.Service/Method
    service: str  # package.Service
    rpc: str  # Method
    metadata: dict[str, str]
    request_id: str
    trace: TraceContext
    # Filled by the authentication guard: who is calling (a services.platform.security Caller).
    caller: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Extra trailers a guard wants sent (the security guard lists masked fields here); x-request-id stays.
    trailing_metadata: list[tuple[str, str]] = field(default_factory=list)

    @property
    def purpose(self) -> str:
        return self.metadata.get("x-purpose", "").strip()


_current_call: ContextVar[CallInfo | None] = ContextVar("cityhub_call", default=None)


def current_call() -> CallInfo:
    call = _current_call.get()
    if call is None:
        raise RuntimeError("current_call() used outside a gRPC call")
    return call


class Guard(Protocol):
    """A step around every call. ``before`` may raise a DomainError to refuse the call; ``after`` may
    return a changed response (masking). Both run in the handler's thread with the call bound."""

    def before(self, call: CallInfo, request: Message) -> None: ...

    def after(self, call: CallInfo, request: Message, response: Message) -> Message: ...


_STATUS: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
}


def status_for(error: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error, with BadRequest field violations when there are any."""
    code = grpc.StatusCode.FAILED_PRECONDITION
    for kind, mapped in _STATUS.items():
        if isinstance(error, kind):
            code = mapped
            break
    status = status_pb2.Status(code=code.value[0], message=error.message)
    if isinstance(error, errors.InvalidArgumentError):
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in error.violations
                ]
            )
        )
        status.details.append(detail)
    return status


def _metadata(context: grpc.ServicerContext) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            values[key.lower()] = value
    return values


class _PlatformInterceptor(grpc.ServerInterceptor):
    def __init__(self, service_label: str, guards: Sequence[Guard]) -> None:
        self._service_label = service_label
        self._guards = list(guards)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        service = method.rsplit("/", 2)[-2] if method.count("/") >= 2 else method
        if handler is None or service in OPEN_SERVICES:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # Client-streaming RPCs are not part of CityHub's contracts (batches travel in one message).
        return handler

    def _begin(self, method: str, context: grpc.ServicerContext) -> CallInfo:
        metadata = _metadata(context)
        request_id = metadata.get("x-request-id") or new_request_id()
        trace = parse_traceparent(metadata.get("traceparent")) or TraceContext.new()
        service, _, rpc = method.lstrip("/").partition("/")
        call = CallInfo(method, service, rpc, metadata, request_id, trace)
        _current_call.set(call)
        set_current_trace(trace)
        bind_context(rpc=method, request_id=request_id, trace_id=trace.trace_id)
        context.set_trailing_metadata((("x-request-id", request_id),))
        return call

    def _fail(self, call: CallInfo, context: grpc.ServicerContext, exc: BaseException) -> None:
        if isinstance(exc, errors.DomainError):
            status = status_for(exc)
            log.info("rpc_refused", code=_code_of(exc).name, reason=exc.message)
        else:
            log.error("rpc_failed", error_type=type(exc).__name__, exc_info=exc)
            # Internal details stay in the log (with the request id); the caller gets the id to quote.
            status = status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"internal error (request id {call.request_id})"
            )
        context.abort_with_status(_with_request_id(rpc_status.to_status(status), call.request_id))

    def _finish(self, call: CallInfo, started: float, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - started
        RPC_TOTAL.labels(self._service_label, call.rpc, code.name).inc()
        RPC_LATENCY.labels(self._service_label, call.rpc).observe(elapsed)
        log.info("rpc_finished", code=code.name, duration_ms=round(elapsed * 1000, 3))
        clear_context(["rpc", "request_id", "trace_id", "caller"])
        _current_call.set(None)
        set_current_trace(None)

    def _wrap_unary(
        self, method: str, behaviour: Callable[[Message, grpc.ServicerContext], Message]
    ) -> Callable[[Message, grpc.ServicerContext], Message]:
        def wrapped(request: Message, context: grpc.ServicerContext) -> Message:
            started = time.perf_counter()
            call = self._begin(method, context)
            code = grpc.StatusCode.OK
            try:
                for guard in self._guards:
                    guard.before(call, request)
                response = behaviour(request, context)
                for guard in reversed(self._guards):
                    response = guard.after(call, request, response)
                _send_trailers(call, context)
            except Exception as exc:
                code = _code_of(exc)
                self._fail(call, context, exc)
                raise
            else:
                return response
            finally:
                self._finish(call, started, code)

        return wrapped

    def _wrap_stream(
        self, method: str, behaviour: Callable[[Message, grpc.ServicerContext], Iterable[Message]]
    ) -> Callable[[Message, grpc.ServicerContext], Iterator[Message]]:
        def wrapped(request: Message, context: grpc.ServicerContext) -> Iterator[Message]:
            started = time.perf_counter()
            call = self._begin(method, context)
            code = grpc.StatusCode.OK
            try:
                for guard in self._guards:
                    guard.before(call, request)
                for response in behaviour(request, context):
                    for guard in reversed(self._guards):
                        response = guard.after(call, request, response)  # noqa: PLW2901
                    # Generators resume in whatever context the next read runs in: re-bind each time.
                    _current_call.set(call)
                    yield response
                _send_trailers(call, context)
            except Exception as exc:
                code = _code_of(exc)
                self._fail(call, context, exc)
                raise
            finally:
                self._finish(call, started, code)

        return wrapped


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def _with_request_id(status: grpc.Status, request_id: str) -> grpc.Status:
    """Aborting replaces the trailers set earlier; a failed call is when the caller most needs its id."""
    return _Status(
        status.code, status.details, (*tuple(status.trailing_metadata or ()), ("x-request-id", request_id))
    )


def _send_trailers(call: CallInfo, context: grpc.ServicerContext) -> None:
    if call.trailing_metadata:
        context.set_trailing_metadata((("x-request-id", call.request_id), *call.trailing_metadata))


def _code_of(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, errors.DomainError):
        for kind, mapped in _STATUS.items():
            if isinstance(exc, kind):
                return mapped
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INTERNAL


class GrpcServer:
    """A configured grpc.Server with health, reflection, guards, readiness and graceful shutdown."""

    def __init__(
        self,
        *,
        service_label: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_workers: int = 16,
        guards: Sequence[Guard] = (),
        readiness_checks: Sequence[ReadinessCheck] = (),
        readiness_interval_s: float = 2.0,
        server_credentials: grpc.ServerCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{service_label}-rpc"),
            interceptors=[_PlatformInterceptor(service_label, guards)],
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
                *options,
            ],
        )
        self._health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._service_names: list[str] = []
        self._checks = list(readiness_checks)
        self._interval = readiness_interval_s
        self._stopping = threading.Event()
        self._label = service_label
        address = f"{host}:{port}"
        bound = (
            self._server.add_secure_port(address, server_credentials)
            if server_credentials is not None
            else self._server.add_insecure_port(address)
        )
        if bound == 0:
            raise RuntimeError(f"could not bind gRPC server to {address}")
        self.host = host
        self.port = bound
        self._ready_thread: threading.Thread | None = None
        self._stop_hooks: list[Callable[[], None]] = []

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def add_service(self, full_name: str, register: Callable[[grpc.Server], None]) -> None:
        """Register a servicer, e.g. ``add_service("cityhub.safety.v1.SafetyService",
        lambda s: add_SafetyServiceServicer_to_server(servicer, s))``."""
        register(self._server)
        self._service_names.append(full_name)
        self._health.set(full_name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def start(self) -> None:
        reflection.enable_server_reflection(
            (*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        self._server.start()
        self._ready_thread = threading.Thread(target=self._watch_readiness, name="readiness", daemon=True)
        self._ready_thread.start()
        log.info("grpc_server_started", address=self.address, services=self._service_names)

    def _ready(self) -> bool:
        for check in self._checks:
            try:
                if not check():
                    return False
            except Exception:  # noqa: BLE001 - a failing probe means not ready, never a crash
                return False
        return True

    def _watch_readiness(self) -> None:
        serving: bool | None = None
        while not self._stopping.is_set():
            ready = self._ready()
            if ready != serving:
                state = (
                    health_pb2.HealthCheckResponse.SERVING
                    if ready
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                for name in ("", *self._service_names):
                    self._health.set(name, state)
                log.info("grpc_health_changed", serving=ready)
                serving = ready
            self._stopping.wait(self._interval if ready else min(self._interval, 0.25))

    def on_stop(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when stopping begins, after new calls are refused and before in-flight calls are
        drained: long-lived streams end themselves instead of holding shutdown for the whole grace period."""
        self._stop_hooks.append(hook)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking calls, let those in flight finish within the grace period."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._health.enter_graceful_shutdown()
        drained = self._server.stop(grace_s)
        for hook in self._stop_hooks:
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - draining the rest matters more than one hook
                log.warning("grpc_stop_hook_failed", error=str(exc))
        drained.wait()
        if self._ready_thread is not None:
            self._ready_thread.join(timeout=5)
        # Readiness probes may hold clients (a Kafka admin client); left open they retry a broker forever.
        for check in self._checks:
            close = getattr(check, "close", None)
            if callable(close):
                close()
        log.info("grpc_server_stopped", address=self.address)

    def wait(self) -> None:
        self._server.wait_for_termination()

    def serve_until_signalled(self, grace_s: float = 10.0, on_stop: Callable[[], None] | None = None) -> None:
        """Block until SIGTERM or SIGINT, then shut down gracefully (Kubernetes sends SIGTERM)."""
        stop = threading.Event()

        def _handle(signum: int, _frame: object) -> None:
            log.info("shutdown_signal_received", signal=signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, _handle)
        signal.signal(signal.SIGINT, _handle)
        stop.wait()
        self.stop(grace_s)
        if on_stop is not None:
            on_stop()
