"""Masking driven by the ``sensitive`` field option, and the rule that events never carry such fields."""

from __future__ import annotations

import pytest
from cityhub.testing.v1 import testing_pb2
from google.protobuf import any_pb2, struct_pb2
from google.protobuf.descriptor import Descriptor

from services.platform.probe import ProbeServicer
from services.platform.security.contracts import event_files, files, iter_messages, published_files
from services.platform.security.masking import (
    CATEGORIES,
    CLEARANCE,
    cleared_categories,
    declared_sensitive_fields,
    mask,
    mask_all,
    plan_for,
    sensitive_category,
)
from services.platform.security.roles import ALL_ROLES, Role


def _record() -> testing_pb2.GetPersonRecordResponse:
    return ProbeServicer().GetPersonRecord(testing_pb2.GetPersonRecordRequest(person_token="P-1"), None)  # type: ignore[arg-type]


def test_the_plan_lists_every_sensitive_path_nested_and_repeated() -> None:
    assert declared_sensitive_fields(testing_pb2.GetPersonRecordResponse.DESCRIPTOR) == {
        "record.identity_number": "identity",
        "record.aliases": "identity",
        "record.health.psychiatric_history": "health",
        "record.health.body_temperature_c": "health",
        "record.fuel_purchases": "purchase",
        "record.contacts.phone": "identity",
    }
    assert plan_for(testing_pb2.GetPersonRecordResponse.DESCRIPTOR).categories == CATEGORIES


def test_plans_are_cached_per_message_type() -> None:
    first = plan_for(testing_pb2.GetPersonRecordResponse.DESCRIPTOR)
    assert plan_for(testing_pb2.GetPersonRecordResponse.DESCRIPTOR) is first
    assert not plan_for(testing_pb2.EchoResponse.DESCRIPTOR)


def test_an_uncleared_caller_sees_nothing_sensitive() -> None:
    original = _record()
    result = mask(original, frozenset())
    record = result.message.record  # type: ignore[attr-defined]
    assert record.person_token == "P-1"
    assert record.danger_level == "high"
    assert record.health.updated_by == "clinic-7"
    assert [c.relation for c in record.contacts] == ["sibling", "employer"]
    assert record.identity_number == ""
    assert list(record.aliases) == []
    assert not record.health.psychiatric_history
    assert record.health.body_temperature_c == 0
    assert list(record.fuel_purchases) == []
    assert all(c.phone == "" for c in record.contacts)
    assert result.shown == ()
    assert set(result.masked) == set(
        declared_sensitive_fields(testing_pb2.GetPersonRecordResponse.DESCRIPTOR)
    )
    # The handler's message is untouched: it may be cached and served to a cleared caller next.
    assert original.record.identity_number


def test_a_cleared_caller_sees_its_categories_only() -> None:
    result = mask(_record(), frozenset({"health"}))
    record = result.message.record  # type: ignore[attr-defined]
    assert record.health.psychiatric_history
    assert record.health.body_temperature_c == pytest.approx(37.9)
    assert record.identity_number == ""
    assert result.shown == ("record.health.body_temperature_c", "record.health.psychiatric_history")
    assert result.shown_categories == {"health"}
    assert "record.identity_number" in result.masked


def test_a_fully_cleared_caller_gets_the_same_message_without_a_copy() -> None:
    original = _record()
    result = mask(original, CATEGORIES)
    assert result.message is original
    assert result.masked == ()
    assert len(result.shown) == 6


def test_absent_values_are_neither_shown_nor_masked() -> None:
    empty = testing_pb2.GetPersonRecordResponse(record=testing_pb2.PersonRecord(person_token="P-2"))
    result = mask(empty, frozenset())
    assert result.message is empty
    assert result.shown == ()
    assert result.masked == ()


def test_sensitive_content_inside_any_is_masked_too() -> None:
    packed = any_pb2.Any()
    packed.Pack(testing_pb2.PersonRecord(person_token="P-3", identity_number="331004198001011617"))
    masked = mask_all(packed)
    inner = testing_pb2.PersonRecord()
    assert masked.Unpack(inner)  # type: ignore[attr-defined]
    assert inner.person_token == "P-3"
    assert inner.identity_number == ""


def test_recursive_types_without_sensitive_fields_are_not_walked() -> None:
    assert not plan_for(struct_pb2.Struct.DESCRIPTOR)


def test_the_clearance_table_names_known_roles_only() -> None:
    for roles in CLEARANCE.values():
        assert roles <= ALL_ROLES
    assert cleared_categories([Role.POLICE]) == CATEGORIES
    assert cleared_categories([Role.DUTY_ROOM]) == {"identity", "health"}
    assert cleared_categories([Role.DISTRICT_OPERATOR, Role.SERVICE, Role.PUBLIC]) == frozenset()


def _marked_fields(message: Descriptor, seen: set[str]) -> list[str]:
    if message.full_name in seen:
        return []
    seen.add(message.full_name)
    found = [f"{message.full_name}.{f.name}" for f in message.fields if sensitive_category(f)]
    for f in message.fields:
        if f.message_type is not None:
            found.extend(_marked_fields(f.message_type, seen))
    return found


def test_published_messages_never_carry_sensitive_fields() -> None:
    """Every message of every contract file that declares no service (events, telemetry batches, shared
    types), through nested message fields: none is marked."""
    published = {f.name for f in published_files()}
    assert {f.name for f in event_files()} <= published
    assert "cityhub/industry/v1/telemetry.proto" in published
    offending: list[str] = []
    for file in published_files():
        for message in iter_messages(file):
            offending.extend(_marked_fields(message, set()))
    assert offending == []


def test_every_sensitive_mark_uses_a_known_category() -> None:
    # A typo ("healht") would otherwise be masked for everyone silently, or worse, judged by nobody.
    unknown = [
        f"{message.full_name}.{f.name}={sensitive_category(f)!r}"
        for file in files()
        for message in iter_messages(file)
        for f in message.fields
        if sensitive_category(f) and sensitive_category(f) not in CATEGORIES
    ]
    assert unknown == []
