"""Per-RPC authorisation: which roles may call an RPC, and which scope the request must fall into.

Each service declares one table beside its servicer::

    POLICY: PolicyTable = {
        "GetIncident": RpcPolicy(
            roles={Role.DUTY_ROOM, Role.POLICE, Role.DISTRICT_OPERATOR},
            scope=scope_from("site", "site_id"),
            subject=subject_from("incident_id"),
        ),
        ...
    }

A caller passes when it holds one of the roles; a *scoped* role (duty room, kitchen manager, enterprise
user, chamber staff, gov clerk) only counts where the caller also holds a scope the request falls into.
The roles that let the call through are the *effective* roles: clearance for sensitive fields is judged on
them alone, so a duty-room officer who is also a district operator sees another site's data as a district
operator (masked), not as that site's duty room.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.message import Message

from services.platform.errors import PermissionDeniedError
from services.platform.security.masking import plan_for
from services.platform.security.roles import ROLE_SCOPE_KIND, SCOPE_KINDS, Role
from services.platform.security.tokens import Caller

__all__ = [
    "Access",
    "PolicyTable",
    "RpcPolicy",
    "Scope",
    "check_policy_complete",
    "decide",
    "scope_from",
    "subject_from",
]


class Scope(NamedTuple):
    """A scope a request falls into, e.g. ``Scope("site", "S-001")``."""

    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


# Keyed by plain strings: tokens carry role names, not enum members.
_SCOPE_KIND_OF: dict[str, str] = {role.value: kind for role, kind in ROLE_SCOPE_KIND.items()}

ScopeRule = Callable[[Message], "Scope | Iterable[Scope] | None"]
SubjectRule = Callable[[Message], str]


def _read_path(message: Message, path: str) -> object:
    value: object = message
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _path_problem(descriptor: Descriptor, path: str) -> str | None:
    current: Descriptor | None = descriptor
    for part in path.split("."):
        if current is None or part not in current.fields_by_name:
            return f"field {path!r} not found in {descriptor.full_name}"
        f = current.fields_by_name[part]
        if f.is_repeated:
            return f"field {path!r} in {descriptor.full_name} is repeated"
        current = f.message_type
    if current is not None:
        return f"field {path!r} in {descriptor.full_name} is a message, not a scalar"
    return None


@dataclass(frozen=True, slots=True)
class _FieldScope:
    kind: str
    paths: tuple[str, ...]

    def __call__(self, request: Message) -> tuple[Scope, ...]:
        return tuple(Scope(self.kind, str(_read_path(request, path))) for path in self.paths)

    def problems(self, request_type: Descriptor) -> list[str]:
        return [p for p in (_path_problem(request_type, path) for path in self.paths) if p]


@dataclass(frozen=True, slots=True)
class _FieldSubject:
    path: str

    def __call__(self, request: Message) -> str:
        return str(_read_path(request, self.path))

    def problems(self, request_type: Descriptor) -> list[str]:
        problem = _path_problem(request_type, self.path)
        return [problem] if problem else []


def scope_from(kind: str, *paths: str) -> ScopeRule:
    """The request falls into scope ``kind:<value of the field>`` (dotted paths reach nested fields;
    several paths mean any of them will do)."""
    if kind not in SCOPE_KINDS:
        raise ValueError(f"unknown scope kind {kind!r}; known: {sorted(SCOPE_KINDS)}")
    if not paths:
        raise ValueError("scope_from needs at least one field path")
    return _FieldScope(kind, paths)


def subject_from(path: str) -> SubjectRule:
    """The audit subject is the value of a request field (a pseudonymous id, never an identity number)."""
    return _FieldSubject(path)


@dataclass(frozen=True, slots=True)
class RpcPolicy:
    """Who may call one RPC. ``scope`` names the scope(s) the request falls into (None: the use case
    filters by the caller's scopes itself); ``subject`` names whom the data is about, for the audit log."""

    roles: Collection[str]
    scope: ScopeRule | None = None
    subject: SubjectRule | None = None
    allowed: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        allowed = frozenset(str(role) for role in self.roles)
        if not allowed:
            raise ValueError("an RPC policy needs at least one role")
        unknown = allowed - {role.value for role in Role}
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}")
        object.__setattr__(self, "allowed", allowed)

    def required_scopes(self, request: Message) -> tuple[Scope, ...] | None:
        if self.scope is None:
            return None
        found = self.scope(request)
        if found is None:
            return None
        if isinstance(found, Scope):
            return (found,)
        return tuple(found)


PolicyTable = Mapping[str, RpcPolicy]


@dataclass(frozen=True, slots=True)
class Access:
    """What a call is allowed to do, as decided by the policy; handlers read it via the guard."""

    caller: Caller
    # The roles that let this call through (see the module docstring).
    roles: frozenset[str]
    # True when an effective role acts district-wide: the use case need not filter by scope.
    unrestricted: bool

    def allows(self, kind: str, ident: str) -> bool:
        """May this call touch ``kind:ident``? (For use cases filtering lists or checking a record.)"""
        if self.unrestricted:
            return True
        scoped_kinds = {_SCOPE_KIND_OF.get(role) for role in self.roles}
        return kind in scoped_kinds and self.caller.has_scope(kind, ident)


def decide(policy: RpcPolicy, caller: Caller, request: Message, rpc: str = "") -> Access:
    """The caller's access to one call, or PermissionDeniedError saying why not."""
    candidates = caller.roles & policy.allowed
    if not candidates:
        raise PermissionDeniedError(f"{rpc or 'this RPC'} needs one of the roles {sorted(policy.allowed)}")
    required = policy.required_scopes(request)
    effective: set[str] = set()
    for role in candidates:
        kind = _SCOPE_KIND_OF.get(role)
        if kind is None or required is None:
            effective.add(role)  # district-wide, or the use case filters by the caller's scopes
        elif any(scope.kind == kind and caller.has_scope(kind, scope.id) for scope in required):
            effective.add(role)
    if not effective:
        wanted = ", ".join(str(scope) for scope in required or ()) or "a scope"
        raise PermissionDeniedError(f"caller holds no scope covering {wanted}")
    unrestricted = any(role not in _SCOPE_KIND_OF for role in effective)
    return Access(caller, frozenset(effective), unrestricted)


def check_policy_complete(table: PolicyTable, service: ServiceDescriptor) -> list[str]:
    """Everything wrong with a service's table: RPCs without an entry, entries naming no RPC, scope or
    subject fields missing from the request, sensitive responses without an audit subject."""
    problems: list[str] = []
    methods = service.methods_by_name
    for name, method in methods.items():
        entry = table.get(name)
        if entry is None:
            problems.append(f"{service.full_name}/{name}: no policy entry")
            continue
        for rule in (entry.scope, entry.subject):
            check = getattr(rule, "problems", None)
            if check is not None:
                problems.extend(f"{service.full_name}/{name}: {p}" for p in check(method.input_type))
        if plan_for(method.output_type) and entry.subject is None:
            problems.append(
                f"{service.full_name}/{name}: the response carries sensitive fields, so the policy must "
                "name the audit subject (subject=subject_from(...))"
            )
    # A misspelt entry is as bad as a missing one: the RPC it meant to cover has no policy.
    problems.extend(
        f"{service.full_name}/{name}: policy entry for an RPC that does not exist"
        for name in table
        if name not in methods
    )
    return problems
