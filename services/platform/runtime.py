"""What every service process owns, opened in order and closed in reverse: the one place (per service,
through its bootstrap) that opens pools, producers, consumers and the gRPC server.

A service's ``bootstrap.py`` builds a :class:`ServiceRuntime`, registers its servicer and consumers, and
its ``__main__`` calls :meth:`ServiceRuntime.serve_forever`. Tests build the same runtime on port 0.

Every request passes the platform's generic input check (:class:`~services.platform.validation.InputGuard`)
after the guards; a spec may tune its limits (``input_rules``).

Security is on by default: unless ``guards`` is given, the runtime builds the platform's
:class:`~services.platform.security.SecurityGuard` for ``spec.grpc_services`` (bearer JWT, the policy
table passed explicitly as ``ServiceSpec(policy=POLICY)``, masking, the audit log in the service's own
schema), TLS from the security settings when certificates are configured, and the log redactor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from services.platform.breaker import Breaker
from services.platform.consumer import BatchHandler, Handler, IdempotentConsumer
from services.platform.db import create_pool, migration_directories, pending_migrations, set_up_database
from services.platform.grpc_server import GrpcServer, Guard
from services.platform.idempotency import Fingerprint, sha256_fingerprint
from services.platform.kafka import Producer, ensure_topics, make_producer
from services.platform.lag import ConsumerGroup, LagProbe
from services.platform.logs import configure_logging, get_logger
from services.platform.metrics import start_metrics_server
from services.platform.outbox import BackgroundRelay, OutboxWriter, start_relay_thread
from services.platform.readiness import KafkaCheck, PostgresCheck
from services.platform.security import (
    AuditLog,
    PolicyTable,
    SecurityGuard,
    SecuritySettings,
    TokenVerifier,
    install_redaction,
    load_security_settings,
)
from services.platform.security import server_credentials as tls_server_credentials
from services.platform.security.anchors import AuditAnchorPublisher
from services.platform.settings import ServiceSettings, StartupError
from services.platform.uow import PostgresUnitOfWork
from services.platform.validation import InputGuard, InputRules

__all__ = ["ServiceRuntime", "ServiceSpec", "StartupError", "policies_of"]

log = get_logger()
R = TypeVar("R")


@dataclass(frozen=True)
class ServiceSpec:
    """The static facts of a service: its gRPC service and policy, migrations and topics (first = default)."""

    label: str
    grpc_services: Sequence[str] = ()  # full names, e.g. "cityhub.safety.v1.SafetyService"
    # The policy table of the (one) gRPC service: required unless the runtime is given its own guards.
    policy: PolicyTable | None = None
    migrations: Path | None = None
    topics: Sequence[str] = ()
    extra_topics: Sequence[str] = field(default_factory=tuple)  # consumed but owned elsewhere
    # Limits of the platform's generic input check (services/platform/validation.py) laid over its
    # defaults: per-field length overrides, free-text fields, message types the service screens itself.
    input_rules: InputRules | None = None
    # Dependencies without which the service cannot do its main job: health says NOT_SERVING while one
    # is down. The others degrade (metrics, logs, a ``dependency.<name>`` health name) but keep it in
    # rotation: a service whose writes go through the outbox keeps taking them while Kafka is away.
    essential: frozenset[str] = frozenset({"postgres"})


def policies_of(spec: ServiceSpec) -> dict[str, PolicyTable]:
    """The guard's table per gRPC service; a spec without its policy is refused (secure by default)."""
    if spec.policy is None:
        raise ValueError(f"ServiceSpec({spec.label!r}) has no policy: pass policy=POLICY")
    if len(spec.grpc_services) != 1:
        raise ValueError(f"ServiceSpec({spec.label!r}): one policy table needs exactly one gRPC service")
    return {spec.grpc_services[0]: spec.policy}


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        spec: ServiceSpec,
        *,
        guards: Sequence[Guard] | None = None,
        security: SecuritySettings | None = None,
        server_credentials: grpc.ServerCredentials | None = None,
        configure_logs: bool = True,
    ) -> None:
        self.settings = settings
        self.spec = spec
        # Everything close() looks at exists before anything can fail, so a failed start closes what it
        # opened and the error that stopped it is the one that surfaces.
        self._closers: list[Callable[[], Any]] = []
        self._breakers: dict[str, Breaker] = {}
        self._breakers_lock = threading.Lock()
        self._server: GrpcServer | None = None
        self._relay: BackgroundRelay | None = None
        self._consumers: list[tuple[IdempotentConsumer, threading.Thread]] = []
        self._consumer_stop = threading.Event()
        self._pending_consumers: list[IdempotentConsumer] = []
        self._tasks: list[tuple[str, Callable[[threading.Event], None]]] = []
        self._task_threads: list[threading.Thread] = []
        self.metrics_port: int | None = None
        self.guard: SecurityGuard | None = None
        if configure_logs:
            configure_logging(settings.service_name, settings.log_level, settings.log_format)
        install_redaction()
        if guards is None:
            # Secure by default: a service cannot come up without authentication and its policy table
            # (SecurityGuard refuses to start when an RPC has no entry).
            security = security or load_security_settings()
            self.guard = SecurityGuard(TokenVerifier.from_settings(security), policies_of(spec))
            guards = [self.guard]
            if server_credentials is None:
                server_credentials = tls_server_credentials(security)
        try:
            self.pool: ConnectionPool = self._open_database()
            self._closers.append(self.pool.close)
            if self.guard is not None:
                self.guard.use_audit_log(AuditLog(self.pool))
            self.producer: Producer = self._open_broker()
            self._closers.append(lambda: self.producer.close(timeout=10))
            # The audit chain's head, published where the database's users cannot rewrite it.
            anchors = AuditAnchorPublisher(
                AuditLog(self.pool),
                self.producer,
                settings.service_name,
                bootstrap=settings.kafka_bootstrap_list,
                topic=settings.audit_anchor_topic,
                interval_s=settings.audit_anchor_interval_s,
                replication=settings.topic_replication_factor,
            )
            self.add_background("audit-anchor", anchors.run)
            self.outbox = OutboxWriter.for_service(
                settings.service_name, spec.topics[0] if spec.topics else None
            )
            try:
                self._server = GrpcServer(
                    service_label=spec.label,
                    host=settings.grpc_host,
                    port=settings.grpc_port,
                    max_workers=settings.grpc_max_workers,
                    max_pending=settings.grpc_max_pending or None,
                    max_streams=settings.grpc_max_streams,
                    # Bad input is refused after authentication and policy, before any handler runs.
                    guards=[*guards, InputGuard(spec.input_rules)],
                    readiness_checks=[PostgresCheck(self.pool), KafkaCheck(settings.kafka_bootstrap_list)],
                    essential=spec.essential,
                    server_credentials=server_credentials,
                )
            except RuntimeError as error:  # the port is taken or the host is not this machine's
                raise StartupError("GRPC_PORT", str(error)) from error
        except BaseException as error:
            # The error itself propagates with its traceback; this line ties it to the service's logs.
            log.error(  # noqa: TRY400
                "service_start_failed", error=str(error), error_type=type(error).__name__
            )
            self.close()
            raise

    def _open_database(self) -> ConnectionPool:
        settings = self.settings
        try:
            if not settings.db_migrate_on_start:
                return self._open_migrated_database()
            return set_up_database(
                settings.dsn,
                settings.service_name,
                self.spec.migrations,
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                connect_timeout_s=settings.db_connect_timeout_s,
                # Provisioning has just connected: the pool's own connections come at once or not at all.
                open_timeout_s=max(float(settings.db_connect_timeout_s) * 2, 5.0),
                statement_timeout_s=settings.db_statement_timeout_s,
                checkout_timeout_s=settings.db_pool_timeout_s,
            )
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise StartupError(
                "DATABASE_URL", f"cannot connect to {_server_of(settings.dsn)}: {_first_line(error)}"
            ) from error

    def _open_migrated_database(self) -> ConnectionPool:
        """The pool on a schema `cityhub db migrate` prepared: DATABASE_URL is the service's own role,
        nothing is created or altered, and a schema with a migration missing stops the start."""
        settings = self.settings
        schema = settings.service_name
        pending = pending_migrations(
            settings.dsn,
            schema,
            migration_directories(self.spec.migrations),
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        if pending:
            raise StartupError(
                "DB_MIGRATE_ON_START",
                f"is false but {len(pending)} migration(s) of schema {schema!r} are not applied "
                f"(first: {pending[0]}); run `cityhub db migrate {schema}` first",
            )
        return create_pool(
            settings.dsn,
            schema,
            min_size=settings.db_pool_min_size,
            max_size=settings.db_pool_max_size,
            connect_timeout_s=settings.db_connect_timeout_s,
            open_timeout_s=max(float(settings.db_connect_timeout_s) * 2, 5.0),
            statement_timeout_s=settings.db_statement_timeout_s,
            checkout_timeout_s=settings.db_pool_timeout_s,
        )

    def _open_broker(self) -> Producer:
        from kafka.errors import KafkaConnectionError, KafkaTimeoutError

        settings = self.settings
        timeout_s = settings.kafka_connect_timeout_s
        try:
            producer = make_producer(settings, bootstrap_timeout_ms=int(timeout_s * 1000))
        except (KafkaTimeoutError, KafkaConnectionError) as error:
            raise StartupError(
                "KAFKA_BOOTSTRAP_SERVERS",
                f"cannot connect to {settings.kafka_bootstrap_servers}: {_first_line(error)}",
            ) from error
        try:
            ensure_topics(
                settings,
                [*self.spec.topics, *self.spec.extra_topics],
                settings.topic_partitions,
                settings.topic_replication_factor,
                bootstrap_timeout_s=timeout_s,
            )
        except BaseException as error:
            producer.close(timeout=0)
            if isinstance(error, KafkaTimeoutError | KafkaConnectionError):
                raise StartupError(
                    "KAFKA_BOOTSTRAP_SERVERS",
                    f"cannot create topics on {settings.kafka_bootstrap_servers}: {_first_line(error)}",
                ) from error
            raise
        return producer

    @property
    def server(self) -> GrpcServer:
        if self._server is None:  # only after a failed __init__, which raised
            raise RuntimeError("the service runtime did not start")
        return self._server

    def breaker(self, dependency: str) -> Breaker:
        """The one breaker of ``dependency`` in this process ("PostgreSQL", "Kafka"), made on first use."""
        with self._breakers_lock:
            if dependency not in self._breakers:
                self._breakers[dependency] = Breaker(
                    dependency,
                    service=self.spec.label,
                    threshold=self.settings.breaker_threshold,
                    cooldown_s=self.settings.breaker_cooldown_s,
                )
            return self._breakers[dependency]

    def unit_of_work(
        self, repository: Callable[[psycopg.Connection[Any]], R], *, fingerprint: Fingerprint | None = None
    ) -> PostgresUnitOfWork[R]:
        """The service's unit of work on its pool and outbox, bounded by the caller's deadline and the
        database timeouts in its settings, behind the PostgreSQL breaker."""
        return PostgresUnitOfWork(
            self.pool,
            repository,
            self.outbox,
            fingerprint=fingerprint or sha256_fingerprint,
            breaker=self.breaker("PostgreSQL"),
            checkout_timeout_s=self.settings.db_pool_timeout_s,
            statement_timeout_s=self.settings.db_statement_timeout_s,
        )

    def add_closer(self, closer: Callable[[], Any]) -> None:
        """Close ``closer`` with the runtime (after the server and the consumers, before the pool and
        producer): peer clients and other resources a bootstrap opens."""
        self._closers.append(closer)

    @property
    def address(self) -> str:
        return self.server.address

    def add_servicer(self, full_name: str, register: Callable[[grpc.Server], None]) -> None:
        self.server.add_service(full_name, register)

    def add_consumer(
        self,
        name: str,
        topics: Sequence[str],
        handler: Handler,
        *,
        batch_handler: BatchHandler | None = None,
        **overrides: Any,
    ) -> None:
        """Consume ``topics`` into this service's schema through ``handler`` (idempotent, with a DLQ);
        with ``batch_handler``, each poll's new records are applied in one go (``handler`` then only
        isolates a bad record when a poll fails)."""
        # The group is named after the schema too, so two deployments (or two test runs) of one service
        # never share offsets.
        overrides.setdefault("group_id", f"{self.settings.service_name}.{name}")
        if self.settings.kafka_group_instance_id is not None:
            # Unique per group is all Kafka asks: each consumer of a replica is in a group of its own.
            overrides.setdefault("group_instance_id", self.settings.kafka_group_instance_id)
        consumer = IdempotentConsumer(
            name,
            topics,
            self.settings.kafka_bootstrap_list,
            self.pool,
            handler,
            self.producer,
            batch_handler=batch_handler,
            **overrides,
        )
        self._pending_consumers.append(consumer)

    def add_background(self, name: str, target: Callable[[threading.Event], None]) -> None:
        """Run ``target(stop_event)`` in a daemon thread from :meth:`start` until :meth:`close` (periodic
        checks such as device-silence detection)."""
        self._tasks.append((name, target))

    def start(self) -> None:
        self.metrics_port, stop_metrics = start_metrics_server(self.settings.metrics_port)
        self._closers.append(stop_metrics)
        self._relay = start_relay_thread(
            self.pool,
            self.producer,
            self.settings.service_name,
            batch_size=self.settings.outbox_batch_size,
            poll_interval=self.settings.outbox_poll_interval_s,
        )
        if self._pending_consumers:
            # The lag is read from the broker on a thread of its own: right even while a consumer is stuck.
            probe = LagProbe(
                self.settings.kafka_bootstrap_list,
                [ConsumerGroup(c.name, c.group_id, c.topics) for c in self._pending_consumers],
                interval_s=self.settings.consumer_lag_interval_s,
            )
            self._tasks.append(("consumer-lag-probe", probe.run))
        for consumer in self._pending_consumers:
            thread = threading.Thread(
                target=consumer.run,
                args=(self._consumer_stop,),
                name=f"consumer-{consumer.name}",
                daemon=True,
            )
            thread.start()
            self._consumers.append((consumer, thread))
        self._pending_consumers.clear()
        for name, target in self._tasks:
            thread = threading.Thread(target=target, args=(self._consumer_stop,), name=name, daemon=True)
            thread.start()
            self._task_threads.append(thread)
        self.server.start()
        log.info(
            "service_started",
            grpc=self.address,
            metrics_port=self.metrics_port,
            consumers=[c.name for c, _ in self._consumers],
        )

    def serve_forever(self) -> None:
        """Start, block until SIGTERM/SIGINT, drain in-flight calls, then close everything."""
        self.start()
        self.server.serve_until_signalled(self.settings.grpc_shutdown_grace_s, on_stop=self.close)

    def close(self) -> None:
        """Stop in reverse order of start; safe to call twice and after a failed start."""
        if self._server is not None:
            self._server.stop(self.settings.grpc_shutdown_grace_s)
        # One stop event serves consumers and background tasks: both end after their current step.
        self._consumer_stop.set()
        for thread in [t for _c, t in self._consumers] + self._task_threads:
            thread.join(timeout=15)
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        # Consumers registered but never started hold a KafkaConsumer (sockets, a heartbeat thread).
        while self._pending_consumers:
            consumer = self._pending_consumers.pop()
            try:
                consumer.close()
            except Exception as exc:  # noqa: BLE001 - closing the rest matters more than one failure
                log.warning("service_close_failed", error=str(exc))
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - closing the rest matters more than one failure
                log.warning("service_close_failed", error=str(exc))

    def __enter__(self) -> ServiceRuntime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _server_of(dsn: str) -> str:
    """host:port/database of a DSN, without user or password (for messages)."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "the configured server"
    return f"{host}:{port}{parts.path}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
