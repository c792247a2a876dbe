"""Reading events for the hub's rules stays per event although parts of the reading are cached: the
per-type field plans, the summary heads, the inbox's reader per message class and the shared bare
mentions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.industry.v1 import telemetry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.safety.v1 import safety_pb2
from google.protobuf.message import Message

from services.hub.domain.entities import DomainEvent, EntityKind, resolve
from services.hub.domain.inbox import Raised
from services.hub.mapping.entities import domain_event, fields_of
from services.hub.mapping.inbox import signal_of
from services.platform.kafka import EventEnvelope, envelope_from_record
from services.platform.protoconv import to_timestamp

AT = datetime(2026, 11, 2, 8, 0, 0, 250_000, tzinfo=UTC)


def envelope(message: Message, event_id: str, at: datetime = AT) -> EventEnvelope:
    return EventEnvelope.for_message(
        message, topic="t", key="k", subject="s", source="/x", event_id=event_id, time=at
    )


def state_changed(device: str, state: int) -> industry_events.DeviceStateChanged:
    return industry_events.DeviceStateChanged(
        device_id=device,
        credit_code=f"credit-of-{device}",
        previous_state=telemetry_pb2.DEVICE_STATE_IDLE,
        state=state,  # type: ignore[arg-type]
        changed_at=to_timestamp(AT),
    )


def test_two_events_of_one_type_in_turn_each_read_as_themselves() -> None:
    first = state_changed("dev-1", telemetry_pb2.DEVICE_STATE_RUNNING)
    second = state_changed("dev-2", telemetry_pb2.DEVICE_STATE_FAULT)
    env1, env2 = envelope(first, "ev-1"), envelope(second, "ev-2", AT + timedelta(minutes=1))
    for _ in range(2):  # and back to the first: nothing of the other one sticks
        a = domain_event(env1, first)
        b = domain_event(env2, second)
        assert a is not None
        assert b is not None
        assert (a.event_id, a.fields["device_id"], a.fields["state"]) == ("ev-1", "dev-1", "RUNNING")
        assert (b.event_id, b.fields["device_id"], b.fields["state"]) == ("ev-2", "dev-2", "FAULT")
        assert b.at == AT + timedelta(minutes=1)
        assert (
            resolve(a).summary == "Device state changed: device id dev-1, previous state IDLE, state RUNNING"
        )
        assert resolve(b).summary == "Device state changed: device id dev-2, previous state IDLE, state FAULT"
        assert resolve(a).concerns == ((EntityKind.ENTERPRISE, "credit-of-dev-1"),)
        assert resolve(b).concerns == ((EntityKind.ENTERPRISE, "credit-of-dev-2"),)


def test_the_same_event_asked_again_is_the_same_reading() -> None:
    message = state_changed("dev-1", telemetry_pb2.DEVICE_STATE_RUNNING)
    env = envelope(message, "ev-1")
    first = domain_event(env, message)
    assert first is not None
    found = resolve(first)
    again = domain_event(env, message)
    assert again == first
    assert again is not None
    assert resolve(again) == found


def test_another_envelope_of_the_same_message_is_read_again() -> None:
    message = state_changed("dev-1", telemetry_pb2.DEVICE_STATE_RUNNING)
    first = domain_event(envelope(message, "ev-1"), message)
    later = domain_event(envelope(message, "ev-9", AT + timedelta(hours=1)), message)
    assert first is not None
    assert later is not None
    assert (first.event_id, first.at) == ("ev-1", AT)
    assert (later.event_id, later.at) == ("ev-9", AT + timedelta(hours=1))


def test_resolve_answers_for_each_event_even_with_the_same_id() -> None:
    # Rules tests and tools make DomainEvents by hand: two with one id are still two events.
    def made(site: str) -> DomainEvent:
        return DomainEvent(
            "safety", "RiskAssessed", "cityhub.safety.v1.RiskAssessed", "ev-1", AT, {"site_id": site}
        )

    one, other = made("site-1"), made("site-2")
    assert resolve(one).concerns == ((EntityKind.SITE, "site-1"),)
    assert resolve(other).concerns == ((EntityKind.SITE, "site-2"),)
    assert resolve(one).concerns == ((EntityKind.SITE, "site-1"),)


def test_events_of_different_types_in_turn_keep_their_own_fields_and_summaries() -> None:
    meal = kitchen_events.MealServed(
        kitchen_id="kit-1",
        meal_id="meal-1",
        sitting=kitchen_pb2.SITTING_LUNCH,
        servings=480,
        fully_traced=True,
    )
    risk = safety_events.RiskAssessed(
        assessment_id="as-1",
        site_id="site-1",
        level=safety_pb2.RISK_LEVEL_HIGH,
        detection_kinds=[safety_pb2.DETECTION_KIND_LOITERING],
        detection_count=2,
    )
    meal_event = domain_event(envelope(meal, "ev-meal"), meal)
    risk_event = domain_event(envelope(risk, "ev-risk"), risk)
    assert meal_event is not None
    assert risk_event is not None
    assert "site_id" not in meal_event.fields
    assert "kitchen_id" not in risk_event.fields
    assert meal_event.fields["sitting"] == "LUNCH"
    assert risk_event.fields["detection_kinds"] == ["LOITERING"]
    assert risk_event.fields["assessed_at"] is None
    assert (
        resolve(meal_event).summary
        == "Meal served: meal id meal-1, sitting LUNCH, servings 480, fully traced yes"
    )
    assert resolve(risk_event).summary == "Risk assessed: level HIGH, detection count 2"


def test_field_values_read_as_before_enums_timestamps_and_numbers_a_contract_does_not_name() -> None:
    message = state_changed("dev-1", 42)  # a number newer contracts may add
    message.changed_at.CopyFrom(to_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)))
    fields = fields_of(message)
    assert fields["state"] == "42"
    assert fields["previous_state"] == "IDLE"
    assert fields["changed_at"] == datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    assert fields["park_id"] == ""
    assert list(fields) == [f.name for f in message.DESCRIPTOR.fields]


def test_inbox_signals_of_two_domains_in_turn_are_each_their_own() -> None:
    device = industry_events.DeviceAlertRaised(alert_id="dal-1", device_id="dev-1", credit_code="c-1")
    fridge = kitchen_events.ColdChainAlertRaised(
        alert_id="kal-1", kitchen_id="kit-1", equipment_id="eq-1", temperature_c=10.0, limit_c=8.0
    )
    for _ in range(2):
        a = signal_of(envelope(device, "ev-a"), device)
        b = signal_of(envelope(fridge, "ev-b"), fridge)
        assert isinstance(a, Raised)
        assert isinstance(b, Raised)
        assert (a.subject_kind, a.subject_id, a.source_id) == ("ENTERPRISE", "c-1", "dal-1")
        assert (b.subject_kind, b.subject_id, b.source_id) == ("KITCHEN", "kit-1", "kal-1")


def test_a_relay_written_record_and_an_unusual_one_read_the_same_event() -> None:
    class Record:
        def __init__(self, headers: list[tuple[str, bytes]]) -> None:
            self.topic, self.partition, self.offset = "t", 3, 7
            self.key: bytes | None = b"k"
            self.value: bytes | None = b"payload"
            self.headers = headers

    env = envelope(state_changed("dev-1", 1), "ev-1")
    usual = envelope_from_record(Record(env.headers()))
    # Parameters on the media type and a time with an offset take the checked reading.
    unusual = [
        (name, b"application/protobuf; proto=x" if name == "content-type" else value)
        for name, value in env.headers()
    ]
    unusual = [
        (name, b"2026-11-02T16:00:00.250+08:00" if name == "ce_time" else value) for name, value in unusual
    ]
    other = envelope_from_record(Record(unusual))
    assert usual == other
    assert (usual.id, usual.type, usual.time, usual.key, usual.partition) == (
        "ev-1",
        "cityhub.industry.v1.DeviceStateChanged",
        AT,
        "k",
        3,
    )
