"""Calling another CityHub service: one :class:`PeerClient` per peer, built at bootstrap.

What every service-to-service call gets, so no caller has to remember it:

- the peer's address from the setting ``<TARGET>_GRPC_ADDRESS`` (a service's settings class declares the
  peers it calls as :data:`PeerAddress` fields, e.g. ``safety_grpc_address: PeerAddress = None``); a peer
  that is called but not configured stops start-up naming the setting;
- the channel of :func:`services.platform.security.make_channel`: TLS when the security settings configure
  it, this service's bearer token (from the Secret, or minted with the dev key and renewed before it
  expires: :func:`~services.platform.security.service_token_provider`), and the current call's
  ``x-request-id`` and ``traceparent`` carried along;
- a deadline on every call (``PEER_CALL_TIMEOUT_S``, default 3 s), covering all attempts;
- retries with exponential backoff on UNAVAILABLE, done by gRPC itself (the channel's service config), so
  only attempts that never reached the peer's handler are repeated;
- the peer's answer as the platform's errors: a peer still down after the retries (UNAVAILABLE or the
  deadline passed) raises :class:`~services.platform.errors.UnavailableError` naming the peer, so the
  calling RPC answers UNAVAILABLE too; NOT_FOUND, INVALID_ARGUMENT (with the peer's field violations),
  ALREADY_EXISTS, FAILED_PRECONDITION and PERMISSION_DENIED become the matching domain errors;
  RESOURCE_EXHAUSTED becomes UnavailableError (retry later). Everything else (UNAUTHENTICATED: our own
  service token was refused; INTERNAL, UNIMPLEMENTED, ...) raises :class:`PeerCallError`, which the
  calling RPC answers as INTERNAL: it is this deployment's fault, not the caller's.

Usage in a bootstrap::

    class IndustrySettings(PeerSettings):  # PeerSettings is ServiceSettings plus the peer call settings
        safety_grpc_address: PeerAddress = None

    safety = peer_client(settings, "safety", SafetyServiceStub)
    runtime.add_closer(safety.close)
    reply = safety.call(safety.stub.GetSite, GetSiteRequest(site_id=site_id))
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Generic, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pydantic import Field
from pydantic_settings import BaseSettings

from services.platform import errors
from services.platform.logs import get_logger
from services.platform.security.client import TokenProvider, make_channel, service_token_provider
from services.platform.security.settings import SecuritySettings, load_security_settings
from services.platform.settings import ServiceSettings, SettingsError

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "PeerAddress",
    "PeerCallError",
    "PeerClient",
    "PeerSettings",
    "RetryPolicy",
    "ServiceClient",
    "address_setting",
    "peer_client",
    "retry_channel_options",
]

log = get_logger()

DEFAULT_CALL_TIMEOUT_S = 3.0
_TARGET = r"^[a-z][a-z0-9_]*$"

# How a service declares a peer it calls: ``<target>_grpc_address: PeerAddress = None``. "host:port" or any
# gRPC target ("dns:///safety.cityhub:50051", "unix:/run/safety.sock").
PeerAddress = Annotated[str, Field(min_length=1)] | None

StubT = TypeVar("StubT")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class PeerSettings(ServiceSettings):
    """The settings of a service that calls others: subclass this instead of ServiceSettings and declare
    each peer as ``<target>_grpc_address: PeerAddress = None``."""

    # The deadline of one call, all retries included.
    peer_call_timeout_s: Annotated[float, Field(gt=0, le=300)] = DEFAULT_CALL_TIMEOUT_S
    # Attempts per call (gRPC caps this at 5); the waits between them grow from initial to max backoff.
    peer_max_attempts: Annotated[int, Field(ge=1, le=5)] = 4
    peer_initial_backoff_s: Annotated[float, Field(gt=0, le=60)] = 0.1
    peer_max_backoff_s: Annotated[float, Field(gt=0, le=300)] = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """gRPC's own retry policy for UNAVAILABLE: attempts and the (jittered) waits between them."""

    max_attempts: int = 4
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 5:
            raise ValueError("max_attempts must be 1..5 (gRPC caps retries at 5 attempts)")
        if self.initial_backoff_s <= 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("backoff needs 0 < initial_backoff_s <= max_backoff_s")
        if self.backoff_multiplier <= 0:
            raise ValueError("backoff_multiplier must be positive")

    @classmethod
    def from_settings(cls, settings: object) -> RetryPolicy:
        """From :class:`PeerSettings` fields when ``settings`` has them, the defaults otherwise."""
        default = cls()
        return cls(
            max_attempts=int(getattr(settings, "peer_max_attempts", default.max_attempts)),
            initial_backoff_s=float(getattr(settings, "peer_initial_backoff_s", default.initial_backoff_s)),
            max_backoff_s=float(getattr(settings, "peer_max_backoff_s", default.max_backoff_s)),
        )


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "s"


def retry_channel_options(policy: RetryPolicy) -> list[tuple[str, Any]]:
    """Channel options turning on gRPC's retries of UNAVAILABLE for every method of the channel."""
    attempts = policy.max_attempts
    config: dict[str, Any] = {"methodConfig": [{"name": [{}]}]}
    if attempts > 1:
        config["methodConfig"][0]["retryPolicy"] = {
            "maxAttempts": attempts,
            "initialBackoff": _seconds(policy.initial_backoff_s),
            "maxBackoff": _seconds(policy.max_backoff_s),
            "backoffMultiplier": policy.backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return [
        ("grpc.enable_retries", 1 if attempts > 1 else 0),
        ("grpc.service_config", json.dumps(config)),
        # A peer that was down is tried again soon after, not after gRPC's default 1-120 s reconnect waits.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 5000),
    ]


def address_setting(target: str) -> str:
    """The environment variable naming ``target``'s address: ``safety`` -> ``SAFETY_GRPC_ADDRESS``."""
    return f"{target.upper()}_GRPC_ADDRESS"


class PeerCallError(RuntimeError):
    """A peer answered with a status that says nothing about the caller's request (UNAUTHENTICATED for
    our service token, INTERNAL, UNIMPLEMENTED, ...): answered as INTERNAL by the calling RPC."""

    def __init__(self, target: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{target} answered {code.name}: {details}")
        self.target = target
        self.code = code
        self.details = details


class PeerClient(Generic[StubT]):
    """One peer service: its channel, its stub, and calls with deadline, retries and mapped errors.

    Thread-safe (a gRPC channel is); build one per peer at start-up and close it at shutdown.
    """

    def __init__(
        self,
        target: str,
        address: str,
        stub_factory: Callable[[grpc.Channel], StubT],
        *,
        security: SecuritySettings,
        token_provider: TokenProvider | None,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.target = target
        self.address = address
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        # Every call gets the default deadline from the channel, calls made straight on ``stub`` too.
        self.channel: grpc.Channel = make_channel(
            address,
            security,
            token_provider,
            options=[*retry_channel_options(self.retry), *options],
            default_timeout_s=timeout_s,
        )
        self.stub: StubT = stub_factory(self.channel)

    def call(
        self,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        *,
        timeout_s: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Resp:
        """``method(request)`` (a method of :attr:`stub`) with the deadline, errors mapped (module text)."""
        try:
            return method(request, timeout=timeout_s, metadata=tuple(metadata) or None)
        except grpc.RpcError as error:
            raise self.error_for(error) from error

    def stream(
        self,
        method: grpc.UnaryStreamMultiCallable[Req, Resp],
        request: Req,
        *,
        timeout_s: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Iterator[Resp]:
        """A server-streaming call; the deadline covers the whole stream (pass a longer ``timeout_s``)."""
        try:
            yield from method(request, timeout=timeout_s, metadata=tuple(metadata) or None)
        except grpc.RpcError as error:
            raise self.error_for(error) from error

    def error_for(self, error: grpc.RpcError) -> Exception:
        """The platform error for a failed call to this peer."""
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (error.details() if isinstance(error, grpc.Call) else None) or str(error)
        log.warning("peer_call_failed", peer=self.target, address=self.address, code=code.name)
        where = f"{self.target} at {self.address}"
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return errors.UnavailableError(f"{where} is unavailable: no answer within the deadline")
        if code is grpc.StatusCode.UNAVAILABLE:
            return errors.UnavailableError(f"{where} is unavailable: {details}")
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            return errors.UnavailableError(f"{where} is overloaded: {details}")
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return errors.InvalidArgumentError(
                _violations(error) or [errors.FieldViolation(self.target, details)]
            )
        if code is grpc.StatusCode.PERMISSION_DENIED:
            return errors.PermissionDeniedError(f"{self.target}: {details}")
        kind = _PASSED_ON.get(code)
        return kind(details) if kind is not None else PeerCallError(self.target, code, details)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> PeerClient[StubT]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# Statuses that describe the caller's request as well as ours: answered the same way by the calling RPC.
_PASSED_ON: dict[grpc.StatusCode, type[errors.DomainError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPreconditionError,
}

# The name the design notes use; one class.
ServiceClient = PeerClient


def _violations(error: grpc.RpcError) -> list[errors.FieldViolation]:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # inconsistent status trailers: fall back to the plain details
        return []
    if status is None:
        return []
    found: list[errors.FieldViolation] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.extend(errors.FieldViolation(v.field, v.description) for v in bad.field_violations)
    return found


def peer_client(
    settings: object,
    target: str,
    stub_factory: Callable[[grpc.Channel], StubT],
    *,
    security: SecuritySettings | None = None,
    token_provider: TokenProvider | None = None,
    service_name: str | None = None,
    timeout_s: float | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> PeerClient[StubT]:
    """The client for ``target`` configured from ``settings`` (a ServiceSettings subclass declaring
    ``<target>_grpc_address``; :class:`PeerSettings` fields for deadline and retries when present).

    The token is this service's (``settings.service_name``) from :func:`service_token_provider` unless
    ``token_provider`` is given. Raises :class:`SettingsError` naming ``<TARGET>_GRPC_ADDRESS`` when the
    address is not configured (call it at start-up)."""
    if not re.match(_TARGET, target):
        raise ValueError(f"peer target {target!r} must be a lower-case name such as 'safety'")
    name = address_setting(target)
    field = name.lower()
    declared = field in type(settings).model_fields if isinstance(settings, BaseSettings) else False
    address = getattr(settings, field, None)
    if not address:
        hint = "" if declared else f" ({type(settings).__name__} has no field {field}: declare it)"
        raise SettingsError(f"{name}: is required to call {target} but not set{hint}")
    security = security or load_security_settings()
    if token_provider is None:
        own_name = service_name or str(getattr(settings, "service_name", "") or "")
        if not own_name:
            raise ValueError("peer_client needs service_name= when settings have no service_name")
        token_provider = service_token_provider(security, own_name)
    timeout = timeout_s or float(getattr(settings, "peer_call_timeout_s", DEFAULT_CALL_TIMEOUT_S))
    return PeerClient(
        target,
        str(address),
        stub_factory,
        security=security,
        token_provider=token_provider,
        timeout_s=timeout,
        retry=RetryPolicy.from_settings(settings),
        options=options,
    )
