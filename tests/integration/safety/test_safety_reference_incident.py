"""The reference incident end to end, over a real gRPC channel with real PostgreSQL and Kafka.

A primary school near dismissal time: a person climbs the north wall carrying a baseball bat. The camera
and face-capture unit report it; the person is on record with a psychiatric history and bought loose
petrol three days earlier. The duty room sees a critical alert on its stream at once, the guard presses
the one-click alarm, the duty room acknowledges, the command centre dispatches four units, they arrive,
and police resolve it as a joint response. Another school's duty room sees none of it.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import events_pb2, safety_pb2

from services.platform.security import MASKED_FIELDS_TRAILER
from tests.integration.safety.safety_support import (
    OPERATOR,
    POLICE,
    PURPOSE,
    SERVICE,
    Safety,
    made_up_identity,
    now,
    ts,
)

pytestmark = pytest.mark.integration

REASONS = (
    "perimeter breach at north wall",
    "carrying a baseball bat",
    "psychiatric history",
    "bought loose petrol 3 days ago",
)
UNITS = [
    (safety_pb2.UNIT_KIND_POLICE_STATION, "Luqiao police station car 3"),
    (safety_pb2.UNIT_KIND_PATROL_SWAT, "Patrol/SWAT team 2"),
    (safety_pb2.UNIT_KIND_POLICE_DRONE, "Drone 1"),
    (safety_pb2.UNIT_KIND_PUBLIC_ORDER, "Public-order squad 5"),
]


def test_the_reference_incident_from_detection_to_joint_response(safety: Safety) -> None:  # noqa: PLR0915
    started = now()
    school = safety.register_site("Luqiao No. 1 Primary School")
    other = safety.register_site("Luqiao No. 2 Primary School")
    camera = safety.register_sensor(
        school.site_id, safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "north wall", "NW cam 2"
    )
    faces = safety.register_sensor(school.site_id, safety_pb2.SENSOR_KIND_FACE_CAPTURE, "north wall")
    button = safety.register_sensor(school.site_id, safety_pb2.SENSOR_KIND_PANIC_BUTTON, "main gate")
    safety.register_sensor(other.site_id, safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "south gate")

    # Police hold the person on record; a filling station's feed reported the loose petrol.
    identity = made_up_identity(417)
    person = safety.record_person(417, [safety_pb2.RISK_FLAG_PSYCHIATRIC_HISTORY], name="Wang Ermazi")
    safety.call(
        "RecordHazardousPurchase",
        safety_pb2.RecordHazardousPurchaseRequest(
            request_id="petrol-417",
            person_token=person,
            item=safety_pb2.HAZARDOUS_ITEM_LOOSE_PETROL,
            description="5 L into a plastic can",
            quantity=5.0,
            unit="L",
            purchased_at=ts(started - timedelta(days=3, hours=2)),
            place="Luqiao Tongyu filling station",
        ),
        roles=SERVICE,
    )

    own_room = safety.watch(**safety.duty_room(school.site_id))
    other_room = safety.watch(**safety.duty_room(other.site_id))
    command_centre = safety.watch(OPERATOR)
    try:
        # --- detection -> a critical alert on the duty room's stream ------------------------------
        report = safety.report(
            safety.detection(camera.sensor_id, safety_pb2.DETECTION_KIND_PERIMETER_BREACH, confidence=0.93),
            safety.detection(
                camera.sensor_id, safety_pb2.DETECTION_KIND_WEAPON, confidence=0.88, label="baseball bat"
            ),
            safety.detection(
                faces.sensor_id, safety_pb2.DETECTION_KIND_FACE_MATCH, confidence=0.91, person_token=person
            ),
        )
        (assessment,) = report.assessments
        assert assessment.site_id == school.site_id
        assert assessment.level == safety_pb2.RISK_LEVEL_CRITICAL
        assert assessment.alert_raised
        for reason in REASONS:
            assert reason in assessment.reasons
        alert_id = assessment.alert_id

        pushed = own_room.wait_for(
            lambda r: r.alert.alert_id == alert_id and r.change == safety_pb2.ALERT_CHANGE_RAISED,
            "the critical alert on the duty room's stream",
        )
        assert pushed.alert.level == safety_pb2.RISK_LEVEL_CRITICAL
        assert pushed.alert.severity == common_pb2.SEVERITY_CRITICAL
        assert list(pushed.alert.reasons[:2]) == list(REASONS[:2])
        assert set(REASONS) <= set(pushed.alert.reasons)
        assert list(pushed.alert.person_tokens) == [person]
        assert len(pushed.alert.detections) == 3
        assert all(d.zone == "north wall" for d in pushed.alert.detections)
        # The duty room sees the level and the reasons, never the identity behind the token.
        shown = pushed.SerializeToString()
        assert identity.encode() not in shown
        assert b"Wang Ermazi" not in shown

        # --- the guard presses the one-click alarm: the same incident, not a second warning -------
        pressed = safety.call(
            "RaiseAlarm",
            safety_pb2.RaiseAlarmRequest(
                request_id="press-1",
                site_id=school.site_id,
                sensor_id=button.sensor_id,
                note="pupils moved inside",
            ),
            **safety.duty_room(school.site_id),
        )
        assert not pressed.alert_raised
        assert pressed.alert.alert_id == alert_id
        assert pressed.alert.occurrences == 2
        assert "one-click alarm pressed at main gate" in pressed.alert.reasons

        # --- acknowledged -> four units dispatched -> they arrive -> resolved ---------------------
        acknowledged = safety.call(
            "AcknowledgeAlert",
            safety_pb2.AcknowledgeAlertRequest(alert_id=alert_id, note="guards at the gate"),
            **safety.duty_room(school.site_id),
        )
        assert acknowledged.alert.status == safety_pb2.ALERT_STATUS_ACKNOWLEDGED
        dispatched = safety.call(
            "DispatchUnits",
            safety_pb2.DispatchUnitsRequest(
                request_id="dispatch-1",
                alert_id=alert_id,
                units=[safety_pb2.UnitAssignment(kind=kind, name=name) for kind, name in UNITS],
            ),
            roles=OPERATOR,
        )
        assert dispatched.alert.status == safety_pb2.ALERT_STATUS_DISPATCHED
        assert [u.status for u in dispatched.alert.units] == [safety_pb2.UNIT_STATUS_NOTIFIED] * 4
        for unit_id in dispatched.unit_ids:
            for step in (safety_pb2.UNIT_STATUS_EN_ROUTE, safety_pb2.UNIT_STATUS_ARRIVED):
                moved = safety.call(
                    "UpdateUnitStatus",
                    safety_pb2.UpdateUnitStatusRequest(alert_id=alert_id, unit_id=unit_id, status=step),
                    roles=SERVICE,
                )
        assert moved.alert.status == safety_pb2.ALERT_STATUS_ON_SCENE
        resolved = safety.call(
            "ResolveAlert",
            safety_pb2.ResolveAlertRequest(
                alert_id=alert_id, outcome=safety_pb2.ALERT_OUTCOME_RESOLVED, note="person detained unharmed"
            ),
            roles=POLICE,
        )
        assert resolved.alert.status == safety_pb2.ALERT_STATUS_RESOLVED
        assert resolved.alert.joint_response

        # --- the full timeline ---------------------------------------------------------------------
        full = safety.call(
            "GetAlert", safety_pb2.GetAlertRequest(alert_id=alert_id), **safety.duty_room(school.site_id)
        )
        kinds = [e.kind for e in full.alert.timeline]
        assert kinds[0] == safety_pb2.TIMELINE_ENTRY_KIND_RAISED
        assert kinds[1] == safety_pb2.TIMELINE_ENTRY_KIND_UPDATED
        assert kinds[2] == safety_pb2.TIMELINE_ENTRY_KIND_ACKNOWLEDGED
        assert kinds.count(safety_pb2.TIMELINE_ENTRY_KIND_UNIT_DISPATCHED) == 4
        assert kinds.count(safety_pb2.TIMELINE_ENTRY_KIND_UNIT_STATUS_CHANGED) == 8
        assert kinds.count(safety_pb2.TIMELINE_ENTRY_KIND_ON_SCENE) == 1
        assert kinds[-1] == safety_pb2.TIMELINE_ENTRY_KIND_RESOLVED
        stamps = [e.occurred_at.ToDatetime() for e in full.alert.timeline]
        assert stamps == sorted(stamps)
        alert = full.alert
        assert (
            alert.raised_at.ToDatetime()
            <= alert.acknowledged_at.ToDatetime()
            <= alert.dispatched_at.ToDatetime()
        )
        assert (
            alert.dispatched_at.ToDatetime() <= alert.on_scene_at.ToDatetime() <= alert.closed_at.ToDatetime()
        )

        # The district's stream saw every step; the duty room's saw its own alert close.
        command_centre.wait_for(
            lambda r: r.alert.alert_id == alert_id and r.change == safety_pb2.ALERT_CHANGE_RESOLVED,
            "the resolution on the command centre's stream",
        )
        own_room.wait_for(
            lambda r: r.alert.alert_id == alert_id and r.change == safety_pb2.ALERT_CHANGE_RESOLVED,
            "the resolution on the duty room's stream",
        )
        changes = own_room.changes(alert_id)
        assert changes.count(safety_pb2.ALERT_CHANGE_UNIT_STATUS_CHANGED) == 8
        assert changes[:3] == [
            safety_pb2.ALERT_CHANGE_RAISED,
            safety_pb2.ALERT_CHANGE_UPDATED,
            safety_pb2.ALERT_CHANGE_ACKNOWLEDGED,
        ]
    finally:
        for watcher in (own_room, other_room, command_centre):
            watcher.cancel()

    # --- another school's duty room sees none of it ------------------------------------------------
    assert other_room.received == []
    listed = safety.call("ListAlerts", safety_pb2.ListAlertsRequest(), **safety.duty_room(other.site_id))
    assert list(listed.alerts) == []
    error = safety.refused(
        "GetAlert", safety_pb2.GetAlertRequest(alert_id=alert_id), **safety.duty_room(other.site_id)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = safety.refused(
        "ListAlerts", safety_pb2.ListAlertsRequest(site_id=school.site_id), **safety.duty_room(other.site_id)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = safety.refused(
        "AcknowledgeAlert",
        safety_pb2.AcknowledgeAlertRequest(alert_id=alert_id),
        **safety.duty_room(other.site_id),
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    mine = safety.call("ListAlerts", safety_pb2.ListAlertsRequest(), **safety.duty_room(school.site_id))
    assert [a.alert_id for a in mine.alerts] == [alert_id]

    # --- statistics: one warning, one joint response ------------------------------------------------
    period = common_pb2.TimeRange(
        start_time=ts(started - timedelta(minutes=1)), end_time=ts(now() + timedelta(minutes=1))
    )
    stats = safety.call("GetStatistics", safety_pb2.GetStatisticsRequest(period=period), roles=OPERATOR)
    (row,) = [r for r in stats.rows if r.site_id == school.site_id]
    assert (row.warnings_raised, row.critical_warnings, row.joint_responses, row.false_alarms) == (1, 1, 1, 0)
    assert 0 < row.mean_seconds_to_acknowledge <= row.mean_seconds_to_dispatch <= row.mean_seconds_to_arrive
    assert stats.total.warnings_raised >= 1
    assert stats.total.joint_responses >= 1
    daily = safety.call(
        "GetStatistics",
        safety_pb2.GetStatisticsRequest(
            site_id=school.site_id, period=period, bucket=safety_pb2.STATISTICS_BUCKET_DAY
        ),
        **safety.duty_room(school.site_id),
    )
    assert sum(r.warnings_raised for r in daily.rows) == 1
    assert sum(r.joint_responses for r in daily.rows) == 1
    others = safety.call(
        "GetStatistics", safety_pb2.GetStatisticsRequest(period=period), **safety.duty_room(other.site_id)
    )
    assert list(others.rows) == []
    assert others.total.warnings_raised == 0

    # --- the events, read back from Kafka -----------------------------------------------------------
    events = safety.wait_for_events(
        {school.site_id, alert_id},
        lambda found: any(t == "cityhub.safety.v1.AlertResolved" for t, _ in found),
        what="the incident's events",
    )
    types = [t for t, _ in events]
    assert types.count("cityhub.safety.v1.SiteRegistered") == 1
    assert types.count("cityhub.safety.v1.RiskAssessed") == 1
    assert types.count("cityhub.safety.v1.AlertRaised") == 1
    assert types.count("cityhub.safety.v1.AlertUpdated") == 1
    assert types.count("cityhub.safety.v1.AlertAcknowledged") == 1
    assert types.count("cityhub.safety.v1.AlertDispatched") == 1
    assert types.count("cityhub.safety.v1.UnitStatusChanged") == 8
    assert types.count("cityhub.safety.v1.AlertResolved") == 1
    alert_types = [
        t
        for t, m in events
        if getattr(m, "alert_id", "") == alert_id and t != "cityhub.safety.v1.RiskAssessed"
    ]
    # One key per alert: its lifecycle arrives in order.
    assert alert_types[0] == "cityhub.safety.v1.AlertRaised"
    assert alert_types[-1] == "cityhub.safety.v1.AlertResolved"

    by_type = dict(events)
    raised = by_type["cityhub.safety.v1.AlertRaised"]
    assert isinstance(raised, events_pb2.AlertRaised)
    assert raised.level == safety_pb2.RISK_LEVEL_CRITICAL
    assert list(raised.person_tokens) == [person]
    assessed = by_type["cityhub.safety.v1.RiskAssessed"]
    assert isinstance(assessed, events_pb2.RiskAssessed)
    assert list(assessed.flag_categories) == [safety_pb2.RISK_FLAG_PSYCHIATRIC_HISTORY]
    assert assessed.alert_id == alert_id
    dispatched_event = by_type["cityhub.safety.v1.AlertDispatched"]
    assert isinstance(dispatched_event, events_pb2.AlertDispatched)
    assert sorted(u.kind for u in dispatched_event.units) == sorted(kind for kind, _ in UNITS)
    closed = by_type["cityhub.safety.v1.AlertResolved"]
    assert isinstance(closed, events_pb2.AlertResolved)
    assert closed.outcome == safety_pb2.ALERT_OUTCOME_RESOLVED
    assert closed.joint_response
    assert len(closed.arrived_unit_kinds) == 4
    # People appear only as tokens: no identity number or name anywhere on the topic.
    for payload in safety.raw_event_payloads():
        assert identity.encode() not in payload
        assert b"Wang Ermazi" not in payload

    # --- the identity behind the token: police only, with a purpose, audited -------------------------
    response, call = safety.stub.GetPerson.with_call(
        safety_pb2.GetPersonRequest(person_token=person),
        metadata=safety.metadata(POLICE, purpose=PURPOSE, sub="officer-7"),
        timeout=30,
    )
    assert response.person.identity_number == identity
    assert response.person.name == "Wang Ermazi"
    assert list(response.person.risk_flags) == [safety_pb2.RISK_FLAG_PSYCHIATRIC_HISTORY]
    assert response.person.purchases[0].item == safety_pb2.HAZARDOUS_ITEM_LOOSE_PETROL
    assert not any(key == MASKED_FIELDS_TRAILER for key, _ in call.trailing_metadata() or ())
    audited = safety.sql(
        "SELECT actor, subject, purpose, fields FROM audit_log WHERE subject = %s", (person,)
    )
    assert len(audited) == 1
    actor, subject, purpose, fields = audited[0]
    assert (actor, subject) == ("officer-7", person)
    assert "incident at the north wall" in purpose
    assert "person.identity_number" in fields
    assert "person.risk_flags" in fields

    no_purpose = safety.refused("GetPerson", safety_pb2.GetPersonRequest(person_token=person), roles=POLICE)
    assert no_purpose.code() == grpc.StatusCode.PERMISSION_DENIED
    for caller in ({"roles": OPERATOR}, safety.duty_room(school.site_id)):
        denied = safety.refused(
            "GetPerson", safety_pb2.GetPersonRequest(person_token=person), purpose=PURPOSE, **caller
        )
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    # Nothing is stored in clear.
    (sealed,) = safety.sql("SELECT sealed FROM persons WHERE person_token = %s", (person,))[0]
    assert identity.encode() not in bytes(sealed)
    assert b"Wang" not in bytes(sealed)
    assert safety.sql("SELECT count(*) FROM audit_log WHERE subject = %s", (person,))[0][0] == 1
