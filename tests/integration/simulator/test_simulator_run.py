"""The simulator against the five real domain services and the hub (in-process, each on a schema and topics
of its own, as tests/integration/hub/e2e_support.py wires them), over their public gRPC APIs only.

`--scenario reference-incident` tells the story: the critical alert with its reasons exists in safety, the
joint response closes it, and the hub's inbox shows it. A tiny run of the whole district creates what it
plans in every domain. Playing the same seed from the same start again answers every request and changes
nothing: no new event on any topic, no second alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2
from cityhub.industry.v1 import industry_pb2
from cityhub.kitchen.v1 import kitchen_pb2
from cityhub.safety.v1 import safety_pb2

from services.platform.security import SecuritySettings, TokenIssuer
from services.platform.security.settings import load_security_settings
from services.simulator.district import build_district
from services.simulator.executor import Executor, Outcome, Report
from services.simulator.plan import INCIDENT, LOCAL, plan
from tests.integration.hub.e2e_support import World, start_world
from tests.support import wait_until

pytestmark = pytest.mark.integration

SEED = 4242
TINY = 0.02


@pytest.fixture(scope="module")
def sim_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("sim-keys"))


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, database_url: str, sim_security: SecuritySettings) -> Iterator[World]:
    with start_world(kafka_bootstrap, database_url, sim_security) as running:
        yield running


def _simulate(world: World, *, scenario: str, start: datetime, duration: timedelta) -> Report:
    targets = {name: domain.runtime.address for name, domain in world.domains.items()}
    executor = Executor(targets, TokenIssuer.from_settings(world.security), speed=None, workers=4)
    return executor.run(plan(SEED, TINY, start, duration, scenario=scenario), start)


def _not_ok(report: Report) -> dict[tuple[str, str, str], int]:
    return {k: n for k, n in report.outcomes.items() if k[2] != Outcome.OK}


def _event_counts(world: World) -> dict[str, int]:
    return {name: len(world.records(domain.events_topic)) for name, domain in world.domains.items()}


def _inbox(world: World) -> list[hub_pb2.InboxItem]:
    reply = world.hub.call(
        "ListInboxItems", hub_pb2.ListInboxItemsRequest(page=common_pb2.PageRequest(page_size=500))
    )
    return list(reply.items)


def test_the_reference_incident_reaches_the_duty_room_and_the_hub_once(world: World) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    report = _simulate(world, scenario=INCIDENT, start=start, duration=timedelta(minutes=20))
    assert report.failures == []
    assert report.count(Outcome.OK) == report.planned

    assessment = report.answers["incident.detected"].assessments[0]  # type: ignore[attr-defined]
    assert assessment.level == safety_pb2.RISK_LEVEL_CRITICAL
    assert assessment.alert_raised
    for reason in ("perimeter breach at north wall", "carrying a baseball bat", "psychiatric history"):
        assert reason in assessment.reasons
    alert = world["safety"].call("GetAlert", safety_pb2.GetAlertRequest(alert_id=assessment.alert_id)).alert
    assert alert.status == safety_pb2.ALERT_STATUS_RESOLVED
    assert alert.joint_response
    assert len(alert.units) == 4
    assert alert.site_name == build_district(SEED, TINY).schools[0].name

    world.settle()
    items = [i for i in _inbox(world) if i.source_id == assessment.alert_id]
    assert len(items) == 1
    assert items[0].kind == hub_pb2.ITEM_KIND_SAFETY_ALERT
    assert items[0].severity == common_pb2.SEVERITY_CRITICAL

    # The same seed from the same start again: every request answered, nothing new anywhere.
    before = _event_counts(world)
    again = _simulate(world, scenario=INCIDENT, start=start, duration=timedelta(minutes=20))
    assert again.failures == []
    assert again.count(Outcome.OK) == again.planned
    assert again.answers["incident.detected"].assessments[0].alert_id == assessment.alert_id  # type: ignore[attr-defined]
    world.settle()
    assert _event_counts(world) == before
    alerts = world["safety"].call("ListAlerts", safety_pb2.ListAlertsRequest(site_id=alert.site_id)).alerts
    assert [a.alert_id for a in alerts] == [assessment.alert_id]


def test_a_tiny_district_run_creates_what_it_plans_and_a_replay_changes_nothing(world: World) -> None:
    # Yesterday from 06:50 in the district: the UV lamps, deliveries and morning checks of the kitchens'
    # day, the first telemetry minutes, orders, joins and applications, all in the past (event times more
    # than five minutes ahead are refused).
    yesterday = datetime.now(LOCAL).date() - timedelta(days=1)
    start = datetime.combine(yesterday, datetime.min.time(), LOCAL).replace(hour=6, minute=50).astimezone(UTC)
    duration = timedelta(minutes=75)
    report = _simulate(world, scenario="district", start=start, duration=duration)
    assert report.failures == []
    assert _not_ok(report) == {}
    assert report.count(Outcome.OK) == report.planned
    for rpc in (
        "IngestTelemetry",
        "CreateOrder",
        "ReportDetections",
        "RecordMorningCheck",
        "ReceiveDelivery",
        "IngestReadings",
        "ApplyForMembership",
        "FileApplication",
        "DispatchUnits",
    ):
        assert report.count(Outcome.OK, rpc) > 0, rpc

    district = build_district(SEED, TINY)
    enterprises = world["industry"].call(
        "ListEnterprises", industry_pb2.ListEnterprisesRequest(page=common_pb2.PageRequest(page_size=500))
    )
    assert {e.credit_code for e in enterprises.enterprises} >= {e.credit_code for e in district.enterprises}
    kitchens = world["kitchen"].call(
        "ListKitchens", kitchen_pb2.ListKitchensRequest(page=common_pb2.PageRequest(page_size=500))
    )
    assert {k.name for k in kitchens.kitchens} >= {k.name for k in district.kitchens}

    world.settle()
    school = district.schools[0].name
    found = wait_until(
        lambda: world.hub.call("SearchEntities", hub_pb2.SearchEntitiesRequest(query=school)).hits or None,
        timeout_s=20,
        what="the school in the hub's search",
    )
    assert any(hit.entity.name == school for hit in found)

    before = _event_counts(world)
    again = _simulate(world, scenario="district", start=start, duration=duration)
    assert again.failures == []
    assert again.count(Outcome.FAILED) == 0
    world.settle()
    assert _event_counts(world) == before
