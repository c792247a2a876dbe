"""The standing guard of docs/status-codes.md: no input a caller can send answers INTERNAL (issue #9).

Every service under ``services/`` that has a ``bootstrap.py`` is built in-process (its own schema, its own
topics, throwaway keys), and every RPC of every gRPC service its runtime registers is called with requests
made from the RPC's input descriptor: each field of a filled-in request in turn replaced by a malformed
value (timestamps outside the Timestamp range or before 2000, NUL and other control characters, a
trailing line break, 10 KiB and 1 MiB strings, Unicode digits, unknown enum numbers, extreme integers,
NaN and infinities, empty and oversized repeated fields, empty sub-messages), plus the empty request and
a few requests drawn by hypothesis. Nothing here names an RPC: kitchen, commerce, govservice and the hub
are covered the day their bootstrap lands.

Each call carries a token with the roles the RPC's policy admits without a scope and a stated purpose,
and a short deadline. It must answer one of the documented codes (never INTERNAL, UNKNOWN or a status the
client could not read), before its deadline; a refused call must leave every table of the service's
schema as it was (the outbox included) and, per RPC, nothing new on the service's topics. Server streams
are opened with a short deadline and read until it passes.
"""

from __future__ import annotations

import importlib
import inspect
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from services.platform.identifiers import credit_code_check_char, identity_check_char
from services.platform.runtime import ServiceRuntime
from services.platform.security import SecuritySettings, TokenIssuer, load_security_settings
from services.platform.security.roles import ROLE_SCOPE_KIND
from services.platform.settings import ServiceSettings, load_settings
from tests.support import violations, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
UNARY_DEADLINE_S = 5.0
STREAM_DEADLINE_S = 1.0
HYPOTHESIS_EXAMPLES = 8
STREAM_HYPOTHESIS_EXAMPLES = 3
# What docs/status-codes.md lets a service answer; DEADLINE_EXCEEDED is allowed for server streams only.
DOCUMENTED = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAVAILABLE,
    }
)
_SCOPED_ROLES = frozenset(role.value for role in ROLE_SCOPE_KIND)


def _domains() -> list[str]:
    return sorted(path.parent.name for path in (ROOT / "services").glob("*/bootstrap.py"))


# --- building each service generically ------------------------------------------------------------


def _settings_class(domain: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{domain}.settings")
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
        and value.__module__ == module.__name__
    ]
    assert len(found) == 1, f"services/{domain}/settings.py should define one ServiceSettings subclass"
    return found[0]


def _service_settings(
    domain: str, kafka_bootstrap: str, database_url: str, secrets_dir: Path
) -> ServiceSettings:
    cls = _settings_class(domain)
    suffix = secrets.token_hex(4)
    values: dict[str, Any] = {
        "service_name": f"{domain}_g{suffix}",
        "kafka_bootstrap_servers": kafka_bootstrap,
        "database_url": database_url,
        "grpc_port": 0,
        "metrics_port": 0,
        "log_level": "error",
        "topic_partitions": 1,
        "outbox_poll_interval_s": 0.05,
    }
    for name, info in cls.model_fields.items():
        if name.endswith("_topic"):
            values[name] = f"{info.default}.g{suffix}"
        elif name.endswith("_dev_keys"):
            values[name] = True
        elif name.endswith("_dev_secrets_dir"):
            values[name] = secrets_dir
        elif name.endswith("_grpc_address"):
            values[name] = "127.0.0.1:9"  # a peer that is not there: UNAVAILABLE, a documented answer
    return load_settings(cls, **values)


@dataclass
class Service:
    domain: str
    runtime: ServiceRuntime
    channel: grpc.Channel
    issuer: TokenIssuer
    database_url: str
    kafka_bootstrap: str
    consumer: Any
    count_sql: str = ""
    topics: list[str] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return self.runtime.settings.service_name

    def rows(self) -> tuple[int, ...]:
        """Row counts of every table in the service's schema, in one round trip."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(self.count_sql).fetchone()
        assert row is not None
        return tuple(int(value) for value in row)

    def end_offsets(self) -> dict[Any, int]:
        from kafka import TopicPartition

        partitions = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        return dict(self.consumer.end_offsets(partitions))

    def outbox_drained(self) -> None:
        def drained() -> bool:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                row = conn.execute(
                    f'SELECT count(*) FROM "{self.schema}".outbox WHERE sent_at IS NULL'
                ).fetchone()
            return bool(row and row[0] == 0)

        wait_until(drained, timeout_s=30, what=f"{self.domain}'s outbox to drain")


@pytest.fixture(scope="module", params=_domains())
def service(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    from kafka import KafkaConsumer

    from tests.kafka_support import delete_topics

    domain: str = request.param
    secrets_dir = tmp_path_factory.mktemp(f"{domain}-guard-keys")
    security: SecuritySettings = load_security_settings(dev_keys=True, dev_secrets_dir=secrets_dir)
    settings = _service_settings(domain, kafka_bootstrap, database_url, secrets_dir)
    build = importlib.import_module(f"services.{domain}.bootstrap").build
    runtime: ServiceRuntime = build(settings, configure_logs=False, security=security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    consumer: Any = KafkaConsumer(bootstrap_servers=kafka_bootstrap.split(","), group_id=None)
    found = Service(
        domain, runtime, channel, TokenIssuer.from_settings(security), database_url, kafka_bootstrap, consumer
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                " AND table_type = 'BASE TABLE' ORDER BY table_name",
                (found.schema,),
            ).fetchall()
        ]
    assert "outbox" in tables, tables
    found.count_sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{found.schema}"."{t}")' for t in tables)
    found.topics = [t for topic in runtime.spec.topics for t in (topic, f"{topic}.dlq")]
    try:
        yield found
    finally:
        consumer.close(autocommit=False)
        channel.close()
        runtime.close()
        delete_topics(kafka_bootstrap, found.topics)


# --- requests from descriptors --------------------------------------------------------------------

_TIMESTAMP = "google.protobuf.Timestamp"
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
BAD_STRINGS: tuple[str, ...] = (
    "\x00",
    "S-1\x00",
    "trailing\n",
    " leading",
    "\x1b[2J\x07",
    "\u202egnp.exe",
    "\u0663\u0663\u0661\u0660\u0660\u0664",
    "\U0001f4a3" * 3,
    "'; DROP TABLE outbox; --",
    "x" * 10_240,
)
HUGE_STRING = "\u5b66" * (1 << 20)
_MAX_SECONDS, _MIN_SECONDS = 253_402_300_799, -62_135_596_800
BAD_TIMESTAMPS: tuple[Timestamp, ...] = (
    Timestamp(seconds=_MAX_SECONDS + 1),
    Timestamp(seconds=_MIN_SECONDS - 1),
    Timestamp(seconds=1_700_000_000, nanos=-1),
    Timestamp(seconds=1_700_000_000, nanos=1_000_000_000),
    Timestamp(seconds=_MAX_SECONDS, nanos=999_999_999),
    Timestamp(seconds=_MIN_SECONDS),
    Timestamp(seconds=0),
    Timestamp(seconds=2**62),
)


def _message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def _recent(name: str) -> Timestamp:
    """A time a filled-in request may carry: a minute ago, or two days ago for a period's start."""
    stamp = Timestamp()
    stamp.FromDatetime(datetime.now(UTC) - (timedelta(days=2) if "start" in name else timedelta(minutes=1)))
    return stamp


def _with_check(first: str, check: Callable[[str], str]) -> str:
    return first + check(first)


# Well-formed values of the district's identifier formats, by field name: the filled-in request should
# pass validation where it can, so a create succeeds and later RPCs reach past their checks.
WELL_FORMED: dict[str, str] = {
    "division_code": "331004",
    "credit_code": _with_check("91331004MA2AB1234", credit_code_check_char),
    "identity_number": _with_check("33100419850317123", identity_check_char),
    "phone": "0576-8288 1234",
    "promised_date": "2031-06-30",
    "plate": "浙J12345",
    "time_zone": "Asia/Shanghai",
    # Replaced by a fresh id at each call: one id with two bodies is refused before anything else.
    "request_id": "fresh-request-id",
}
# Ids the service handed out in answers so far, by field name (``site_id``, ``person_token``, ...).
SEEN_IDS: dict[str, str] = {}


def _harvest(message: Message) -> None:
    """Keep every id or token an answer carries, for the filled-in requests of the RPCs after it."""
    for f, value in message.ListFields():
        if f.type == _MESSAGE:
            for item in value if f.is_repeated else [value]:
                _harvest(item)
        elif (
            f.type == FieldDescriptor.TYPE_STRING
            and not f.is_repeated
            and value
            and f.name.endswith(("_id", "_token"))
        ):
            SEEN_IDS[f.name] = value


def _benign(f: FieldDescriptor) -> object:
    """A plausible value for a scalar field (the filled-in request the malformed values replace)."""
    if f.type == FieldDescriptor.TYPE_STRING:
        return SEEN_IDS.get(f.name) or WELL_FORMED.get(f.name) or f"{f.name[:8]}-1"
    if f.type == FieldDescriptor.TYPE_BYTES:
        return b"x"
    if f.type == FieldDescriptor.TYPE_ENUM:
        enum = f.enum_type
        assert enum is not None
        numbers = sorted(v.number for v in enum.values)
        return next((n for n in numbers if n != 0), 0)
    if f.type in _FLOATS:
        return 0.5
    if f.type == FieldDescriptor.TYPE_BOOL:
        return True
    return 1


def _fill(message: Message, depth: int = 0) -> Message:
    """Every field set (one member per oneof, one item per repeated field), nested three deep."""
    oneofs: set[str] = set()
    f: Any
    for f in message.DESCRIPTOR.fields:
        oneof = f.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs:
                continue
            oneofs.add(oneof.name)
        if f.type == _MESSAGE:
            sub_type = f.message_type
            assert sub_type is not None
            if depth >= 3:
                continue
            container: Any = getattr(message, f.name)
            target: Message = container.add() if f.is_repeated else container
            if sub_type.full_name == _TIMESTAMP:
                target.CopyFrom(_recent(f.name))
            else:
                _fill(target, depth + 1)
                target.SetInParent()
        elif f.is_repeated:
            getattr(message, f.name).append(_benign(f))
        else:
            setattr(message, f.name, _benign(f))
    return message


Path_ = tuple[str, ...]


def _leaves(message: Message, prefix: Path_ = ()) -> Iterator[tuple[Path_, FieldDescriptor]]:
    """Every set field of a filled-in request, by path (a repeated field's path reaches its first item)."""
    for f, value in message.ListFields():
        path = (*prefix, f.name)
        yield path, f
        sub_type = f.message_type
        if f.type == _MESSAGE and sub_type is not None and sub_type.full_name != _TIMESTAMP:
            for item in list(value)[:1] if f.is_repeated else [value]:
                yield from _leaves(item, path)


def _parent(message: Message, path: Path_) -> Message:
    current: Any = message
    for name in path[:-1]:
        f = current.DESCRIPTOR.fields_by_name[name]
        current = getattr(current, name)[0] if f.is_repeated else getattr(current, name)
    return current  # type: ignore[no-any-return]


def _replaced(base: Message, path: Path_, value: object) -> Message:
    """A copy of ``base`` with the field at ``path`` set to ``value`` (for a repeated field: its only item,
    or the list ``value`` when it is a list)."""
    message = type(base)()
    message.CopyFrom(base)
    parent = _parent(message, path)
    name = path[-1]
    f = parent.DESCRIPTOR.fields_by_name[name]
    container: Any = getattr(parent, name)
    if f.is_repeated:
        del container[:]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if f.type == _MESSAGE:
                container.add().CopyFrom(item)
            else:
                container.append(item)
    elif f.type == _MESSAGE:
        assert isinstance(value, Message)
        container.CopyFrom(value)
        container.SetInParent()
    else:
        setattr(parent, name, value)
    return message


def _bad_values(f: FieldDescriptor) -> list[object]:  # noqa: PLR0911 - one list per field type
    sub_type = f.message_type
    if f.type == _MESSAGE and sub_type is not None:
        if sub_type.full_name == _TIMESTAMP:
            return list(BAD_TIMESTAMPS)
        return [_message_class(sub_type)()]
    if f.type == FieldDescriptor.TYPE_STRING:
        return list(BAD_STRINGS)
    if f.type == FieldDescriptor.TYPE_BYTES:
        return [b"\x00" * 70_000]
    if f.type == FieldDescriptor.TYPE_ENUM:
        return [999, -7, 2**31 - 1]
    if f.type in _FLOATS:
        return [math.nan, math.inf, -math.inf, 1e308, -1e308, -1.0, 5e-324]
    if f.type in _INT_RANGES:
        low, high = _INT_RANGES[f.type]
        return [low, high, -1 if low < 0 else 0]
    return []


@dataclass(frozen=True)
class Case:
    what: str
    request: Message


def _cleared(base: Message, field_paths: Iterator[str] | list[str]) -> Message | None:
    """``base`` without the fields named by violation paths (``detections[0].plate``); None when none
    of them names a field that is set."""
    message = type(base)()
    message.CopyFrom(base)
    changed = False
    for field_path in field_paths:
        path = tuple(part.split("[", 1)[0] for part in field_path.split("."))
        try:
            parent = _parent(message, path)
            if any(f.name == path[-1] for f, _ in parent.ListFields()):
                parent.ClearField(path[-1])
                changed = True
        except (KeyError, IndexError, ValueError):
            continue
    return message if changed else None


def _baseline(judge: Judge, input_type: Descriptor) -> Message:
    """The filled-in request, less the fields the service names as bad (up to four tries): a request as
    close to valid as the generic fill gets, so the malformed values reach past the first checks."""
    base = _fill(_message_class(input_type)())
    for attempt in range(4):
        bad = judge(Case(f"filled request, try {attempt + 1}", base))
        lighter = _cleared(base, list(bad)) if bad else None
        if lighter is None:
            break
        base = lighter
    return base


def _cases(base: Message) -> list[Case]:
    cls = type(base)
    cases = [Case("empty request", cls())]
    huge_done = False
    for path, f in _leaves(base):
        name = ".".join(path)
        cases.extend(Case(f"{name}={_describe(v)}", _replaced(base, path, v)) for v in _bad_values(f))
        if f.type == FieldDescriptor.TYPE_STRING and not huge_done:
            cases.append(Case(f"{name}=1 MiB", _replaced(base, path, HUGE_STRING)))
            huge_done = True
        if f.is_repeated:
            item = _parent(base, path)
            first: Any = getattr(item, path[-1])[0]
            cases.append(Case(f"{name}=[]", _replaced(base, path, [])))
            cases.append(Case(f"{name}=[1001 items]", _replaced(base, path, [first] * 1001)))
    return cases


def _describe(value: object) -> str:
    if isinstance(value, Timestamp):
        return f"Timestamp({value.seconds}, {value.nanos})"
    if isinstance(value, Message):
        return "{}"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} chars)"


def _strategy(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Requests hypothesis draws: any subset of fields, each from a malformed-leaning distribution."""
    cls = _message_class(descriptor)
    if descriptor.full_name == _TIMESTAMP:
        return st.builds(
            Timestamp,
            seconds=st.integers(min_value=-(2**63), max_value=2**63 - 1),
            nanos=st.integers(min_value=-(2**31), max_value=2**31 - 1),
        )
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in descriptor.fields:
        one = _value_strategy(f, depth)
        if one is not None:
            fields[f.name] = st.lists(one, max_size=3) if f.is_repeated else one

    def build(values: dict[str, Any]) -> Message:
        message = cls()
        for name, value in values.items():
            f = descriptor.fields_by_name[name]
            container: Any = getattr(message, name)
            if f.is_repeated:
                for item in value:
                    container.add().CopyFrom(item) if f.type == _MESSAGE else container.append(item)
            elif f.type == _MESSAGE:
                container.CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=fields).map(build)


def _value_strategy(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:  # noqa: PLR0911
    if f.type == _MESSAGE:
        sub_type = f.message_type
        return None if depth >= 2 or sub_type is None else _strategy(sub_type, depth + 1)
    if f.type == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(BAD_STRINGS), st.text(max_size=40))
    if f.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if f.type == FieldDescriptor.TYPE_ENUM:
        return st.integers(min_value=-(2**31), max_value=2**31 - 1)
    if f.type in _FLOATS:
        return st.floats(
            allow_nan=True, allow_infinity=True, width=32 if f.type == FieldDescriptor.TYPE_FLOAT else 64
        )
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type in _INT_RANGES:
        low, high = _INT_RANGES[f.type]
        return st.integers(min_value=low, max_value=high)
    return None


# --- calling and judging ----------------------------------------------------------------------------


@dataclass
class Judge:
    service: Service
    method: MethodDescriptor
    metadata: tuple[tuple[str, str], ...]
    call: Callable[..., Any]
    streaming: bool
    failures: list[str] = field(default_factory=list)
    answered_ok: bool = False
    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    _rows: tuple[int, ...] = ()

    def start(self) -> None:
        self._rows = self.service.rows()

    def __call__(self, case: Case) -> dict[str, str]:
        """Call with ``case``, judge the answer; the field violations when it was INVALID_ARGUMENT."""
        self.calls += 1
        bad_fields: dict[str, str] = {}
        deadline = STREAM_DEADLINE_S if self.streaming else UNARY_DEADLINE_S
        started = time.monotonic()
        code, details = grpc.StatusCode.OK, ""
        request: Any = case.request
        if (
            "request_id" in request.DESCRIPTOR.fields_by_name
            and request.request_id == WELL_FORMED["request_id"]
        ):
            request = type(request)()
            request.CopyFrom(case.request)
            request.request_id = f"guard-{secrets.token_hex(8)}"
        try:
            answer = self.call(request, metadata=self.metadata, timeout=deadline)
            for response in answer if self.streaming else [answer]:
                _harvest(response)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                bad_fields = violations(error)
        elapsed = time.monotonic() - started
        self.codes[code.name] += 1
        where = f"{self.method.full_name} [{case.what}]"
        allowed = DOCUMENTED | ({grpc.StatusCode.DEADLINE_EXCEEDED} if self.streaming else frozenset())
        if code not in allowed:
            self.failures.append(f"{where}: {code.name} {details[:200]!r}")
        if elapsed > deadline + 2.0:
            self.failures.append(f"{where}: answered after {elapsed:.1f} s (deadline {deadline} s)")
        rows = self.service.rows()
        if code == grpc.StatusCode.OK:
            self.answered_ok = True
        elif rows != self._rows:
            self.failures.append(f"{where}: refused with {code.name} but stored rows")
        self._rows = rows
        return bad_fields


def _roles(service: Service, method: MethodDescriptor) -> list[str]:
    policy = service.runtime.spec.policy
    assert policy is not None, f"{service.domain} has no policy table"
    allowed = sorted(policy[method.name].allowed)
    unscoped = [role for role in allowed if role not in _SCOPED_ROLES]
    # Only scoped roles: the calls end at PERMISSION_DENIED, which is still a documented answer.
    return unscoped or allowed


def _judge(service: Service, method: MethodDescriptor) -> Judge:
    token = service.issuer.issue(sub="malformed-input-guard", roles=_roles(service, method), ttl_s=3600)
    metadata = (("authorization", f"Bearer {token}"), ("x-purpose", "malformed input guard"))
    input_cls = _message_class(method.input_type)
    output_cls = _message_class(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    streaming = bool(method.server_streaming)
    make = service.channel.unary_stream if streaming else service.channel.unary_unary
    call = make(
        path, request_serializer=input_cls.SerializeToString, response_deserializer=output_cls.FromString
    )
    return Judge(service, method, metadata, call, streaming)


# Bytes no protobuf message decodes from: a truncated varint, a length running past the end, a bad wire type.
UNDECODABLE = (b"\xff\xff\xff\xff", b"\x0a\xff\x01ab", b"\x0f")


def _undecodable(judge: Judge) -> list[str]:
    """Bytes that are not the request message are the caller's error: INVALID_ARGUMENT naming ``request``,
    never grpcio's INTERNAL "Exception deserializing request!"."""
    path = f"/{judge.method.containing_service.full_name}/{judge.method.name}"
    channel = judge.service.channel
    raw: Any = channel.unary_stream(path) if judge.streaming else channel.unary_unary(path)
    failures = []
    for payload in UNDECODABLE:
        try:
            answer = raw(payload, metadata=judge.metadata, timeout=UNARY_DEADLINE_S)
            if judge.streaming:
                list(answer)
            failures.append(f"{judge.method.full_name} [undecodable {payload!r}]: answered OK")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT or "request" not in (error.details() or ""):
                failures.append(f"{judge.method.full_name} [undecodable {payload!r}]: {error.code().name}")
    return failures


def _methods(service: Service) -> list[MethodDescriptor]:
    pool = descriptor_pool.Default()
    found: list[MethodDescriptor] = []
    for name in service.runtime.spec.grpc_services:
        found.extend(pool.FindServiceByName(name).methods)
    return found


def _run_hypothesis(judge: Judge, input_type: Descriptor) -> None:
    examples = STREAM_HYPOTHESIS_EXAMPLES if judge.streaming else HYPOTHESIS_EXAMPLES

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(_strategy(input_type))
    def drawn(request: Message) -> None:
        judge(Case(f"hypothesis {request.ByteSize()} B", request))

    drawn()


def test_no_malformed_request_answers_internal_hangs_or_stores(service: Service) -> None:
    methods = _methods(service)
    assert methods, f"{service.domain} registers no RPC"
    SEEN_IDS.clear()  # ids of this service only
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    for method in methods:
        service.outbox_drained()
        offsets = service.end_offsets()
        judge = _judge(service, method)
        judge.start()
        cases: Sequence[Case] = _cases(_baseline(judge, method.input_type))
        if judge.streaming:
            # Every stream a malformed value does not refuse stays open until its deadline: fewer cases.
            cases = [c for c in cases if "1001" not in c.what][:40]
        for case in cases:
            judge(case)
        judge.failures.extend(_undecodable(judge))
        _run_hypothesis(judge, method.input_type)
        if not judge.answered_ok:
            service.outbox_drained()
            if service.end_offsets() != offsets:
                judge.failures.append(
                    f"{method.full_name}: every call was refused but records were published"
                )
        failures.extend(judge.failures)
        calls += judge.calls
        print(f"{method.name}: {dict(judge.codes)}")
    elapsed = time.monotonic() - started
    print(f"{service.domain}: {len(methods)} RPCs, {calls} calls in {elapsed:.1f} s")
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:60])
