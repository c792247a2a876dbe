"""Channels for service-to-service calls: TLS when configured, a bearer token on every call, and the
current call's request id and trace context carried along so one request can be followed across services.

Services hold no signing key in production: their token comes from a Secret (``CITYHUB_SERVICE_TOKEN`` or
a mounted file, re-read when it changes). Locally (``CITYHUB_DEV_KEYS=true``) and in tests a process mints
its own short-lived service token with the dev key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.platform.grpc_server import CallInfo, current_call
from services.platform.security.roles import Role
from services.platform.security.settings import SecurityConfigError, SecuritySettings
from services.platform.security.tls import channel_credentials, channel_options
from services.platform.security.tokens import TokenIssuer
from services.platform.tracing import current_trace

__all__ = [
    "FileTokenProvider",
    "SigningTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "make_channel",
    "service_token_provider",
]

TokenProvider = Callable[[], str]
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class StaticTokenProvider:
    def __init__(self, token: str) -> None:
        self._token = token.strip()

    def __call__(self) -> str:
        return self._token


class FileTokenProvider:
    """Reads the token from a file and again whenever the file changes (a rotated Kubernetes Secret)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._token = ""
        self._lock = threading.Lock()

    def __call__(self) -> str:
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._token = self._path.read_text().strip()
                self._stamp = stamp
            return self._token


class SigningTokenProvider:
    """Mints a token with a local signing key and renews it when a fifth of its life is left."""

    def __init__(
        self,
        issuer: TokenIssuer,
        *,
        sub: str,
        roles: Sequence[str],
        scopes: Sequence[str] = (),
        ttl_s: float = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._sub = sub
        self._roles = tuple(roles)
        self._scopes = tuple(scopes)
        self._ttl = ttl_s
        self._clock = clock
        self._token = ""
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        now = self._clock()
        with self._lock:
            if now >= self._renew_at:
                self._token = self._issuer.issue(
                    sub=self._sub, roles=self._roles, scopes=self._scopes, ttl_s=self._ttl, issued_at=now
                )
                self._renew_at = now + self._ttl * 0.8
            return self._token


def service_token_provider(settings: SecuritySettings, service_name: str) -> TokenProvider:
    """This process's service token: from the Secret when configured, else minted with the dev key."""
    if settings.service_token is not None and settings.service_token.get_secret_value().strip():
        return StaticTokenProvider(settings.service_token.get_secret_value())
    if settings.service_token_file is not None:
        return FileTokenProvider(settings.service_token_file)
    has_private = settings.jwt_private_key is not None or settings.jwt_private_key_file is not None
    if settings.dev_keys or has_private:
        return SigningTokenProvider(
            TokenIssuer.from_settings(settings),
            sub=f"service:{service_name}",
            roles=[Role.SERVICE],
            ttl_s=settings.service_token_ttl_s,
        )
    raise SecurityConfigError(
        "CITYHUB_SERVICE_TOKEN (or CITYHUB_SERVICE_TOKEN_FILE) is required to call other services"
    )


@dataclass(frozen=True)
class _Details(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: tuple[tuple[str, str | bytes], ...] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _OutgoingMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the bearer token, the caller's request id and trace, and a default deadline to every call."""

    def __init__(self, token_provider: TokenProvider | None, default_timeout_s: float | None = None) -> None:
        self._token_provider = token_provider
        self._default_timeout_s = default_timeout_s

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        present = {key.lower() for key, _ in metadata}
        if self._token_provider is not None and "authorization" not in present:
            metadata.append(("authorization", f"Bearer {self._token_provider()}"))
        call = _outer_call()
        if call is not None and "x-request-id" not in present:
            metadata.append(("x-request-id", call.request_id))
        trace = current_trace()
        if trace is not None and "traceparent" not in present:
            metadata.append(("traceparent", trace.child().traceparent))
        return _Details(
            details.method,
            self._default_timeout_s if details.timeout is None else details.timeout,
            tuple(metadata),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)


def _outer_call() -> CallInfo | None:
    try:
        return current_call()
    except RuntimeError:  # not inside a call: a tool or a background task calling out
        return None


def _host(target: str) -> str:
    address = target.split("///", 1)[-1] if "///" in target else target.removeprefix("dns:")
    if address.startswith("["):
        return address[: address.find("]") + 1]
    return address.rsplit(":", 1)[0] if ":" in address else address


def make_channel(
    target: str,
    settings: SecuritySettings,
    token_provider: TokenProvider | None,
    *,
    options: Sequence[tuple[str, Any]] = (),
    default_timeout_s: float | None = None,
) -> grpc.Channel:
    """A channel to another service. Without TLS a bearer token is only ever sent to loopback (or when
    ``CITYHUB_GRPC_ALLOW_PLAINTEXT`` says the network is protected otherwise, e.g. by a mesh). With
    ``default_timeout_s``, a call made without its own deadline gets that one."""
    credentials = channel_credentials(settings)
    all_options = [*channel_options(settings), *options]
    if credentials is not None:
        channel = grpc.secure_channel(target, credentials, options=all_options)
    else:
        local = target.startswith("unix:") or _host(target) in _LOOPBACK
        if token_provider is not None and not local and not settings.grpc_allow_plaintext:
            raise SecurityConfigError(
                f"refusing to send a bearer token to {target} in plaintext: configure CITYHUB_TLS_CA_FILE "
                "or set CITYHUB_GRPC_ALLOW_PLAINTEXT=true when the network is encrypted otherwise"
            )
        channel = grpc.insecure_channel(target, options=all_options)
    return grpc.intercept_channel(channel, _OutgoingMetadata(token_provider, default_timeout_s))
