"""The alert inbox over real gRPC, PostgreSQL and Kafka: dedup with occurrences, escalation and reminders,
correlation into incidents, acknowledging at the hub and in safety (a real safety service), and the watch
stream. Domain events are published on the hub's input topics as the domains' relays write them."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import events_pb2 as hub_events
from cityhub.hub.v1 import hub_pb2, hub_pb2_grpc
from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.hub.bootstrap import build
from services.hub.domain.inbox import bucket_start
from services.platform.kafka import ensure_topics, make_producer
from services.platform.security import SecuritySettings, TokenIssuer
from services.safety.bootstrap import build as build_safety
from tests.integration.hub.conftest import hub_settings
from tests.integration.hub.hub_support import Hub
from tests.integration.safety.conftest import safety_settings
from tests.kafka_support import TopicReader, delete_topics
from tests.support import wait_until

SCHOOL_AT = common_pb2.GeoPoint(latitude=28.58, longitude=121.38)


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def now() -> datetime:
    return datetime.now(UTC)


def uid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def code(error: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return error.value.code()


def _somewhere() -> common_pb2.GeoPoint:
    """A point of its own (tens of km from the others): distance correlates only what a test means."""
    return common_pb2.GeoPoint(
        latitude=20 + secrets.randbelow(2000) / 100, longitude=100 + secrets.randbelow(2000) / 100
    )


def _kitchen(hub: Hub, town: str, *, site_id: str = "", location: common_pb2.GeoPoint | None = None) -> str:
    kitchen_id = uid("kit")
    hub.publish(
        kitchen_events.KitchenRegistered(
            kitchen_id=kitchen_id,
            site_id=site_id,
            name=f"Kitchen {kitchen_id}",
            town=town,
            division_code="331004",
            location=location or _somewhere(),
            registered_at=ts(now() - timedelta(days=1)),
        ),
        key=kitchen_id,
        subject=kitchen_id,
    )
    return kitchen_id


def _offline(hub: Hub, kitchen_id: str, at: datetime) -> None:
    hub.publish(
        kitchen_events.EquipmentOffline(
            kitchen_id=kitchen_id,
            equipment_id="fridge-1",
            kind=kitchen_pb2.EQUIPMENT_KIND_FRIDGE,
            alert_id=uid("kal"),
            last_reading_at=ts(at - timedelta(minutes=30)),
            at=ts(at),
        ),
        key=kitchen_id,
        subject=kitchen_id,
        time=at,
    )


def _cold_chain(hub: Hub, kitchen_id: str, at: datetime) -> str:
    alert_id = uid("kal")
    hub.publish(
        kitchen_events.ColdChainAlertRaised(
            kitchen_id=kitchen_id,
            equipment_id="freezer-1",
            kind=kitchen_pb2.EQUIPMENT_KIND_FREEZER,
            alert_id=alert_id,
            out_of_range_since=ts(at - timedelta(minutes=20)),
            limit_c=-18.0,
            temperature_c=-9.5,
            raised_at=ts(at),
        ),
        key=kitchen_id,
        subject=kitchen_id,
        time=at,
    )
    return alert_id


def _items(hub: Hub, **filter_: Any) -> list[hub_pb2.InboxItem]:
    response = hub.call(
        "ListInboxItems", hub_pb2.ListInboxItemsRequest(filter=hub_pb2.InboxFilter(**filter_))
    )
    return list(response.items)


def _item_at(hub: Hub, subject_id: str, kind: int) -> hub_pb2.InboxItem:
    return wait_until(
        lambda: next((i for i in _items(hub) if i.subject.id == subject_id and i.kind == kind), None),
        timeout_s=30,
        what=f"an item at {subject_id}",
    )


# --- dedup ---------------------------------------------------------------------------------------------


def test_repeats_within_the_window_are_one_item_with_every_occurrence(hub: Hub) -> None:
    kitchen_id = _kitchen(hub, "Luqiao Street")
    # Dedup buckets are fixed (one hour from the epoch, whatever order occurrences arrive in): three
    # repeats inside one bucket are one item, one in the next bucket another.
    first = bucket_start(now() - timedelta(hours=2), timedelta(hours=1)) + timedelta(minutes=5)
    for minutes in (0, 5, 10):
        _offline(hub, kitchen_id, first + timedelta(minutes=minutes))
    _offline(hub, kitchen_id, first + timedelta(hours=1))

    def two_items() -> list[hub_pb2.InboxItem] | None:
        found = [i for i in _items(hub) if i.subject.id == kitchen_id]
        return found if len(found) == 2 and sum(i.occurrence_count for i in found) == 4 else None

    items = wait_until(two_items, timeout_s=30, what="two items, four occurrences")
    older = min(items, key=lambda i: i.opened_at.ToDatetime())
    assert older.occurrence_count == 3
    assert older.kind == hub_pb2.ITEM_KIND_EQUIPMENT_OFFLINE
    assert older.severity == common_pb2.SEVERITY_MEDIUM
    assert older.status == hub_pb2.ITEM_STATUS_OPEN
    assert older.town == "Luqiao Street"
    assert older.subject.kind == common_pb2.ENTITY_KIND_KITCHEN
    assert older.opened_at.ToDatetime(UTC) == first.replace(microsecond=first.microsecond)
    detail = hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id=older.item_id))
    assert [o.at.ToDatetime(UTC) for o in detail.occurrences] == [
        first + timedelta(minutes=m) for m in (0, 5, 10)
    ]
    assert all(o.event_id and "sent nothing" in o.summary for o in detail.occurrences)

    with TopicReader(hub.kafka_bootstrap, [hub.settings.hub_events_topic]) as reader:
        records = reader.read_until(
            lambda rs: sum(1 for r in rs if r.key and r.key.decode() == older.item_id) >= 3,
            timeout_s=20,
            what="the opened and repeated events",
        )
    types = [dict(r.headers).get("ce_type", b"").decode() for r in records if r.key.decode() == older.item_id]
    assert types.count("cityhub.hub.v1.InboxItemOpened") == 1
    assert types.count("cityhub.hub.v1.InboxItemRepeated") == 2


def test_a_bad_filter_and_an_unknown_item_are_refused(hub: Hub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        hub.call(
            "ListInboxItems", hub_pb2.ListInboxItemsRequest(filter=hub_pb2.InboxFilter(domains=["weather"]))
        )
    assert code(error) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as error:
        hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id="itm_nothing"))
    assert code(error) == grpc.StatusCode.NOT_FOUND


# --- acknowledging at the hub --------------------------------------------------------------------------


def test_acknowledging_a_non_safety_item_applies_and_publishes(hub: Hub) -> None:
    kitchen_id = _kitchen(hub, "Xinqiao Town")
    _offline(hub, kitchen_id, now() - timedelta(minutes=2))
    item = _item_at(hub, kitchen_id, hub_pb2.ITEM_KIND_EQUIPMENT_OFFLINE)
    # A duty room of another site does not see it.
    with pytest.raises(grpc.RpcError) as error:
        hub.call(
            "AcknowledgeInboxItem",
            hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id),
            roles=("duty_room",),
            scopes=("site:site_elsewhere",),
        )
    assert code(error) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        hub.call("ResolveInboxItem", hub_pb2.ResolveInboxItemRequest(item_id=item.item_id))
    assert code(error) == grpc.StatusCode.FAILED_PRECONDITION

    done = hub.call(
        "AcknowledgeInboxItem", hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id, note="on our way")
    ).item
    assert done.status == hub_pb2.ITEM_STATUS_ACKNOWLEDGED
    assert done.acknowledged_by.startswith("tester-")
    with pytest.raises(grpc.RpcError) as error:
        hub.call("AcknowledgeInboxItem", hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id))
    assert code(error) == grpc.StatusCode.FAILED_PRECONDITION

    with TopicReader(hub.kafka_bootstrap, [hub.settings.hub_events_topic]) as reader:
        records = reader.read_until(
            lambda rs: any(_is(r, "InboxItemAcknowledged", item.item_id) for r in rs),
            timeout_s=20,
            what="InboxItemAcknowledged",
        )
    event = hub_events.InboxItemAcknowledged.FromString(
        next(r for r in records if _is(r, "InboxItemAcknowledged", item.item_id)).value
    )
    assert event.by == done.acknowledged_by
    assert event.note == "on our way"

    # The projection applies the hub's own event again: the same state.
    again = hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id=item.item_id)).item
    assert again.status == hub_pb2.ITEM_STATUS_ACKNOWLEDGED
    assert again.acknowledged_at == done.acknowledged_at

    resolved = hub.call("ResolveInboxItem", hub_pb2.ResolveInboxItemRequest(item_id=item.item_id)).item
    assert resolved.status == hub_pb2.ITEM_STATUS_RESOLVED


def _is(record: Any, name: str, key: str) -> bool:
    headers = dict(record.headers)
    return bool(
        record.key
        and record.key.decode() == key
        and headers.get("ce_type", b"").decode() == f"cityhub.hub.v1.{name}"
    )


# --- correlation ---------------------------------------------------------------------------------------


def test_a_schools_cold_chain_alert_and_its_safety_alert_form_one_incident(hub: Hub) -> None:
    before = hub.applied()
    site_id = uid("site")
    school = _somewhere()
    hub.publish(
        safety_events.SiteRegistered(
            site_id=site_id,
            name=f"School {site_id}",
            kind=safety_pb2.SITE_KIND_SCHOOL,
            division_code="331004",
            town="Tongyu Street",
            location=school,
            registered_at=ts(now() - timedelta(days=2)),
        ),
        key=site_id,
        subject=site_id,
    )
    kitchen_id = _kitchen(hub, "Tongyu Street", site_id=site_id, location=school)
    hub.wait_applied(before + 2)
    # Both alerts inside one correlation window (30 min, fixed like the dedup buckets): its start.
    at = bucket_start(now() - timedelta(minutes=3), timedelta(minutes=30))
    alert_id = uid("alr")
    hub.publish(
        safety_events.AlertRaised(
            alert_id=alert_id,
            site_id=site_id,
            level=safety_pb2.RISK_LEVEL_HIGH,
            severity=common_pb2.SEVERITY_HIGH,
            reasons=["loitering at the gate"],
            trigger=safety_pb2.ALERT_TRIGGER_RISK_ASSESSMENT,
            raised_at=ts(at),
        ),
        key=alert_id,
        subject=site_id,
        time=at,
    )
    _cold_chain(hub, kitchen_id, at + timedelta(minutes=1))
    safety_item = _item_at(hub, site_id, hub_pb2.ITEM_KIND_SAFETY_ALERT)
    cold_item = _item_at(hub, kitchen_id, hub_pb2.ITEM_KIND_COLD_CHAIN)

    def incident() -> hub_pb2.Incident | None:
        found = hub.call("ListIncidents", hub_pb2.ListIncidentsRequest(towns=["Tongyu Street"])).incidents
        return next((n for n in found if safety_item.item_id in n.item_ids), None)

    formed = wait_until(incident, timeout_s=30, what="the incident")
    assert set(formed.item_ids) == {safety_item.item_id, cold_item.item_id}
    assert formed.reasons == [f"kitchen Kitchen {kitchen_id} of site School {site_id}"]
    assert formed.severity == common_pb2.SEVERITY_HIGH
    assert formed.town == "Tongyu Street"
    detail = hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id=cold_item.item_id))
    assert detail.item.incident_id == formed.incident_id
    assert detail.incident.incident_id == formed.incident_id
    # The site's duty room sees the incident (its school and the school's kitchen).
    scoped = hub.call(
        "ListIncidents", hub_pb2.ListIncidentsRequest(), roles=("duty_room",), scopes=(f"site:{site_id}",)
    ).incidents
    assert [n.incident_id for n in scoped] == [formed.incident_id]
    # A safety item is resolved by safety's event only.
    with pytest.raises(grpc.RpcError) as error:
        hub.call("ResolveInboxItem", hub_pb2.ResolveInboxItemRequest(item_id=safety_item.item_id))
    assert code(error) == grpc.StatusCode.FAILED_PRECONDITION


# --- the watch -----------------------------------------------------------------------------------------


@dataclass
class Watch:
    call: Any
    received: list[hub_pb2.WatchInboxResponse] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Watch:
        headers = dict(self.call.initial_metadata())
        assert headers.get("x-watch-live") == "true", headers
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            for response in self.call:
                self.received.append(response)
        except grpc.RpcError:
            pass
        finally:
            self.ended.set()

    def cancel(self) -> None:
        self.call.cancel()
        self.ended.wait(5)


def test_the_watch_delivers_new_items_filtered_by_town_and_severity(hub: Hub) -> None:
    before = hub.applied()
    town = uid("Town")
    here = _kitchen(hub, town)
    elsewhere = _kitchen(hub, uid("Town"))
    hub.wait_applied(before + 2)
    call = hub.stub.WatchInbox(
        hub_pb2.WatchInboxRequest(
            filter=hub_pb2.InboxFilter(towns=[town], min_severity=common_pb2.SEVERITY_HIGH)
        ),
        metadata=(("authorization", f"Bearer {hub.token()}"),),
        timeout=60,
    )
    watch = Watch(call).start()
    try:
        _offline(hub, here, now())  # MEDIUM: below the filter
        _cold_chain(hub, elsewhere, now())  # another town
        _cold_chain(hub, here, now())
        got = wait_until(
            lambda: next((r for r in _filtered(watch) if r.item.kind == hub_pb2.ITEM_KIND_COLD_CHAIN), None),
            timeout_s=10,
            what="the new item on the watch",
        )
        assert got.item.subject.id == here
        assert got.item.town == town
    finally:
        watch.cancel()
    assert all(
        r.item.subject.id == here and r.item.kind == hub_pb2.ITEM_KIND_COLD_CHAIN for r in _filtered(watch)
    )


def _filtered(watch: Watch) -> list[Any]:
    # A district operator is also sent every item escalated meanwhile, whatever the filter says: an earlier
    # test's alert, opened in the past, may escalate while this one watches.
    return [r for r in watch.received if not r.item.escalated]


# --- escalation (a hub of its own with short deadlines) ------------------------------------------------


@pytest.fixture(scope="module")
def fast_hub(kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings) -> Iterator[Hub]:
    yield from _second_hub(
        kafka_bootstrap, database_url, hub_security, hub_escalate_critical_s=1, hub_reminder_interval_s=1
    )


def _second_hub(
    kafka_bootstrap: str, database_url: str, security: SecuritySettings, **overrides: Any
) -> Iterator[Hub]:
    suffix = secrets.token_hex(4)
    settings = hub_settings(kafka_bootstrap, database_url, suffix, **overrides)
    topics = [*settings.domain_topics, settings.hub_events_topic]
    ensure_topics(kafka_bootstrap, topics, partitions=3, replication=1)
    runtime = build(settings, configure_logs=False, security=security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    producer = make_producer(kafka_bootstrap)
    try:
        yield Hub(
            runtime,
            settings,
            hub_pb2_grpc.HubServiceStub(channel),
            TokenIssuer.from_settings(security),
            kafka_bootstrap,
            database_url,
            producer,
        )
    finally:
        producer.close(timeout=5)
        channel.close()
        runtime.close()
        mine = [t for t in topics if t.endswith(suffix)]
        delete_topics(kafka_bootstrap, [*mine, *(f"{t}.dlq" for t in topics)])


def _escalated(hub: Hub, item_id: str) -> hub_pb2.InboxItem | None:
    item = hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id=item_id)).item
    return item if item.escalated else None


def _acknowledged(hub: Hub, item_id: str) -> hub_pb2.InboxItem | None:
    item = hub.call("GetInboxItem", hub_pb2.GetInboxItemRequest(item_id=item_id)).item
    return item if item.status == hub_pb2.ITEM_STATUS_ACKNOWLEDGED else None


def _rounds(reader: TopicReader, item_id: str) -> list[int]:
    reader.poll()
    return [
        hub_events.InboxItemEscalated.FromString(r.value).round
        for r in reader.records
        if _is(r, "InboxItemEscalated", item_id)
    ]


def test_an_unacknowledged_critical_item_escalates_reminds_and_stops_once_acknowledged(fast_hub: Hub) -> None:
    hub = fast_hub
    credit_code = "91331004MA2K" + secrets.token_hex(3).upper()
    alert_id = uid("dal")
    hub.publish(
        industry_events.DeviceAlertRaised(
            alert_id=alert_id,
            device_id=uid("dev"),
            credit_code=credit_code,
            kind=industry_pb2.DEVICE_ALERT_KIND_FAULT,
            severity=common_pb2.SEVERITY_CRITICAL,
            raised_at=ts(now()),
            condition_since_at=ts(now() - timedelta(minutes=10)),
        ),
        key=alert_id,
        subject=credit_code,
    )
    item = _item_at(hub, credit_code, hub_pb2.ITEM_KIND_DEVICE_FAULT)
    assert item.severity == common_pb2.SEVERITY_CRITICAL
    with TopicReader(hub.kafka_bootstrap, [hub.settings.hub_events_topic]) as reader:
        wait_until(lambda: len(_rounds(reader, item.item_id)) >= 2 or None, timeout_s=20, what="two rounds")
        assert _rounds(reader, item.item_id)[:2] == [1, 2]
        first = hub_events.InboxItemEscalated.FromString(
            next(r for r in reader.records if _is(r, "InboxItemEscalated", item.item_id)).value
        )
        assert first.severity == common_pb2.SEVERITY_CRITICAL  # capped
        escalated = wait_until(
            lambda: _escalated(hub, item.item_id),
            timeout_s=10,
            what="the item flagged escalated",
        )
        assert escalated.effective_severity == common_pb2.SEVERITY_CRITICAL
        hub.call("AcknowledgeInboxItem", hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id))
        after_ack = len(_rounds(reader, item.item_id))
        # Three reminder intervals later, at most the one already on its way when we acknowledged.
        threading.Event().wait(3.5)
        rounds = _rounds(reader, item.item_id)
    assert len(rounds) <= after_ack + 1
    assert rounds == sorted(set(rounds))  # no round twice


# --- a safety item acknowledged in safety (a real safety service) --------------------------------------


@pytest.fixture(scope="module")
def safety_and_hub(
    kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings
) -> Iterator[tuple[Any, Hub]]:
    settings = safety_settings(kafka_bootstrap, database_url)
    safety = build_safety(settings, configure_logs=False, security=hub_security)
    safety.start()
    try:
        for hub in _second_hub(
            kafka_bootstrap,
            database_url,
            hub_security,
            hub_safety_events_topic=settings.safety_events_topic,
            safety_grpc_address=safety.address,
        ):
            yield safety, hub
    finally:
        safety.close()
        delete_topics(kafka_bootstrap, [settings.safety_events_topic, f"{settings.safety_events_topic}.dlq"])


def test_a_safety_items_acknowledgement_goes_to_safety_and_the_item_follows(
    safety_and_hub: tuple[Any, Hub],
) -> None:
    safety, hub = safety_and_hub
    channel = grpc.insecure_channel(safety.address)
    stub = safety_pb2_grpc.SafetyServiceStub(channel)
    operator = (("authorization", f"Bearer {hub.token()}"),)
    try:
        site = stub.RegisterSite(
            safety_pb2.RegisterSiteRequest(
                request_id=uid("site"),
                name="Luqiao No. 2 Primary School",
                kind=safety_pb2.SITE_KIND_SCHOOL,
                address="18 Tongyu Road",
                division_code="331004",
                town="Luqiao Street",
                location=SCHOOL_AT,
                duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 1234"),
            ),
            metadata=operator,
            timeout=30,
        ).site
        button = stub.RegisterSensor(
            safety_pb2.RegisterSensorRequest(
                request_id=uid("sensor"),
                site_id=site.site_id,
                kind=safety_pb2.SENSOR_KIND_PANIC_BUTTON,
                zone="gate",
            ),
            metadata=operator,
            timeout=30,
        ).sensor
        pressed = stub.RaiseAlarm(
            safety_pb2.RaiseAlarmRequest(
                request_id=uid("press"), site_id=site.site_id, sensor_id=button.sensor_id
            ),
            metadata=operator,
            timeout=30,
        ).alert
        item = _item_at(hub, site.site_id, hub_pb2.ITEM_KIND_SAFETY_ALERT)
        assert item.source_id == pressed.alert_id
        assert item.subject_name == "Luqiao No. 2 Primary School"

        done = hub.call(
            "AcknowledgeInboxItem", hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id)
        ).item
        alert = stub.GetAlert(
            safety_pb2.GetAlertRequest(alert_id=pressed.alert_id), metadata=operator, timeout=30
        )
        assert alert.alert.status == safety_pb2.ALERT_STATUS_ACKNOWLEDGED
        followed = wait_until(
            lambda: _acknowledged(hub, item.item_id),
            timeout_s=20,
            what="the item following safety's AlertAcknowledged",
        )
        assert done.status in {hub_pb2.ITEM_STATUS_OPEN, hub_pb2.ITEM_STATUS_ACKNOWLEDGED}
        assert followed.acknowledged_at.ToDatetime(UTC) > datetime(2000, 1, 1, tzinfo=UTC)
        # Nothing of it was acknowledged at the hub itself: no InboxItemAcknowledged.
        with pytest.raises(grpc.RpcError) as error:
            hub.call("AcknowledgeInboxItem", hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id))
        assert code(error) == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        channel.close()


def test_a_safety_item_without_safety_is_unavailable(hub: Hub) -> None:
    site_id = uid("site")
    alert_id = uid("alr")
    hub.publish(
        safety_events.AlertRaised(
            alert_id=alert_id,
            site_id=site_id,
            level=safety_pb2.RISK_LEVEL_CRITICAL,
            severity=common_pb2.SEVERITY_CRITICAL,
            trigger=safety_pb2.ALERT_TRIGGER_PANIC_BUTTON,
            raised_at=ts(now()),
        ),
        key=alert_id,
        subject=site_id,
    )
    item = _item_at(hub, site_id, hub_pb2.ITEM_KIND_SAFETY_ALERT)
    with pytest.raises(grpc.RpcError) as error:
        hub.call("AcknowledgeInboxItem", hub_pb2.AcknowledgeInboxItemRequest(item_id=item.item_id))
    assert code(error) == grpc.StatusCode.UNAVAILABLE
