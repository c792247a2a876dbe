"""The gRPC server bootstrap every service uses.

The server is grpc.aio on one event loop per server, in its own thread. Unary handlers stay ordinary
synchronous functions (the use cases do blocking PostgreSQL I/O) and run on a bounded thread pool; server
streams (watchers) may be async generators that live on the loop, so an open watcher costs a task and a
queue, not a thread. Health and reflection are answered on the loop itself: a pool busy with application
calls cannot starve them. Admission is explicit: at most ``max_pending`` unary calls are queued or running
and at most ``max_streams`` streams are open; past either, a new call is refused at once with
RESOURCE_EXHAUSTED naming the limit. A call whose deadline passed while it waited for a worker is not
started (DEADLINE_EXCEEDED). See docs/adr/0010-grpc-aio-server.md.

Around every handler the platform binds request id and trace context, runs the registered guards
(authentication, policy, masking — see :mod:`services.platform.security`), maps domain errors to status
codes in one place (undecodable request bytes are the caller's error: INVALID_ARGUMENT), records metrics
and writes one canonical log line per call. Health reports SERVING only once every readiness check passes.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Iterable, Sequence
from concurrent import futures
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
import psycopg
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from kafka import errors as kafka_errors
from psycopg_pool import PoolTimeout

from services.platform import deadlines, errors
from services.platform.logs import bind_context, clear_context, get_logger
from services.platform.metrics import (
    DEPENDENCY_UP,
    GRPC_CALLS_PENDING,
    GRPC_STREAMS_OPEN,
    RPC_LATENCY,
    RPC_TOTAL,
)
from services.platform.tracing import TraceContext, new_request_id, parse_traceparent, set_current_trace

__all__ = [
    "DEPENDENCY_HEALTH_PREFIX",
    "OPEN_SERVICES",
    "CallInfo",
    "GrpcServer",
    "Guard",
    "ReadinessCheck",
    "current_call",
    "status_for",
]

log = get_logger()
T = TypeVar("T")

# Health and reflection answer without credentials: probes and tools must work before anyone logs in.
OPEN_SERVICES = frozenset(
    {health.SERVICE_NAME, reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection"}
)

ReadinessCheck = Callable[[], bool]
# Health names reporting one dependency each ("dependency.postgres", "dependency.kafka").
DEPENDENCY_HEALTH_PREFIX = "dependency."


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
    # time.monotonic() at which the caller's deadline passes; None when the caller set none.
    deadline: float | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def purpose(self) -> str:
        return self.metadata.get("x-purpose", "").strip()

    def remaining_s(self) -> float | None:
        """Seconds left before the caller's deadline (never negative), or None without a deadline."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())


_current_call: ContextVar[CallInfo | None] = ContextVar("cityhub_call", default=None)


def current_call() -> CallInfo:
    call = _current_call.get()
    if call is None:
        raise RuntimeError("current_call() used outside a gRPC call")
    return call


class Guard(Protocol):
    """A step around every call. ``before`` may raise a DomainError to refuse the call; ``after`` may
    return a changed response (masking). Both run on a pool thread with the call bound (they may do
    blocking I/O: the audit log)."""

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
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_for(error: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status for a domain error, with BadRequest field violations when there are any."""
    status = status_pb2.Status(code=_code_of(error).value[0], message=error.message)
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


def _dependency_failure(exc: BaseException) -> errors.UnavailableError | None:
    """A dependency that is down is UNAVAILABLE wherever the failure surfaced (a use case's own read, the
    audit log, a producer), never INTERNAL: the caller should retry, and its request id makes it safe."""
    if isinstance(exc, PoolTimeout | psycopg.OperationalError):
        return errors.UnavailableError("the database is unavailable; retry with the same request_id")
    if isinstance(exc, kafka_errors.KafkaTimeoutError | kafka_errors.KafkaConnectionError) or (
        isinstance(exc, kafka_errors.KafkaError) and getattr(exc, "retriable", False)
    ):
        return errors.UnavailableError("Kafka is unavailable; retry with the same request_id")
    return None


def _code_of(exc: BaseException) -> grpc.StatusCode:
    dependency = _dependency_failure(exc) if not isinstance(exc, errors.DomainError | _Aborted) else None
    if dependency is not None:
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, _Aborted):
        return exc.code
    if isinstance(exc, errors.DomainError):
        for kind, mapped in _STATUS.items():
            if isinstance(exc, kind):
                return mapped
        return grpc.StatusCode.FAILED_PRECONDITION
    return grpc.StatusCode.INTERNAL


@dataclass(frozen=True, slots=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class _Aborted(Exception):  # noqa: N818 - it is how a handler's context.abort() travels, not an error
    """A synchronous handler called ``context.abort``: the status travels to the loop, which sends it."""

    def __init__(self, status: grpc.Status) -> None:
        super().__init__(status.details)
        self.status = status
        self.code: grpc.StatusCode = status.code


@dataclass(frozen=True, slots=True)
class _Undecodable:
    """Stands in for a request whose bytes do not parse, so the caller hears INVALID_ARGUMENT (their
    error) rather than grpcio's INTERNAL "Exception deserializing request!"."""

    size: int


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - any parse failure is the same answer to the caller
            return _Undecodable(len(data))

    return parse


def _check_decodable(call: CallInfo, request: object) -> None:
    if isinstance(request, _Undecodable):
        raise errors.InvalidArgumentError.of(
            "request", f"{request.size} bytes that do not decode as the request message of {call.rpc}"
        )


def _with_request_id(status: grpc.Status, request_id: str) -> grpc.Status:
    """Aborting replaces the trailers set earlier; a failed call is when the caller most needs its id."""
    return _Status(
        status.code, status.details, (*tuple(status.trailing_metadata or ()), ("x-request-id", request_id))
    )


class _ThreadContext:
    """The ServicerContext a synchronous handler sees on its pool thread: the calls CityHub's handlers
    make, answered without touching the event loop except where they must (initial metadata)."""

    def __init__(
        self, context: grpc.aio.ServicerContext[Any, Any], loop: asyncio.AbstractEventLoop, call: CallInfo
    ):
        self._context = context
        self._loop = loop
        self._call = call
        self._metadata = tuple(context.invocation_metadata() or ())

    def invocation_metadata(self) -> tuple[Any, ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        return self._call.remaining_s()

    def is_active(self) -> bool:
        return not self._context.done()

    def peer(self) -> str:
        return self._context.peer()

    def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise _Aborted(_Status(code, details, ()))

    def abort_with_status(self, status: grpc.Status) -> NoReturn:
        raise _Aborted(status)

    def set_trailing_metadata(self, metadata: Iterable[tuple[str, str]]) -> None:
        self._call.trailing_metadata.extend((k, v) for k, v in metadata if k != "x-request-id")

    def send_initial_metadata(self, metadata: Iterable[tuple[str, str]]) -> None:
        asyncio.run_coroutine_threadsafe(
            self._context.send_initial_metadata(tuple(metadata)), self._loop
        ).result()


class _Admission:
    """Counts what a replica has taken on; a call past a limit is refused at once, never queued."""

    def __init__(self, label: str, *, max_pending: int, max_streams: int) -> None:
        self.max_pending = max_pending
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._pending = 0
        self._streams = 0
        self._pending_gauge = GRPC_CALLS_PENDING.labels(label)
        self._streams_gauge = GRPC_STREAMS_OPEN.labels(label)

    @property
    def streams(self) -> int:
        return self._streams

    @property
    def pending(self) -> int:
        return self._pending

    def enter_unary(self) -> bool:
        with self._lock:
            if self._pending >= self.max_pending:
                return False
            self._pending += 1
            self._pending_gauge.set(self._pending)
            return True

    def leave_unary(self) -> None:
        with self._lock:
            self._pending -= 1
            self._pending_gauge.set(self._pending)

    def enter_stream(self) -> bool:
        with self._lock:
            if self._streams >= self.max_streams:
                return False
            self._streams += 1
            self._streams_gauge.set(self._streams)
            return True

    def leave_stream(self) -> None:
        with self._lock:
            self._streams -= 1
            self._streams_gauge.set(self._streams)


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str):
            values[key.lower()] = value
    return values


_END = object()


class _PlatformInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        service_label: str,
        guards: Sequence[Guard],
        pool: futures.ThreadPoolExecutor,
        admission: _Admission,
    ) -> None:
        self._service_label = service_label
        self._guards = list(guards)
        self._pool = pool
        self._admission = admission

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        service = method.rsplit("/", 2)[-2] if method.count("/") >= 2 else method
        if handler is None or service in OPEN_SERVICES:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        # Client-streaming RPCs are not part of CityHub's contracts (batches travel in one message).
        return handler

    # -- on the loop --------------------------------------------------------------------------------

    def _begin(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> CallInfo:
        metadata = _metadata(context)
        request_id = metadata.get("x-request-id") or new_request_id()
        trace = parse_traceparent(metadata.get("traceparent")) or TraceContext.new()
        service, _, rpc = method.lstrip("/").partition("/")
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        call = CallInfo(method, service, rpc, metadata, request_id, trace, deadline=deadline)
        # Each call runs in its own asyncio task, so these bindings are the call's own; the pool work
        # below runs in a copy of this context.
        _current_call.set(call)
        deadlines.set_deadline(deadline)
        set_current_trace(trace)
        bind_context(rpc=method, request_id=request_id, trace_id=trace.trace_id)
        return call

    async def _in_pool(self, fn: Callable[..., T], *args: Any) -> T:
        job = self._pool.submit(contextvars.copy_context().run, fn, *args)
        # Cancelling the await (the caller went away) cancels the job if it has not started.
        return await asyncio.wrap_future(job)

    def _trailers(self, call: CallInfo) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", call.request_id), *call.trailing_metadata)

    def _wrap_unary(
        self, method: str, behaviour: Callable[[Any, Any], Message]
    ) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Coroutine[Any, Any, Message]]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            call = self._begin(method, context)
            if not self._admission.enter_unary():
                failure = self._refused_busy(call, "unary calls queued or running", "GRPC_MAX_PENDING")
                await context.abort(failure.code, failure.details, failure.trailing_metadata)
            loop = asyncio.get_running_loop()
            job = self._pool.submit(
                contextvars.copy_context().run,
                self._handle_unary,
                call,
                request,
                behaviour,
                _ThreadContext(context, loop, call),
            )
            # The slot is freed when the work is really over (or was cancelled before it began), not
            # when the caller stops waiting: a pool still busy with abandoned calls is still busy.
            job.add_done_callback(lambda _: self._admission.leave_unary())
            try:
                outcome = await asyncio.wrap_future(job)
            except asyncio.CancelledError:
                if job.cancelled():
                    self._finish(call, grpc.StatusCode.CANCELLED)
                raise
            if isinstance(outcome, grpc.Status):
                await context.abort(outcome.code, outcome.details, outcome.trailing_metadata)
            context.set_trailing_metadata(self._trailers(call))
            return outcome

        return wrapped

    def _wrap_stream(
        self, method: str, behaviour: Callable[[Any, Any], Any]
    ) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Message]]:
        asynchronous = inspect.isasyncgenfunction(behaviour)

        async def wrapped(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Message]:
            call = self._begin(method, context)
            if not self._admission.enter_stream():
                refusal = self._refused_busy(call, "streams open", "GRPC_MAX_STREAMS")
                await context.abort(refusal.code, refusal.details, refusal.trailing_metadata)
            code = grpc.StatusCode.OK
            failure: grpc.Status | None = None
            try:
                context.set_trailing_metadata((("x-request-id", call.request_id),))
                await self._in_pool(self._admit, call, request)
                if asynchronous:
                    responses = behaviour(request, context)
                else:
                    responses = self._drain_in_pool(
                        behaviour(request, _ThreadContext(context, asyncio.get_running_loop(), call))
                    )
                async for response in responses:
                    if self._guards:
                        response = await self._in_pool(self._after, call, request, response)  # noqa: PLW2901
                    yield response
                context.set_trailing_metadata(self._trailers(call))
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:  # noqa: BLE001 - every failure gets a status; bugs are logged as such
                code = _code_of(exc)
                failure = self._failure(call, exc)
            finally:
                self._admission.leave_stream()
                self._finish(call, code)
            if failure is not None:
                await context.abort(failure.code, failure.details, failure.trailing_metadata)

        return wrapped

    async def _drain_in_pool(self, responses: Iterable[Message]) -> AsyncIterator[Message]:
        """A synchronous response generator, each step on the pool (such a stream holds a thread only
        while it computes its next message, and then only if it blocks there)."""
        iterator = iter(responses)
        while True:
            response = await self._in_pool(next, iterator, _END)
            if response is _END:
                return
            yield response

    def _refused_busy(self, call: CallInfo, what: str, setting: str) -> grpc.Status:
        limit = self._admission.max_streams if setting == "GRPC_MAX_STREAMS" else self._admission.max_pending
        failure = self._failure(
            call,
            errors.ResourceExhaustedError(
                f"this replica is at its limit of {limit} {what} ({setting}); "
                "retry later or on another replica"
            ),
        )
        self._finish(call, grpc.StatusCode.RESOURCE_EXHAUSTED)
        return failure

    # -- on a pool thread -----------------------------------------------------------------------------

    def _admit(self, call: CallInfo, request: Any) -> None:
        if call.deadline is not None and time.monotonic() >= call.deadline:
            raise errors.DeadlineExceededError(
                "the deadline passed while the call waited for a worker; nothing was done"
            )
        _check_decodable(call, request)
        for guard in self._guards:
            guard.before(call, request)

    def _after(self, call: CallInfo, request: Message, response: Message) -> Message:
        for guard in reversed(self._guards):
            response = guard.after(call, request, response)
        return response

    def _handle_unary(
        self, call: CallInfo, request: Any, behaviour: Callable[[Any, Any], Message], context: _ThreadContext
    ) -> Message | grpc.Status:
        code = grpc.StatusCode.OK
        try:
            self._admit(call, request)
            return self._after(call, request, behaviour(request, context))
        except Exception as exc:  # noqa: BLE001 - every failure gets a status; bugs are logged as such
            code = _code_of(exc)
            return self._failure(call, exc)
        finally:
            self._finish(call, code)

    # -- either side ----------------------------------------------------------------------------------

    def _failure(self, call: CallInfo, exc: BaseException) -> grpc.Status:
        if isinstance(exc, _Aborted):
            return _with_request_id(exc.status, call.request_id)
        dependency = _dependency_failure(exc)
        if dependency is not None:
            exc = dependency
        if isinstance(exc, errors.DomainError):
            status = status_for(exc)
            log.info("rpc_refused", code=_code_of(exc).name, reason=exc.message)
        else:
            log.error("rpc_failed", error_type=type(exc).__name__, exc_info=exc)
            # Internal details stay in the log (with the request id); the caller gets the id to quote.
            status = status_pb2.Status(
                code=code_pb2.INTERNAL, message=f"internal error (request id {call.request_id})"
            )
        return _with_request_id(rpc_status.to_status(status), call.request_id)

    def _finish(self, call: CallInfo, code: grpc.StatusCode) -> None:
        elapsed = time.perf_counter() - call.started
        RPC_TOTAL.labels(self._service_label, call.rpc, code.name).inc()
        RPC_LATENCY.labels(self._service_label, call.rpc).observe(elapsed)
        log.info("rpc_finished", code=code.name, duration_ms=round(elapsed * 1000, 3))
        clear_context(["rpc", "request_id", "trace_id", "caller"])
        _current_call.set(None)
        set_current_trace(None)


class GrpcServer:
    """A configured grpc.aio server with health, reflection, guards, admission limits, readiness and
    graceful shutdown, driven from synchronous code (its event loop runs in a thread of its own)."""

    def __init__(
        self,
        *,
        service_label: str,
        host: str = "127.0.0.1",
        port: int = 0,
        max_workers: int = 16,
        max_pending: int | None = None,
        max_streams: int = 2000,
        guards: Sequence[Guard] = (),
        readiness_checks: Sequence[ReadinessCheck] = (),
        essential: Collection[str] | None = None,
        readiness_interval_s: float = 2.0,
        server_credentials: grpc.ServerCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._label = service_label
        self._pool = futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=f"{service_label}-rpc"
        )
        # Enough queue to ride out a burst (each worker has ~16 calls waiting), short enough that a
        # queued call is answered within its caller's patience rather than after it.
        self._admission = _Admission(
            service_label, max_pending=max_pending or max_workers * 16, max_streams=max_streams
        )
        self._interceptor = _PlatformInterceptor(service_label, guards, self._pool, self._admission)
        self._service_names: list[str] = []
        self._checks = list(readiness_checks)
        # A check is named by its ``name`` attribute (PostgresCheck: "postgres"). Only essential ones
        # decide SERVING; the others report a degraded dependency (metric, log, dependency health name).
        self._named = [
            (str(getattr(check, "name", f"check{i}")), check) for i, check in enumerate(self._checks)
        ]
        self._essential = None if essential is None else frozenset(essential)
        self._interval = readiness_interval_s
        self._stopping = threading.Event()
        self._ready_thread: threading.Thread | None = None
        self._stop_hooks: list[Callable[[], None]] = []
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._run_loop, name=f"{service_label}-grpc", daemon=True)
        self._loop_thread.start()
        address = f"{host}:{port}"
        try:
            self._server, self._health, bound = self._on_loop(
                self._create(address, server_credentials, options)
            )
        except BaseException:
            self._close_loop()
            self._pool.shutdown(wait=False)
            raise
        self.host = host
        self.port = bound

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _on_loop(self, coroutine: Coroutine[Any, Any, T], timeout_s: float | None = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def _close_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=10)

    async def _create(
        self, address: str, credentials: grpc.ServerCredentials | None, options: Sequence[tuple[str, Any]]
    ) -> tuple[grpc.aio.Server, Any, int]:
        server = grpc.aio.server(
            migration_thread_pool=self._pool,
            interceptors=[self._interceptor],
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
                *options,
            ],
        )
        # The asyncio health servicer answers on the loop; the stubs do not describe the aio module.
        health_servicer: Any = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        try:
            bound = (
                server.add_secure_port(address, credentials)
                if credentials is not None
                else server.add_insecure_port(address)
            )
        except RuntimeError as error:
            raise RuntimeError(f"could not bind gRPC server to {address}: {error}") from None
        if bound == 0:
            raise RuntimeError(f"could not bind gRPC server to {address}")
        return server, health_servicer, bound

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """The service label its metrics carry."""
        return self._label

    @property
    def open_streams(self) -> int:
        return self._admission.streams

    @property
    def pending_calls(self) -> int:
        """Unary calls admitted and not finished (queued or running)."""
        return self._admission.pending

    def add_service(self, full_name: str, register: Callable[[Any], None]) -> None:
        """Register a servicer, e.g. ``add_service("cityhub.safety.v1.SafetyService",
        lambda s: add_SafetyServiceServicer_to_server(servicer, s))``."""

        async def add() -> None:
            register(self._server)
            await self._health.set(full_name, health_pb2.HealthCheckResponse.NOT_SERVING)

        self._on_loop(add())
        self._service_names.append(full_name)

    def start(self) -> None:
        async def start() -> None:
            reflection.enable_server_reflection(
                (*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
            )
            await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
            await self._server.start()

        self._on_loop(start())
        self._ready_thread = threading.Thread(target=self._watch_readiness, name="readiness", daemon=True)
        self._ready_thread.start()
        log.info(
            "grpc_server_started",
            address=self.address,
            services=self._service_names,
            max_streams=self._admission.max_streams,
            max_pending=self._admission.max_pending,
        )

    def _probe(self) -> dict[str, bool]:
        states: dict[str, bool] = {}
        for name, check in self._named:
            try:
                states[name] = bool(check())
            except Exception:  # noqa: BLE001 - a failing probe means not ready, never a crash
                states[name] = False
        return states

    def _serving(self, states: dict[str, bool]) -> bool:
        return all(up for name, up in states.items() if self._essential is None or name in self._essential)

    def _set_health(self, updates: dict[str, bool]) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING

        async def apply() -> None:
            for name, up in updates.items():
                await self._health.set(name, serving if up else not_serving)

        self._on_loop(apply(), timeout_s=5)

    def _watch_readiness(self) -> None:
        serving: bool | None = None
        known: dict[str, bool] = {}
        while not self._stopping.is_set():
            states = self._probe()
            ready = self._serving(states)
            updates: dict[str, bool] = {}
            if ready != serving:
                updates.update(dict.fromkeys(("", *self._service_names), ready))
            for name, up in states.items():
                if known.get(name) != up:
                    # Each dependency has a health name of its own (grpc_health_probe -service
                    # dependency.kafka): a degraded one is visible without taking the service out of rotation.
                    updates[f"{DEPENDENCY_HEALTH_PREFIX}{name}"] = up
                    DEPENDENCY_UP.labels(self._label, name).set(1 if up else 0)
                    if name in known:
                        log.info("dependency_changed", dependency=name, up=up, serving=ready)
            if updates and not self._stopping.is_set():
                try:
                    self._set_health(updates)
                except (RuntimeError, futures.TimeoutError):  # the loop is stopping with us
                    return
                if ready != serving:
                    log.info("grpc_health_changed", serving=ready)
                serving = ready
                known = states
            self._stopping.wait(self._interval if all(states.values()) else min(self._interval, 0.25))

    def on_stop(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when stopping begins, after new calls are refused and before in-flight calls are
        drained: long-lived streams end themselves instead of holding shutdown for the whole grace period."""
        self._stop_hooks.append(hook)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking calls, let those in flight finish within the grace period (then cancel them)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._on_loop(self._health.enter_graceful_shutdown())
        stopped = asyncio.run_coroutine_threadsafe(self._server.stop(grace_s), self._loop)
        for hook in self._stop_hooks:
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - draining the rest matters more than one hook
                log.warning("grpc_stop_hook_failed", error=str(exc))
        stopped.result(grace_s + 10)
        self._close_loop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._ready_thread is not None:
            self._ready_thread.join(timeout=5)
        # Readiness probes may hold clients (a Kafka admin client); left open they retry a broker forever.
        for check in self._checks:
            close = getattr(check, "close", None)
            if callable(close):
                close()
        log.info("grpc_server_stopped", address=self.address)

    def wait(self) -> None:
        self._loop_thread.join()

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
