"""The hub end to end, beside the five real domain services (in-process, real gRPC, Kafka, PostgreSQL).

One enterprise touches every domain: onboarded in industry in a park, with two collection boxes, one of
which reports a fault long enough for a fault alert; a member of a chamber in commerce (approved at once,
commerce checks it with industry); the catering contractor operating a school's kitchen; the applicant of
a cross-region business-licence change in govservice (checked with commerce). One school: a site in safety
whose panic button is pressed (a critical alert), and its kitchen in kitchen, whose fridge warms for twenty
minutes (a cold-chain alert). Everything goes through the domains' gRPC APIs; the hub learns it from their
events topics and reads their APIs for the live detail. Then:

* every part is present in both 360 views (projections, and live detail), linked, with its freshness;
* the enterprise's timeline merges every domain's events in time order;
* the school's cold-chain alert and its safety alert are one incident;
* the dashboard's figures equal the inputs;
* the unacknowledged critical alarm escalates and is reminded, and stops once acknowledged at the hub
  (which acknowledges it in safety; the inbox follows safety's event);
* every domain event delivered twice changes nothing, row for row;
* `cityhub hub rebuild --compare-only` finds the rebuilt views equal to the live ones;
* with a domain stopped, its part of a detail 360 is marked unavailable and the rest is returned.

The tests run in this order and share one world (module-scoped; the slow part), the last one stopping a
domain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2
from cityhub.hub.v1 import events_pb2 as hub_events_pb2
from cityhub.hub.v1 import hub_pb2
from cityhub.industry.v1 import industry_pb2, telemetry_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import safety_pb2

from services.platform.protoconv import to_timestamp
from services.platform.security import SecuritySettings, load_security_settings
from tests.integration.hub.e2e_support import REPO, World, start_world
from tests.integration.industry.industry_support import credit_code
from tests.support import wait_until

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Asia/Shanghai")
E = common_pb2
H = hub_pb2
KNOWN, NOTHING, UNAVAILABLE = H.PART_STATUS_KNOWN, H.PART_STATUS_NOTHING_KNOWN, H.PART_STATUS_UNAVAILABLE
ORDER = ["safety", "industry", "kitchen", "commerce", "govservice"]
# Short deadlines for the one critical item; everything else would escalate only after the test is over.
REMINDER_S = 1.0
HUB_OVERRIDES: dict[str, Any] = {
    "hub_escalate_critical_s": 2.0,
    "hub_escalate_high_s": 7200.0,
    "hub_escalate_medium_s": 7200.0,
    "hub_escalate_low_s": 7200.0,
    "hub_reminder_interval_s": REMINDER_S,
    "hub_escalation_check_interval_s": 0.2,
    "hub_detail_timeout_s": 1.5,
    # The domains stamp their events with the wall clock: a correlation window of a day (fixed windows,
    # UTC days) keeps the story's alerts, minutes apart, from falling either side of a window's edge
    # (domain.inbox.may_correlate) — unless the run straddles midnight UTC. The rebuild gets it too.
    "hub_correlation_window_s": 86400.0,
}
TOWN = "Luqiao Street"
SCHOOL_AT = common_pb2.GeoPoint(latitude=28.5801, longitude=121.3802)
SECOND = 1000


@dataclass
class Story:
    world: World
    code: str
    park_id: str
    devices: list[str]
    fault_alert_id: str
    chamber_id: str
    membership_id: str
    site_id: str
    alarm_alert_id: str
    kitchen_id: str
    fridge_id: str
    cold_alert_id: str
    application_no: str
    began: datetime


def _enterprise(story: Story) -> common_pb2.EntityRef:
    return common_pb2.EntityRef(kind=E.ENTITY_KIND_ENTERPRISE, id=story.code)


def _school(story: Story) -> common_pb2.EntityRef:
    return common_pb2.EntityRef(kind=E.ENTITY_KIND_SITE, id=story.site_id)


def _samples(device_id: str, start_ms: int, count: int, state: int) -> list[telemetry_pb2.TelemetrySample]:
    return [
        telemetry_pb2.TelemetrySample(
            device_id=device_id,
            time_unix_ms=start_ms + i * 10 * SECOND,
            state=state,  # type: ignore[arg-type]
            good_count=1 if state == telemetry_pb2.DEVICE_STATE_RUNNING else 0,
            power_kw=8.0,
            temperature_c=45.0,
        )
        for i in range(count)
    ]


def _industry(world: World, code: str) -> tuple[str, list[str], str]:
    industry = world["industry"]
    operator = ("industry_operator",)
    park = industry.call(
        "RegisterPark",
        industry_pb2.RegisterParkRequest(
            request_id="e2e-park",
            name="Luqiao small-and-micro park",
            division_code="331004",
            address="Luqiao",
        ),
        roles=operator,
    ).park
    industry.call(
        "OnboardEnterprise",
        industry_pb2.OnboardEnterpriseRequest(
            request_id="e2e-enterprise",
            credit_code=code,
            name="Taizhou Precision Moulds Co.",
            sector=industry_pb2.SECTOR_MACHINERY,
            park_id=park.park_id,
            address="8 Industrial Road, Luqiao",
        ),
        roles=operator,
    )
    devices = [
        industry.call(
            "RegisterDevice",
            industry_pb2.RegisterDeviceRequest(
                request_id=f"e2e-device-{n}",
                serial_number=f"E2E-BOX-{n}",
                credit_code=code,
                workshop="W1",
                machine_type=industry_pb2.MACHINE_TYPE_CNC_MACHINE_TOOL,
                rated_power_kw=15.0,
                ideal_cycle_seconds=30.0,
                sample_interval_ms=10 * SECOND,
            ),
            roles=operator,
        ).device.device_id
        for n in range(2)
    ]
    # Box A runs, then has been in fault for three minutes (a fault alert after one); box B just runs.
    now_ms = (time.time_ns() // 1_000_000) // SECOND * SECOND
    start = now_ms - 5 * 60 * SECOND
    running, fault = telemetry_pb2.DEVICE_STATE_RUNNING, telemetry_pb2.DEVICE_STATE_FAULT
    samples = [
        *_samples(devices[0], start, 12, running),
        *_samples(devices[0], start + 120 * SECOND, 19, fault),
        *_samples(devices[1], start, 31, running),
    ]
    reply = industry.call(
        "IngestTelemetry", industry_pb2.IngestTelemetryRequest(request_id="e2e-telemetry", samples=samples)
    )
    assert (reply.accepted_count, reply.rejected_count) == (len(samples), 0)

    def fault_alert() -> str | None:
        alerts = industry.call(
            "ListDeviceAlerts", industry_pb2.ListDeviceAlertsRequest(device_id=devices[0], open_only=True)
        ).alerts
        found = [a.alert_id for a in alerts if a.kind == industry_pb2.DEVICE_ALERT_KIND_FAULT]
        return found[0] if found else None

    return park.park_id, devices, wait_until(fault_alert, timeout_s=30, what="the fault alert")


def _commerce(world: World, code: str) -> tuple[str, str]:
    commerce = world["commerce"]
    parent = ""
    federation_id = ""
    for level, division in (
        (commerce_pb2.FEDERATION_LEVEL_PROVINCE, "330000"),
        (commerce_pb2.FEDERATION_LEVEL_CITY, "331000"),
        (commerce_pb2.FEDERATION_LEVEL_COUNTY, "331004"),
    ):
        federation_id = commerce.call(
            "CreateFederation",
            commerce_pb2.CreateFederationRequest(
                request_id=f"e2e-federation-{division}",
                name=f"Federation {division}",
                level=level,
                division_code=division,
                parent_id=parent,
            ),
        ).federation.federation_id
        parent = federation_id
    chamber = commerce.call(
        "CreateChamber",
        commerce_pb2.CreateChamberRequest(
            request_id="e2e-chamber",
            federation_id=federation_id,
            name="Luqiao Machinery Chamber",
            kind=commerce_pb2.CHAMBER_KIND_TRADE,
            sector="MACHINERY",
            division_code="331004",
            join_rule=commerce_pb2.JOIN_RULE_AUTO_APPROVE_KNOWN,
        ),
    ).chamber
    membership = commerce.call(
        "ApplyForMembership",
        commerce_pb2.ApplyForMembershipRequest(
            request_id="e2e-join", chamber_id=chamber.chamber_id, credit_code=code, town=TOWN
        ),
    ).membership
    # Industry knows the enterprise: approved at once.
    assert membership.status == commerce_pb2.MEMBERSHIP_STATUS_ACTIVE, membership
    return chamber.chamber_id, membership.membership_id


def _school_site(world: World) -> tuple[str, str]:
    safety = world["safety"]
    site = safety.call(
        "RegisterSite",
        safety_pb2.RegisterSiteRequest(
            request_id="e2e-school",
            name="Luqiao Central Primary School",
            kind=safety_pb2.SITE_KIND_SCHOOL,
            address="1 School Road, Luqiao",
            division_code="331004",
            town=TOWN,
            location=SCHOOL_AT,
            duty_room=safety_pb2.DutyRoomContact(name="Gate duty room", phone="0576-8288 0000"),
        ),
    ).site
    button = safety.call(
        "RegisterSensor",
        safety_pb2.RegisterSensorRequest(
            request_id="e2e-button",
            site_id=site.site_id,
            kind=safety_pb2.SENSOR_KIND_PANIC_BUTTON,
            zone="gate",
        ),
    ).sensor
    return site.site_id, button.sensor_id


def _kitchen(world: World, site_id: str, code: str) -> tuple[str, str, str]:
    kitchen = world["kitchen"]
    registered = kitchen.call(
        "RegisterKitchen",
        kitchen_pb2.RegisterKitchenRequest(
            request_id="e2e-kitchen",
            site_id=site_id,
            name="Central Primary canteen",
            operator=kitchen_pb2.KitchenOperator(
                kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR,
                name="Taizhou Precision Moulds Co.",
                credit_code=code,
            ),
            meals_per_day=600,
            shifts=[kitchen_pb2.Shift(name="lunch", start_time="09:00", end_time="13:30")],
            commitment="Safe food for every pupil.",
        ),
        roles=("food_inspector",),
    ).kitchen
    fridge = kitchen.call(
        "RegisterEquipment",
        kitchen_pb2.RegisterEquipmentRequest(
            request_id="e2e-fridge",
            kitchen_id=registered.kitchen_id,
            kind=kitchen_pb2.EQUIPMENT_KIND_FRIDGE,
            name="Walk-in fridge",
        ),
    ).equipment
    # Above 8 °C for twenty minutes up to a minute ago: an alert after fifteen, not cleared.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=26)
    temperatures = [4.0] * 5 + [10.0] * 21
    readings = [
        kitchen_pb2.EquipmentReading(
            equipment_id=fridge.equipment_id,
            read_at=to_timestamp(start + timedelta(minutes=m)),
            temperature_c=c,
        )
        for m, c in enumerate(temperatures)
    ]
    reply = kitchen.call(
        "IngestReadings", kitchen_pb2.IngestReadingsRequest(request_id="e2e-readings", readings=readings)
    )
    assert (reply.accepted, list(reply.rejections)) == (len(readings), [])

    def cold_alert() -> str | None:
        alerts = kitchen.call(
            "ListKitchenAlerts",
            kitchen_pb2.ListKitchenAlertsRequest(
                kitchen_id=registered.kitchen_id, kinds=[kitchen_pb2.ALERT_KIND_COLD_CHAIN]
            ),
        ).alerts
        return alerts[0].alert_id if alerts else None

    return registered.kitchen_id, fridge.equipment_id, wait_until(cold_alert, timeout_s=30, what="cold chain")


def _application(world: World, code: str) -> str:
    filed = (
        world["govservice"]
        .call(
            "FileApplication",
            govservice_pb2.FileApplicationRequest(
                request_id="e2e-application",
                item_code="business_licence_change",
                filing_region="331004",
                handling_region="330782",
                enterprise=govservice_pb2.EnterpriseApplicant(credit_code=code),
                materials=[
                    "change_application_form",
                    "business_licence_original",
                    "shareholder_resolution",
                    "legal_representative_id",
                ],
            ),
        )
        .application
    )
    return str(filed.application_no)


@pytest.fixture(scope="module")
def e2e_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("e2e-keys"))


@pytest.fixture(scope="module")
def story(kafka_bootstrap: str, database_url: str, e2e_security: SecuritySettings) -> Iterator[Story]:
    began = datetime.now(UTC)
    with start_world(kafka_bootstrap, database_url, e2e_security, hub_overrides=HUB_OVERRIDES) as world:
        code = credit_code(int(time.time()) % 31**9)
        park_id, devices, fault_alert_id = _industry(world, code)
        chamber_id, membership_id = _commerce(world, code)
        site_id, button_id = _school_site(world)
        kitchen_id, fridge_id, cold_alert_id = _kitchen(world, site_id, code)
        application_no = _application(world, code)
        alarm = (
            world["safety"]
            .call(
                "RaiseAlarm",
                safety_pb2.RaiseAlarmRequest(request_id="e2e-press", site_id=site_id, sensor_id=button_id),
            )
            .alert
        )
        world.settle()
        yield Story(
            world,
            code,
            park_id,
            devices,
            fault_alert_id,
            chamber_id,
            membership_id,
            site_id,
            alarm.alert_id,
            kitchen_id,
            fridge_id,
            cold_alert_id,
            application_no,
            began,
        )


# --- helpers over the hub ---------------------------------------------------------------------------


def _view(story: Story, ref: common_pb2.EntityRef, *, detail: bool = False) -> H.GetEntity360Response:
    reply: H.GetEntity360Response = story.world.hub.call(
        "GetEntity360", H.GetEntity360Request(ref=ref, detail=detail)
    )
    return reply


def _parts(view: H.GetEntity360Response) -> dict[str, H.Part]:
    return {p.domain: p for p in view.parts}


def _items(story: Story) -> list[H.InboxItem]:
    found: list[H.InboxItem] = []
    token = ""
    while True:
        page = story.world.hub.call(
            "ListInboxItems",
            H.ListInboxItemsRequest(page=common_pb2.PageRequest(page_size=500, page_token=token)),
        )
        found.extend(page.items)
        token = page.page.next_page_token
        if not token:
            return found


def _item_of(story: Story, source_id: str) -> H.InboxItem:
    def find() -> H.InboxItem | None:
        matching = [i for i in _items(story) if i.source_id == source_id]
        return matching[0] if matching else None

    return wait_until(find, timeout_s=20, what=f"the inbox item of {source_id}")


def _check_known(part: H.Part, story: Story) -> None:
    assert part.status == KNOWN, part
    assert part.facts, part
    assert part.HasField("last_event_at"), part
    # The last event behind the part is one this test made, and the freshness is its age when served.
    at = part.last_event_at.ToDatetime(UTC)
    assert story.began - timedelta(hours=1) <= at <= datetime.now(UTC) + timedelta(seconds=5), part
    assert 0 <= part.freshness_seconds <= (datetime.now(UTC) - at).total_seconds() + 5, part


def _timeline(story: Story, ref: common_pb2.EntityRef) -> list[H.TimelineEntry]:
    entries: list[H.TimelineEntry] = []
    token = ""
    while True:
        page = story.world.hub.call(
            "GetTimeline",
            H.GetTimelineRequest(ref=ref, page=common_pb2.PageRequest(page_size=7, page_token=token)),
        )
        entries.extend(page.entries)
        token = page.page.next_page_token
        if not token:
            return entries


# --- the tests, in order ------------------------------------------------------------------------------


def test_every_part_is_present_in_both_360_views_linked_with_freshness(story: Story) -> None:
    enterprise = _view(story, _enterprise(story))
    assert enterprise.entity.ref.id == story.code
    assert enterprise.entity.name
    assert [p.domain for p in enterprise.parts] == ORDER
    parts = _parts(enterprise)
    for domain in ("industry", "kitchen", "commerce", "govservice"):
        _check_known(parts[domain], story)
    # Safety knows nothing of an enterprise, and says so.
    assert parts["safety"].status == NOTHING
    assert set(enterprise.entity.domains) >= {"industry", "kitchen", "commerce", "govservice"}
    links = {(link.to.kind, link.to.id) for link in enterprise.links}
    assert (E.ENTITY_KIND_PARK, story.park_id) in links
    assert (E.ENTITY_KIND_CHAMBER, story.chamber_id) in links
    assert (E.ENTITY_KIND_KITCHEN, story.kitchen_id) in links
    assert (E.ENTITY_KIND_APPLICATION, story.application_no) in links
    # Its two boxes and the fault of one of them, counted from industry's events; the fault is open.
    facts = {f.name: f.value for f in parts["industry"].facts}
    assert (facts.get("devices"), facts.get("open_device_alerts")) == ("2", "1"), facts
    assert enterprise.open_items >= 1

    school = _view(story, _school(story))
    assert [p.domain for p in school.parts] == ORDER
    school_parts = _parts(school)
    _check_known(school_parts["safety"], story)
    _check_known(school_parts["kitchen"], story)
    assert school.entity.town == TOWN
    assert (E.ENTITY_KIND_KITCHEN, story.kitchen_id) in {(lk.to.kind, lk.to.id) for lk in school.links}
    assert school.open_items >= 1

    # The kitchen links both ways: its school and its operator.
    kitchen = _view(story, common_pb2.EntityRef(kind=E.ENTITY_KIND_KITCHEN, id=story.kitchen_id))
    kitchen_links = {(lk.to.kind, lk.to.id) for lk in kitchen.links}
    assert {(E.ENTITY_KIND_SITE, story.site_id), (E.ENTITY_KIND_ENTERPRISE, story.code)} <= kitchen_links

    application = _view(story, common_pb2.EntityRef(kind=E.ENTITY_KIND_APPLICATION, id=story.application_no))
    _check_known(_parts(application)["govservice"], story)
    assert (E.ENTITY_KIND_ENTERPRISE, story.code) in {(lk.to.kind, lk.to.id) for lk in application.links}

    # With detail: every known part the owning domain has a read for also carries that domain's own
    # answer, fetched live; the others are served from the projections as they are.
    for ref, live in (
        (_enterprise(story), ("industry", "commerce")),
        (_school(story), ("safety", "kitchen")),
        (common_pb2.EntityRef(kind=E.ENTITY_KIND_KITCHEN, id=story.kitchen_id), ("kitchen",)),
        (common_pb2.EntityRef(kind=E.ENTITY_KIND_APPLICATION, id=story.application_no), ("govservice",)),
    ):
        plain = _parts(_view(story, ref))
        detailed = _parts(_view(story, ref, detail=True))
        assert list(detailed) == ORDER
        for domain, part in detailed.items():
            assert part.status == plain[domain].status, (ref, domain, part)
            assert list(part.facts) == list(plain[domain].facts), (ref, domain)
            assert part.HasField("detail") == (domain in live), (ref, domain, part)
            assert not part.problem, (ref, domain, part)
    assert story.world.dead_letters() == {}


def test_the_enterprise_timeline_merges_every_domain_in_time_order(story: Story) -> None:
    entries = _timeline(story, _enterprise(story))
    times = [(e.at.ToDatetime(UTC), e.event_id) for e in entries]
    assert times == sorted(times)
    assert len({e.event_id for e in entries}) == len(entries)
    domains = {e.domain for e in entries}
    assert domains >= {"industry", "kitchen", "commerce", "govservice"}
    kinds = {e.kind for e in entries}
    assert {
        "cityhub.industry.v1.EnterpriseOnboarded",
        "cityhub.industry.v1.DeviceAlertRaised",
        "cityhub.kitchen.v1.KitchenRegistered",
        "cityhub.commerce.v1.MembershipApproved",
        "cityhub.govservice.v1.ApplicationFiled",
    } <= kinds
    assert all(e.summary for e in entries)
    # Filtered by domain: only that domain's, in the same order.
    only = story.world.hub.call(
        "GetTimeline", H.GetTimelineRequest(ref=_enterprise(story), domains=["commerce"])
    ).entries
    assert [e.event_id for e in only] == [e.event_id for e in entries if e.domain == "commerce"]


def test_the_schools_cold_chain_and_safety_alerts_are_one_incident(story: Story) -> None:
    alarm = _item_of(story, story.alarm_alert_id)
    cold = _item_of(story, story.cold_alert_id)
    assert alarm.kind == H.ITEM_KIND_SAFETY_ALERT
    assert alarm.severity == E.SEVERITY_CRITICAL
    assert alarm.domain == "safety"
    assert (alarm.subject.kind, alarm.subject.id) == (E.ENTITY_KIND_SITE, story.site_id)
    assert cold.kind == H.ITEM_KIND_COLD_CHAIN
    assert cold.domain == "kitchen"
    assert (cold.subject.kind, cold.subject.id) == (E.ENTITY_KIND_KITCHEN, story.kitchen_id)

    def grouped() -> H.GetInboxItemResponse | None:
        reply: H.GetInboxItemResponse = story.world.hub.call(
            "GetInboxItem", H.GetInboxItemRequest(item_id=alarm.item_id)
        )
        return reply if reply.incident.incident_id else None

    reply = wait_until(grouped, timeout_s=20, what="the alarm's incident")
    incident = reply.incident
    assert {alarm.item_id, cold.item_id} <= set(incident.item_ids)
    assert incident.reasons
    assert _item_of(story, story.cold_alert_id).incident_id == incident.incident_id
    listed = story.world.hub.call("ListIncidents", H.ListIncidentsRequest()).incidents
    assert incident.incident_id in {i.incident_id for i in listed}
    assert any(story.kitchen_id in reason or "kitchen" in reason for reason in incident.reasons), incident
    # The enterprise operating the kitchen is linked to it too: its device fault, open in the same window,
    # joins the incident (the reason says why).
    fault = _item_of(story, story.fault_alert_id)
    assert fault.kind == H.ITEM_KIND_DEVICE_FAULT
    assert fault.domain == "industry"
    assert (fault.subject.kind, fault.subject.id) == (E.ENTITY_KIND_ENTERPRISE, story.code)


def test_the_dashboard_figures_equal_the_inputs(story: Story) -> None:
    today = datetime.now(ZONE).date().isoformat()
    reply = story.world.hub.call(
        "GetDashboard", H.GetDashboardRequest(granularity=H.GRANULARITY_DAY, date=today)
    )
    figures = {f.name: f.value for f in reply.figures}
    # What this test put in, through the domains: one enterprise with two boxes, one kitchen, one alarm,
    # one cold-chain alert, one member who joined today, one application filed today, nothing completed.
    # (Devices reporting, utilisation and OEE come from finished hours, which depend on the clock: left out.)
    expected = {
        "enterprises": 1,
        "devices_connected": 2,
        "warnings_raised": 1,
        "joint_responses": 0,
        "kitchens_equipped": 1,
        "morning_checks_failed": 0,
        "cold_chain_alerts": 1,
        "chamber_members": 1,
        "new_joins": 1,
        "applications_filed": 1,
        "applications_completed": 0,
        "applications_on_time": 0,
    }
    assert {name: figures.get(name) for name in expected} == expected, figures
    # Nothing happened yesterday: every change is the whole value.
    for figure in reply.figures:
        if figure.name in expected and figure.name not in {
            "enterprises",
            "devices_connected",
            "chamber_members",
        }:
            assert (figure.previous, figure.change) == (0, figure.value), figure
    town = story.world.hub.call(
        "GetDashboard", H.GetDashboardRequest(town=TOWN, granularity=H.GRANULARITY_DAY, date=today)
    )
    in_town = {f.name: f.value for f in town.figures}
    assert (in_town.get("warnings_raised"), in_town.get("cold_chain_alerts")) == (1, 1), in_town
    elsewhere = story.world.hub.call(
        "GetDashboard", H.GetDashboardRequest(town="Xinqiao Town", granularity=H.GRANULARITY_DAY, date=today)
    )
    assert {f.name: f.value for f in elsewhere.figures}.get("warnings_raised") == 0


def _escalations(story: Story, item_id: str) -> list[hub_events_pb2.InboxItemEscalated]:
    return [
        m
        for _t, key, m in story.world.hub_events()
        if isinstance(m, hub_events_pb2.InboxItemEscalated) and key == item_id
    ]


def test_an_unacknowledged_critical_item_escalates_then_stops_reminding_once_acknowledged(
    story: Story,
) -> None:
    item = _item_of(story, story.alarm_alert_id)

    def reminded() -> list[hub_events_pb2.InboxItemEscalated] | None:
        found = _escalations(story, item.item_id)
        return found if found and max(e.round for e in found) >= 2 else None

    rounds = wait_until(reminded, timeout_s=20, what="the escalation and a reminder")
    assert sorted(e.round for e in rounds)[:2] == [1, 2]
    escalated = _item_of(story, story.alarm_alert_id)
    assert escalated.escalated
    assert escalated.status == H.ITEM_STATUS_OPEN

    acknowledged = story.world.hub.call(
        "AcknowledgeInboxItem", H.AcknowledgeInboxItemRequest(item_id=item.item_id, note="on our way")
    ).item
    assert acknowledged.item_id == item.item_id
    # The one source of truth: safety has the acknowledgement, and the inbox follows safety's event.
    alert = (
        story.world["safety"]
        .call("GetAlert", safety_pb2.GetAlertRequest(alert_id=story.alarm_alert_id))
        .alert
    )
    assert alert.status == safety_pb2.ALERT_STATUS_ACKNOWLEDGED
    wait_until(
        lambda: _item_of(story, story.alarm_alert_id).status == H.ITEM_STATUS_ACKNOWLEDGED,
        timeout_s=20,
        what="the item acknowledged",
    )
    story.world.settle()
    after = len(_escalations(story, item.item_id))
    # No reminder for three reminder intervals (checked all along, not slept through).
    quiet_until = time.monotonic() + 3 * REMINDER_S
    while time.monotonic() < quiet_until:
        assert len(_escalations(story, item.item_id)) == after
        time.sleep(0.25)


def test_the_same_events_delivered_twice_change_nothing(story: Story) -> None:
    world = story.world
    world.settle()
    before = world.hub_tables()
    views = (_view(story, _enterprise(story)), _view(story, _school(story)))
    # Every domain's events, and the hub's own (acknowledgements, escalations, opened items), once more.
    topics = [world[name].events_topic for name in ORDER] + [world.hub.settings.hub_events_topic]
    delivered = sum(world.redeliver(topic) for topic in topics)
    assert delivered > 0
    world.settle()
    assert world.hub_tables() == before
    for old, ref in zip(views, (_enterprise(story), _school(story)), strict=True):
        new = _view(story, ref)
        for part in (*old.parts, *new.parts):
            part.freshness_seconds = 0
        assert new == old


def test_rebuild_compare_only_equals_the_live_views(story: Story) -> None:
    world = story.world
    world.settle()
    settings = world.hub.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_JWT")}
    env.update(
        SERVICE_NAME=settings.service_name,
        DATABASE_URL=world.database_url,
        KAFKA_BOOTSTRAP_SERVERS=world.kafka_bootstrap,
        HUB_EVENTS_TOPIC=settings.hub_events_topic,
        **{f"HUB_{d.upper()}_EVENTS_TOPIC": world[d].events_topic for d in ORDER},
        # The same knobs as the live hub: the projections read some of them (windows, distances).
        **{name.upper(): str(value) for name, value in HUB_OVERRIDES.items()},
    )
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "hub", "rebuild", "--compare-only", "--no-progress"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical to the live views, row for row" in result.stdout, result.stdout + result.stderr


def test_a_stopped_domain_is_marked_unavailable_and_the_rest_is_returned(story: Story) -> None:
    world = story.world
    world["kitchen"].stop()
    began = time.monotonic()
    parts = _parts(_view(story, _school(story), detail=True))
    took = time.monotonic() - began
    # The call as a whole does not fail, nor wait past the detail budget (plus the call's own work).
    assert took < HUB_OVERRIDES["hub_detail_timeout_s"] + 2.0
    assert parts["kitchen"].status == UNAVAILABLE
    assert parts["kitchen"].problem.startswith("kitchen"), parts["kitchen"]
    assert not parts["kitchen"].HasField("detail")
    # Its facts from the projections stay; the rest is returned with its detail.
    assert parts["kitchen"].facts
    _check_known(parts["safety"], story)
    assert parts["safety"].HasField("detail")
    enterprise = _parts(_view(story, _enterprise(story), detail=True))
    for domain in ("industry", "commerce"):
        _check_known(enterprise[domain], story)
        assert enterprise[domain].HasField("detail"), domain
    # Without detail nothing is asked of the domains: the projections answer for the kitchen as before.
    _check_known(_parts(_view(story, _school(story)))["kitchen"], story)
