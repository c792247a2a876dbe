"""The web's gRPC channels (grpc.aio: pages and the SSE stream live on the server's event loop) and the
per-person call metadata. Every call carries the signed-in person's own bearer token, never one of the
web's: the hub and kitchen apply roles and scopes exactly as they do over gRPC."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from cityhub.hub.v1 import hub_pb2_grpc
from cityhub.kitchen.v1 import kitchen_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.platform.security.settings import SecurityConfigError, SecuritySettings
from services.platform.security.tls import channel_credentials

if TYPE_CHECKING:
    # The async stub types exist in the generated .pyi only; at run time the stub class serves both.
    from cityhub.hub.v1.hub_pb2_grpc import HubServiceAsyncStub
    from cityhub.kitchen.v1.kitchen_pb2_grpc import KitchenServiceAsyncStub

__all__ = ["Backends", "bearer_metadata", "open_backends"]


def _loopback(target: str) -> bool:
    if target.startswith("unix:"):
        return True
    host = target.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _channel(target: str, security: SecuritySettings) -> grpc.aio.Channel:
    credentials = channel_credentials(security)
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials)
    # The same rule as the platform's sync channels: a person's token never crosses a network in clear.
    if not _loopback(target) and not security.grpc_allow_plaintext:
        raise SecurityConfigError(
            f"refusing to send bearer tokens to {target} in plaintext: configure CITYHUB_TLS_CA_FILE "
            "or set CITYHUB_GRPC_ALLOW_PLAINTEXT=true when the network is encrypted otherwise"
        )
    return grpc.aio.insecure_channel(target)


@dataclass
class Backends:
    hub: HubServiceAsyncStub
    # The health stub's type stubs declare no methods.
    hub_health: Any
    kitchen: KitchenServiceAsyncStub | None
    channels: list[grpc.aio.Channel]

    async def hub_serving(self, timeout_s: float = 1.0) -> bool:
        try:
            reply = await self.hub_health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def open_backends(hub_address: str, kitchen_address: str | None, security: SecuritySettings) -> Backends:
    """Channels to the hub (and kitchen when configured). Must be called on the loop that will use them."""
    hub_channel = _channel(hub_address, security)
    channels = [hub_channel]
    kitchen: KitchenServiceAsyncStub | None = None
    if kitchen_address:
        kitchen_channel = _channel(kitchen_address, security)
        channels.append(kitchen_channel)
        kitchen = kitchen_pb2_grpc.KitchenServiceStub(kitchen_channel)
    return Backends(
        hub=hub_pb2_grpc.HubServiceStub(hub_channel),
        hub_health=health_pb2_grpc.HealthStub(hub_channel),
        kitchen=kitchen,
        channels=channels,
    )


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    # A request id per page call, so the hub's log line of this call can be found from the web's.
    return (("authorization", f"Bearer {token}"), ("x-request-id", f"web-{secrets.token_hex(8)}"))
