"""The entities family's pure rules: each event type's resolution (entities, links, concerns, summary,
part facts), visibility by scope, search ranking, distances, command checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cityhub.commerce.v1 import events_pb2 as commerce_events
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import events_pb2 as gov_events
from cityhub.govservice.v1 import govservice_pb2
from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.industry.v1 import industry_pb2, telemetry_pb2
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import events_pb2 as safety_events
from cityhub.safety.v1 import safety_pb2
from google.protobuf.message import Message

from services.hub.domain.entities import (
    INVERSE,
    DomainEvent,
    EntityKind,
    LinkChange,
    NameRank,
    NearCommand,
    SearchCommand,
    TimelineCommand,
    apply_part,
    bounding_box,
    facts_of,
    haversine_m,
    held,
    region_covers,
    resolve,
    search_score,
)
from services.hub.mapping.entities import domain_event
from services.platform.errors import InvalidArgumentError
from services.platform.kafka import EventEnvelope
from services.platform.protoconv import to_timestamp

AT = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
CREDIT = "91520000MA6DKQ7X2A"
E, S, K, P, R, C, A = (
    EntityKind.ENTERPRISE,
    EntityKind.SITE,
    EntityKind.KITCHEN,
    EntityKind.PARK,
    EntityKind.REGION,
    EntityKind.CHAMBER,
    EntityKind.APPLICATION,
)


def event(message: Message, *, event_id: str = "ev-1", at: datetime = AT) -> DomainEvent:
    envelope = EventEnvelope.for_message(
        message, topic="t", key="k", subject="s", source="/x", event_id=event_id, time=at
    )
    found = domain_event(envelope, message)
    assert found is not None
    return found


def facts(kind: EntityKind, message: Message, state: dict[str, Any] | None = None) -> dict[str, str]:
    e = event(message)
    return dict(facts_of(kind.value, e.domain, apply_part(kind, state or {}, e)))


# ---------------------------------------------------------------------------------------------------
# Resolution, per event type


def test_site_registered_makes_a_site_in_its_region() -> None:
    found = resolve(
        event(
            safety_events.SiteRegistered(
                site_id="S-1",
                name="No.1 School",
                kind=safety_pb2.SITE_KIND_SCHOOL,
                town="Dongcheng",
                division_code="522632",
                location=common_pb2.GeoPoint(latitude=26.5, longitude=107.5),
            )
        )
    )
    site = found.mentions[0]
    assert (site.kind, site.id, site.name, site.town, site.registers) == (
        S,
        "S-1",
        "No.1 School",
        "Dongcheng",
        True,
    )
    assert (site.latitude, site.longitude, site.name_rank) == (26.5, 107.5, NameRank.OWN)
    assert (R, "522632") in {(m.kind, m.id) for m in found.mentions}
    assert found.links == (LinkChange(S, "S-1", "in_region", R, "522632"),)
    assert found.concerns == ((S, "S-1"),)
    assert found.summary == "Site registered: name No.1 School, kind SCHOOL, town Dongcheng"
    assert (
        facts(S, safety_events.SiteRegistered(site_id="S-1", kind=safety_pb2.SITE_KIND_SCHOOL))["site_kind"]
        == "SCHOOL"
    )


def test_safety_alerts_open_and_close_on_the_site_without_personal_data() -> None:
    raised = safety_events.AlertRaised(
        alert_id="A-1",
        site_id="S-1",
        level=safety_pb2.RISK_LEVEL_HIGH,
        severity=common_pb2.SEVERITY_HIGH,
        person_tokens=["p_secret"],
        reasons=["x"],
    )
    found = resolve(event(raised))
    assert found.concerns == ((S, "S-1"),)
    assert "p_secret" not in found.summary
    state = apply_part(S, {}, event(raised))
    assert dict(facts_of("SITE", "safety", state))["open_alerts"] == "1"
    resolved = apply_part(
        S, state, event(safety_events.AlertResolved(alert_id="A-1", site_id="S-1", joint_response=True))
    )
    shown = dict(facts_of("SITE", "safety", resolved))
    assert (shown["open_alerts"], shown["joint_responses"], shown["alerts_raised"]) == ("0", "1", "1")


def test_safety_inspection_and_event_without_site_resolve() -> None:
    assert resolve(event(safety_events.InspectionRecorded(site_id="S-1", inspection_id="I-1"))).concerns == (
        (S, "S-1"),
    )
    assert resolve(event(safety_events.AlertRaised(alert_id="A-1"))).empty


def test_park_registered_is_known_by_its_id() -> None:
    found = resolve(event(industry_events.ParkRegistered(park_id="P-1", division_code="522632")))
    park = found.mentions[0]
    assert (park.kind, park.id, park.name, park.registers) == (P, "P-1", "P-1", True)
    assert found.links == (LinkChange(P, "P-1", "in_region", R, "522632"),)


def test_enterprise_onboarded_links_its_park_and_counts_there() -> None:
    found = resolve(
        event(
            industry_events.EnterpriseOnboarded(
                credit_code=CREDIT,
                sector=industry_pb2.SECTOR_MACHINERY,
                park_id="P-1",
                division_code="522632",
            )
        )
    )
    assert found.mentions[0].registers
    assert LinkChange(E, CREDIT, "in_park", P, "P-1") in found.links
    assert found.concerns == ((E, CREDIT), (P, "P-1"))
    onboarded = industry_events.EnterpriseOnboarded(
        credit_code=CREDIT, sector=industry_pb2.SECTOR_MACHINERY, park_id="P-1"
    )
    assert facts(E, onboarded)["sector"] == "MACHINERY"
    assert facts(P, onboarded)["enterprises"] == "1"


def test_devices_are_facts_of_their_enterprise_and_park() -> None:
    registered = industry_events.DeviceRegistered(device_id="D-1", credit_code=CREDIT, park_id="P-1")
    found = resolve(event(registered))
    assert found.concerns == ((E, CREDIT), (P, "P-1"))
    assert all(m.kind != EntityKind.DEVICE for m in found.mentions)
    state = apply_part(E, {}, event(registered))
    state = apply_part(E, state, event(industry_events.DeviceAlertRaised(alert_id="F-1", credit_code=CREDIT)))
    shown = dict(facts_of("ENTERPRISE", "industry", state))
    assert (shown["devices"], shown["open_device_alerts"]) == ("1", "1")
    cleared = apply_part(
        E, state, event(industry_events.DeviceAlertCleared(alert_id="F-1", credit_code=CREDIT))
    )
    assert dict(facts_of("ENTERPRISE", "industry", cleared))["open_device_alerts"] == "0"


def test_utilisation_keeps_the_latest_hour_whatever_the_order() -> None:
    def rolled(hour: int, oee: float) -> Message:
        return industry_events.UtilisationRolledUp(
            device_id="D-1",
            credit_code=CREDIT,
            hour_started_at=to_timestamp(datetime(2026, 11, 2, hour, tzinfo=UTC)),
            figures=industry_pb2.UtilisationFigures(oee=oee, availability=0.9),
        )

    late_first = apply_part(E, apply_part(E, {}, event(rolled(9, 0.7))), event(rolled(8, 0.5)))
    in_order = apply_part(E, apply_part(E, {}, event(rolled(8, 0.5))), event(rolled(9, 0.7)))
    assert late_first == in_order
    assert dict(facts_of("ENTERPRISE", "industry", in_order))["last_oee"] == "0.7"


def _fold(kind: EntityKind, events: list[DomainEvent]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for e in events:
        state = apply_part(kind, state, e)
    return state


def test_utilisation_of_one_hour_from_several_devices_is_the_same_in_any_order() -> None:
    hour = to_timestamp(datetime(2026, 11, 2, 9, tzinfo=UTC))
    summaries = [
        event(
            industry_events.UtilisationRolledUp(
                device_id=device,
                credit_code=CREDIT,
                hour_started_at=hour,
                figures=industry_pb2.UtilisationFigures(oee=oee, availability=oee),
            ),
            event_id=f"ev-{device}",
        )
        for device, oee in (("D-1", 0.5), ("D-2", 0.7), ("D-3", 0.6))
    ]
    forward, backward = _fold(E, summaries), _fold(E, summaries[::-1])
    assert forward == backward
    # The latest hour, then the greatest device id: D-3's figures.
    assert dict(facts_of("ENTERPRISE", "industry", forward))["last_oee"] == "0.6"


def test_last_values_fed_by_several_partitions_follow_the_event_times_not_the_arrival() -> None:
    def changed(device: str, state: telemetry_pb2.DeviceState.ValueType, minute: int) -> DomainEvent:
        message = industry_events.DeviceStateChanged(device_id=device, credit_code=CREDIT, state=state)
        return event(message, event_id=f"ev-{device}-{minute}", at=AT.replace(minute=minute))

    events = [
        changed("D-1", telemetry_pb2.DEVICE_STATE_RUNNING, 5),
        changed("D-2", telemetry_pb2.DEVICE_STATE_FAULT, 3),
    ]
    assert _fold(E, events) == _fold(E, events[::-1])
    assert _fold(E, events)["last_device_state"] == "RUNNING"
    alerts = [
        event(
            safety_events.AlertRaised(alert_id=a, site_id="S-1", level=level),
            event_id=f"ev-{a}",
            at=AT.replace(minute=minute),
        )
        for a, level, minute in (
            ("A-1", safety_pb2.RISK_LEVEL_HIGH, 9),
            ("A-2", safety_pb2.RISK_LEVEL_LOW, 2),
        )
    ]
    assert _fold(S, alerts) == _fold(S, alerts[::-1])
    assert _fold(S, alerts)["last_risk_level"] == "HIGH"


def test_kitchen_registered_links_site_and_operator_as_stubs() -> None:
    found = resolve(
        event(
            kitchen_events.KitchenRegistered(
                kitchen_id="K-1",
                site_id="S-1",
                name="Canteen",
                operator_kind=kitchen_pb2.OPERATOR_KIND_CONTRACTOR,
                operator_name="Good Food Co",
                operator_credit_code=CREDIT,
                town="Dongcheng",
                division_code="522632",
            )
        )
    )
    by_key = {(m.kind, m.id): m for m in found.mentions}
    assert by_key[(K, "K-1")].registers
    assert not by_key[(S, "S-1")].registers
    operator = by_key[(E, CREDIT)]
    assert (operator.name, operator.name_rank, operator.registers) == (
        "Good Food Co",
        NameRank.MENTION,
        False,
    )
    assert LinkChange(K, "K-1", "kitchen_of_site", S, "S-1") in found.links
    assert LinkChange(E, CREDIT, "operator_of_kitchen", K, "K-1") in found.links
    assert found.concerns == ((K, "K-1"), (S, "S-1"), (E, CREDIT))
    assert "Good Food Co" not in found.summary


def test_school_run_kitchen_has_no_operator_link() -> None:
    found = resolve(
        event(
            kitchen_events.KitchenRegistered(
                kitchen_id="K-2", site_id="S-1", operator_kind=kitchen_pb2.OPERATOR_KIND_SCHOOL_RUN
            )
        )
    )
    assert all(link.relation != "operator_of_kitchen" for link in found.links)


def test_kitchen_facts_count_meals_violations_and_cold_chain() -> None:
    state: dict[str, Any] = {}
    for message in (
        kitchen_events.MealServed(kitchen_id="K-1", meal_id="M-1", servings=300),
        kitchen_events.ViolationOpened(kitchen_id="K-1", violation_id="V-1"),
        kitchen_events.ColdChainAlertRaised(kitchen_id="K-1", alert_id="CC-1"),
        kitchen_events.InspectionRecorded(
            kitchen_id="K-1", inspection_id="I-1", result=kitchen_pb2.INSPECTION_RESULT_FAIL
        ),
    ):
        state = apply_part(K, state, event(message))
    shown = dict(facts_of("KITCHEN", "kitchen", state))
    assert shown["meals_served"] == "1"
    assert shown["servings"] == "300"
    assert shown["open_violations"] == "1"
    assert shown["open_cold_chain_alerts"] == "1"
    assert shown["last_inspection_result"] == "FAIL"
    verified = apply_part(
        K, state, event(kitchen_events.ViolationVerified(kitchen_id="K-1", violation_id="V-1"))
    )
    assert dict(facts_of("KITCHEN", "kitchen", verified))["open_violations"] == "0"


def test_morning_check_failed_summary_has_no_staff_token() -> None:
    found = resolve(
        event(kitchen_events.MorningCheckFailed(kitchen_id="K-1", check_id="MC-1", staff_token="s_tok"))
    )
    assert found.concerns == ((K, "K-1"),)
    assert "s_tok" not in found.summary


def test_chamber_created_and_membership_approved() -> None:
    created = resolve(event(commerce_events.ChamberCreated(chamber_id="CH-1", name="Machinery chamber")))
    assert (created.mentions[0].kind, created.mentions[0].name, created.mentions[0].registers) == (
        C,
        "Machinery chamber",
        True,
    )
    approved = commerce_events.MembershipApproved(
        membership_id="M-1", chamber_id="CH-1", credit_code=CREDIT, enterprise_name="Acme", town="Dongcheng"
    )
    found = resolve(event(approved))
    enterprise = found.mentions[0]
    assert (enterprise.name, enterprise.name_rank, enterprise.town) == (
        "Acme",
        NameRank.MEMBERSHIP,
        "Dongcheng",
    )
    assert found.links == (LinkChange(E, CREDIT, "member_of_chamber", C, "CH-1"),)
    assert found.concerns == ((E, CREDIT), (C, "CH-1"))
    assert facts(E, approved)["chambers"] == "1"
    assert facts(C, approved)["members"] == "1"


def test_membership_ended_removes_the_link() -> None:
    found = resolve(
        event(commerce_events.MembershipEnded(membership_id="M-1", chamber_id="CH-1", credit_code=CREDIT))
    )
    assert found.links == (LinkChange(E, CREDIT, "member_of_chamber", C, "CH-1", remove=True),)


def test_federations_resolve_to_nothing() -> None:
    assert resolve(event(commerce_events.FederationCreated(federation_id="F-1", name="x"))).empty


def test_enterprise_application_links_its_applicant() -> None:
    filed = gov_events.ApplicationFiled(
        application_no="AP-1",
        item_code="IT-1",
        filing_region="522632",
        handling_region="520102",
        applicant_kind=govservice_pb2.APPLICANT_KIND_ENTERPRISE,
        credit_code=CREDIT,
    )
    found = resolve(event(filed))
    assert LinkChange(E, CREDIT, "applicant_of", A, "AP-1") in found.links
    assert LinkChange(A, "AP-1", "filed_in", R, "522632") in found.links
    assert LinkChange(A, "AP-1", "handled_by", R, "520102") in found.links
    assert found.concerns == ((A, "AP-1"), (E, CREDIT))
    assert facts(E, filed)["applications_filed"] == "1"
    assert facts(A, filed)["status"] == "FILED"


def test_person_applicant_is_no_entity() -> None:
    found = resolve(
        event(
            gov_events.ApplicationFiled(
                application_no="AP-2",
                filing_region="522632",
                handling_region="522632",
                applicant_kind=govservice_pb2.APPLICANT_KIND_PERSON,
                applicant_token="a_tok",
            )
        )
    )
    assert {m.kind for m in found.mentions} == {A, R}
    assert all(link.relation != "applicant_of" for link in found.links)
    assert "a_tok" not in found.summary


def test_later_application_events_name_the_application_for_its_applicant() -> None:
    found = resolve(event(gov_events.ApplicationCompleted(application_no="AP-1", on_time=True)))
    assert found.concerns == ((A, "AP-1"),)
    assert found.application == "AP-1"
    state = apply_part(
        E, {"applications": ["AP-1"]}, event(gov_events.ApplicationCompleted(application_no="AP-1"))
    )
    assert dict(facts_of("ENTERPRISE", "govservice", state))["applications_completed"] == "1"


def test_forwarding_adds_the_handling_region() -> None:
    found = resolve(event(gov_events.ApplicationForwarded(application_no="AP-1", to_region="520103")))
    assert found.links == (LinkChange(A, "AP-1", "handled_by", R, "520103"),)


def test_every_relation_reads_from_the_other_end() -> None:
    for relation in (
        "kitchen_of_site",
        "operator_of_kitchen",
        "in_park",
        "member_of_chamber",
        "applicant_of",
    ):
        assert INVERSE[relation] != relation


def test_apply_part_leaves_its_input_alone() -> None:
    state: dict[str, Any] = {"devices": 1}
    apply_part(E, state, event(industry_events.DeviceRegistered(device_id="D-2", credit_code=CREDIT)))
    assert state == {"devices": 1}


# ---------------------------------------------------------------------------------------------------
# Visibility


@pytest.mark.parametrize(
    ("scope", "code", "covers"),
    [
        ("520000", "522632", True),
        ("522600", "522632", True),
        ("522632", "522632", True),
        ("522600", "520102", False),
        ("522632", "522633", False),
    ],
)
def test_regions_nest_like_gbt_2260(scope: str, code: str, covers: bool) -> None:
    assert region_covers(scope, code) is covers


def test_held_by_own_scope_and_applications_by_region() -> None:
    scopes = {"site": frozenset({"S-1"}), "region": frozenset({"520000"})}
    assert held(scopes, "SITE", "S-1")
    assert not held(scopes, "SITE", "S-2")
    assert not held(scopes, "KITCHEN", "S-1")
    assert held(scopes, "REGION", "522632")
    assert held(scopes, "APPLICATION", "AP-1", ["522632"])
    assert not held(scopes, "APPLICATION", "AP-1", ["110101"])
    assert not held(scopes, "PERSON", "x")


# ---------------------------------------------------------------------------------------------------
# Search and distance


def test_search_ranks_exact_id_then_prefix_then_substring() -> None:
    assert search_score("s-1", "S-1", "No.1 School") == 1.0
    assert search_score("no.1", "S-1", "No.1 School") == 0.8
    assert search_score("school", "S-1", "No.1 School") == 0.5
    assert search_score("9152", CREDIT, "Acme") == 0.8
    assert search_score("hospital", "S-1", "No.1 School") is None


def test_haversine_is_exact_for_known_distances() -> None:
    assert haversine_m(26.5, 107.5, 26.5, 107.5) == 0.0
    # One degree of latitude on the mean sphere: 111.195 km.
    assert haversine_m(26.0, 107.5, 27.0, 107.5) == pytest.approx(111_195.08, abs=0.1)
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(20_015_115.07, abs=1.0)


def test_bounding_box_contains_the_circle() -> None:
    lat, lon, radius = 26.5, 107.5, 1_000.0
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius)
    assert haversine_m(lat, lon, max_lat, lon) == pytest.approx(radius, rel=1e-6)
    assert haversine_m(lat, lon, lat, max_lon) >= radius * 0.999
    assert min_lat < lat < max_lat
    assert min_lon < lon < max_lon


# ---------------------------------------------------------------------------------------------------
# Commands


def fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def test_search_command_checks_every_field() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        SearchCommand("", (), "", 0, "", problems=(("kinds[0]", "must be a known entity kind"),)).check()
    assert fields(error) == {"query", "kinds[0]"}
    with pytest.raises(InvalidArgumentError) as error:
        SearchCommand("x" * 101, (), "", 0, "").check()
    assert fields(error) == {"query"}
    SearchCommand("school", ("SITE",), "Dongcheng", 10, "").check()


def test_near_command_checks_center_radius_and_limit() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        NearCommand(91.0, 181.0, 0.5, (), 501).check()
    assert fields(error) == {"center.latitude", "center.longitude", "radius_meters", "limit"}
    with pytest.raises(InvalidArgumentError) as error:
        NearCommand(0.0, 0.0, 60_000, (), 0, has_center=False).check()
    assert fields(error) == {"center", "radius_meters"}
    NearCommand(26.5, 107.5, 1_000, (), 0).check()


def test_timeline_command_checks_domains_and_period() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        TimelineCommand("SITE", "S-1", ("weather",), ("",), AT, AT, 0, "").check()
    assert fields(error) == {"domains[0]", "kinds[0]", "period.end_time"}
