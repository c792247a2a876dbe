"""The safety use cases on the platform's FakeUnitOfWork and an in-memory store: idempotent creates,
refusals that leave nothing behind, status codes, and the alert lifecycle. No sockets."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cityhub.safety.v1 import events_pb2

from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from services.platform.identifiers import identity_check_char
from services.platform.paging import page_of
from services.platform.uow import FakeUnitOfWork
from services.safety.domain.access import Viewer
from services.safety.domain.commands import (
    Acknowledge,
    Dispatch,
    RaiseAlarm,
    RecordPerson,
    RecordPurchase,
    RegisterSensor,
    RegisterSite,
    ReportDetections,
    ReportedDetection,
    Resolve,
    UnitInput,
    UpdateUnit,
)
from services.safety.domain.model import (
    AlertOutcome,
    AlertStatus,
    DetectionKind,
    HazardousItem,
    RiskFlag,
    RiskLevel,
    SensorKind,
    SiteKind,
    UnitKind,
    UnitStatus,
)
from services.safety.usecases import (
    AlertUseCases,
    DetectionUseCases,
    PersonUseCases,
    SiteUseCases,
)
from services.safety.usecases.common import SafetyConfig, SafetyUnitOfWork
from services.safety.vault import PersonVault
from tests.unit.safety.fakes import FakeSafetyRepository

START = datetime(2026, 3, 17, 8, 0, tzinfo=UTC)
OPERATOR = Viewer("operator-1", all_sites=True)
CONFIG = SafetyConfig(
    risk_window=timedelta(minutes=10),
    dedup_window=timedelta(minutes=15),
    time_zone="Asia/Shanghai",
    alert_channel="cityhub_alerts_test",
)


class Clock:
    """A clock that moves one second per reading, so every stamp is distinct and ordered."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class World:
    def __init__(self) -> None:
        self.repo = FakeSafetyRepository()
        self.vault = PersonVault(secrets.token_bytes(32))
        self.uow: FakeUnitOfWork[FakeSafetyRepository] = FakeUnitOfWork(self.repo, fingerprint=self.vault.mac)
        # The use cases see the fake through the same protocol the PostgreSQL unit of work satisfies.
        uow: SafetyUnitOfWork = self.uow
        self.clock = Clock()
        self.sites = SiteUseCases(uow, clock=self.clock)
        self.persons = PersonUseCases(uow, self.vault, clock=self.clock)
        self.detections = DetectionUseCases(uow, self.vault, CONFIG, clock=self.clock)
        self.alerts = AlertUseCases(uow, CONFIG, feed=None, clock=self.clock)


@pytest.fixture
def world() -> World:
    return World()


def register_site(request_id: str = "site-1", name: str = "Luqiao Central School") -> RegisterSite:
    return RegisterSite(
        request_id=request_id,
        name=name,
        kind=SiteKind.SCHOOL,
        address="18 Tongyu Road",
        division_code="331004",
        town="Luqiao Street",
        latitude=28.58,
        longitude=121.38,
        duty_room_name="Gate duty room",
        duty_room_phone="0576-8288 1234",
    )


def made_up_identity(seed: int) -> str:
    first17 = f"33100419850317{seed % 1000:03d}"
    return first17 + identity_check_char(first17)


def test_registering_a_site_publishes_one_event_and_a_replay_answers_the_same_site(world: World) -> None:
    site = world.sites.register_site(register_site())
    assert [e.site_id for e in world.uow.events_of(events_pb2.SiteRegistered)] == [site.site_id]
    assert world.uow.published[0].key == site.site_id

    again = world.sites.register_site(register_site())
    assert again == site
    assert len(world.uow.published) == 1
    assert list(world.repo.sites) == [site.site_id]


def test_a_request_id_reused_with_another_body_is_refused_and_nothing_is_stored(world: World) -> None:
    world.sites.register_site(register_site())
    with pytest.raises(InvalidArgumentError) as refused:
        world.sites.register_site(register_site(name="Another School"))
    assert [v.field for v in refused.value.violations] == ["request_id"]
    assert len(world.repo.sites) == 1
    assert len(world.uow.published) == 1
    assert world.uow.rollbacks == 1


def test_a_sensor_for_an_unknown_site_is_a_failed_precondition_and_stores_nothing(world: World) -> None:
    command = RegisterSensor("sensor-1", "site_missing", SensorKind.PANIC_BUTTON, "gate", "", "")
    with pytest.raises(FailedPreconditionError, match="site_id"):
        world.sites.register_sensor(command)
    assert world.repo.sensors == {}
    assert world.uow.published == []
    # The failed attempt claimed nothing either: the same id works once the site exists.
    site = world.sites.register_site(register_site())
    sensor = world.sites.register_sensor(replace(command, site_id=site.site_id))
    assert sensor.site_id == site.site_id


def test_a_purchase_by_an_unknown_person_is_a_failed_precondition(world: World) -> None:
    purchase = RecordPurchase(
        "buy-1",
        "p_" + "0" * 32,
        HazardousItem.LOOSE_PETROL,
        "",
        2.0,
        "L",
        START - timedelta(days=1),
        "pump 3",
    )
    with pytest.raises(FailedPreconditionError, match="person_token"):
        world.persons.record_purchase(purchase)
    assert world.repo.purchases == {}


def test_a_person_is_sealed_and_read_back_with_purchases(world: World) -> None:
    number = made_up_identity(7)
    token, created = world.persons.record_person(
        RecordPerson("person-1", number, "Wang Ermazi", (RiskFlag.PSYCHIATRIC_HISTORY,))
    )
    assert created
    assert number.encode() not in world.repo.persons[token].sealed
    world.persons.record_purchase(
        RecordPurchase(
            "buy-1",
            token,
            HazardousItem.LOOSE_PETROL,
            "jerrycan",
            2.0,
            "L",
            START - timedelta(days=1),
            "pump 3",
        )
    )
    person = world.persons.get_person(token)
    assert (person.identity_number, person.name) == (number, "Wang Ermazi")
    assert person.risk_flags == (RiskFlag.PSYCHIATRIC_HISTORY,)
    assert [p.item for p in person.purchases] == [HazardousItem.LOOSE_PETROL]
    assert world.persons.find_person(number) == token
    with pytest.raises(NotFoundError):
        world.persons.get_person("p_" + "1" * 32)


def test_sites_page_with_the_platform_cursor(world: World) -> None:
    ids = [world.sites.register_site(register_site(f"site-{n}", f"School {n}")).site_id for n in range(3)]
    first, token = world.sites.list_sites(OPERATOR, None, "", "", page_of(2, ""))
    assert [s.site_id for s in first] == ids[:2]
    rest, last = world.sites.list_sites(OPERATOR, None, "", "", page_of(2, token))
    assert [s.site_id for s in rest] == ids[2:]
    assert last == ""
    with pytest.raises(InvalidArgumentError) as refused:
        world.sites.list_sites(OPERATOR, None, "", "", page_of(2, "not-a-token"))
    assert [v.field for v in refused.value.violations] == ["page.page_token"]


def test_an_alarm_goes_through_its_lifecycle_and_cannot_be_resolved_twice(world: World) -> None:
    site = world.sites.register_site(register_site())
    button = world.sites.register_sensor(
        RegisterSensor("sensor-1", site.site_id, SensorKind.PANIC_BUTTON, "north gate", "", "")
    )
    alert, raised = world.alerts.raise_alarm(
        RaiseAlarm("press-1", site.site_id, button.sensor_id, None, "man with a knife"), OPERATOR
    )
    assert raised
    assert (alert.status, alert.level) == (AlertStatus.RAISED, RiskLevel.CRITICAL)
    assert world.uow.events_of(events_pb2.AlertRaised)[0].alert_id == alert.alert_id
    notified = [json.loads(payload) for _, payload in world.uow.notified]
    assert notified == [{"alert_id": alert.alert_id, "site_id": site.site_id, "change": "raised"}]

    # Resolving before anybody looked skips steps.
    with pytest.raises(FailedPreconditionError):
        world.alerts.resolve(Resolve("", alert.alert_id, AlertOutcome.RESOLVED, ""), OPERATOR)

    acknowledged = world.alerts.acknowledge(Acknowledge("", alert.alert_id, "seen"), OPERATOR)
    assert acknowledged.status is AlertStatus.ACKNOWLEDGED
    assert acknowledged.acknowledged_at is not None
    with pytest.raises(FailedPreconditionError):
        world.alerts.acknowledge(Acknowledge("", alert.alert_id, ""), OPERATOR)

    dispatched, unit_ids = world.alerts.dispatch(
        Dispatch("d-1", alert.alert_id, (UnitInput(UnitKind.POLICE_STATION, "car 1"),)), OPERATOR
    )
    assert dispatched.status is AlertStatus.DISPATCHED
    for step in (UnitStatus.EN_ROUTE, UnitStatus.ARRIVED):
        current = world.alerts.update_unit(UpdateUnit("", alert.alert_id, unit_ids[0], step), OPERATOR)
    assert current.status is AlertStatus.ON_SCENE

    published = len(world.uow.published)
    closed = world.alerts.resolve(Resolve("", alert.alert_id, AlertOutcome.RESOLVED, "arrested"), OPERATOR)
    assert closed.status is AlertStatus.RESOLVED
    assert closed.closed_at is not None
    assert closed.outcome is AlertOutcome.RESOLVED
    assert [e.alert_id for e in world.uow.events_of(events_pb2.AlertResolved)] == [alert.alert_id]
    assert len(world.uow.published) == published + 1

    with pytest.raises(FailedPreconditionError):
        world.alerts.resolve(Resolve("", alert.alert_id, AlertOutcome.RESOLVED, ""), OPERATOR)
    assert len(world.uow.published) == published + 1
    assert world.repo.alerts[alert.alert_id].status is AlertStatus.RESOLVED
    changes = [json.loads(payload)["change"] for _, payload in world.uow.notified]
    assert changes == [
        "raised",
        "acknowledged",
        "dispatched",
        "unit_status_changed",
        "unit_status_changed",
        "resolved",
    ]


def test_an_alarm_from_a_camera_is_a_failed_precondition_naming_the_sensor(world: World) -> None:
    site = world.sites.register_site(register_site())
    camera = world.sites.register_sensor(
        RegisterSensor("sensor-1", site.site_id, SensorKind.VIDEO_CHANNEL, "east fence", "", "")
    )
    with pytest.raises(FailedPreconditionError, match="sensor_id"):
        world.alerts.raise_alarm(RaiseAlarm("press-1", site.site_id, camera.sensor_id, None, ""), OPERATOR)
    assert world.repo.alerts == {}


def test_another_sites_duty_room_gets_not_found_for_an_alert(world: World) -> None:
    site = world.sites.register_site(register_site())
    button = world.sites.register_sensor(
        RegisterSensor("sensor-1", site.site_id, SensorKind.PANIC_BUTTON, "gate", "", "")
    )
    alert, _ = world.alerts.raise_alarm(
        RaiseAlarm("press-1", site.site_id, button.sensor_id, None, ""), OPERATOR
    )
    other = Viewer("duty-other", all_sites=False, site_ids=frozenset({"site_other"}))
    with pytest.raises(NotFoundError):
        world.alerts.get_alert(alert.alert_id, other)
    with pytest.raises(NotFoundError):
        world.alerts.acknowledge(Acknowledge("", alert.alert_id, ""), other)


def test_detections_raise_an_alert_and_a_replay_answers_the_first_assessment(world: World) -> None:
    site = world.sites.register_site(register_site())
    camera = world.sites.register_sensor(
        RegisterSensor("sensor-1", site.site_id, SensorKind.VIDEO_CHANNEL, "west gate", "", "")
    )
    at = START - timedelta(seconds=30)
    batch = ReportDetections(
        "batch-1",
        (
            ReportedDetection(camera.sensor_id, DetectionKind.PERIMETER_BREACH, at, 0.9),
            ReportedDetection(camera.sensor_id, DetectionKind.WEAPON, at, 0.9, label="machete"),
        ),
    )
    result = world.detections.report_detections(batch, OPERATOR)
    (assessed,) = result.assessments
    assert assessed.alert_raised
    assert assessed.level is RiskLevel.HIGH
    published = len(world.uow.published)
    assert world.detections.report_detections(batch, OPERATOR) == result
    assert len(world.uow.published) == published
    assert len(world.repo.detections) == 2

    unknown = ReportDetections(
        "batch-2", (ReportedDetection("sensor_missing", DetectionKind.LOITERING, at, 0.9),)
    )
    with pytest.raises(FailedPreconditionError, match=r"detections\[0\]\.sensor_id"):
        world.detections.report_detections(unknown, OPERATOR)
    assert len(world.repo.detections) == 2
