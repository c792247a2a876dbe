"""The fixed platform APIs use cases build on, without sockets: the paging rule and the fake unit of work
(rollback, events, request-id claims)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cityhub.testing.v1 import testing_pb2

from services.platform.errors import InvalidArgumentError
from services.platform.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    decode_cursor,
    encode_cursor,
    page_of,
    paginate,
)
from services.platform.uow import FakeUnitOfWork


def _fields(error: InvalidArgumentError) -> dict[str, str]:
    return {v.field: v.description for v in error.violations}


# --- paging -------------------------------------------------------------------------------------------


def test_page_size_zero_means_the_default_of_fifty() -> None:
    assert DEFAULT_PAGE_SIZE == 50
    assert page_of(0, "") == Page(50, "")


def test_page_size_up_to_the_maximum_is_taken_as_given() -> None:
    assert page_of(1, "").size == 1
    assert page_of(MAX_PAGE_SIZE, "").size == 500


def test_page_size_above_500_is_refused_naming_page_page_size() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        page_of(501, "")
    assert _fields(caught.value) == {"page.page_size": "must be at most 500"}


def test_negative_page_size_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        page_of(-1, "")
    assert "page.page_size" in _fields(caught.value)


def test_the_field_path_follows_the_request() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        page_of(501, "", field="filter.page")
    assert "filter.page.page_size" in _fields(caught.value)


def test_an_overlong_token_is_refused_naming_page_page_token() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        page_of(10, "A" * 513)
    assert "page.page_token" in _fields(caught.value)


def test_size_and_token_problems_are_reported_together() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        page_of(-5, "A" * 600)
    assert set(_fields(caught.value)) == {"page.page_size", "page.page_token"}


def test_cursor_roundtrip_with_datetime_and_str() -> None:
    at = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    token = encode_cursor(at, "INC-0007")
    assert "=" not in token
    assert decode_cursor(token, datetime, str) == (at, "INC-0007")


def test_cursor_roundtrip_keeps_the_utc_offset_and_non_ascii() -> None:
    at = datetime(2026, 3, 1, 16, 30, tzinfo=timezone(timedelta(hours=8)))
    token = encode_cursor(at, "东区-1", 42)
    decoded = decode_cursor(token, datetime, str, int)
    assert decoded == (at, "东区-1", 42)
    assert decoded is not None
    assert decoded[0].utcoffset() == timedelta(hours=8)


def test_an_empty_token_is_the_first_page() -> None:
    assert decode_cursor("", datetime, str) is None


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        "%%%%",
        encode_cursor("only-one-part"),  # the wrong number of parts
        encode_cursor("a", "b"),  # a string where a time is expected
        encode_cursor(1, "b"),
        "eyJ0IjoxfQ",  # base64 of {"t":1}: JSON, but not an array
        "bm90IGpzb24",  # base64 of "not json"
    ],
)
def test_a_token_of_another_shape_is_refused_naming_page_page_token(token: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        decode_cursor(token, datetime, str)
    assert _fields(caught.value) == {"page.page_token": "is not a token this service issued"}


def _token_of(parts: list[object]) -> str:
    """A token made by hand, bypassing encode_cursor (what a client tampering with one could send)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_a_naive_time_in_a_token_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        decode_cursor(_token_of([{"t": "2026-03-01T08:30:00"}, "x"]), datetime, str)


def test_a_bool_is_not_an_int_part() -> None:
    assert decode_cursor(_token_of([7]), int) == (7,)
    with pytest.raises(InvalidArgumentError):
        decode_cursor(_token_of([True]), int)


def test_decode_names_the_field_it_is_given() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        decode_cursor("%%%%", str, field="query.page.page_token")
    assert "query.page.page_token" in _fields(caught.value)


def test_paginate_cuts_the_extra_row_and_makes_the_next_token_from_the_last_shown() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(at + timedelta(minutes=i), f"id-{i}") for i in range(4)]  # fetched with size + 1
    shown, token = paginate(rows, Page(3), key=lambda row: row)
    assert shown == rows[:3]
    assert decode_cursor(token, datetime, str) == rows[2]


def test_paginate_on_the_last_page_gives_no_token() -> None:
    shown, token = paginate(["a", "b"], Page(3), key=lambda item: (item,))
    assert shown == ["a", "b"]
    assert token == ""
    shown, token = paginate(["a", "b", "c"], Page(3), key=lambda item: (item,))
    assert token == ""


# --- the fake unit of work ----------------------------------------------------------------------------


@dataclass
class Thing:
    name: str
    tags: list[str] = field(default_factory=list)


class InMemoryThings:
    def __init__(self) -> None:
        self.things: dict[str, Thing] = {}
        self.counter = 0

    def add(self, thing: Thing) -> str:
        self.counter += 1
        thing_id = f"T-{self.counter}"
        self.things[thing_id] = thing
        return thing_id


@dataclass(frozen=True)
class CreateThing:
    request_id: str
    name: str


class BoomError(Exception):
    pass


def _event(text: str) -> testing_pb2.EchoRequest:
    return testing_pb2.EchoRequest(text=text)


def test_a_committed_transaction_keeps_its_writes_and_events() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    with uow.transaction() as tx:
        thing_id = tx.repo.add(Thing("pump"))
        event_id = tx.publish(key=thing_id, subject=thing_id, message=_event("created"), topic="things")
        tx.notify("things", thing_id)
    assert uow.repo.things == {"T-1": Thing("pump")}
    assert event_id
    assert [e.key for e in uow.published] == ["T-1"]
    assert uow.events_of(testing_pb2.EchoRequest) == [_event("created")]
    assert uow.events_of(testing_pb2.EchoResponse) == []
    assert uow.notified == [("things", "T-1")]
    assert (uow.commits, uow.rollbacks) == (1, 0)


def test_a_rollback_restores_the_repository_and_drops_the_events() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    with uow.transaction() as tx:
        tx.repo.add(Thing("kept", ["a"]))

    def failing_use_case() -> None:
        with uow.transaction() as tx:
            tx.repo.add(Thing("lost"))
            tx.repo.things["T-1"].tags.append("mutated in place")
            tx.repo.things["T-1"].name = "renamed"
            tx.publish(key="T-2", subject="T-2", message=_event("created"))
            tx.notify("things", "T-2")
            raise BoomError

    with pytest.raises(BoomError):
        failing_use_case()
    assert uow.repo.things == {"T-1": Thing("kept", ["a"])}
    assert uow.repo.counter == 1
    assert [e.message for e in uow.published] == []
    assert uow.notified == []
    assert (uow.commits, uow.rollbacks) == (1, 1)
    # The repository object is the same one the use case was given: only its state was put back.
    with uow.transaction() as tx:
        assert tx.repo is uow.repo
        assert tx.repo.add(Thing("next")) == "T-2"


def test_claim_then_remember_makes_a_replay_get_the_first_result() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    command = CreateThing(request_id="req-1", name="pump")
    with uow.transaction() as tx:
        assert tx.claim("CreateThing", command.request_id, command) is None
        thing_id = tx.repo.add(Thing(command.name))
        tx.remember("CreateThing", command.request_id, {"thing_id": thing_id})
    with uow.transaction() as tx:
        replay = tx.claim("CreateThing", "req-1", CreateThing(request_id="req-1", name="pump"))
    assert replay == {"thing_id": "T-1"}
    assert uow.repo.things == {"T-1": Thing("pump")}


def test_the_same_request_id_with_a_different_body_is_refused_naming_request_id() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    with uow.transaction() as tx:
        tx.claim("CreateThing", "req-1", CreateThing("req-1", "pump"))
        tx.remember("CreateThing", "req-1", {"thing_id": "T-1"})
    with pytest.raises(InvalidArgumentError) as caught, uow.transaction() as tx:
        tx.claim("CreateThing", "req-1", CreateThing("req-1", "valve"))
    assert _fields(caught.value) == {"request_id": "was already used for a different request"}


def test_request_ids_are_per_operation() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    with uow.transaction() as tx:
        tx.claim("CreateThing", "req-1", CreateThing("req-1", "pump"))
        tx.remember("CreateThing", "req-1", {"thing_id": "T-1"})
        assert tx.claim("RenameThing", "req-1", CreateThing("req-1", "other")) is None


def test_a_rolled_back_claim_is_forgotten() -> None:
    uow = FakeUnitOfWork(InMemoryThings())

    def failing_use_case() -> None:
        with uow.transaction() as tx:
            assert tx.claim("CreateThing", "req-1", CreateThing("req-1", "pump")) is None
            raise BoomError

    with pytest.raises(BoomError):
        failing_use_case()
    with uow.transaction() as tx:
        # Also with another body: the first attempt never happened.
        assert tx.claim("CreateThing", "req-1", CreateThing("req-1", "valve")) is None
        tx.remember("CreateThing", "req-1", {"thing_id": "T-9"})


def test_without_a_request_id_nothing_is_claimed() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    with uow.transaction() as tx:
        assert tx.claim("CreateThing", "", CreateThing("", "pump")) is None
        tx.remember("CreateThing", "", {"thing_id": "T-1"})
        assert tx.claim("CreateThing", "", CreateThing("", "pump")) is None


def test_a_claim_committed_without_its_result_is_a_bug_not_a_replay() -> None:
    uow = FakeUnitOfWork(InMemoryThings())
    with uow.transaction() as tx:
        tx.claim("CreateThing", "req-1", CreateThing("req-1", "pump"))
    with pytest.raises(RuntimeError, match="never stored"), uow.transaction() as tx:
        tx.claim("CreateThing", "req-1", CreateThing("req-1", "pump"))


def test_a_custom_fingerprint_is_used() -> None:
    seen: list[bytes] = []

    def keyed(material: bytes) -> str:
        seen.append(material)
        return "same"

    uow = FakeUnitOfWork(InMemoryThings(), fingerprint=keyed)
    with uow.transaction() as tx:
        tx.claim("CreateThing", "req-1", CreateThing("req-1", "pump"))
        tx.remember("CreateThing", "req-1", {"thing_id": "T-1"})
    with uow.transaction() as tx:
        # Different bodies, but the (deliberately useless) fingerprint says they are the same.
        assert tx.claim("CreateThing", "req-1", CreateThing("req-1", "valve")) == {"thing_id": "T-1"}
    assert all(b"req-1" not in material for material in seen), "the request id is not part of the body"
