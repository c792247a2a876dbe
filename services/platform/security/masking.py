"""Masking of sensitive fields, driven by the ``(cityhub.common.v1.sensitive)`` field option.

The contracts say which fields are sensitive and of which category; this module turns that into a
per-message-type *plan* (computed once per type and cached) listing only the paths that can hold
sensitive data, so masking a response walks just those paths and a response type with nothing sensitive
costs one dictionary lookup.

A masked field is *cleared* (left at its default: empty string, 0, false, no element, unset message)
rather than overwritten with a marker: that works for every field type, including booleans and numbers
that have no room for "***", and a client cannot mistake a marker for data. Which paths were masked is
reported separately (the guard sends them in the ``x-masked-fields`` trailer). Masking works on a copy:
handlers may return cached messages, which must stay intact for the next, perhaps cleared, caller.

Who may see which category is decided in one place, :data:`CLEARANCE`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import cast

from cityhub.common.v1 import options_pb2
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.platform.security.roles import Role

__all__ = [
    "CATEGORIES",
    "CLEARANCE",
    "MaskResult",
    "SensitivePlan",
    "cleared_categories",
    "declared_sensitive_fields",
    "mask",
    "mask_all",
    "plan_for",
    "sensitive_category",
]

# The clearance table: which roles may see each category unmasked. Every unmasked read is audited and
# needs a stated purpose, whoever the reader is.
# - identity (identity numbers, names, phone numbers): police and investigators; the duty room of the
#   site where an incident happens (the reference incident puts the intruder's identity on its screen);
#   clerks handling an applicant's government-service file.
# - health (psychiatric history, staff temperatures): police and investigators, the duty room (same
#   incident), and for kitchen staff's morning checks the kitchen manager and food inspectors.
# - purchase (purchase records such as loose petrol): police and investigators only; others receive the
#   derived danger level, never the records.
# Services calling each other hold no clearance: a service that needs a sensitive fact asks for a derived,
# non-sensitive answer instead.
CLEARANCE: Mapping[str, frozenset[str]] = {
    "identity": frozenset({Role.POLICE, Role.SAFETY_INVESTIGATOR, Role.DUTY_ROOM, Role.GOV_CLERK}),
    "health": frozenset(
        {Role.POLICE, Role.SAFETY_INVESTIGATOR, Role.DUTY_ROOM, Role.KITCHEN_MANAGER, Role.FOOD_INSPECTOR}
    ),
    "purchase": frozenset({Role.POLICE, Role.SAFETY_INVESTIGATOR}),
}
CATEGORIES = frozenset(CLEARANCE)
_ANY = "google.protobuf.Any"


def cleared_categories(roles: Iterable[str]) -> frozenset[str]:
    """The categories any of ``roles`` is cleared for. An unknown category is cleared for no one."""
    held = frozenset(roles)
    return frozenset(category for category, allowed in CLEARANCE.items() if held & allowed)


def sensitive_category(field_descriptor: FieldDescriptor) -> str:
    """The field's sensitivity category, or "" when it is not marked."""
    if not field_descriptor.has_options:
        return ""
    return str(field_descriptor.GetOptions().Extensions[options_pb2.sensitive])


class _Shape(Enum):
    SINGLE = 1
    REPEATED = 2
    MAP = 3


def _shape(field_descriptor: FieldDescriptor) -> _Shape:
    if not field_descriptor.is_repeated:
        return _Shape.SINGLE
    message_type = field_descriptor.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        return _Shape.MAP
    return _Shape.REPEATED


@dataclass(slots=True, eq=False)
class SensitivePlan:
    """Where sensitive data can sit in one message type. Plans may point at each other in cycles."""

    full_name: str
    # Fields marked sensitive themselves: (name, shape, category, tracks presence).
    direct: list[tuple[str, _Shape, str, bool]] = field(default_factory=list)
    # Message-typed fields whose type can hold sensitive data: (name, shape, plan of the element type).
    nested: list[tuple[str, _Shape, SensitivePlan]] = field(default_factory=list)
    # google.protobuf.Any fields: their content is known only at run time.
    dynamic: list[tuple[str, _Shape]] = field(default_factory=list)
    # Every category reachable statically (Any contents excluded).
    categories: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.direct or self.nested or self.dynamic)

    def _nested_closure(self) -> list[tuple[str, _Shape, SensitivePlan]]:
        seen: set[int] = set()
        out: list[tuple[str, _Shape, SensitivePlan]] = []
        stack = list(self.nested)
        while stack:
            item = stack.pop()
            if id(item[2]) in seen:
                continue
            seen.add(id(item[2]))
            out.append(item)
            stack.extend(item[2].nested)
        return out


_plans: dict[str, SensitivePlan] = {}
_plans_lock = threading.Lock()


def plan_for(descriptor: Descriptor) -> SensitivePlan:
    """The cached plan for a message type (an empty, falsy plan when nothing in it is sensitive)."""
    plan = _plans.get(descriptor.full_name)
    if plan is not None:
        return plan
    with _plans_lock:
        if descriptor.full_name not in _plans:
            _build(descriptor)
        return _plans[descriptor.full_name]


def _reachable(root: Descriptor) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    stack = [root]
    while stack:
        message = stack.pop()
        if message.full_name in seen:
            continue
        seen[message.full_name] = message
        stack.extend(f.message_type for f in message.fields if f.message_type is not None)
    return list(seen.values())


def _risky(types: list[Descriptor]) -> set[str]:
    """The types that can hold sensitive data: a field is marked, it is an Any, or it leads to such a type
    (a fixed point, so cycles are handled)."""
    risky = {
        t.full_name for t in types if t.full_name == _ANY or any(sensitive_category(f) for f in t.fields)
    }
    changed = True
    while changed:
        changed = False
        for t in types:
            if t.full_name not in risky and any(
                f.message_type is not None and f.message_type.full_name in risky for f in t.fields
            ):
                risky.add(t.full_name)
                changed = True
    return risky


def _fill(plan: SensitivePlan, message: Descriptor, risky: set[str], plans: dict[str, SensitivePlan]) -> None:
    for f in message.fields:
        category = sensitive_category(f)
        shape = _shape(f)
        if category:
            plan.direct.append((f.name, shape, category, shape is _Shape.SINGLE and f.has_presence))
            continue
        element = f.message_type
        if element is not None and shape is _Shape.MAP:
            element = element.fields_by_name["value"].message_type
        if element is None:
            continue
        if element.full_name == _ANY:
            plan.dynamic.append((f.name, shape))
        elif element.full_name in risky:
            plan.nested.append((f.name, shape, plans[element.full_name]))


def _build(root: Descriptor) -> None:
    """Plans for ``root`` and every type reachable from it, cycles included. Only types that can hold
    sensitive data get nested entries, so a recursive type with nothing sensitive (google.protobuf.Struct)
    is never walked."""
    types = _reachable(root)
    risky = _risky(types)
    fresh = [t for t in types if t.full_name not in _plans]
    plans = {t.full_name: _plans.get(t.full_name, SensitivePlan(t.full_name)) for t in types}
    for t in fresh:
        _fill(plans[t.full_name], t, risky, plans)
    for t in fresh:
        plans[t.full_name].categories = _categories(plans[t.full_name])
    # Published only once complete: readers look plans up without the lock.
    for t in fresh:
        _plans[t.full_name] = plans[t.full_name]


def _categories(plan: SensitivePlan) -> frozenset[str]:
    found = {direct[2] for direct in plan.direct}
    for _, _, child in plan._nested_closure():
        found.update(direct[2] for direct in child.direct)
    return frozenset(found)


def declared_sensitive_fields(descriptor: Descriptor) -> dict[str, str]:
    """Every statically known sensitive path in a message type and its category (for docs and tests)."""
    out: dict[str, str] = {}

    def walk(plan: SensitivePlan, prefix: str, path_types: frozenset[str]) -> None:
        for name, _, category, _ in plan.direct:
            out[prefix + name] = category
        for name, _, child in plan.nested:
            if child.full_name not in path_types:
                walk(child, f"{prefix}{name}.", path_types | {child.full_name})

    walk(plan_for(descriptor), "", frozenset({descriptor.full_name}))
    return out


@dataclass(frozen=True, slots=True)
class MaskResult:
    """The response to send, and which sensitive paths it shows and hides (element indices left out)."""

    message: Message
    shown: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()
    shown_categories: frozenset[str] = frozenset()


def _descriptor(message: Message) -> Descriptor:
    return cast(Descriptor, message.DESCRIPTOR)


def _present(message: Message, name: str, shape: _Shape, presence: bool) -> bool:
    # A field with presence set to its default still tells something ("known: no history"): mask it too.
    if presence:
        return message.HasField(name)
    value = getattr(message, name)
    if shape is _Shape.SINGLE:
        return bool(value)
    return len(value) > 0


def _elements(message: Message, name: str, shape: _Shape) -> Iterable[Message]:
    value = getattr(message, name)
    if shape is _Shape.SINGLE:
        return (value,) if message.HasField(name) else ()
    if shape is _Shape.MAP:
        return list(value.values())
    return list(value)


def _unpack_any(value: Message) -> Message | None:
    type_name = value.TypeName()  # type: ignore[attr-defined]
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    except KeyError:
        return None
    inner = message_factory.GetMessageClass(descriptor)()
    if not value.Unpack(inner):  # type: ignore[attr-defined]
        return None
    return inner


def _collect(message: Message, plan: SensitivePlan, prefix: str, out: dict[str, str]) -> None:
    for name, shape, category, presence in plan.direct:
        if _present(message, name, shape, presence):
            out.setdefault(prefix + name, category)
    for name, shape, child in plan.nested:
        for element in _elements(message, name, shape):
            _collect(element, child, f"{prefix}{name}.", out)
    for name, shape in plan.dynamic:
        for element in _elements(message, name, shape):
            inner = _unpack_any(element)
            if inner is None:
                # Content of a type we cannot read: treat the whole value as sensitive of no category,
                # so nobody sees it and nobody is audited for seeing it.
                out.setdefault(prefix + name, "unknown")
                continue
            inner_plan = plan_for(_descriptor(inner))
            if inner_plan:
                _collect(inner, inner_plan, f"{prefix}{name}.", out)


def _clear(
    message: Message, plan: SensitivePlan, cleared: frozenset[str], prefix: str, hidden: set[str]
) -> None:
    for name, shape, category, presence in plan.direct:
        if category not in cleared and _present(message, name, shape, presence):
            message.ClearField(name)
            hidden.add(prefix + name)
    for name, shape, child in plan.nested:
        for element in _elements(message, name, shape):
            _clear(element, child, cleared, f"{prefix}{name}.", hidden)
    for name, shape in plan.dynamic:
        for element in _elements(message, name, shape):
            inner = _unpack_any(element)
            if inner is None:
                element.Clear()
                hidden.add(prefix + name)
                continue
            inner_plan = plan_for(_descriptor(inner))
            if inner_plan:
                before = len(hidden)
                _clear(inner, inner_plan, cleared, f"{prefix}{name}.", hidden)
                if len(hidden) != before:
                    element.Pack(inner)  # type: ignore[attr-defined]


def mask(message: Message, cleared: frozenset[str]) -> MaskResult:
    """Hide every sensitive value of a category not in ``cleared``; report what is shown and hidden."""
    if _descriptor(message).full_name == _ANY:
        return _mask_any(message, cleared)
    plan = plan_for(_descriptor(message))
    if not plan:
        return MaskResult(message)
    present: dict[str, str] = {}
    _collect(message, plan, "", present)
    if not present:
        return MaskResult(message)
    shown = tuple(sorted(path for path, category in present.items() if category in cleared))
    categories = frozenset(present[path] for path in shown)
    if len(shown) == len(present):
        return MaskResult(message, shown=shown, shown_categories=categories)
    copy = type(message)()
    copy.CopyFrom(message)
    hidden: set[str] = set()
    _clear(copy, plan, cleared, "", hidden)
    return MaskResult(copy, shown=shown, masked=tuple(sorted(hidden)), shown_categories=categories)


def _mask_any(message: Message, cleared: frozenset[str]) -> MaskResult:
    inner = _unpack_any(message)
    if inner is None:
        return MaskResult(type(message)(), masked=("value",))
    result = mask(inner, cleared)
    if result.message is inner:
        return MaskResult(message, shown=result.shown, shown_categories=result.shown_categories)
    repacked = type(message)()
    repacked.Pack(result.message)  # type: ignore[attr-defined]
    return MaskResult(repacked, result.shown, result.masked, result.shown_categories)


def mask_all(message: Message) -> Message:
    """A copy with every sensitive value hidden (what log lines may show of a message)."""
    return mask(message, frozenset()).message
