"""The shared gRPC bootstrap on a real server: health follows PostgreSQL and Kafka, reflection lists the
services, metadata is honoured, and domain errors arrive as the right status with field violations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cityhub.testing.v1 import testing_pb2, testing_pb2_grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from services.platform.grpc_server import GrpcServer
from services.platform.probe import ProbeServicer
from services.platform.readiness import KafkaCheck, PostgresCheck
from tests.support import wait_until

PROBE = "cityhub.testing.v1.ProbeService"


def _serve(*checks: object) -> GrpcServer:
    server = GrpcServer(service_label="probe", readiness_checks=list(checks), readiness_interval_s=0.2)  # type: ignore[arg-type]
    server.add_service(
        PROBE, lambda s: testing_pb2_grpc.add_ProbeServiceServicer_to_server(ProbeServicer(), s)
    )
    server.start()
    return server


def _health(channel: grpc.Channel, service: str = "") -> int:
    # The grpcio-health-checking stubs do not declare the stub's methods.
    stub: Any = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def _wait_for_status(channel: grpc.Channel, wanted: int, service: str = "", deadline_s: float = 20) -> int:
    deadline = time.monotonic() + deadline_s
    status = _health(channel, service)
    while status != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        status = _health(channel, service)
    return status


@pytest.fixture
def ready_server(kafka_bootstrap: str, database_url: str) -> Iterator[GrpcServer]:
    server = _serve(PostgresCheck(dsn=database_url), KafkaCheck(kafka_bootstrap))
    yield server
    server.stop(0)


def test_health_is_serving_once_postgres_and_kafka_answer(ready_server: GrpcServer) -> None:
    with grpc.insecure_channel(ready_server.address) as channel:
        assert (
            _wait_for_status(channel, health_pb2.HealthCheckResponse.SERVING)
            == health_pb2.HealthCheckResponse.SERVING
        )
        assert _health(channel, PROBE) == health_pb2.HealthCheckResponse.SERVING


def test_health_is_not_serving_while_kafka_is_unreachable(database_url: str) -> None:
    # Port 9 (discard) on loopback has no broker: the service must not claim to be ready.
    kafka = KafkaCheck("127.0.0.1:9", timeout_ms=300)
    answers: list[bool] = []

    def counted_kafka_check() -> bool:
        answers.append(kafka())
        return answers[-1]

    server = _serve(PostgresCheck(dsn=database_url), counted_kafka_check)
    try:
        with grpc.insecure_channel(server.address) as channel:
            # Not a fixed sleep: wait until the readiness loop has asked the (absent) broker twice.
            wait_until(lambda: len(answers) >= 2 or None, timeout_s=20, what="two readiness rounds")
            assert answers == [False] * len(answers)
            assert _health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
            assert _health(channel, PROBE) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        server.stop(0)


def test_reflection_lists_every_service(ready_server: GrpcServer) -> None:
    with grpc.insecure_channel(ready_server.address) as channel:
        stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {PROBE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_request_id_and_traceparent_are_taken_from_metadata(ready_server: GrpcServer) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    metadata = (("x-request-id", "req-123"), ("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"))
    with grpc.insecure_channel(ready_server.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        reply, call = stub.Echo.with_call(testing_pb2.EchoRequest(text="hello"), metadata=metadata, timeout=5)
    assert reply.text == "hello"
    assert reply.request_id == "req-123"
    assert reply.trace_id == trace_id
    assert ("x-request-id", "req-123") in tuple(call.trailing_metadata() or ())


def test_a_request_without_ids_gets_fresh_ones(ready_server: GrpcServer) -> None:
    with grpc.insecure_channel(ready_server.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        first = stub.Echo(testing_pb2.EchoRequest(text="a"), timeout=5)
        second = stub.Echo(testing_pb2.EchoRequest(text="b"), timeout=5)
    assert len(first.trace_id) == 32
    assert first.request_id
    assert first.request_id != second.request_id


@pytest.mark.parametrize(
    ("fail_with", "code"),
    [
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT),
        ("not_found", grpc.StatusCode.NOT_FOUND),
        ("already_exists", grpc.StatusCode.ALREADY_EXISTS),
        ("failed_precondition", grpc.StatusCode.FAILED_PRECONDITION),
        ("internal", grpc.StatusCode.INTERNAL),
    ],
)
def test_domain_errors_map_to_status_codes(
    ready_server: GrpcServer, fail_with: str, code: grpc.StatusCode
) -> None:
    with grpc.insecure_channel(ready_server.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Echo(testing_pb2.EchoRequest(text="x", fail_with=fail_with), timeout=5)
    error = caught.value
    assert error.code() == code
    if code is grpc.StatusCode.INTERNAL:
        # The caller learns nothing about the fault except the request id to quote.
        assert "request id" in (error.details() or "")


def test_invalid_argument_carries_bad_request_field_violations(ready_server: GrpcServer) -> None:
    with grpc.insecure_channel(ready_server.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Echo(testing_pb2.EchoRequest(text="x", fail_with="invalid"), timeout=5)
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend(bad_request.field_violations)
    assert [v.field for v in violations] == ["text"]


def test_stop_drains_in_flight_calls_and_refuses_new_ones(ready_server: GrpcServer) -> None:
    address = ready_server.address
    ready_server.stop(grace_s=1)
    with grpc.insecure_channel(address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Echo(testing_pb2.EchoRequest(text="late"), timeout=2)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_refused_call_still_carries_its_request_id(ready_server: GrpcServer) -> None:
    with grpc.insecure_channel(ready_server.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Echo(
                testing_pb2.EchoRequest(text="x", fail_with="not_found"),
                metadata=(("x-request-id", "req-err-1"),),
                timeout=5,
            )
    error: Any = caught.value
    assert ("x-request-id", "req-err-1") in tuple(error.trailing_metadata() or ())
