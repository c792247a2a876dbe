"""CloudEvents binary mode on Kafka records, without a broker: headers round-trip, traceparent handling,
decoding by ce_type, and the consumer's transient-error policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from cityhub.testing.v1.events_pb2 import CounterIncremented
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError

from services.platform.consumer import is_transient
from services.platform.kafka import (
    EnvelopeError,
    EventEnvelope,
    PayloadDecodeError,
    UnknownEventTypeError,
    bootstrap_list,
    decode_payload,
    dlq_topic,
    envelope_from_record,
    format_ce_time,
    load_all_contracts,
    parse_ce_time,
    to_json,
)
from services.platform.tracing import TraceContext, parse_traceparent

CE_TYPE = "cityhub.testing.v1.CounterIncremented"


def make_envelope(**changes: object) -> EventEnvelope:
    values: dict[str, object] = {
        "topic": "cityhub.testing.events.v1",
        "key": "counter-1",
        "subject": "counter/counter-1",
        "source": "/cityhub/testing",
    }
    values.update(changes)
    return EventEnvelope.for_message(
        CounterIncremented(counter_id="counter-1", amount=3, sequence=7),
        **values,  # type: ignore[arg-type]
    )


def as_record(
    envelope: EventEnvelope,
    headers: list[tuple[str, bytes]] | None = None,
    *,
    value: bytes | None = None,
    key: bytes | None = None,
) -> ConsumerRecord:
    return ConsumerRecord(
        topic=envelope.topic,
        partition=2,
        leader_epoch=0,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=envelope.key_bytes if key is None else key,
        value=envelope.payload if value is None else value,
        headers=envelope.headers() if headers is None else headers,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        serialized_header_size=-1,
    )


def replace_header(envelope: EventEnvelope, name: str, value: bytes | None) -> list[tuple[str, bytes]]:
    kept = [(n, v) for n, v in envelope.headers() if n != name]
    return kept if value is None else [*kept, (name, value)]


# --- headers -----------------------------------------------------------------------------------------


def test_headers_are_the_cloudevents_kafka_binding_plus_traceparent() -> None:
    moment = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    envelope = make_envelope(event_id="0b6f7b0e-7d1c-4d59-9a53-0d9b7b1f1f10", time=moment)
    headers = dict(envelope.headers())
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"0b6f7b0e-7d1c-4d59-9a53-0d9b7b1f1f10",
        "ce_source": b"/cityhub/testing",
        "ce_type": CE_TYPE.encode(),
        "ce_subject": b"counter/counter-1",
        "ce_time": b"2026-03-01T08:30:15.123456Z",
        "content-type": b"application/protobuf",
        "traceparent": envelope.traceparent.encode() if envelope.traceparent else b"",
    }
    assert all(isinstance(value, bytes) for value in headers.values())


def test_headers_round_trip_through_a_record() -> None:
    envelope = make_envelope()
    back = envelope_from_record(as_record(envelope))
    assert back == envelope
    assert (back.partition, back.offset) == (2, 41)
    assert back.decode() == CounterIncremented(counter_id="counter-1", amount=3, sequence=7)


def test_ce_time_is_rfc3339_utc_and_parses_back() -> None:
    local = datetime(2026, 3, 1, 16, 30, tzinfo=timezone(timedelta(hours=8)))
    text = format_ce_time(local)
    assert text == "2026-03-01T08:30:00.000000Z"
    assert parse_ce_time(text) == local
    assert parse_ce_time("2026-03-01T16:30:00+08:00") == local
    with pytest.raises(ValueError, match="timezone-aware"):
        format_ce_time(datetime(2026, 3, 1))  # noqa: DTZ001 - the naive value is the point
    with pytest.raises(EnvelopeError):
        parse_ce_time("2026-03-01T08:30:00")
    with pytest.raises(EnvelopeError):
        parse_ce_time("yesterday")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ce_id", None, "ce_id is missing"),
        ("ce_type", None, "ce_type is missing"),
        ("ce_id", b"", "ce_id is empty"),
        ("ce_specversion", b"0.3", "ce_specversion"),
        ("content-type", b"application/json", "content-type"),
        ("ce_time", b"not a time", "ce_time"),
        ("ce_source", b"\xff\xfe", "not UTF-8"),
    ],
)
def test_records_that_are_not_cityhub_cloudevents_are_refused(
    name: str, value: bytes | None, problem: str
) -> None:
    envelope = make_envelope()
    with pytest.raises(EnvelopeError, match=problem):
        envelope_from_record(as_record(envelope, replace_header(envelope, name, value)))


def test_content_type_parameters_and_case_are_tolerated() -> None:
    envelope = make_envelope()
    headers = replace_header(envelope, "content-type", b"Application/Protobuf; proto=cityhub.testing.v1")
    assert envelope_from_record(as_record(envelope, headers)).id == envelope.id


def test_tombstones_and_binary_keys_are_refused() -> None:
    envelope = make_envelope()
    tombstone = as_record(envelope)._replace(value=None)
    with pytest.raises(EnvelopeError, match="tombstone"):
        envelope_from_record(tombstone)
    with pytest.raises(EnvelopeError, match="key"):
        envelope_from_record(as_record(envelope, key=b"\xff\x00"))


# --- traceparent -------------------------------------------------------------------------------------


def test_a_new_envelope_starts_a_valid_trace() -> None:
    envelope = make_envelope()
    trace = envelope.trace
    assert trace is not None
    assert trace.traceparent == envelope.traceparent


def test_a_given_traceparent_is_carried_unchanged() -> None:
    parent = TraceContext.new().child()
    envelope = make_envelope(traceparent=parent.traceparent)
    back = envelope_from_record(as_record(envelope))
    assert back.traceparent == parent.traceparent
    assert back.trace == parent


def test_missing_or_malformed_traceparent_means_no_trace_not_a_bad_record() -> None:
    envelope = make_envelope()
    missing = envelope_from_record(as_record(envelope, replace_header(envelope, "traceparent", None)))
    assert missing.traceparent is None
    assert missing.trace is None
    assert "traceparent" not in dict(missing.headers())
    malformed = envelope_from_record(
        as_record(envelope, replace_header(envelope, "traceparent", b"00-zz-zz-01"))
    )
    assert malformed.trace is None
    assert parse_traceparent("00-" + "0" * 32 + "-" + "1" * 16 + "-01") is None


# --- decoding ----------------------------------------------------------------------------------------


def test_every_generated_contract_is_loaded() -> None:
    modules = load_all_contracts()
    assert "cityhub.testing.v1.events_pb2" in modules
    assert not any(name.endswith("_grpc") for name in modules)
    assert load_all_contracts() == modules


def test_decode_by_ce_type_finds_the_message_class() -> None:
    payload = CounterIncremented(counter_id="c", amount=-2, sequence=9).SerializeToString()
    message = decode_payload(CE_TYPE, payload)
    assert isinstance(message, CounterIncremented)
    assert (message.counter_id, message.amount, message.sequence) == ("c", -2, 9)


def test_unknown_ce_type_and_garbage_payload_are_envelope_errors() -> None:
    with pytest.raises(UnknownEventTypeError):
        decode_payload("cityhub.testing.v1.NoSuchEvent", b"")
    with pytest.raises(PayloadDecodeError):
        decode_payload(CE_TYPE, b"\xff\xff\xff\xff")
    assert issubclass(UnknownEventTypeError, EnvelopeError)
    assert issubclass(PayloadDecodeError, EnvelopeError)


def test_to_json_is_canonical_proto3_json_on_one_line() -> None:
    text = to_json(CounterIncremented(counter_id="c", amount=5, sequence=1))
    assert "\n" not in text
    assert json.loads(text) == {"counterId": "c", "amount": "5", "sequence": "1"}


# --- small helpers and policy ------------------------------------------------------------------------


def test_topic_and_bootstrap_helpers() -> None:
    assert dlq_topic("cityhub.safety.events.v1") == "cityhub.safety.events.v1.dlq"
    assert bootstrap_list(" a:1, b:2 ,") == ["a:1", "b:2"]
    assert bootstrap_list(["a:1"]) == ["a:1"]
    with pytest.raises(ValueError):
        bootstrap_list("")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.OperationalError("server closed the connection"), True),
        (psycopg.errors.SerializationFailure("could not serialize"), True),
        (KafkaConnectionError("down"), True),
        (KafkaTimeoutError("slow"), True),
        (MessageSizeTooLargeError("big"), False),
        (psycopg.errors.UniqueViolation("dup"), False),
        (ValueError("bad data"), False),
        (EnvelopeError("bad record"), False),
    ],
)
def test_only_infrastructure_errors_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient
