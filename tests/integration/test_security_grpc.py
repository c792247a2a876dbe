"""Security on a real gRPC server with a real PostgreSQL audit log.

The probe service runs behind :class:`SecurityGuard` exactly as a domain service would: tokens are
checked, the policy table applies, sensitive fields are masked or shown (and audited) by role, and the
audit chain is verified with the ``cityhub audit verify`` command, before and after a row is changed
behind the service's back.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import psycopg
import pytest
import structlog
from cityhub.testing.v1 import testing_pb2, testing_pb2_grpc
from click.testing import CliRunner
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from psycopg import sql
from psycopg_pool import ConnectionPool

from services.cli.audit_commands import audit
from services.cli.token_commands import token as token_command
from services.platform.db import set_up_database
from services.platform.grpc_server import CallInfo, GrpcServer, current_call
from services.platform.logs import configure_logging, get_logger
from services.platform.probe import POLICY, PROBE_SERVICE, ProbeServicer, made_up_identity_number
from services.platform.security import (
    MASKED_FIELDS_TRAILER,
    AuditEntry,
    AuditLog,
    SecurityGuard,
    SecuritySettings,
    StaticTokenProvider,
    current_access,
    make_channel,
    server_credentials,
)
from services.platform.security.settings import SecurityConfigError
from services.platform.tracing import TraceContext, set_current_trace
from tests.security_support import Keys, TlsFiles, make_keys, make_tls_files
from tests.support import unique_name

pytestmark = pytest.mark.integration

PURPOSE = "incident 2026-031 at the north wall"


@dataclass
class SecurityEnv:
    keys: Keys
    schema: str
    pool: ConnectionPool
    audit: AuditLog
    server: GrpcServer
    channel: grpc.Channel
    stub: testing_pb2_grpc.ProbeServiceStub
    database_url: str

    def token(self, *roles: str, scopes: tuple[str, ...] = (), sub: str = "tester") -> str:
        return self.keys.issuer.issue(sub=sub, roles=roles, scopes=scopes)

    def person(
        self,
        token: str | None,
        *,
        site: str = "S-001",
        person: str = "P-100",
        purpose: str | None = PURPOSE,
    ) -> tuple[testing_pb2.GetPersonRecordResponse, grpc.Call]:
        metadata: list[tuple[str, str | bytes]] = []
        if token is not None:
            metadata.append(("authorization", f"Bearer {token}"))
        if purpose is not None:
            metadata.append(("x-purpose", purpose))
        request = testing_pb2.GetPersonRecordRequest(person_token=person, site_id=site)
        return self.stub.GetPersonRecord.with_call(request, metadata=tuple(metadata), timeout=10)


def _serve(
    guard: SecurityGuard,
    credentials: grpc.ServerCredentials | None = None,
    servicer: ProbeServicer | None = None,
) -> GrpcServer:
    server = GrpcServer(service_label="security_test", guards=[guard], server_credentials=credentials)
    chosen = servicer or ProbeServicer()
    server.add_service(
        PROBE_SERVICE, lambda s: testing_pb2_grpc.add_ProbeServiceServicer_to_server(chosen, s)
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityEnv]:
    keys = make_keys(tmp_path_factory.mktemp("keys"))
    schema = unique_name("t_sec")
    pool = set_up_database(database_url, schema, min_size=1, max_size=8)
    audit_log = AuditLog(pool)
    guard = SecurityGuard(keys.verifier, {PROBE_SERVICE: POLICY}, audit=audit_log)
    server = _serve(guard)
    channel = grpc.insecure_channel(server.address)
    try:
        yield SecurityEnv(
            keys,
            schema,
            pool,
            audit_log,
            server,
            channel,
            testing_pb2_grpc.ProbeServiceStub(channel),
            database_url,
        )
    finally:
        channel.close()
        server.stop(0)
        pool.close()


def _code(caught: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return caught.value.code()


def _details(caught: pytest.ExceptionInfo[grpc.RpcError]) -> str:
    return str(caught.value.details())


# --- identity -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "expired", "malformed", "forged", "not_bearer"])
def test_bad_tokens_answer_unauthenticated(env: SecurityEnv, kind: str, tmp_path: Path) -> None:
    tokens = {
        "missing": None,
        "expired": env.keys.issuer.issue(sub="u", roles=["police"], ttl_s=60, issued_at=time.time() - 3600),
        "malformed": "eyJhbGciOiJFUzI1NiJ9.garbage.sig",
        "forged": make_keys(tmp_path).issuer.issue(sub="u", roles=["police"]),
    }
    if kind == "not_bearer":
        with pytest.raises(grpc.RpcError) as caught:
            env.stub.Echo(
                testing_pb2.EchoRequest(text="hi"), metadata=(("authorization", "Basic abc"),), timeout=5
            )
    else:
        with pytest.raises(grpc.RpcError) as caught:
            env.person(tokens[kind])
    assert _code(caught) is grpc.StatusCode.UNAUTHENTICATED


def test_health_and_reflection_need_no_token(env: SecurityEnv) -> None:
    health_stub: Any = health_pb2_grpc.HealthStub(env.channel)  # the stubs' types omit the methods
    health = health_stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    reflection: Any = reflection_pb2_grpc.ServerReflectionStub(env.channel)
    answers = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert PROBE_SERVICE in names


def test_a_valid_token_reaches_the_handler(env: SecurityEnv) -> None:
    reply = env.stub.Echo(
        testing_pb2.EchoRequest(text="hi"),
        metadata=(("authorization", f"Bearer {env.token('public')}"),),
        timeout=5,
    )
    assert reply.text == "hi"


# --- policy ---------------------------------------------------------------------------------------------


def test_a_role_without_access_is_denied_with_a_reason(env: SecurityEnv) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        env.person(env.token("food_inspector"))
    assert _code(caught) is grpc.StatusCode.PERMISSION_DENIED
    assert "needs one of the roles" in _details(caught)


def test_a_scoped_role_outside_its_scope_is_denied_with_a_reason(env: SecurityEnv) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        env.person(env.token("duty_room", scopes=("site:S-002",)), site="S-001")
    assert _code(caught) is grpc.StatusCode.PERMISSION_DENIED
    assert "site:S-001" in _details(caught)


# --- masking, purpose, audit ----------------------------------------------------------------------------


def test_the_same_record_is_masked_for_one_role_and_clear_for_another(env: SecurityEnv) -> None:
    masked, masked_call = env.person(env.token("district_operator"), person="P-200")
    clear, clear_call = env.person(env.token("police"), person="P-200")
    identity = made_up_identity_number("P-200")

    assert masked.record.person_token == clear.record.person_token == "P-200"
    assert masked.record.danger_level == clear.record.danger_level == "high"
    assert masked.record.identity_number == ""
    assert not masked.record.health.psychiatric_history
    assert list(masked.record.fuel_purchases) == []
    assert all(c.phone == "" for c in masked.record.contacts)
    trailers = dict(masked_call.trailing_metadata() or ())
    assert "record.identity_number" in str(trailers[MASKED_FIELDS_TRAILER]).split(",")

    assert clear.record.identity_number == identity
    assert clear.record.health.psychiatric_history
    assert clear.record.fuel_purchases[0].loose
    assert MASKED_FIELDS_TRAILER not in dict(clear_call.trailing_metadata() or ())


def test_a_duty_room_sees_identity_and_health_but_not_purchases(env: SecurityEnv) -> None:
    reply, call = env.person(env.token("duty_room", scopes=("site:S-001",)), person="P-300")
    assert reply.record.identity_number
    assert reply.record.health.psychiatric_history
    assert list(reply.record.fuel_purchases) == []
    assert dict(call.trailing_metadata() or ())[MASKED_FIELDS_TRAILER] == "record.fuel_purchases"


def test_a_cleared_role_without_a_purpose_is_refused(env: SecurityEnv) -> None:
    before = len(env.audit.search(subject="P-400"))
    with pytest.raises(grpc.RpcError) as caught:
        env.person(env.token("police"), person="P-400", purpose=None)
    assert _code(caught) is grpc.StatusCode.PERMISSION_DENIED
    assert "purpose" in _details(caught)
    with pytest.raises(grpc.RpcError):
        env.person(env.token("police"), person="P-400", purpose="   ")
    assert len(env.audit.search(subject="P-400")) == before


def test_an_uncleared_role_needs_no_purpose(env: SecurityEnv) -> None:
    reply, _ = env.person(env.token("district_operator"), person="P-401", purpose=None)
    assert reply.record.identity_number == ""


def test_an_unmasked_read_writes_one_audit_row_and_a_masked_read_none(env: SecurityEnv) -> None:
    env.person(env.token("district_operator", sub="operator-1"), person="P-500")
    assert env.audit.search(subject="P-500") == []

    # gRPC metadata is ASCII: a Chinese purpose travels percent-encoded and is stored decoded.
    purpose = quote("调查 incident 7", safe=" ")
    env.person(env.token("duty_room", scopes=("site:S-001",), sub="guard-7"), person="P-500", purpose=purpose)
    rows = env.audit.search(subject="P-500")
    assert len(rows) == 1
    row = rows[0].entry
    assert row.actor == "guard-7"
    assert row.actor_roles == ("duty_room",)
    assert row.action == "read"
    assert row.outcome == "shown"
    assert row.rpc == f"/{PROBE_SERVICE}/GetPersonRecord"
    assert set(row.fields) == {
        "record.identity_number",
        "record.aliases",
        "record.contacts.phone",
        "record.health.psychiatric_history",
        "record.health.body_temperature_c",
    }
    assert row.purpose == "调查 incident 7"
    assert row.details["masked"] == ["record.fuel_purchases"]
    assert env.audit.search(caller="guard-7")[0].id == rows[0].id


def test_the_audit_table_refuses_update_and_delete_from_the_service(env: SecurityEnv) -> None:
    env.audit.append(AuditEntry("u", ("police",), "read", "/x/Y", "P-600", ("f",), "p", "shown"))
    for statement in ("UPDATE audit_log SET purpose = 'none'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), env.pool.connection() as conn:
            conn.execute(statement)


def test_concurrent_appends_keep_one_chain(env: SecurityEnv) -> None:
    def append_some(worker: int) -> None:
        for n in range(10):
            env.audit.append(
                AuditEntry(f"w{worker}", ("police",), "read", "/x/Y", f"C-{worker}-{n}", (), "p", "shown")
            )

    threads = [threading.Thread(target=append_some, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = env.audit.check()
    assert report.ok, report.reason
    assert report.rows >= 60


def test_audit_verify_passes_then_names_a_row_changed_behind_the_service(env: SecurityEnv) -> None:
    env.person(env.token("police", sub="inspector-9"), person="P-700")
    runner = CliRunner()
    args = ["verify", "--database-url", env.database_url, "--schema", env.schema]
    ok = runner.invoke(audit, args)
    assert ok.exit_code == 0, ok.output
    assert f"{env.schema}: ok" in ok.output

    target = env.audit.search(subject="P-700")[0].id
    with psycopg.connect(env.database_url, autocommit=True) as admin:
        # What a superuser with a grudge could do: switch triggers off and rewrite history.
        admin.execute("SET session_replication_role = replica")
        admin.execute(
            sql.SQL("UPDATE {}.audit_log SET actor = 'nobody' WHERE id = %s").format(
                sql.Identifier(env.schema)
            ),
            (target,),
        )
    broken = runner.invoke(audit, args)
    assert broken.exit_code == 1
    assert f"BROKEN at row {target}" in broken.output
    assert env.audit.verify() == target


def test_audit_search_needs_an_auditor_token(env: SecurityEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    env.person(env.token("police", sub="inspector-10"), person="P-800")
    monkeypatch.setenv("CITYHUB_DEV_KEYS", "true")
    monkeypatch.setenv("CITYHUB_DEV_SECRETS_DIR", str(env.keys.settings.dev_secrets_dir))
    args = ["search", "--database-url", env.database_url, "--schema", env.schema, "--subject", "P-800"]
    runner = CliRunner()
    refused = runner.invoke(audit, [*args, "--token", env.token("police")])
    assert refused.exit_code != 0
    assert "auditor" in refused.output
    found = runner.invoke(audit, [*args, "--token", env.token("auditor")])
    assert found.exit_code == 0, found.output
    rows = [json.loads(line) for line in found.output.splitlines() if line.startswith("{")]
    assert [r["actor"] for r in rows] == ["inspector-10"]


def test_token_issue_records_the_access_change(env: SecurityEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_DEV_KEYS", "true")
    monkeypatch.setenv("CITYHUB_DEV_SECRETS_DIR", str(env.keys.settings.dev_secrets_dir))
    result = CliRunner().invoke(
        token_command,
        [
            "issue",
            "--sub",
            "clerk-3",
            "--role",
            "gov_clerk",
            "--scope",
            "region:331004",
            "--ttl",
            "15m",
            "--database-url",
            env.database_url,
            "--audit-schema",
            env.schema,
        ],
    )
    assert result.exit_code == 0, result.output
    issued = result.output.strip().splitlines()[-1]
    caller = env.keys.verifier.verify(issued)
    assert caller.sub == "clerk-3"
    assert caller.has_scope("region", "331004")
    rows = [r for r in env.audit.search(subject="clerk-3") if r.entry.action == "access_change"]
    assert rows[-1].entry.details["scopes"] == ["region:331004"]
    assert rows[-1].entry.details["token_id"] == caller.token_id


# --- logs -----------------------------------------------------------------------------------------------


class _CarelessProbe(ProbeServicer):
    """A handler written carelessly: it logs the metadata and the record it serves."""

    def GetPersonRecord(  # noqa: N802
        self, request: testing_pb2.GetPersonRecordRequest, context: grpc.ServicerContext
    ) -> testing_pb2.GetPersonRecordResponse:
        reply = super().GetPersonRecord(request, context)
        call = current_call()
        get_logger().info(
            "person_served",
            authorization=call.metadata.get("authorization"),
            metadata=call.metadata,
            record=reply,
            note=f"served {reply.record.identity_number} to {current_access().caller.sub}",
            body_temperature_c=reply.record.health.body_temperature_c,
        )
        return reply


def test_logs_of_a_sensitive_call_hold_no_token_identity_number_or_health_value(env: SecurityEnv) -> None:
    guard = SecurityGuard(env.keys.verifier, {PROBE_SERVICE: POLICY}, audit=env.audit)
    previous = structlog.get_config()
    out = io.StringIO()
    configure_logging("security_test", fmt="json")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(out))
    server = _serve(guard, servicer=_CarelessProbe())
    bearer = env.token("police", sub="inspector-11")
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = testing_pb2_grpc.ProbeServiceStub(channel)
            reply = stub.GetPersonRecord(
                testing_pb2.GetPersonRecordRequest(person_token="P-900", site_id="S-001"),
                metadata=(("authorization", f"Bearer {bearer}"), ("x-purpose", PURPOSE)),
                timeout=10,
            )
    finally:
        server.stop(0)
        structlog.configure(**previous)
    assert reply.record.identity_number  # the caller was cleared: the data itself did flow
    text = out.getvalue()
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    assert "person_served" in events
    assert "sensitive_fields_shown" in events
    assert bearer not in text
    assert bearer.split(".")[2] not in text
    assert reply.record.identity_number not in text
    assert "37.9" not in text
    assert "psychiatric_history: true" not in text


# --- transport ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _echo_over(channel: grpc.Channel) -> str:
    return (
        testing_pb2_grpc.ProbeServiceStub(channel)
        .Echo(testing_pb2.EchoRequest(text="over tls"), timeout=5)
        .text
    )


def test_tls_server_and_a_client_trusting_it(env: SecurityEnv, tls_files: TlsFiles) -> None:
    files = tls_files
    server_settings = SecuritySettings(tls_cert_file=files.server_cert, tls_key_file=files.server_key)
    guard = SecurityGuard(env.keys.verifier, {PROBE_SERVICE: POLICY}, audit=env.audit)
    server = _serve(guard, server_credentials(server_settings))
    client_settings = SecuritySettings(tls_ca_file=files.ca_cert)
    try:
        with make_channel(
            f"localhost:{server.port}", client_settings, StaticTokenProvider(env.token("public"))
        ) as channel:
            assert _echo_over(channel) == "over tls"
        with grpc.insecure_channel(f"localhost:{server.port}") as plaintext, pytest.raises(grpc.RpcError):
            _echo_over(plaintext)
    finally:
        server.stop(0)


def test_mutual_tls_refuses_a_client_without_a_certificate(env: SecurityEnv, tls_files: TlsFiles) -> None:
    files = tls_files
    server_settings = SecuritySettings(
        tls_cert_file=files.server_cert,
        tls_key_file=files.server_key,
        tls_client_ca_file=files.ca_cert,
    )
    guard = SecurityGuard(env.keys.verifier, {PROBE_SERVICE: POLICY}, audit=env.audit)
    server = _serve(guard, server_credentials(server_settings))
    target = f"localhost:{server.port}"
    provider = StaticTokenProvider(env.token("service"))
    without_cert = SecuritySettings(tls_ca_file=files.ca_cert)
    with_cert = SecuritySettings(
        tls_ca_file=files.ca_cert,
        tls_client_cert_file=files.client_cert,
        tls_client_key_file=files.client_key,
    )
    try:
        with make_channel(target, without_cert, provider) as channel, pytest.raises(grpc.RpcError) as caught:
            _echo_over(channel)
        assert _code(caught) is grpc.StatusCode.UNAVAILABLE
        with make_channel(target, with_cert, provider) as channel:
            assert _echo_over(channel) == "over tls"
    finally:
        server.stop(0)


def test_the_client_carries_token_request_id_and_trace(env: SecurityEnv) -> None:
    trace = TraceContext.new()
    outer = CallInfo("/x/Y", "x", "Y", {}, "req-outer-1", trace)
    from services.platform import grpc_server

    token_outer = grpc_server._current_call.set(outer)
    set_current_trace(trace)
    try:
        with make_channel(
            env.server.address, SecuritySettings(), StaticTokenProvider(env.token("service"))
        ) as ch:
            reply = testing_pb2_grpc.ProbeServiceStub(ch).Echo(testing_pb2.EchoRequest(text="x"), timeout=5)
    finally:
        grpc_server._current_call.reset(token_outer)
        set_current_trace(None)
    assert reply.request_id == "req-outer-1"
    assert reply.trace_id == trace.trace_id


def test_the_client_will_not_send_a_token_in_plaintext_off_loopback() -> None:
    with pytest.raises(SecurityConfigError, match="plaintext"):
        make_channel("safety.cityhub.svc:50051", SecuritySettings(), StaticTokenProvider("t"))
    make_channel(
        "safety.cityhub.svc:50051", SecuritySettings(grpc_allow_plaintext=True), StaticTokenProvider("t")
    ).close()
