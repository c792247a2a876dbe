"""Issue #9 part 3, the reported case over a real gRPC channel with real PostgreSQL and Kafka.

A hospital's vehicle-recognition unit at the car park entrance reads the plate of a car recorded as the
vehicle of a person on record with a psychiatric history, who bought loose petrol three days ago. Before,
the match came out low with no alert; now it is high (docs/services/safety.md, "Vehicle matches": 15 for the
car, plus 70 % of the owner's 55) and raises an alert naming the car, the flag and the purchase. The plate
itself is never stored in clear, returned with an alert or published: only police and investigators read
it, with a purpose, and every read is audited.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from cityhub.safety.v1 import events_pb2, safety_pb2

from services.platform.security import MASKED_FIELDS_TRAILER
from tests.integration.safety.safety_support import OPERATOR, POLICE, PURPOSE, SERVICE, Safety, now, ts

pytestmark = pytest.mark.integration

PLATE = "浙J·8K123"
REASONS = [
    "vehicle of a person of concern at car park entrance",
    "psychiatric history",
    "bought loose petrol 3 days ago",
]


def test_a_hospital_vehicle_match_of_a_flagged_persons_car_raises_an_alert(safety: Safety) -> None:  # noqa: PLR0915
    hospital = safety.register_site("Luqiao People's Hospital", kind=safety_pb2.SITE_KIND_HOSPITAL)
    reader = safety.register_sensor(
        hospital.site_id, safety_pb2.SENSOR_KIND_VEHICLE_RECOGNITION, "car park entrance", "ANPR 1"
    )
    person = safety.record_person(733, [safety_pb2.RISK_FLAG_PSYCHIATRIC_HISTORY], name="Zhao Liu")
    safety.call(
        "RecordHazardousPurchase",
        safety_pb2.RecordHazardousPurchaseRequest(
            request_id="petrol-733",
            person_token=person,
            item=safety_pb2.HAZARDOUS_ITEM_LOOSE_PETROL,
            description="5 L into a plastic can",
            quantity=5.0,
            unit="L",
            purchased_at=ts(now() - timedelta(days=3, hours=2)),
            place="Luqiao Tongyu filling station",
        ),
        roles=SERVICE,
    )

    # --- police record the car; a replay and another spelling of the plate are the same vehicle ----------
    record = safety_pb2.RecordVehicleOfConcernRequest(request_id="car-733", plate=PLATE, person_token=person)
    recorded = safety.call("RecordVehicleOfConcern", record, roles=POLICE)
    assert recorded.created
    vehicle = recorded.vehicle_token
    assert vehicle.startswith("v_")
    assert safety.call("RecordVehicleOfConcern", record, roles=POLICE) == recorded
    respelt = safety.call(
        "RecordVehicleOfConcern",
        safety_pb2.RecordVehicleOfConcernRequest(
            request_id="car-733b", plate="浙j 8k123", person_token=person
        ),
        roles=POLICE,
    )
    assert (respelt.vehicle_token, respelt.created) == (vehicle, False)

    # --- the reported case: the plate reader alone -> an alert at the level the table gives -------------
    report = safety.report(
        safety.detection(
            reader.sensor_id, safety_pb2.DETECTION_KIND_VEHICLE_MATCH, confidence=0.95, plate="浙J8K123"
        )
    )
    (assessment,) = report.assessments
    assert assessment.level == safety_pb2.RISK_LEVEL_HIGH
    assert assessment.alert_raised
    assert list(assessment.reasons) == REASONS
    alert_id = assessment.alert_id

    shown = safety.call(
        "GetAlert", safety_pb2.GetAlertRequest(alert_id=alert_id), **safety.duty_room(hospital.site_id)
    )
    assert shown.alert.level == safety_pb2.RISK_LEVEL_HIGH
    assert list(shown.alert.person_tokens) == [person]
    (detection,) = shown.alert.detections
    assert detection.vehicle_token == vehicle
    assert not detection.plate
    assert b"8K123" not in shown.SerializeToString()

    # --- nothing stores or publishes the plate -----------------------------------------------------------
    assert safety.sql("SELECT vehicle_token FROM detections WHERE site_id = %s", (hospital.site_id,)) == [
        (vehicle,)
    ]
    assert not safety.sql(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = 'detections'"
        " AND column_name = 'plate'",
        (safety.settings.service_name,),
    )
    ((sealed,),) = safety.sql("SELECT sealed FROM vehicles_of_concern WHERE vehicle_token = %s", (vehicle,))
    assert b"8K123" not in bytes(sealed)
    events = safety.wait_for_events(
        {hospital.site_id, alert_id},
        lambda found: any(t == "cityhub.safety.v1.AlertRaised" for t, _ in found),
        what="the hospital's alert",
    )
    assessed = next(m for t, m in events if t == "cityhub.safety.v1.RiskAssessed")
    assert isinstance(assessed, events_pb2.RiskAssessed)
    assert list(assessed.person_tokens) == [person]
    assert list(assessed.flag_categories) == [safety_pb2.RISK_FLAG_PSYCHIATRIC_HISTORY]
    assert list(assessed.reasons) == REASONS
    for payload in safety.raw_event_payloads():
        assert b"8K123" not in payload
        assert b"8k123" not in payload

    # --- the plate behind the token: police and investigators, with a purpose, audited -------------------
    response, call = safety.stub.GetVehicleOfConcern.with_call(
        safety_pb2.GetVehicleOfConcernRequest(vehicle_token=vehicle),
        metadata=safety.metadata(POLICE, purpose=PURPOSE, sub="officer-9"),
        timeout=30,
    )
    assert (response.vehicle.plate, response.vehicle.person_token) == ("浙J 8K123", person)
    assert not any(key == MASKED_FIELDS_TRAILER for key, _ in call.trailing_metadata() or ())
    audited = safety.sql("SELECT actor, fields FROM audit_log WHERE subject = %s", (vehicle,))
    assert audited == [("officer-9", ["vehicle.plate"])]
    listed = safety.call(
        "ListVehiclesOfConcern",
        safety_pb2.ListVehiclesOfConcernRequest(person_token=person),
        roles=("safety_investigator",),
        purpose=PURPOSE,
        sub="investigator-2",
    )
    assert [(v.vehicle_token, v.plate) for v in listed.vehicles] == [(vehicle, "浙J 8K123")]
    assert safety.sql("SELECT actor FROM audit_log WHERE subject = %s", (person,)) == [("investigator-2",)]

    no_purpose = safety.refused(
        "GetVehicleOfConcern", safety_pb2.GetVehicleOfConcernRequest(vehicle_token=vehicle), roles=POLICE
    )
    assert no_purpose.code() == grpc.StatusCode.PERMISSION_DENIED
    duty_room = safety.duty_room(hospital.site_id)
    refusals = [
        (
            "GetVehicleOfConcern",
            safety_pb2.GetVehicleOfConcernRequest(vehicle_token=vehicle),
            {"roles": OPERATOR},
        ),
        (
            "GetVehicleOfConcern",
            safety_pb2.GetVehicleOfConcernRequest(vehicle_token=vehicle),
            {"roles": SERVICE},
        ),
        ("GetVehicleOfConcern", safety_pb2.GetVehicleOfConcernRequest(vehicle_token=vehicle), duty_room),
        ("ListVehiclesOfConcern", safety_pb2.ListVehiclesOfConcernRequest(person_token=person), duty_room),
        ("RecordVehicleOfConcern", record, {"roles": OPERATOR}),
        ("RecordVehicleOfConcern", record, duty_room),
        (
            "RemoveVehicleOfConcern",
            safety_pb2.RemoveVehicleOfConcernRequest(vehicle_token=vehicle),
            {"roles": SERVICE},
        ),
    ]
    for rpc, request, caller in refusals:
        denied = safety.refused(rpc, request, purpose=PURPOSE, **caller)
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED, (rpc, caller)

    # --- refusals name the field; removal is idempotent by request id ------------------------------------
    bad = safety.refused(
        "RecordVehicleOfConcern",
        safety_pb2.RecordVehicleOfConcernRequest(request_id="car-bad", plate="?", person_token=person),
        roles=POLICE,
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "plate" in (bad.details() or "")
    unknown = safety.refused(
        "RecordVehicleOfConcern",
        safety_pb2.RecordVehicleOfConcernRequest(
            request_id="car-x", plate="浙J·00001", person_token="p_" + "0" * 32
        ),
        roles=POLICE,
    )
    assert unknown.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "person_token" in (unknown.details() or "")

    remove = safety_pb2.RemoveVehicleOfConcernRequest(request_id="remove-733", vehicle_token=vehicle)
    removed = safety.call("RemoveVehicleOfConcern", remove, roles=POLICE)
    assert (removed.vehicle_token, removed.person_token) == (vehicle, person)
    assert safety.call("RemoveVehicleOfConcern", remove, roles=POLICE) == removed
    gone = safety.refused(
        "GetVehicleOfConcern",
        safety_pb2.GetVehicleOfConcernRequest(vehicle_token=vehicle),
        roles=POLICE,
        purpose=PURPOSE,
    )
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    assert safety.sql("SELECT count(*) FROM vehicles_of_concern") == [(0,)]
