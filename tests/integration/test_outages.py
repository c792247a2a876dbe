"""Outages answered, not waited out: while PostgreSQL is away callers hear UNAVAILABLE before their
deadline and health says NOT_SERVING, and it all comes back by itself; a broker outage degrades a service
without taking it out of rotation; a caller's deadline bounds the work and nothing commits after it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import psycopg
import pytest
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from cityhub.testing.v1 import testing_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.platform import deadlines
from services.platform.db import set_up_database
from services.platform.errors import DeadlineExceededError
from services.platform.grpc_server import GrpcServer
from services.platform.outbox import OutboxWriter
from services.platform.probe import PROBE_SERVICE, ProbeServicer
from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.uow import PostgresUnitOfWork
from services.safety.bootstrap import build
from tests.fault_support import TcpProxy
from tests.integration.safety.conftest import safety_settings
from tests.kafka_support import delete_topics
from tests.support import unique_name, wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_of(channel: grpc.Channel, service: str = "") -> int:
    stub: Any = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def through(proxy: TcpProxy, database_url: str) -> str:
    parts = urlsplit(database_url)
    netloc = f"{parts.username}@{proxy.address}" if parts.username else proxy.address
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("outage-keys"))


def register(stub: safety_pb2_grpc.SafetyServiceStub, token: str, name: str, timeout: float) -> Any:
    return stub.RegisterSite(
        safety_pb2.RegisterSiteRequest(
            request_id=f"site-{secrets.token_hex(6)}",
            name=name,
            kind=safety_pb2.SITE_KIND_SCHOOL,
            address="18 Tongyu Road, Luqiao District, Taizhou",
            division_code="331004",
            town="Luqiao Street",
            duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
        ),
        metadata=(("authorization", f"Bearer {token}"),),
        timeout=timeout,
    )


def test_postgres_away_is_unavailable_before_the_deadline_not_serving_and_then_back(
    kafka_bootstrap: str, database_url: str, security: SecuritySettings
) -> None:
    parts = urlsplit(database_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    settings = safety_settings(kafka_bootstrap, through(proxy, database_url), breaker_cooldown_s=0.5)
    runtime = build(settings, configure_logs=False, security=security)
    runtime.start()
    token = TokenIssuer.from_settings(security).issue(sub="op", roles=["district_operator"])
    channel = grpc.insecure_channel(runtime.address)
    stub = safety_pb2_grpc.SafetyServiceStub(channel)
    try:
        wait_until(lambda: health_of(channel) == SERVING, timeout_s=30, what="SERVING")
        register(stub, token, "Before the outage", timeout=10)

        proxy.cut()
        codes = []
        for index in range(6):
            try:
                register(stub, token, f"During the outage {index}", timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
        # Answered, not waited out: UNAVAILABLE (retry), never INTERNAL and never the caller's own
        # 10 s deadline running out.
        assert set(codes) == {grpc.StatusCode.UNAVAILABLE}, codes
        wait_until(lambda: health_of(channel) == NOT_SERVING, timeout_s=30, what="NOT_SERVING")
        assert health_of(channel, "dependency.postgres") == NOT_SERVING
        assert health_of(channel, "dependency.kafka") == SERVING

        proxy.restore()

        seen: list[grpc.StatusCode] = []

        def registers() -> bool:
            try:
                register(stub, token, "After the outage", timeout=10)
            except grpc.RpcError as error:
                seen.append(error.code())
                return False
            return True

        wait_until(registers, timeout_s=60, what="writes to succeed again")
        assert set(seen) <= {grpc.StatusCode.UNAVAILABLE}, seen
        wait_until(lambda: health_of(channel) == SERVING, timeout_s=30, what="SERVING again")
    finally:
        channel.close()
        runtime.close()
        proxy.close()
        delete_topics(kafka_bootstrap, [settings.safety_events_topic, f"{settings.safety_events_topic}.dlq"])


class Named:
    """A readiness check with a name and a switch."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.up = True

    def __call__(self) -> bool:
        return self.up


@pytest.fixture
def probe_server() -> Iterator[tuple[GrpcServer, Named, Named]]:
    postgres, kafka = Named("postgres"), Named("kafka")
    server = GrpcServer(
        service_label=unique_name("degraded"),
        readiness_checks=[postgres, kafka],
        essential={"postgres"},
        readiness_interval_s=0.05,
    )
    server.add_service(
        PROBE_SERVICE, lambda s: testing_pb2_grpc.add_ProbeServiceServicer_to_server(ProbeServicer(), s)
    )
    server.start()
    yield server, postgres, kafka
    server.stop(0)


def test_a_broker_outage_degrades_but_keeps_an_outbox_service_in_rotation(
    probe_server: tuple[GrpcServer, Named, Named],
) -> None:
    server, postgres, kafka = probe_server
    with grpc.insecure_channel(server.address) as channel:
        wait_until(lambda: health_of(channel) == SERVING, timeout_s=10, what="SERVING")
        kafka.up = False
        wait_until(
            lambda: health_of(channel, "dependency.kafka") == NOT_SERVING,
            timeout_s=10,
            what="the broker reported down",
        )
        # Writes go to the outbox meanwhile: the service stays in rotation.
        assert health_of(channel) == SERVING
        assert health_of(channel, PROBE_SERVICE) == SERVING
        postgres.up = False
        wait_until(lambda: health_of(channel) == NOT_SERVING, timeout_s=10, what="NOT_SERVING")
        postgres.up = kafka.up = True
        wait_until(lambda: health_of(channel) == SERVING, timeout_s=10, what="SERVING again")
        assert health_of(channel, "dependency.kafka") == SERVING


@pytest.fixture(scope="module")
def scratch_uow(database_url: str) -> Iterator[PostgresUnitOfWork[psycopg.Connection[Any]]]:
    schema = unique_name("deadline")
    pool = set_up_database(database_url, schema)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE changes (id int PRIMARY KEY)")
    try:
        yield PostgresUnitOfWork(pool, lambda conn: conn, OutboxWriter.for_service(schema, None))
    finally:
        pool.close()
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.execute(f'DROP ROLE IF EXISTS "cityhub_{schema}"')


def rows(uow: PostgresUnitOfWork[psycopg.Connection[Any]]) -> int:
    with uow.transaction() as tx:
        found = tx.repo.execute("SELECT count(*) FROM changes").fetchone()
    return int(found[0]) if found else 0


def test_a_change_is_not_committed_after_its_callers_deadline(
    scratch_uow: PostgresUnitOfWork[psycopg.Connection[Any]],
) -> None:
    before = rows(scratch_uow)

    def slow_change() -> None:
        with scratch_uow.transaction() as tx:
            tx.repo.execute("INSERT INTO changes VALUES (1)")
            time.sleep(0.4)  # the caller gives up while the work goes on

    with deadlines.bound(time.monotonic() + 0.3), pytest.raises(DeadlineExceededError, match="commit"):
        slow_change()
    assert rows(scratch_uow) == before


def test_a_statement_outliving_the_callers_deadline_is_cancelled_not_waited_for(
    scratch_uow: PostgresUnitOfWork[psycopg.Connection[Any]],
) -> None:
    def stuck_change() -> None:
        with scratch_uow.transaction() as tx:
            tx.repo.execute("INSERT INTO changes VALUES (2)")
            tx.repo.execute("SELECT pg_sleep(30)")

    with deadlines.bound(time.monotonic() + 0.3), pytest.raises(DeadlineExceededError):
        stuck_change()
    # The insert rolled back with it, and the statement did not hold the caller for 30 s: pytest would
    # have waited that long before reaching here.
    with scratch_uow.transaction() as tx:
        assert tx.repo.execute("SELECT count(*) FROM changes WHERE id = 2").fetchone() == (0,)
