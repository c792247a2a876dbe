"""Service-to-service calls through :class:`PeerClient` against real in-process gRPC servers: the token,
request id and trace context arrive; a peer that is down answers UnavailableError naming it, in bounded
time; UNAVAILABLE is retried by gRPC; the peer's other statuses become the platform's errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cityhub.testing.v1 import testing_pb2, testing_pb2_grpc
from google.protobuf.message import Message

from services.platform.errors import (
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from services.platform.grpc_client import (
    PeerAddress,
    PeerCallError,
    PeerClient,
    PeerSettings,
    RetryPolicy,
    peer_client,
)
from services.platform.grpc_server import CallInfo, GrpcServer
from services.platform.probe import POLICY, PROBE_SERVICE, ProbeServicer
from services.platform.security import (
    SecurityGuard,
    SecuritySettings,
    StaticTokenProvider,
    server_credentials,
)
from services.platform.settings import SettingsError
from services.platform.tracing import TraceContext
from tests.security_support import Keys, make_keys, make_tls_files
from tests.support import free_port

pytestmark = pytest.mark.integration

ECHO = f"/{PROBE_SERVICE}/Echo"


class FrontSettings(PeerSettings):
    probe_grpc_address: PeerAddress = None


def _settings(address: str | None, **extra: Any) -> FrontSettings:
    return FrontSettings(
        service_name="front",
        kafka_bootstrap_servers="127.0.0.1:1",
        database_url="postgresql://x@127.0.0.1:1/x",  # type: ignore[arg-type]  # parsed by pydantic
        probe_grpc_address=address,
        **extra,
    )


@dataclass
class Recorder:
    """A guard that keeps the metadata of every call the server saw."""

    seen: list[dict[str, str]] = field(default_factory=list)

    def before(self, call: CallInfo, request: Message) -> None:  # noqa: ARG002 - the Guard protocol
        self.seen.append(dict(call.metadata))

    def after(self, call: CallInfo, request: Message, response: Message) -> Message:  # noqa: ARG002
        return response


def _probe_server(guards: list[Any], credentials: grpc.ServerCredentials | None = None) -> GrpcServer:
    server = GrpcServer(service_label="peer_back", guards=guards, server_credentials=credentials)
    servicer = ProbeServicer()
    server.add_service(
        PROBE_SERVICE, lambda s: testing_pb2_grpc.add_ProbeServiceServicer_to_server(servicer, s)
    )
    server.start()
    return server


@dataclass
class Env:
    keys: Keys
    recorder: Recorder
    back: GrpcServer


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    keys = make_keys(tmp_path_factory.mktemp("keys"))
    recorder = Recorder()
    back = _probe_server([recorder, SecurityGuard(keys.verifier, {PROBE_SERVICE: POLICY})])
    try:
        yield Env(keys, recorder, back)
    finally:
        back.stop(0)


class _Front(ProbeServicer):
    """A service whose Echo calls its peer (the back server) through a PeerClient."""

    def __init__(self, peer: PeerClient[testing_pb2_grpc.ProbeServiceStub]) -> None:
        self._peer = peer

    def Echo(  # noqa: N802
        self,
        request: testing_pb2.EchoRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> testing_pb2.EchoResponse:
        return self._peer.call(self._peer.stub.Echo, request)


@pytest.fixture
def front_for() -> Iterator[Any]:
    opened: list[tuple[GrpcServer, PeerClient[Any]]] = []

    def make(peer: PeerClient[testing_pb2_grpc.ProbeServiceStub]) -> GrpcServer:
        server = GrpcServer(service_label="peer_front")
        servicer = _Front(peer)
        server.add_service(
            PROBE_SERVICE, lambda s: testing_pb2_grpc.add_ProbeServiceServicer_to_server(servicer, s)
        )
        server.start()
        opened.append((server, peer))
        return server

    yield make
    for server, peer in opened:
        server.stop(0)
        peer.close()


# --- what a call carries ------------------------------------------------------------------------------


def test_a_call_carries_the_service_token_request_id_and_trace(env: Env, front_for: Any) -> None:
    peer = peer_client(
        _settings(env.back.address), "probe", testing_pb2_grpc.ProbeServiceStub, security=env.keys.settings
    )
    front = front_for(peer)
    trace = TraceContext.new()
    env.recorder.seen.clear()
    with grpc.insecure_channel(front.address) as channel:
        reply = testing_pb2_grpc.ProbeServiceStub(channel).Echo(
            testing_pb2.EchoRequest(text="hello"),
            metadata=(("x-request-id", "req-peer-1"), ("traceparent", trace.traceparent)),
            timeout=10,
        )
    assert reply.text == "hello"
    assert reply.request_id == "req-peer-1"
    assert reply.trace_id == trace.trace_id
    [seen] = env.recorder.seen
    assert seen["x-request-id"] == "req-peer-1"
    sent_trace = seen["traceparent"].split("-")
    assert sent_trace[1] == trace.trace_id
    assert sent_trace[2] != trace.span_id, "the peer call is a child span, not the caller's span"
    scheme, token = seen["authorization"].split(" ", 1)
    assert scheme == "Bearer"
    caller = env.keys.verifier.verify(token)
    assert caller.sub == "service:front"
    assert "service" in caller.roles


def test_a_missing_address_stops_start_up_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="PROBE_GRPC_ADDRESS"):
        peer_client(_settings(None), "probe", testing_pb2_grpc.ProbeServiceStub, token_provider=lambda: "t")
    with pytest.raises(SettingsError, match=r"SAFETY_GRPC_ADDRESS.*declare"):
        peer_client(_settings("x:1"), "safety", testing_pb2_grpc.ProbeServiceStub, token_provider=lambda: "t")


def test_the_token_is_refused_for_plaintext_off_loopback() -> None:
    from services.platform.security.settings import SecurityConfigError

    with pytest.raises(SecurityConfigError, match="plaintext"):
        peer_client(
            _settings("probe.example:50051"),
            "probe",
            testing_pb2_grpc.ProbeServiceStub,
            security=SecuritySettings(),
            token_provider=lambda: "t",
        )


def test_tls_when_configured(env: Env, tmp_path: Path) -> None:
    files = make_tls_files(tmp_path)
    back = _probe_server(
        [SecurityGuard(env.keys.verifier, {PROBE_SERVICE: POLICY})],
        server_credentials(SecuritySettings(tls_cert_file=files.server_cert, tls_key_file=files.server_key)),
    )
    security = SecuritySettings(
        dev_keys=True, dev_secrets_dir=env.keys.settings.dev_secrets_dir, tls_ca_file=files.ca_cert
    )
    try:
        with peer_client(
            _settings(f"localhost:{back.port}"), "probe", testing_pb2_grpc.ProbeServiceStub, security=security
        ) as peer:
            assert peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="tls")).text == "tls"
    finally:
        back.stop(0)


# --- a peer that is down ----------------------------------------------------------------------------------


def test_nothing_listening_is_unavailable_naming_the_peer_in_bounded_time(env: Env) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = _settings(address, peer_call_timeout_s=2.0)
    with peer_client(
        settings, "probe", testing_pb2_grpc.ProbeServiceStub, security=env.keys.settings
    ) as peer:
        started = time.monotonic()
        with pytest.raises(UnavailableError) as caught:
            peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x"))
        elapsed = time.monotonic() - started
    assert str(caught.value).startswith(f"probe at {address} is unavailable: ")
    # All attempts share one deadline.
    assert elapsed < settings.peer_call_timeout_s + 1.0, f"took {elapsed:.2f}s"


def test_the_calling_rpc_answers_unavailable_when_its_peer_is_down(env: Env, front_for: Any) -> None:
    address = f"127.0.0.1:{free_port()}"
    peer = peer_client(
        _settings(address, peer_call_timeout_s=1.0),
        "probe",
        testing_pb2_grpc.ProbeServiceStub,
        security=env.keys.settings,
    )
    front = front_for(peer)
    with grpc.insecure_channel(front.address) as channel, pytest.raises(grpc.RpcError) as caught:
        testing_pb2_grpc.ProbeServiceStub(channel).Echo(testing_pb2.EchoRequest(text="x"), timeout=10)
    error: Any = caught.value
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert f"probe at {address} is unavailable" in error.details()


# --- retries ------------------------------------------------------------------------------------------


class _Flaky:
    """A bare gRPC server for ProbeService/Echo that fails ``failures`` times with UNAVAILABLE, then
    answers; or sleeps ``delay_s`` before answering."""

    def __init__(self, failures: int = 0, delay_s: float = 0.0) -> None:
        self.failures = failures
        self.delay_s = delay_s
        self.attempts = 0
        self._lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            PROBE_SERVICE,
            {
                "Echo": grpc.unary_unary_rpc_method_handler(
                    self._echo,
                    request_deserializer=testing_pb2.EchoRequest.FromString,
                    response_serializer=testing_pb2.EchoResponse.SerializeToString,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _echo(
        self, request: testing_pb2.EchoRequest, context: grpc.ServicerContext
    ) -> testing_pb2.EchoResponse:
        with self._lock:
            self.attempts += 1
            attempt = self.attempts
        if attempt <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"not yet (attempt {attempt})")
        if self.delay_s:
            time.sleep(self.delay_s)
        return testing_pb2.EchoResponse(text=request.text)

    def stop(self) -> None:
        self._server.stop(0)


@pytest.fixture
def flaky() -> Iterator[Any]:
    servers: list[_Flaky] = []

    def make(**kwargs: Any) -> _Flaky:
        server = _Flaky(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _client(address: str, **kwargs: Any) -> PeerClient[testing_pb2_grpc.ProbeServiceStub]:
    return PeerClient(
        "probe",
        address,
        testing_pb2_grpc.ProbeServiceStub,
        security=SecuritySettings(),
        token_provider=StaticTokenProvider("not-checked"),
        **kwargs,
    )


def test_unavailable_is_retried_by_grpc_until_the_peer_answers(flaky: Any) -> None:
    server = flaky(failures=2)
    with _client(server.address, retry=RetryPolicy(max_attempts=4, initial_backoff_s=0.05)) as peer:
        reply = peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="third time"))
    assert reply.text == "third time"
    assert server.attempts == 3


def test_without_retries_the_first_unavailable_is_the_answer(flaky: Any) -> None:
    server = flaky(failures=2)
    with (
        _client(server.address, retry=RetryPolicy(max_attempts=1)) as peer,
        pytest.raises(UnavailableError, match=r"not yet \(attempt 1\)"),
    ):
        peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x"))
    assert server.attempts == 1


def test_a_peer_that_stays_unavailable_is_given_up_after_max_attempts(flaky: Any) -> None:
    server = flaky(failures=100)
    with (
        _client(server.address, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.05)) as peer,
        pytest.raises(UnavailableError, match=f"probe at {server.address} is unavailable"),
    ):
        peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x"))
    assert server.attempts == 3


def test_a_slow_peer_ends_at_the_deadline_as_unavailable(flaky: Any) -> None:
    server = flaky(delay_s=3.0)
    with _client(server.address, timeout_s=0.3) as peer:
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="no answer within the deadline"):
            peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x"))
        assert time.monotonic() - started < 2.0


def test_the_default_deadline_applies_also_to_calls_made_on_the_stub(flaky: Any) -> None:
    server = flaky(delay_s=3.0)
    with _client(server.address, timeout_s=0.3) as peer:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            peer.stub.Echo(testing_pb2.EchoRequest(text="x"))  # no timeout given: the client's applies
        assert time.monotonic() - started < 2.0
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


# --- the peer's other answers -----------------------------------------------------------------------


@pytest.fixture
def peer(env: Env) -> Iterator[PeerClient[testing_pb2_grpc.ProbeServiceStub]]:
    with peer_client(
        _settings(env.back.address), "probe", testing_pb2_grpc.ProbeServiceStub, security=env.keys.settings
    ) as client:
        yield client


def test_invalid_argument_keeps_the_peers_field_violations(
    peer: PeerClient[testing_pb2_grpc.ProbeServiceStub],
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x", fail_with="invalid"))
    assert [v.field for v in caught.value.violations] == ["text"]


def test_not_found_is_not_found(peer: PeerClient[testing_pb2_grpc.ProbeServiceStub]) -> None:
    with pytest.raises(NotFoundError, match="find nothing"):
        peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x", fail_with="not_found"))


def test_internal_is_a_peer_call_error(peer: PeerClient[testing_pb2_grpc.ProbeServiceStub]) -> None:
    with pytest.raises(PeerCallError) as caught:
        peer.call(peer.stub.Echo, testing_pb2.EchoRequest(text="x", fail_with="internal"))
    assert caught.value.code is grpc.StatusCode.INTERNAL
    assert caught.value.target == "probe"


def test_a_refused_service_token_is_a_peer_call_error_not_the_callers_fault(env: Env) -> None:
    with (
        _client(env.back.address) as client,
        pytest.raises(PeerCallError, match="UNAUTHENTICATED"),
    ):
        client.call(client.stub.Echo, testing_pb2.EchoRequest(text="x"))
