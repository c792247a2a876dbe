"""What a replica does when it is full: watchers cost no thread, health and unary calls keep answering
while a thousand streams are open, limits refuse at once with RESOURCE_EXHAUSTED, a call whose deadline
passed in the queue is never started, and undecodable bytes are the caller's error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cityhub.testing.v1 import testing_pb2, testing_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.platform.grpc_server import GrpcServer
from services.platform.metrics import RPC_TOTAL
from services.platform.probe import PROBE_SERVICE, ProbeServicer
from tests.support import unique_name, wait_until


def serve(**limits: Any) -> GrpcServer:
    server = GrpcServer(service_label=unique_name("admission"), readiness_interval_s=0.05, **limits)
    server.add_service(
        PROBE_SERVICE, lambda s: testing_pb2_grpc.add_ProbeServiceServicer_to_server(ProbeServicer(), s)
    )
    server.start()
    return server


def health_of(channel: grpc.Channel) -> int:
    stub: Any = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status)


@pytest.fixture
def small() -> Iterator[GrpcServer]:
    """Two workers, eight pending calls, fifty streams: limits a test can reach quickly."""
    server = serve(max_workers=2, max_pending=8, max_streams=50)
    yield server
    server.stop(0)


def test_a_thousand_watchers_hold_no_thread_and_health_and_calls_still_answer() -> None:
    server = serve(max_workers=4, max_streams=1100)
    # Duty rooms are separate clients: ten connections of a hundred watchers each.
    channels = [grpc.insecure_channel(server.address) for _ in range(10)]
    try:
        streams = [
            testing_pb2_grpc.ProbeServiceStub(channels[i % 10]).Ticks(
                testing_pb2.TicksRequest(interval_ms=200), timeout=60
            )
            for i in range(1000)
        ]
        assert all(next(stream).sequence == 0 for stream in streams)
        wait_until(lambda: server.open_streams == 1000, timeout_s=20, what="a thousand open streams")
        # With 4 threads and 1000 watchers, a thread-per-stream server could answer nothing now.
        assert health_of(channels[0]) == health_pb2.HealthCheckResponse.SERVING
        stub = testing_pb2_grpc.ProbeServiceStub(channels[3])
        assert stub.Echo(testing_pb2.EchoRequest(text="still here"), timeout=5).text == "still here"
        assert all(next(stream).sequence == 1 for stream in streams[:50])
        for stream in streams:
            stream.cancel()
        wait_until(lambda: server.open_streams == 0, timeout_s=20, what="cancelled streams to be released")
    finally:
        for channel in channels:
            channel.close()
        server.stop(0)


def test_a_stream_past_the_limit_is_refused_at_once_naming_the_limit(small: GrpcServer) -> None:
    with grpc.insecure_channel(small.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        open_ones = [stub.Ticks(testing_pb2.TicksRequest(interval_ms=1000), timeout=30) for _ in range(50)]
        assert all(next(s).sequence == 0 for s in open_ones)
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.Ticks(testing_pb2.TicksRequest(interval_ms=1000), timeout=30))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "GRPC_MAX_STREAMS" in (refused.value.details() or "")
        # A slot freed is a slot available again.
        open_ones[0].cancel()
        wait_until(lambda: small.open_streams == 49, timeout_s=20, what="the cancelled stream to be released")
        assert next(stub.Ticks(testing_pb2.TicksRequest(interval_ms=1000), timeout=30)).sequence == 0
        for stream in open_ones:
            stream.cancel()


def test_a_unary_call_past_the_queue_limit_is_refused_while_the_queue_is_still_busy(
    small: GrpcServer,
) -> None:
    with grpc.insecure_channel(small.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        holds = [stub.Hold.future(testing_pb2.HoldRequest(hold_ms=600), timeout=30) for _ in range(8)]
        wait_until(lambda: small.pending_calls == 8, timeout_s=20, what="eight calls admitted")
        with pytest.raises(grpc.RpcError) as refused:
            stub.Echo(testing_pb2.EchoRequest(text="one too many"), timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "GRPC_MAX_PENDING" in (refused.value.details() or "")
        # Refused at once, not after waiting its turn: the admitted calls are still being worked through.
        assert not all(h.done() for h in holds)
        assert all(h.result().thread_name.startswith(small.label) for h in holds)


def test_health_answers_while_every_worker_is_busy(small: GrpcServer) -> None:
    with grpc.insecure_channel(small.address) as channel:
        wait_until(
            lambda: health_of(channel) == health_pb2.HealthCheckResponse.SERVING, timeout_s=20, what="SERVING"
        )
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        holds = [stub.Hold.future(testing_pb2.HoldRequest(hold_ms=1000), timeout=30) for _ in range(4)]
        wait_until(lambda: small.pending_calls == 4, timeout_s=20, what="the workers to be taken")
        assert health_of(channel) == health_pb2.HealthCheckResponse.SERVING
        assert not any(h.done() for h in holds)
        for hold in holds:
            hold.result()


def test_a_call_whose_deadline_passed_in_the_queue_is_never_started(small: GrpcServer) -> None:
    label = small.label
    with grpc.insecure_channel(small.address) as channel:
        stub = testing_pb2_grpc.ProbeServiceStub(channel)
        holds = [stub.Hold.future(testing_pb2.HoldRequest(hold_ms=1000), timeout=30) for _ in range(2)]
        wait_until(lambda: small.pending_calls == 2, timeout_s=20, what="both workers to be taken")
        with pytest.raises(grpc.RpcError) as late:
            stub.Hold(testing_pb2.HoldRequest(hold_ms=0), timeout=0.2)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for hold in holds:
            hold.result()

        # The queued call was dropped when its deadline passed (cancelled in the queue, or refused when
        # a worker reached it): only the two holds ever ran.
        def not_started() -> float:
            return float(
                sum(
                    RPC_TOTAL.labels(label, "Hold", code)._value.get()
                    for code in ("CANCELLED", "DEADLINE_EXCEEDED")
                )
            )

        wait_until(
            lambda: not_started() == 1, timeout_s=20, what="the late call to be counted as not started"
        )
        assert RPC_TOTAL.labels(label, "Hold", "OK")._value.get() == 2


def test_undecodable_request_bytes_are_invalid_argument_naming_the_request(small: GrpcServer) -> None:
    with grpc.insecure_channel(small.address) as channel:
        raw: Any = channel.unary_unary(f"/{PROBE_SERVICE}/Echo")
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\xff\xff\xff\xff", timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "request" in (refused.value.details() or "")
        ticks: Any = channel.unary_stream(f"/{PROBE_SERVICE}/Ticks")
        with pytest.raises(grpc.RpcError) as refused_stream:
            next(iter(ticks(b"\x0a\xff", timeout=5)))
        assert refused_stream.value.code() == grpc.StatusCode.INVALID_ARGUMENT
