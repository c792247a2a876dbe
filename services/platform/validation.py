"""Input rules every service keeps, checked once in the platform (docs/status-codes.md, ADR 0009).

Two layers:

- :class:`InputGuard`, installed by the runtime in front of every RPC of every service, walks each
  incoming request message by its descriptor and refuses, naming every bad field by its path
  (``detections[2].label``), what no field of any service may hold: text with control characters or
  leading/trailing whitespace or beyond its length limit, an enum number the contract does not define, a
  NaN or infinite number, a Timestamp (or Duration) outside its defined range, a repeated field with more
  items than any request needs. A new service gets all of it for free; its domain checks then only say
  what its own fields mean. Limits come from :class:`InputRules`: a default per kind of field plus
  overrides by field name, passed as ``ServiceSpec(input_rules=...)``.
- Helpers the commands' ``check()`` use for what depends on the field's meaning: :func:`text_problem`
  (also for domain-level unit tests), :func:`check_event_time` (an event time is not before 2000 and at
  most :data:`MAX_CLOCK_AHEAD` ahead of the server's clock) and :func:`query_time_problem` (a query bound
  lies between :data:`EARLIEST_QUERY` and :data:`LATEST_QUERY`, so period arithmetic never overflows).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.platform.errors import FieldViolation, InvalidArgumentError, Violations

if TYPE_CHECKING:
    from services.platform.grpc_server import CallInfo

__all__ = [
    "EARLIEST_EVENT",
    "EARLIEST_QUERY",
    "LATEST_QUERY",
    "MAX_CLOCK_AHEAD",
    "InputGuard",
    "InputRules",
    "check_event_time",
    "check_query_period",
    "event_time_problem",
    "parse_date",
    "query_time_problem",
    "request_problems",
    "text_problem",
    "timestamp_problem",
]

# --- times ------------------------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: str) -> date | None:
    """A calendar date written exactly YYYY-MM-DD (ASCII digits), or None: the contracts' date strings.
    ``date.fromisoformat`` alone would also take "20240301" and week dates, which they do not allow."""
    if not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# No CityHub record describes anything before this: an earlier event time is a wrong clock or a default.
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
# A reporting device's clock may run a little ahead of ours; further ahead the time is wrong.
MAX_CLOCK_AHEAD = timedelta(minutes=5)
# Query periods: far wider than any data, and far enough inside what datetime can represent (years 1 to
# 9999) that widening to whole hours, days or months in any time zone cannot overflow.
EARLIEST_QUERY = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_QUERY = datetime(9000, 1, 1, tzinfo=UTC)


def event_time_problem(
    value: datetime, now: datetime, *, max_ahead: timedelta = MAX_CLOCK_AHEAD
) -> str | None:
    """Why ``value`` cannot be when something happened, or None."""
    if value < EARLIEST_EVENT:
        return "must not be before 2000-01-01"
    if value > now + max_ahead:
        return f"is more than {_span(max_ahead)} in the future"
    return None


def check_event_time(
    violations: Violations,
    field_path: str,
    value: datetime | None,
    now: datetime,
    *,
    required: bool = True,
    max_ahead: timedelta = MAX_CLOCK_AHEAD,
) -> None:
    """An event time: required unless said otherwise, not before 2000, at most ``max_ahead`` ahead."""
    if value is None:
        if required:
            violations.add(field_path, "is required")
        return
    violations.add_if(event_time_problem(value, now, max_ahead=max_ahead), field_path)


def query_time_problem(value: datetime) -> str | None:
    """Why ``value`` cannot bound a query period, or None."""
    if not EARLIEST_QUERY <= value <= LATEST_QUERY:
        return "must be between 1900-01-01 and 9000-01-01"
    return None


def check_query_period(
    violations: Violations, path: str, start: datetime | None, end: datetime | None, *, required: bool
) -> None:
    """A query period ``<path>``: both bounds required when ``required``, each within the query range,
    the end after the start."""
    for name, value in (("start_time", start), ("end_time", end)):
        if value is None:
            if required:
                violations.add(f"{path}.{name}", "is required")
        else:
            violations.add_if(query_time_problem(value), f"{path}.{name}")
    if start is not None and end is not None and end <= start:
        violations.add(f"{path}.end_time", f"must be after {path}.start_time")


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} s"


# Timestamp and Duration as google/protobuf/*.proto define them.
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
_DURATION_SECONDS = 315_576_000_000
_NANOS = 1_000_000_000


def timestamp_problem(seconds: int, nanos: int) -> str | None:
    """Why (seconds, nanos) is not a google.protobuf.Timestamp, or None."""
    if not _TIMESTAMP_SECONDS[0] <= seconds <= _TIMESTAMP_SECONDS[1]:
        return "is not a valid Timestamp (from 0001-01-01 to 9999-12-31 UTC)"
    if not 0 <= nanos < _NANOS:
        return "is not a valid Timestamp (nanos must be 0 to 999,999,999)"
    return None


def _duration_problem(seconds: int, nanos: int) -> str | None:
    if abs(seconds) > _DURATION_SECONDS or abs(nanos) >= _NANOS or (seconds * nanos < 0):
        return "is not a valid Duration"
    return None


# --- text -------------------------------------------------------------------------------------------

# C0 and C1 control characters (NUL, ESC, DEL, NEL ...), line and paragraph separators, the bidirectional
# embedding, override and isolate controls and marks (text that displays other than it reads), and the
# zero-width no-break space (BOM).
_INVISIBLE = "\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
_SINGLE_LINE_BAD = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_INVISIBLE}]")
# Free text may hold tabs and line breaks inside (a summary in paragraphs), nothing else of the above.
_FREE_TEXT_BAD = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_INVISIBLE}]")


def text_problem(value: str, *, max_chars: int, free_text: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None. Empty is fine (required-ness is the command's)."""
    if len(value) > max_chars:
        return f"must be at most {max_chars} characters"
    if value != value.strip():
        return "must not start or end with whitespace (including a line break)"
    found = (_FREE_TEXT_BAD if free_text else _SINGLE_LINE_BAD).search(value)
    if found is not None:
        what = (
            "a line break or tab"
            if found.group() in "\t\n\r"
            else f"the character U+{ord(found.group()):04X}"
        )
        return f"must not contain {what}" + ("" if free_text else " (one line of printable text)")
    return None


# --- the request walk -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputRules:
    """Limits of the generic walk. ``max_chars`` overrides by full field name
    (``cityhub.safety.v1.RecordInspectionRequest.summary``) or by field name (``summary``); ``screened``
    names message types a service checks element by element itself (the walk skips them: industry's
    telemetry samples, tens of thousands per request, each screened into a per-sample rejection)."""

    max_text: int = 500
    max_free_text: int = 2000
    max_id: int = 128
    max_bytes: int = 65_536
    max_items: int = 10_000
    # Field names holding free text (tabs and line breaks allowed inside).
    free_text: frozenset[str] = frozenset({"note", "summary", "description", "customisation", "comment"})
    max_chars: Mapping[str, int] = field(default_factory=lambda: {"page_token": 512})
    screened: frozenset[str] = frozenset()

    def merged(self, other: InputRules) -> InputRules:
        """These defaults with a service's own rules laid over them (the service's overrides win)."""
        return InputRules(
            max_text=other.max_text,
            max_free_text=other.max_free_text,
            max_id=other.max_id,
            max_bytes=other.max_bytes,
            max_items=other.max_items,
            free_text=self.free_text | other.free_text,
            max_chars={**self.max_chars, **other.max_chars},
            screened=self.screened | other.screened,
        )


_STRING = FieldDescriptor.TYPE_STRING
_BYTES = FieldDescriptor.TYPE_BYTES
_ENUM = FieldDescriptor.TYPE_ENUM
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_MESSAGES = frozenset({FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP})
_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    repeated: bool
    kind: str  # text, bytes, enum, float, timestamp, duration, message, skip
    limit: int = 0
    free_text: bool = False
    known: frozenset[int] = frozenset()
    enum_name: str = ""


def _is_id(name: str) -> bool:
    return name == "request_id" or name.endswith(("_id", "_token", "_ids", "_tokens"))


class _Planner:
    def __init__(self, rules: InputRules) -> None:
        self._rules = rules
        self._plans: dict[str, dict[str, _FieldPlan]] = {}

    def plan(self, descriptor: Descriptor) -> dict[str, _FieldPlan]:
        """The plan of each field of a message type, by field name (made once per type)."""
        found = self._plans.get(descriptor.full_name)
        if found is None:
            found = {f.name: self._field(f) for f in descriptor.fields}
            self._plans[descriptor.full_name] = found
        return found

    # One answer per kind of field, each at once.
    def _field(self, f: FieldDescriptor) -> _FieldPlan:  # noqa: PLR0911
        rules = self._rules
        repeated = f.is_repeated
        override = rules.max_chars.get(f.full_name, rules.max_chars.get(f.name))
        if f.type == _STRING:
            free = f.name in rules.free_text
            default = rules.max_free_text if free else rules.max_id if _is_id(f.name) else rules.max_text
            return _FieldPlan(f.name, repeated, "text", override or default, free)
        if f.type == _BYTES:
            return _FieldPlan(f.name, repeated, "bytes", override or rules.max_bytes)
        if f.type == _ENUM:
            enum = f.enum_type
            assert enum is not None
            return _FieldPlan(
                f.name, repeated, "enum", known=frozenset(enum.values_by_number), enum_name=enum.name
            )
        if f.type in _FLOATS:
            return _FieldPlan(f.name, repeated, "float")
        if f.type in _MESSAGES:
            message = f.message_type
            assert message is not None
            if message.full_name in rules.screened:
                return _FieldPlan(f.name, repeated, "skip")
            if message.full_name == _TIMESTAMP:
                return _FieldPlan(f.name, repeated, "timestamp")
            if message.full_name == _DURATION:
                return _FieldPlan(f.name, repeated, "duration")
            return _FieldPlan(f.name, repeated, "message")
        return _FieldPlan(f.name, repeated, "skip")


def _value_problem(plan: _FieldPlan, value: Any) -> str | None:  # noqa: PLR0911 - one rule per kind
    kind = plan.kind
    if kind == "text":
        return text_problem(value, max_chars=plan.limit, free_text=plan.free_text)
    if kind == "enum":
        return None if value in plan.known else f"is not a known {plan.enum_name} value"
    if kind == "float":
        return None if math.isfinite(value) else "must be a finite number"
    if kind == "timestamp":
        return timestamp_problem(value.seconds, value.nanos)
    if kind == "duration":
        return _duration_problem(value.seconds, value.nanos)
    if kind == "bytes" and len(value) > plan.limit:
        return f"must be at most {plan.limit} bytes"
    return None


def _walk(planner: _Planner, message: Message, prefix: str, rules: InputRules) -> Iterator[FieldViolation]:
    descriptor_of: Any = message.DESCRIPTOR
    plans = planner.plan(descriptor_of)
    for descriptor, value in message.ListFields():
        plan = plans[descriptor.name]
        if plan.kind == "skip":
            continue
        path = f"{prefix}{plan.name}"
        if plan.repeated:
            if len(value) > rules.max_items:
                yield FieldViolation(path, f"must hold at most {rules.max_items} items")
                continue
            items: Iterable[tuple[str, Any]] = ((f"{path}[{i}]", item) for i, item in enumerate(value))
        else:
            items = ((path, value),)
        for item_path, item in items:
            if plan.kind == "message":
                yield from _walk(planner, item, f"{item_path}.", rules)
                continue
            problem = _value_problem(plan, item)
            if problem is not None:
                yield FieldViolation(item_path, problem)


_DEFAULT_RULES = InputRules()


def request_problems(request: Message, rules: InputRules = _DEFAULT_RULES) -> list[FieldViolation]:
    """Every field of ``request`` that breaks the platform's input rules, by path (see the module text)."""
    return list(_walk(_Planner(rules), request, "", rules))


class InputGuard:
    """The platform's generic input check in front of every RPC (a ``grpc_server.Guard``); it runs after
    authentication and policy, and refuses with INVALID_ARGUMENT before any handler, transaction or
    publish. ``rules`` are laid over the platform's defaults."""

    def __init__(self, rules: InputRules | None = None) -> None:
        self._rules = _DEFAULT_RULES.merged(rules) if rules is not None else _DEFAULT_RULES
        self._planner = _Planner(self._rules)

    def problems(self, request: Message) -> list[FieldViolation]:
        return list(_walk(self._planner, request, "", self._rules))

    def before(self, call: CallInfo, request: Message) -> None:  # noqa: ARG002 - the Guard signature
        found = self.problems(request)
        if found:
            raise InvalidArgumentError(found)

    def after(self, call: CallInfo, request: Message, response: Message) -> Message:  # noqa: ARG002
        return response
