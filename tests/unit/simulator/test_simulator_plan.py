"""The simulator's planner without sockets: the same seed gives the same district and the same story, a
different seed another; the district has the scenario's figures at scale 1; the reference incident is told
exactly once per run; every planned request is a well-formed message of its RPC."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf import json_format

from services.simulator.actions import Schedule
from services.simulator.district import build_district
from services.simulator.executor import SERVICES
from services.simulator.plan import INCIDENT, Action, Ref, digest, plan
from services.simulator.registrations import chamber_of
from services.simulator.stories import commerce as commerce_story
from services.simulator.stories import kitchen as kitchen_story

START = datetime(2026, 6, 30, 14, 0, tzinfo=UTC)
FIRST = 3000


def _plan(seed: int, *, scale: float = 1.0, minutes: float = 15, scenario: str = "district") -> list[Action]:
    return list(plan(seed, scale, START, timedelta(minutes=minutes), scenario=scenario))


@pytest.fixture(scope="module")
def district_plan() -> list[Action]:
    return _plan(14)


def test_the_same_seed_gives_the_same_actions_in_the_same_order(district_plan: list[Action]) -> None:
    again = _plan(14)
    assert [a.as_json() for a in again[:FIRST]] == [a.as_json() for a in district_plan[:FIRST]]
    assert digest(again) == digest(district_plan)
    # The same instant written in another zone is the same simulated clock.
    shanghai = list(plan(14, 1.0, START.astimezone(ZoneInfo("Asia/Shanghai")), timedelta(minutes=15)))
    assert digest(shanghai) == digest(district_plan)


def test_a_different_seed_gives_another_district_and_story(district_plan: list[Action]) -> None:
    other = _plan(15)
    assert digest(other) != digest(district_plan)
    codes = {a.request["credit_code"] for a in district_plan if a.rpc == "OnboardEnterprise"}
    other_codes = {a.request["credit_code"] for a in other if a.rpc == "OnboardEnterprise"}
    assert not codes & other_codes


def test_the_district_at_scale_one_has_the_scenarios_figures(district_plan: list[Action]) -> None:
    district = build_district(14, 1.0)
    assert len(district.enterprises) >= 500
    assert district.devices >= 7000
    assert len(district.kitchens) == 60
    calls = Counter(a.rpc for a in district_plan if a.family == "district")
    assert calls["OnboardEnterprise"] >= 500
    assert calls["RegisterDevice"] >= 7000
    assert calls["RegisterKitchen"] == 60
    assert calls["RegisterPark"] >= 10
    sites = [a.request for a in district_plan if a.rpc == "RegisterSite"]
    assert {s["kind"] for s in sites} == {"SITE_KIND_SCHOOL", "SITE_KIND_HOSPITAL"}
    # Every kitchen is a school's, registered in safety first.
    school_keys = {a.key for a in district_plan if a.rpc == "RegisterSite"}
    for action in district_plan:
        if action.rpc == "RegisterKitchen":
            assert action.request["site_id"].key in school_keys


def test_telemetry_is_batched_per_collection_box_once_a_simulated_minute(district_plan: list[Action]) -> None:
    district = build_district(14, 1.0)
    batches = [a for a in district_plan if a.rpc == "IngestTelemetry"]
    per_minute = Counter(a.at for a in batches)
    # One request per box (enterprise) and minute, less a box whose every machine is silent.
    assert len(per_minute) == 15
    assert all(len(district.enterprises) - 5 <= n <= len(district.enterprises) for n in per_minute.values())
    samples = sum(len(a.request["samples"]) for a in batches)
    assert samples >= 0.99 * 15 * district.devices
    assert max(len(a.request["samples"]) for a in batches) <= max(
        len(e.devices) for e in district.enterprises
    )


@pytest.mark.parametrize(("scale", "minutes"), [(1.0, 5), (1.0, 30), (0.05, 24 * 60), (0.02, 3 * 24 * 60)])
def test_the_reference_incident_is_told_exactly_once_per_run(scale: float, minutes: float) -> None:
    actions = list(plan(7, scale, START, timedelta(minutes=minutes)))
    bats = [
        a
        for a in actions
        if a.rpc == "ReportDetections"
        and any(d.get("label") == "baseball bat" for d in a.request["detections"])
    ]
    assert len(bats) == 1
    story = [a.rpc for a in actions if a.family == "incident"]
    assert story.count("DispatchUnits") == 1
    assert story.count("ResolveAlert") == 1
    assert story[-1] == "ResolveAlert"
    assert all(a.at <= START + timedelta(minutes=minutes) for a in actions)


def test_the_reference_incident_scenario_plays_only_that_story() -> None:
    actions = _plan(14, scenario=INCIDENT)
    assert {a.family for a in actions} == {"district", "incident"}
    assert [a.rpc for a in actions if a.family == "district"] == ["RegisterSite"] + ["RegisterSensor"] * 4
    detected = next(a for a in actions if a.key == "incident.detected")
    kinds = [d["kind"] for d in detected.request["detections"]]
    assert kinds == ["DETECTION_KIND_PERIMETER_BREACH", "DETECTION_KIND_WEAPON", "DETECTION_KIND_FACE_MATCH"]
    assert [u["kind"] for u in next(a for a in actions if a.rpc == "DispatchUnits").request["units"]] == [
        "UNIT_KIND_POLICE_STATION",
        "UNIT_KIND_PATROL_SWAT",
        "UNIT_KIND_POLICE_DRONE",
        "UNIT_KIND_PUBLIC_ORDER",
    ]


def _placeholders(value: Any) -> Any:
    if isinstance(value, Ref):
        return "placeholder"
    if isinstance(value, dict):
        return {k: _placeholders(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_placeholders(v) for v in value]
    return value


def test_every_planned_request_is_a_well_formed_message_with_unique_request_ids() -> None:
    actions = _plan(3, scale=0.03, minutes=2 * 24 * 60)
    seen: set[str] = set()
    keys: set[str] = set()
    telemetry = 0
    for action in actions:
        message = getattr(SERVICES[action.service][1], f"{action.rpc}Request")()
        telemetry += action.rpc == "IngestTelemetry"
        # Thousands of telemetry batches are alike: a hundred of them show their shape.
        if telemetry <= 100 or action.rpc != "IngestTelemetry":
            json_format.ParseDict(_placeholders(action.request), message)
        has_id = "request_id" in message.DESCRIPTOR.fields_by_name
        # A create carries its request id (replays store nothing twice); a step without one is marked so
        # the executor takes FAILED_PRECONDITION on a replay as done.
        assert has_id == ("request_id" in action.request) == (not action.step), action.rpc
        if has_id:
            assert action.request["request_id"] not in seen
            seen.add(action.request["request_id"])
        if action.key:
            assert action.key not in keys
            keys.add(action.key)
    families = Counter(a.family for a in actions)
    for family in ("telemetry", "orders", "safety", "kitchen", "commerce", "govservice", "incident"):
        assert families[family] > 0, family
    indexes = [a.index for a in actions]
    assert indexes == list(range(len(actions)))
    assert [a.at for a in actions[families["district"] :]] == sorted(
        a.at for a in actions[families["district"] :]
    )


def test_a_kitchens_morning_before_the_start_is_sent_with_its_registration(
    district_plan: list[Action],
) -> None:
    # START is 22:00 in the district: the kitchens' whole day happened before it.
    kitchens = [n for n, a in enumerate(district_plan) if a.rpc == "RegisterKitchen"]
    first, second = kitchens[0], kitchens[1]
    block = district_plan[first:second]
    checks = [a for a in block if a.rpc == "RecordMorningCheck"]
    assert len(checks) == 4
    # Each member's check right after the member joins the roster: a sweep between the two would bar the
    # member (NO_CHECK) and the late check would be refused.
    for check in checks:
        before = block[block.index(check) - 1]
        assert before.rpc == "AddStaff"
        assert before.key in check.needs
    assert all(c.request["checked_at"] < START.isoformat().replace("+00:00", "Z") for c in checks)
    assert all(c.request["request_id"].startswith("sim14-d1-20260630T140000-") for c in checks)
    assert {a.rpc for a in block} >= {"ReceiveDelivery", "RecordMeal", "RateMeal"}


def test_each_meal_is_rated_by_different_parents() -> None:
    # The kitchen takes one rating per parent and meal: a repeat is refused and counted a failure. A
    # month of the district's sixty kitchens is 1,800 lunches; with parents drawn with replacement from
    # 400 this seed repeated one several times.
    rng = random.Random(14)
    district = build_district(14, 1.0)
    raters: dict[str, list[str]] = {}
    for offset in range(30):
        day = date(2026, 6, 1) + timedelta(days=offset)
        for kitchen_ in district.kitchens:
            for draft in kitchen_story._kitchen_day(kitchen_, day, rng):
                if draft.rpc == "RateMeal":
                    meal = draft.request["meal_id"]
                    assert isinstance(meal, Ref)
                    raters.setdefault(meal.key, []).append(draft.request["rater_id"])
    assert len(raters) == 30 * len(district.kitchens)
    assert all(len(set(ids)) == len(ids) == 2 for ids in raters.values())


def test_only_a_chambers_own_members_sign_up_for_its_activities() -> None:
    # Commerce refuses a membership of another chamber than the activity's.
    district = build_district(14, 1.0)
    end = START + timedelta(days=14)
    schedule = Schedule(end)
    commerce_story.play(schedule, district, START, random.Random(14))
    chamber_of_activity: dict[str, str] = {}
    enterprises = {e.key: e for e in district.enterprises}
    signups = 0
    for draft in schedule.drain():
        if draft.rpc == "CreateActivity":
            chamber_of_activity[draft.key] = draft.request["chamber_id"].key
        elif draft.rpc == "SignUpForActivity":
            signups += 1
            member = enterprises[draft.request["membership_id"].key.removeprefix("member:")]
            assert chamber_of(district, member) == chamber_of_activity[draft.request["activity_id"].key]
    assert signups >= 20
