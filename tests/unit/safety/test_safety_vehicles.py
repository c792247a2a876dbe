"""Vehicles of concern (issue #9 part 3): a plate linked to a recorded person, and what a vehicle match of
it adds to the risk. The levels table of docs/services/safety.md is tested row by row, by the pure rules
and through the use cases at a school and at a hospital; then the vehicle register itself (sealed plates,
tokens, idempotency, status codes). No sockets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cityhub.safety.v1 import safety_pb2

from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from services.platform.identifiers import identity_check_char
from services.platform.paging import page_of
from services.platform.security.masking import cleared_categories, declared_sensitive_fields, mask
from services.platform.security.roles import Role
from services.platform.uow import FakeUnitOfWork
from services.safety import mapping
from services.safety.domain.access import Viewer
from services.safety.domain.commands import (
    RecordPerson,
    RecordPurchase,
    RecordVehicle,
    RegisterSensor,
    RegisterSite,
    RemoveVehicle,
    ReportDetections,
    ReportedDetection,
    normalise_plate,
)
from services.safety.domain.model import (
    Detection,
    DetectionKind,
    HazardousItem,
    RiskFlag,
    RiskLevel,
    SensorKind,
    SiteKind,
)
from services.safety.domain.risk import (
    BEHAVIOUR_WEIGHTS,
    VEHICLE_LINK_PERCENT,
    Observation,
    PersonProfile,
    PurchaseFact,
    assess,
)
from services.safety.grpc_api import POLICY
from services.safety.usecases import DetectionUseCases, PersonUseCases, SiteUseCases, VehicleUseCases
from services.safety.usecases.common import SafetyConfig, SafetyUnitOfWork
from services.safety.vault import PersonVault
from tests.unit.safety.fakes import FakeSafetyRepository

AT = datetime(2026, 3, 16, 10, 20, tzinfo=UTC)
PERSON = "p_0123456789abcdef0123456789abcdef"
CAR = "v_0123456789abcdef0123456789abcdef"
PLATE = "浙J·8K123"
OPERATOR = Viewer("gateway-1", all_sites=True)
CONFIG = SafetyConfig(
    risk_window=timedelta(minutes=10),
    dedup_window=timedelta(minutes=15),
    time_zone="Asia/Shanghai",
    alert_channel="cityhub_alerts_test",
)
PETROL = PurchaseFact(HazardousItem.LOOSE_PETROL, AT - timedelta(days=3, hours=2))


@dataclass(frozen=True)
class Row:
    """One row of the table in docs/services/safety.md ("Vehicle matches")."""

    name: str
    flags: tuple[RiskFlag, ...]
    petrol: bool
    face: bool
    vehicle: bool
    plate_on_record: bool
    score: int
    level: RiskLevel


# The reported person: psychiatric history, bought loose petrol three days ago (record: 25 + 30 = 55);
# the same person without the purchase (record: 25). Face match 10, vehicle match 15, a car alone brings
# the record in at 70 %, a face in full, both: the record once, in full.
TABLE = (
    Row("face only", (RiskFlag.PSYCHIATRIC_HISTORY,), True, True, False, True, 65, RiskLevel.HIGH),
    Row("vehicle only", (RiskFlag.PSYCHIATRIC_HISTORY,), True, False, True, True, 53, RiskLevel.HIGH),
    Row("face and vehicle", (RiskFlag.PSYCHIATRIC_HISTORY,), True, True, True, True, 80, RiskLevel.CRITICAL),
    Row(
        "face only, no purchase",
        (RiskFlag.PSYCHIATRIC_HISTORY,),
        False,
        True,
        False,
        True,
        35,
        RiskLevel.ELEVATED,
    ),
    Row(
        "vehicle only, no purchase",
        (RiskFlag.PSYCHIATRIC_HISTORY,),
        False,
        False,
        True,
        True,
        32,
        RiskLevel.ELEVATED,
    ),
    Row(
        "face and vehicle, no purchase",
        (RiskFlag.PSYCHIATRIC_HISTORY,),
        False,
        True,
        True,
        True,
        50,
        RiskLevel.HIGH,
    ),
    Row(
        "vehicle not on record", (RiskFlag.PSYCHIATRIC_HISTORY,), True, False, True, False, 15, RiskLevel.LOW
    ),
)


def _observations(row: Row) -> list[Observation]:
    seen = AT - timedelta(seconds=30)
    found = []
    if row.face:
        found.append(Observation(DetectionKind.FACE_MATCH, "main gate", seen, 0.92, person_token=PERSON))
    if row.vehicle:
        found.append(
            Observation(DetectionKind.VEHICLE_MATCH, "car park entrance", seen, 0.95, vehicle_token=CAR)
        )
    return found


def _profile(row: Row) -> dict[str, PersonProfile]:
    return {PERSON: PersonProfile(PERSON, frozenset(row.flags), (PETROL,) if row.petrol else ())}


@pytest.mark.parametrize("row", TABLE, ids=[row.name for row in TABLE])
def test_the_levels_table_by_the_rules(row: Row) -> None:
    owners = {CAR: PERSON} if row.plate_on_record else {}
    result = assess(_observations(row), _profile(row), AT, vehicle_owners=owners)
    assert (result.score, result.level) == (row.score, row.level)


def test_the_reported_case_names_the_car_not_the_person_and_brings_the_owner_in() -> None:
    result = assess(_observations(TABLE[1]), _profile(TABLE[1]), AT, vehicle_owners={CAR: PERSON})
    assert result.raises_alert
    assert result.reasons == (
        "vehicle of a person of concern at car park entrance",
        "psychiatric history",
        "bought loose petrol 3 days ago",
    )
    assert result.person_tokens == (PERSON,)
    assert result.flag_categories == (RiskFlag.PSYCHIATRIC_HISTORY,)
    assert result.detection_kinds == (DetectionKind.VEHICLE_MATCH,)


@pytest.mark.parametrize(
    "flags",
    [
        (RiskFlag.SUBSTANCE_ABUSE,),
        (RiskFlag.PSYCHIATRIC_HISTORY,),
        (RiskFlag.THREATS_MADE, RiskFlag.PRIOR_VIOLENCE),
        tuple(RiskFlag),
    ],
)
def test_a_car_brings_the_owners_record_in_below_a_face(flags: tuple[RiskFlag, ...]) -> None:
    profile = {PERSON: PersonProfile(PERSON, frozenset(flags), (PETROL,))}
    seen = AT - timedelta(seconds=30)
    face = assess(
        [Observation(DetectionKind.FACE_MATCH, "gate", seen, 0.9, person_token=PERSON)], profile, AT
    )
    car = assess(
        [Observation(DetectionKind.VEHICLE_MATCH, "gate", seen, 0.9, vehicle_token=CAR)],
        profile,
        AT,
        vehicle_owners={CAR: PERSON},
    )
    record_by_face = face.score - BEHAVIOUR_WEIGHTS[DetectionKind.FACE_MATCH]
    record_by_car = car.score - BEHAVIOUR_WEIGHTS[DetectionKind.VEHICLE_MATCH]
    assert record_by_car == record_by_face * VEHICLE_LINK_PERCENT // 100
    assert record_by_car < record_by_face
    assert car.reasons[1:] == face.reasons[1:]


def test_a_person_token_on_a_vehicle_match_links_the_person_like_a_recorded_plate() -> None:
    seen = AT - timedelta(seconds=30)
    by_gateway = Observation(DetectionKind.VEHICLE_MATCH, "car park entrance", seen, 0.9, person_token=PERSON)
    result = assess([by_gateway], _profile(TABLE[1]), AT)
    assert (result.score, result.level) == (TABLE[1].score, TABLE[1].level)
    assert result.person_tokens == (PERSON,)


def test_a_weak_plate_read_brings_nobody_in() -> None:
    seen = AT - timedelta(seconds=30)
    weak = Observation(DetectionKind.VEHICLE_MATCH, "car park entrance", seen, 0.6, vehicle_token=CAR)
    result = assess([weak], _profile(TABLE[1]), AT, vehicle_owners={CAR: PERSON})
    assert result.level is RiskLevel.LOW
    assert result.reasons == ("vehicle of concern at car park entrance",)
    assert result.person_tokens == ()


def test_a_plate_linked_to_someone_not_in_the_profiles_counts_as_an_unlinked_vehicle() -> None:
    result = assess(_observations(TABLE[1]), {}, AT, vehicle_owners={CAR: PERSON})
    assert result.reasons == ("vehicle of concern at car park entrance",)
    assert result.person_tokens == ()


# --- the same table through the use cases, at a school and at a hospital ----------------------------------


def made_up_identity(seed: int) -> str:
    first17 = f"33100419850317{seed % 1000:03d}"
    return first17 + identity_check_char(first17)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class World:
    def __init__(self) -> None:
        self.repo = FakeSafetyRepository()
        self.vault = PersonVault(secrets.token_bytes(32))
        self.uow: FakeUnitOfWork[FakeSafetyRepository] = FakeUnitOfWork(self.repo, fingerprint=self.vault.mac)
        uow: SafetyUnitOfWork = self.uow
        self.clock = Clock(AT)
        self.sites = SiteUseCases(uow, clock=self.clock)
        self.persons = PersonUseCases(uow, self.vault, clock=self.clock)
        self.vehicles = VehicleUseCases(uow, self.vault, clock=self.clock)
        self.detections = DetectionUseCases(uow, self.vault, CONFIG, clock=self.clock)

    def site(self, kind: SiteKind) -> tuple[str, str, str]:
        """A site of ``kind`` with a face-capture unit at its gate and a plate reader at its car park."""
        site = self.sites.register_site(
            RegisterSite(
                f"site-{kind.value}",
                f"Luqiao {kind.value}",
                kind,
                "1 Tongyu Road",
                "331004",
                "Luqiao Street",
                None,
                None,
                "Duty room",
                "0576-8288 1234",
            )
        )
        faces = self.sites.register_sensor(
            RegisterSensor("faces", site.site_id, SensorKind.FACE_CAPTURE, "main gate", "", "")
        )
        plates = self.sites.register_sensor(
            RegisterSensor(
                "plates", site.site_id, SensorKind.VEHICLE_RECOGNITION, "car park entrance", "", ""
            )
        )
        return site.site_id, faces.sensor_id, plates.sensor_id

    def person(self, flags: tuple[RiskFlag, ...], *, petrol: bool) -> str:
        token, _ = self.persons.record_person(
            RecordPerson("person-1", made_up_identity(417), "Wang Ermazi", flags)
        )
        if petrol:
            purchase = RecordPurchase(
                "petrol-1",
                token,
                HazardousItem.LOOSE_PETROL,
                "5 L into a plastic can",
                5.0,
                "L",
                AT - timedelta(days=3, hours=2),
                "Tongyu filling station",
            )
            self.persons.record_purchase(purchase)
        return token


@pytest.mark.parametrize("kind", [SiteKind.SCHOOL, SiteKind.HOSPITAL])
@pytest.mark.parametrize("row", TABLE, ids=[row.name for row in TABLE])
def test_the_levels_table_at_a_school_and_a_hospital(row: Row, kind: SiteKind) -> None:
    world = World()
    _, faces, plates = world.site(kind)
    person = world.person(row.flags, petrol=row.petrol)
    if row.plate_on_record:
        world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, person))
    seen = AT - timedelta(seconds=20)
    batch = []
    if row.face:
        batch.append(ReportedDetection(faces, DetectionKind.FACE_MATCH, seen, 0.92, person_token=person))
    if row.vehicle:
        # The reader prints the plate its own way: no separator, lower case.
        batch.append(ReportedDetection(plates, DetectionKind.VEHICLE_MATCH, seen, 0.95, plate="浙j8k123"))
    (assessed,) = world.detections.report_detections(
        ReportDetections("batch-1", tuple(batch)), OPERATOR
    ).assessments
    assert assessed.level is row.level
    assert bool(assessed.alert_id) is row.level.at_least(RiskLevel.HIGH)


def test_a_detection_keeps_the_plates_token_never_the_plate() -> None:
    world = World()
    _, _, plates = world.site(SiteKind.HOSPITAL)
    person = world.person((RiskFlag.PSYCHIATRIC_HISTORY,), petrol=True)
    vehicle, _ = world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, person))
    seen = AT - timedelta(seconds=20)
    detection = ReportedDetection(plates, DetectionKind.VEHICLE_MATCH, seen, 0.95, plate="浙J-8K123")
    result = world.detections.report_detections(ReportDetections("batch-1", (detection,)), OPERATOR)
    stored = world.repo.detections[result.detection_ids[0]]
    assert stored.vehicle_token == vehicle
    assert "8K123" not in repr(stored)
    assert not mapping.detection_pb(stored).plate
    (assessed,) = result.assessments
    alert = world.repo.alerts[assessed.alert_id]
    assert alert.person_tokens == (person,)
    assert all("8K123" not in reason for reason in alert.reasons)


def test_a_removed_vehicle_no_longer_brings_its_owner_in() -> None:
    world = World()
    _, _, plates = world.site(SiteKind.SCHOOL)
    person = world.person((RiskFlag.PSYCHIATRIC_HISTORY,), petrol=True)
    vehicle, _ = world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, person))
    assert world.vehicles.remove_vehicle(RemoveVehicle("remove-1", vehicle)) == (vehicle, person)
    seen = AT - timedelta(seconds=20)
    detection = ReportedDetection(plates, DetectionKind.VEHICLE_MATCH, seen, 0.95, plate=PLATE)
    (assessed,) = world.detections.report_detections(
        ReportDetections("batch-1", (detection,)), OPERATOR
    ).assessments
    assert assessed.level is RiskLevel.LOW
    assert assessed.reasons == ("vehicle of concern at car park entrance",)


# --- the register ---------------------------------------------------------------------------------------


def test_a_vehicle_is_sealed_found_by_any_spelling_of_its_plate_and_relinked() -> None:
    world = World()
    first = world.person((RiskFlag.PSYCHIATRIC_HISTORY,), petrol=False)
    second, _ = world.persons.record_person(RecordPerson("person-2", made_up_identity(418), "Li Si", ()))
    token, created = world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, first))
    assert created
    assert token.startswith("v_")
    assert b"8K123" not in world.repo.vehicles[token].sealed
    # A replay answers the same; another spelling of the plate is the same vehicle, linked anew.
    assert world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, first)) == (token, True)
    assert world.vehicles.record_vehicle(RecordVehicle("car-2", "浙j 8k123", second)) == (token, False)
    record = world.vehicles.get_vehicle(token)
    assert (record.plate, record.person_token) == ("浙J 8K123", second)
    assert "8K123" not in repr(record)
    listed, next_token = world.vehicles.list_vehicles(second, page_of(10, ""))
    assert ([v.vehicle_token for v in listed], next_token) == ([token], "")
    assert world.vehicles.list_vehicles(first, page_of(10, ""))[0] == []


def test_vehicles_page_with_the_platform_cursor() -> None:
    world = World()
    person = world.person((), petrol=False)
    tokens = [
        world.vehicles.record_vehicle(RecordVehicle(f"car-{n}", f"浙J·1000{n}", person))[0] for n in range(3)
    ]
    first, token = world.vehicles.list_vehicles(person, page_of(2, ""))
    rest, last = world.vehicles.list_vehicles(person, page_of(2, token))
    assert [v.vehicle_token for v in [*first, *rest]] == tokens
    assert last == ""


def test_the_register_refuses_what_it_cannot_link_and_answers_status_codes() -> None:
    world = World()
    unknown = "p_" + "0" * 32
    with pytest.raises(FailedPreconditionError, match="person_token: is not a recorded person"):
        world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, unknown))
    assert world.repo.vehicles == {}
    with pytest.raises(InvalidArgumentError) as refused:
        world.vehicles.record_vehicle(RecordVehicle("", "?", ""))
    assert {v.field for v in refused.value.violations} == {"request_id", "plate", "person_token"}
    with pytest.raises(NotFoundError):
        world.vehicles.get_vehicle("v_" + "1" * 32)
    with pytest.raises(NotFoundError):
        world.vehicles.list_vehicles(unknown, page_of(10, ""))
    with pytest.raises(NotFoundError):
        world.vehicles.remove_vehicle(RemoveVehicle("", "v_" + "1" * 32))


def test_removing_is_idempotent_by_request_id() -> None:
    world = World()
    person = world.person((), petrol=False)
    token, _ = world.vehicles.record_vehicle(RecordVehicle("car-1", PLATE, person))
    assert world.vehicles.remove_vehicle(RemoveVehicle("remove-1", token)) == (token, person)
    assert world.vehicles.remove_vehicle(RemoveVehicle("remove-1", token)) == (token, person)
    with pytest.raises(NotFoundError):
        world.vehicles.remove_vehicle(RemoveVehicle("", token))
    assert world.repo.vehicles == {}


@pytest.mark.parametrize("spelling", ["浙J·8K123", "浙j 8k123", "浙J-8K123", "浙Ｊ８Ｋ１２３", " 浙J8K123 "])
def test_every_spelling_of_a_plate_has_one_token(spelling: str) -> None:
    vault = PersonVault(secrets.token_bytes(32))
    assert normalise_plate(spelling) == "浙J8K123"
    assert vault.vehicle_token_for(spelling) == vault.vehicle_token_for(PLATE)
    assert vault.vehicle_token_for(PLATE) != vault.vehicle_token_for("浙J·8K124")
    # Its own key: a plate's token is never a person's token for the same text.
    assert vault.vehicle_token_for(PLATE)[2:] != vault.token_for(PLATE)[2:]


@pytest.mark.parametrize("plate", ["", "J", "浙J_8K123", "浙J8K123浙J8K123浙J8K", "<script>"])
def test_a_plate_that_is_no_plate_is_refused(plate: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        RecordVehicle("car-1", plate, PERSON).check()
    assert [v.field for v in refused.value.violations] == ["plate"]


def test_a_vehicle_command_never_shows_its_plate() -> None:
    assert "8K123" not in repr(RecordVehicle("car-1", PLATE, PERSON))
    assert "8K123" not in repr(Detection("d", "s", "x", "z", DetectionKind.VEHICLE_MATCH, AT, 0.9))


def test_the_plate_is_sensitive_masked_by_default_and_read_by_police_and_investigators_only() -> None:
    response = safety_pb2.GetVehicleOfConcernResponse(
        vehicle=safety_pb2.VehicleOfConcern(vehicle_token=CAR, plate=PLATE, person_token=PERSON)
    )
    assert declared_sensitive_fields(response.DESCRIPTOR) == {"vehicle.plate": "identity"}
    listing = safety_pb2.ListVehiclesOfConcernResponse.DESCRIPTOR
    assert declared_sensitive_fields(listing) == {"vehicles.plate": "identity"}
    # Alerts (what duty rooms, operators and gateways read) carry a vehicle token, nothing sensitive.
    assert declared_sensitive_fields(safety_pb2.Alert.DESCRIPTOR) == {}
    masked = mask(response, cleared_categories({Role.DISTRICT_OPERATOR, Role.SERVICE}))
    assert masked.masked == ("vehicle.plate",)
    assert not masked.message.vehicle.plate  # type: ignore[attr-defined]
    assert mask(response, cleared_categories({Role.POLICE})).shown == ("vehicle.plate",)
    for rpc in ("GetVehicleOfConcern", "ListVehiclesOfConcern", "RemoveVehicleOfConcern"):
        assert POLICY[rpc].allowed == {Role.POLICE.value, Role.SAFETY_INVESTIGATOR.value}
    assert POLICY["GetVehicleOfConcern"].subject is not None
    assert POLICY["ListVehiclesOfConcern"].subject is not None
