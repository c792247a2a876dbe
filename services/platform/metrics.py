"""Prometheus metrics shared by every service: RPCs, outbox backlog, consumer lag, dead letters.

One registry per process (the default); each service exposes it over HTTP on METRICS_PORT."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

__all__ = [
    "CONSUMER_LAG",
    "CONSUMER_RECORDS",
    "DEAD_LETTERS",
    "DEPENDENCY_BREAKER_OPEN",
    "DEPENDENCY_UP",
    "EVENTS_PUBLISHED",
    "GRPC_CALLS_PENDING",
    "GRPC_STREAMS_OPEN",
    "OUTBOX_BACKLOG",
    "RPC_LATENCY",
    "RPC_TOTAL",
    "serve_metrics",
    "start_metrics_server",
]

RPC_TOTAL = Counter(
    "cityhub_rpc_total", "gRPC calls handled, by method and status code", ["service", "method", "code"]
)
RPC_LATENCY = Histogram(
    "cityhub_rpc_seconds",
    "gRPC call latency",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRPC_STREAMS_OPEN = Gauge(
    "cityhub_grpc_streams_open", "Server-streaming calls (watchers) open on this replica", ["service"]
)
GRPC_CALLS_PENDING = Gauge(
    "cityhub_grpc_calls_pending", "Unary calls admitted and not yet finished (queued or running)", ["service"]
)
DEPENDENCY_UP = Gauge(
    "cityhub_dependency_up",
    "1 while the service's readiness probe of a dependency passes",
    ["service", "dependency"],
)
DEPENDENCY_BREAKER_OPEN = Gauge(
    "cityhub_dependency_breaker_open",
    "1 while calls to a dependency are answered UNAVAILABLE at once (circuit open)",
    ["service", "dependency"],
)
OUTBOX_BACKLOG = Gauge("cityhub_outbox_backlog", "Outbox rows not yet published", ["service"])
EVENTS_PUBLISHED = Counter(
    "cityhub_events_published_total", "Events published by the relay", ["service", "topic"]
)
CONSUMER_LAG = Gauge(
    "cityhub_consumer_lag", "Records behind the end of the partition", ["consumer", "topic", "partition"]
)
CONSUMER_RECORDS = Counter(
    "cityhub_consumer_records_total",
    "Records a consumer handled, by outcome (processed, duplicate, dead_lettered)",
    ["consumer", "topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "cityhub_dead_letters_total", "Records sent to a dead-letter topic", ["consumer", "topic"]
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> int:
    """Expose /metrics; port 0 picks a free one. Returns the port it listens on."""
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return int(server.server_port)


def start_metrics_server(port: int, host: str = "127.0.0.1") -> tuple[int, Callable[[], None]]:
    """Like :func:`serve_metrics`, plus the function that stops the server and its thread again."""
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return int(server.server_port), stop
