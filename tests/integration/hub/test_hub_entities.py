"""The entities family over real gRPC, PostgreSQL and Kafka: domain events published as the domains' relays
write them → entities and links resolved across domains, the 360 views of an enterprise touching every
domain and of a school, the merged timeline, duplicates changing nothing, search, nearby, visibility, and
the live detail with domains down, slow or not configured."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from cityhub.commerce.v1 import events_pb2 as commerce_events
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import events_pb2 as gov_events
from cityhub.govservice.v1 import govservice_pb2, govservice_pb2_grpc
from cityhub.hub.v1 import hub_pb2, hub_pb2_grpc
from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.safety.v1 import safety_pb2
from google.protobuf.message import Message

from services.hub.bootstrap import PROJECTION_CONSUMER, build
from services.hub.domain.entities import haversine_m
from services.platform.kafka import EventEnvelope, ensure_topics, make_producer
from services.platform.security import SecuritySettings, TokenIssuer
from tests.integration.hub.conftest import hub_settings
from tests.integration.hub.hub_support import Hub
from tests.kafka_support import delete_topics
from tests.support import free_port, wait_until

CREDIT = "91520000MA6DKQ7X2A"
SITE, KITCHEN, PARK, CHAMBER, APP = "S-ent-1", "K-ent-1", "P-ent-1", "CH-ent-1", "AP-ent-1"
TOWN = "Dongcheng"
SCHOOL_AT = (26.5000, 107.5000)
# About 330 m north-east of the school.
KITCHEN_AT = (26.5021, 107.5023)
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
KIND = common_pb2


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def ref(kind: int, id_: str) -> common_pb2.EntityRef:
    return common_pb2.EntityRef(kind=kind, id=id_)  # type: ignore[arg-type]


# (message, key, minutes after BASE); the key is what the domain's relay would use.
SCENARIO: list[tuple[Message, str, int]] = [
    (
        safety_events.SiteRegistered(
            site_id=SITE,
            name="Dongcheng No.1 Primary School",
            kind=safety_pb2.SITE_KIND_SCHOOL,
            town=TOWN,
            division_code="522632",
            location=common_pb2.GeoPoint(latitude=SCHOOL_AT[0], longitude=SCHOOL_AT[1]),
        ),
        SITE,
        0,
    ),
    (industry_events.ParkRegistered(park_id=PARK, division_code="522632"), PARK, 1),
    (
        industry_events.EnterpriseOnboarded(
            credit_code=CREDIT, sector=industry_pb2.SECTOR_MACHINERY, park_id=PARK, division_code="522632"
        ),
        CREDIT,
        2,
    ),
    (industry_events.DeviceRegistered(device_id="D-1", credit_code=CREDIT, park_id=PARK), CREDIT, 3),
    (
        industry_events.DeviceAlertRaised(
            alert_id="F-1",
            device_id="D-1",
            credit_code=CREDIT,
            park_id=PARK,
            kind=industry_pb2.DEVICE_ALERT_KIND_FAULT,
        ),
        CREDIT,
        4,
    ),
    (
        kitchen_events.KitchenRegistered(
            kitchen_id=KITCHEN,
            site_id=SITE,
            name="No.1 Primary canteen",
            operator_kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR,
            operator_name="Acme Catering",
            operator_credit_code=CREDIT,
            town=TOWN,
            division_code="522632",
            location=common_pb2.GeoPoint(latitude=KITCHEN_AT[0], longitude=KITCHEN_AT[1]),
        ),
        KITCHEN,
        5,
    ),
    (
        commerce_events.ChamberCreated(chamber_id=CHAMBER, name="Machinery chamber", division_code="522632"),
        CHAMBER,
        6,
    ),
    (
        commerce_events.MembershipApproved(
            membership_id="M-1",
            chamber_id=CHAMBER,
            credit_code=CREDIT,
            enterprise_name="Acme Machinery Co",
            town=TOWN,
        ),
        CHAMBER,
        7,
    ),
    (
        gov_events.ApplicationFiled(
            application_no=APP,
            item_code="IT-1",
            filing_region="522632",
            handling_region="520102",
            applicant_kind=govservice_pb2.APPLICANT_KIND_ENTERPRISE,
            credit_code=CREDIT,
        ),
        APP,
        8,
    ),
    (
        safety_events.AlertRaised(
            alert_id="A-1", site_id=SITE, level=safety_pb2.RISK_LEVEL_HIGH, severity=common_pb2.SEVERITY_HIGH
        ),
        SITE,
        9,
    ),
    (
        kitchen_events.ColdChainAlertRaised(kitchen_id=KITCHEN, alert_id="CC-1", equipment_id="EQ-1"),
        KITCHEN,
        10,
    ),
]


def publish_all(hub: Hub, ids: list[str] | None = None) -> list[EventEnvelope]:
    sent = []
    for i, (message, key, minutes) in enumerate(SCENARIO):
        sent.append(
            hub.publish(message, key=key, subject=key, time=at(minutes), event_id=ids[i] if ids else None)
        )
    return sent


def wait_for(hub: Hub, sent: list[EventEnvelope]) -> None:
    """Wait until these very events are applied (a count would include the hub's own events)."""
    ids = [e.id for e in sent]
    schema = hub.settings.service_name

    def done() -> bool:
        with psycopg.connect(hub.database_url, autocommit=True) as conn:
            row = conn.execute(
                f'SELECT count(*) FROM "{schema}".processed_events'
                " WHERE consumer = %s AND event_id = ANY(%s)",
                (PROJECTION_CONSUMER, ids),
            ).fetchone()
        return bool(row and row[0] == len(set(ids)))

    wait_until(done, timeout_s=30, what=f"{len(ids)} events applied")


@pytest.fixture(scope="module")
def scenario(hub: Hub) -> list[EventEnvelope]:
    sent = publish_all(hub)
    wait_for(hub, sent)
    return sent


def view(hub: Hub, kind: int, id_: str, **kw: Any) -> hub_pb2.GetEntity360Response:
    response: hub_pb2.GetEntity360Response = hub.call(
        "GetEntity360", hub_pb2.GetEntity360Request(ref=ref(kind, id_)), **kw
    )
    return response


def parts(response: hub_pb2.GetEntity360Response) -> dict[str, tuple[int, dict[str, str]]]:
    return {p.domain: (p.status, {f.name: f.value for f in p.facts}) for p in response.parts}


def links(response: hub_pb2.GetEntity360Response) -> set[tuple[int, str, str]]:
    return {(link.to.kind, link.to.id, link.relation) for link in response.links}


def test_enterprise_360_has_every_domain(hub: Hub, scenario: list[EventEnvelope]) -> None:
    del scenario
    response = view(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT)
    entity = response.entity
    # Named by commerce's membership (stronger than the kitchen's mention), town from it too.
    assert (entity.name, entity.town, entity.ref.domain) == ("Acme Machinery Co", TOWN, "industry")
    assert list(entity.domains) == ["industry", "kitchen", "commerce", "govservice"]
    assert entity.first_seen_at.ToDatetime(tzinfo=UTC) == at(2)
    assert [p.domain for p in response.parts] == ["safety", "industry", "kitchen", "commerce", "govservice"]
    found = parts(response)
    assert found["safety"][0] == hub_pb2.PART_STATUS_NOTHING_KNOWN
    assert found["industry"][0] == hub_pb2.PART_STATUS_KNOWN
    assert found["industry"][1]["devices"] == "1"
    assert found["industry"][1]["open_device_alerts"] == "1"
    assert found["industry"][1]["sector"] == "MACHINERY"
    assert found["kitchen"][1] == {"kitchens": KITCHEN}
    assert found["commerce"][1]["chambers"] == "1"
    assert found["commerce"][1]["membership_status"] == f"{CHAMBER}: APPROVED"
    assert found["govservice"][1]["applications_filed"] == "1"
    assert links(response) >= {
        (KIND.ENTITY_KIND_PARK, PARK, "in_park"),
        (KIND.ENTITY_KIND_KITCHEN, KITCHEN, "operator_of_kitchen"),
        (KIND.ENTITY_KIND_CHAMBER, CHAMBER, "member_of_chamber"),
        (KIND.ENTITY_KIND_APPLICATION, APP, "applicant_of"),
        (KIND.ENTITY_KIND_REGION, "522632", "in_region"),
    }
    names = {link.to.id: link.to_name for link in response.links}
    assert names[CHAMBER] == "Machinery chamber"
    assert names[KITCHEN] == "No.1 Primary canteen"
    # Freshness: the age of the last event behind each part when served.
    industry = next(p for p in response.parts if p.domain == "industry")
    assert industry.last_event_at.ToDatetime(tzinfo=UTC) == at(4)
    expected = (datetime.now(UTC) - at(4)).total_seconds()
    assert abs(industry.freshness_seconds - expected) < 30
    safety = next(p for p in response.parts if p.domain == "safety")
    assert not safety.HasField("last_event_at")


def test_school_360_and_links_both_ways(hub: Hub, scenario: list[EventEnvelope]) -> None:
    del scenario
    response = view(hub, KIND.ENTITY_KIND_SITE, SITE)
    assert response.entity.name == "Dongcheng No.1 Primary School"
    assert (response.entity.location.latitude, response.entity.location.longitude) == SCHOOL_AT
    found = parts(response)
    assert found["safety"][0] == hub_pb2.PART_STATUS_KNOWN
    assert found["safety"][1]["open_alerts"] == "1"
    assert found["safety"][1]["site_kind"] == "SCHOOL"
    assert found["kitchen"] == (hub_pb2.PART_STATUS_KNOWN, {"kitchens": KITCHEN})
    for domain in ("industry", "commerce", "govservice"):
        assert found[domain][0] == hub_pb2.PART_STATUS_NOTHING_KNOWN
    assert (KIND.ENTITY_KIND_KITCHEN, KITCHEN, "site_of_kitchen") in links(response)

    kitchen = view(hub, KIND.ENTITY_KIND_KITCHEN, KITCHEN)
    assert links(kitchen) >= {
        (KIND.ENTITY_KIND_SITE, SITE, "kitchen_of_site"),
        (KIND.ENTITY_KIND_ENTERPRISE, CREDIT, "kitchen_operated_by"),
    }
    kitchen_facts = parts(kitchen)["kitchen"][1]
    assert kitchen_facts["open_cold_chain_alerts"] == "1"
    assert kitchen_facts["operator_kind"] == "CONTRACTOR"

    park = view(hub, KIND.ENTITY_KIND_PARK, PARK)
    assert (KIND.ENTITY_KIND_ENTERPRISE, CREDIT, "park_of_enterprise") in links(park)
    assert parts(park)["industry"][1] == {"enterprises": "1", "devices": "1"}
    chamber = view(hub, KIND.ENTITY_KIND_CHAMBER, CHAMBER)
    assert (KIND.ENTITY_KIND_ENTERPRISE, CREDIT, "chamber_has_member") in links(chamber)
    application = view(hub, KIND.ENTITY_KIND_APPLICATION, APP)
    assert parts(application)["govservice"][1]["status"] == "FILED"
    assert links(application) >= {
        (KIND.ENTITY_KIND_ENTERPRISE, CREDIT, "application_by"),
        (KIND.ENTITY_KIND_REGION, "522632", "filed_in"),
        (KIND.ENTITY_KIND_REGION, "520102", "handled_by"),
    }


def test_unknown_entity_is_not_found(hub: Hub, scenario: list[EventEnvelope]) -> None:
    del scenario
    with pytest.raises(grpc.RpcError) as error:
        view(hub, KIND.ENTITY_KIND_SITE, "S-nobody")
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        hub.call("GetEntity360", hub_pb2.GetEntity360Request(ref=common_pb2.EntityRef(id="x")))
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def timeline(hub: Hub, kind: int, id_: str, **kw: Any) -> list[tuple[datetime, str, str, str]]:
    request = hub_pb2.GetTimelineRequest(ref=ref(kind, id_), **kw)
    response = hub.call("GetTimeline", request)
    return [(e.at.ToDatetime(tzinfo=UTC), e.domain, e.kind, e.event_id) for e in response.entries]


def test_timeline_merges_every_domain_in_time_order(hub: Hub, scenario: list[EventEnvelope]) -> None:
    entries = timeline(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT)
    by_index = {e.id: i for i, e in enumerate(scenario)}
    assert [by_index[e[3]] for e in entries] == [2, 3, 4, 5, 7, 8]
    assert [e[1] for e in entries] == [
        "industry",
        "industry",
        "industry",
        "kitchen",
        "commerce",
        "govservice",
    ]
    assert entries[3][2] == "cityhub.kitchen.v1.KitchenRegistered"
    school = timeline(hub, KIND.ENTITY_KIND_SITE, SITE)
    assert [by_index[e[3]] for e in school] == [0, 5, 9]
    # Filters and paging.
    assert [e[1] for e in timeline(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT, domains=["industry"])] == [
        "industry"
    ] * 3
    kinds = ["cityhub.commerce.v1.MembershipApproved"]
    assert len(timeline(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT, kinds=kinds)) == 1
    period = common_pb2.TimeRange()
    period.start_time.FromDatetime(at(3))
    period.end_time.FromDatetime(at(5))
    assert [by_index[e[3]] for e in timeline(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT, period=period)] == [
        3,
        4,
    ]
    first = hub.call(
        "GetTimeline",
        hub_pb2.GetTimelineRequest(
            ref=ref(KIND.ENTITY_KIND_ENTERPRISE, CREDIT), page=common_pb2.PageRequest(page_size=4)
        ),
    )
    second = hub.call(
        "GetTimeline",
        hub_pb2.GetTimelineRequest(
            ref=ref(KIND.ENTITY_KIND_ENTERPRISE, CREDIT),
            page=common_pb2.PageRequest(page_size=4, page_token=first.page.next_page_token),
        ),
    )
    assert [e.event_id for e in [*first.entries, *second.entries]] == [e[3] for e in entries]
    assert second.page.next_page_token == ""
    summary = next(e for e in first.entries if e.kind.endswith("DeviceAlertRaised")).summary
    assert summary.startswith("Device alert raised: alert id F-1")


def snapshot(hub: Hub) -> list[Any]:
    views: list[Any] = []
    for kind, id_ in (
        (KIND.ENTITY_KIND_ENTERPRISE, CREDIT),
        (KIND.ENTITY_KIND_SITE, SITE),
        (KIND.ENTITY_KIND_KITCHEN, KITCHEN),
        (KIND.ENTITY_KIND_PARK, PARK),
        (KIND.ENTITY_KIND_CHAMBER, CHAMBER),
        (KIND.ENTITY_KIND_APPLICATION, APP),
    ):
        response = view(hub, kind, id_)
        for part in response.parts:
            part.freshness_seconds = 0
        views.append(response)
        views.append(timeline(hub, kind, id_))
    return views


# Events that resolve to no entity, put after each duplicate on its key (so its partition): when they
# are applied, the duplicates before them have been seen.
_SENTINELS: dict[str, Message] = {
    "safety": safety_events.AlertAcknowledged(),
    "industry": industry_events.DeviceStateChanged(),
    "kitchen": kitchen_events.StaffAdded(),
    "commerce": commerce_events.FederationCreated(federation_id="F-sentinel", name="x"),
    "govservice": gov_events.ApplicationReceived(),
}


def test_duplicates_change_nothing(hub: Hub, scenario: list[EventEnvelope]) -> None:
    before = snapshot(hub)
    publish_all(hub, [e.id for e in scenario])
    sentinels = []
    for message, key, _ in SCENARIO:
        domain = message.DESCRIPTOR.full_name.split(".")[1]
        sentinels.append(hub.publish(_SENTINELS[domain], key=key, subject=key, time=at(11)))
    wait_for(hub, sentinels)
    assert snapshot(hub) == before


def search(hub: Hub, query: str, **kw: Any) -> list[tuple[str, float]]:
    response = hub.call("SearchEntities", hub_pb2.SearchEntitiesRequest(query=query, **kw))
    return [(h.entity.ref.id, h.score) for h in response.hits]


def test_search_ranks_exact_prefix_substring(hub: Hub, scenario: list[EventEnvelope]) -> None:
    del scenario
    assert search(hub, CREDIT.lower()) == [(CREDIT, 1.0)]
    assert search(hub, "acme") == [(CREDIT, 0.8)]
    assert search(hub, "no.1 primary") == [(KITCHEN, 0.8), (SITE, 0.5)]
    assert search(hub, "primary", kinds=[KIND.ENTITY_KIND_SITE]) == [(SITE, 0.5)]
    assert search(hub, "primary", town="Elsewhere") == []
    assert search(hub, "machinery") == [(CHAMBER, 0.8), (CREDIT, 0.5)]
    # Paging by (score desc, name, id).
    first = hub.call(
        "SearchEntities",
        hub_pb2.SearchEntitiesRequest(query="no.1", page=common_pb2.PageRequest(page_size=1)),
    )
    second = hub.call(
        "SearchEntities",
        hub_pb2.SearchEntitiesRequest(
            query="no.1", page=common_pb2.PageRequest(page_size=1, page_token=first.page.next_page_token)
        ),
    )
    assert [h.entity.ref.id for h in [*first.hits, *second.hits]] == [KITCHEN, SITE]
    with pytest.raises(grpc.RpcError) as error:
        search(hub, "")
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_near_is_exact_and_nearest_first(hub: Hub, scenario: list[EventEnvelope]) -> None:
    del scenario
    center = common_pb2.GeoPoint(latitude=SCHOOL_AT[0], longitude=SCHOOL_AT[1])
    response = hub.call(
        "ListEntitiesNear", hub_pb2.ListEntitiesNearRequest(center=center, radius_meters=1000)
    )
    found = [(n.entity.ref.id, n.distance_meters) for n in response.entities]
    assert found == [(SITE, 0.0), (KITCHEN, pytest.approx(haversine_m(*SCHOOL_AT, *KITCHEN_AT), abs=1e-6))]
    assert 300 < found[1][1] < 340
    small = hub.call("ListEntitiesNear", hub_pb2.ListEntitiesNearRequest(center=center, radius_meters=300))
    assert [n.entity.ref.id for n in small.entities] == [SITE]
    kitchens = hub.call(
        "ListEntitiesNear",
        hub_pb2.ListEntitiesNearRequest(center=center, radius_meters=1000, kinds=[KIND.ENTITY_KIND_KITCHEN]),
    )
    assert [n.entity.ref.id for n in kitchens.entities] == [KITCHEN]
    with pytest.raises(grpc.RpcError) as error:
        hub.call("ListEntitiesNear", hub_pb2.ListEntitiesNearRequest(center=center, radius_meters=60_000))
    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_visibility_is_the_scope_and_one_link(hub: Hub, scenario: list[EventEnvelope]) -> None:
    del scenario
    duty = {"roles": ("duty_room",), "scopes": (f"site:{SITE}",)}
    assert view(hub, KIND.ENTITY_KIND_SITE, SITE, **duty).entity.ref.id == SITE
    # A site's duty room sees its school's kitchen, not the kitchen's operator (two links away).
    assert view(hub, KIND.ENTITY_KIND_KITCHEN, KITCHEN, **duty).entity.ref.id == KITCHEN
    with pytest.raises(grpc.RpcError) as error:
        view(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT, **duty)
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    kitchen_manager = {"roles": ("kitchen_manager",), "scopes": (f"kitchen:{KITCHEN}",)}
    assert view(hub, KIND.ENTITY_KIND_SITE, SITE, **kitchen_manager).entity.ref.id == SITE
    staff = {"roles": ("chamber_staff",), "scopes": (f"chamber:{CHAMBER}",)}
    assert view(hub, KIND.ENTITY_KIND_ENTERPRISE, CREDIT, **staff).entity.ref.id == CREDIT
    clerk = {"roles": ("gov_clerk",), "scopes": ("region:520000",)}
    assert view(hub, KIND.ENTITY_KIND_APPLICATION, APP, **clerk).entity.ref.id == APP
    # A region's clerk sees its applications, not every school in the county.
    with pytest.raises(grpc.RpcError) as error:
        view(hub, KIND.ENTITY_KIND_SITE, SITE, **clerk)
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    response = hub.call("SearchEntities", hub_pb2.SearchEntitiesRequest(query="no.1"), **duty)
    assert {h.entity.ref.id for h in response.hits} == {SITE, KITCHEN}
    response = hub.call("SearchEntities", hub_pb2.SearchEntitiesRequest(query="acme"), **duty)
    assert list(response.hits) == []
    with pytest.raises(grpc.RpcError) as error:
        hub.call(
            "GetTimeline", hub_pb2.GetTimelineRequest(ref=ref(KIND.ENTITY_KIND_ENTERPRISE, CREDIT)), **duty
        )
    assert error.value.code() is grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------------------------------------------
# Live detail with the domains down, slow, answering or not configured


class SlowIndustry(industry_pb2_grpc.IndustryServiceServicer):
    def GetEnterprise(  # noqa: N802
        self, request: industry_pb2.GetEnterpriseRequest, context: grpc.ServicerContext
    ) -> industry_pb2.GetEnterpriseResponse:
        del context
        time.sleep(5)
        return industry_pb2.GetEnterpriseResponse(
            enterprise=industry_pb2.Enterprise(credit_code=request.credit_code)
        )


class QuickGovservice(govservice_pb2_grpc.CrossRegionServiceServicer):
    def GetApplication(  # noqa: N802
        self, request: govservice_pb2.GetApplicationRequest, context: grpc.ServicerContext
    ) -> govservice_pb2.GetApplicationResponse:
        del context
        return govservice_pb2.GetApplicationResponse(
            application=govservice_pb2.Application(application_no=request.application_no, item_code="IT-1")
        )


@pytest.fixture(scope="module")
def detail_hub(kafka_bootstrap: str, database_url: str, hub_security: SecuritySettings) -> Iterator[Hub]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    industry_pb2_grpc.add_IndustryServiceServicer_to_server(SlowIndustry(), server)  # type: ignore[abstract]
    govservice_pb2_grpc.add_CrossRegionServiceServicer_to_server(QuickGovservice(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    suffix = secrets.token_hex(4)
    settings = hub_settings(
        kafka_bootstrap,
        database_url,
        suffix,
        safety_grpc_address=f"127.0.0.1:{free_port()}",
        kitchen_grpc_address=f"127.0.0.1:{free_port()}",
        industry_grpc_address=f"127.0.0.1:{port}",
        govservice_grpc_address=f"127.0.0.1:{port}",
        hub_detail_timeout_s=1.0,
    )
    topics = [*settings.domain_topics, settings.hub_events_topic]
    ensure_topics(kafka_bootstrap, topics, partitions=3, replication=1)
    runtime = build(settings, configure_logs=False, security=hub_security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    producer = make_producer(kafka_bootstrap)
    try:
        yield Hub(
            runtime,
            settings,
            hub_pb2_grpc.HubServiceStub(channel),
            TokenIssuer.from_settings(hub_security),
            kafka_bootstrap,
            database_url,
            producer,
        )
    finally:
        producer.close(timeout=5)
        channel.close()
        runtime.close()
        server.stop(0)
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])


def test_detail_marks_unavailable_domains_and_answers_the_rest(detail_hub: Hub) -> None:
    hub = detail_hub
    wait_for(hub, publish_all(hub))

    started = time.monotonic()
    response = hub.call(
        "GetEntity360", hub_pb2.GetEntity360Request(ref=ref(KIND.ENTITY_KIND_ENTERPRISE, CREDIT), detail=True)
    )
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    by_domain = {p.domain: p for p in response.parts}
    # industry is slow: no answer within the detail timeout.
    assert by_domain["industry"].status == hub_pb2.PART_STATUS_UNAVAILABLE
    assert by_domain["industry"].problem.startswith("industry:")
    assert {f.name: f.value for f in by_domain["industry"].facts}["devices"] == "1"
    # commerce is not configured.
    assert by_domain["commerce"].status == hub_pb2.PART_STATUS_UNAVAILABLE
    assert by_domain["commerce"].problem == "commerce: not configured"
    # kitchen and govservice have no live read for an enterprise; safety knows nothing about it.
    assert by_domain["kitchen"].status == hub_pb2.PART_STATUS_KNOWN
    assert by_domain["govservice"].status == hub_pb2.PART_STATUS_KNOWN
    assert by_domain["safety"].status == hub_pb2.PART_STATUS_NOTHING_KNOWN

    started = time.monotonic()
    school = hub.call(
        "GetEntity360", hub_pb2.GetEntity360Request(ref=ref(KIND.ENTITY_KIND_SITE, SITE), detail=True)
    )
    assert time.monotonic() - started < 3.0
    school_parts = {p.domain: p for p in school.parts}
    for domain in ("safety", "kitchen"):  # nothing listens there
        assert school_parts[domain].status == hub_pb2.PART_STATUS_UNAVAILABLE
        assert school_parts[domain].problem.startswith(f"{domain}:")
    assert school_parts["industry"].status == hub_pb2.PART_STATUS_NOTHING_KNOWN

    application = hub.call(
        "GetEntity360", hub_pb2.GetEntity360Request(ref=ref(KIND.ENTITY_KIND_APPLICATION, APP), detail=True)
    )
    gov = next(p for p in application.parts if p.domain == "govservice")
    assert gov.status == hub_pb2.PART_STATUS_KNOWN
    answer = govservice_pb2.GetApplicationResponse()
    assert gov.detail.Unpack(answer)
    assert answer.application.application_no == APP
