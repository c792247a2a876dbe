"""Alerting behaviour on the real service: repeated detections update the open alert, the one-click alarm
raises a critical alert at once, late watchers catch up, creates are idempotent, inspections, scoping of
lists, and a server that stops promptly with watch streams open."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import timedelta
from typing import Any

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.platform.security import SecuritySettings, TokenIssuer
from services.safety.bootstrap import build
from tests.integration.safety.conftest import safety_settings
from tests.integration.safety.safety_support import (
    OPERATOR,
    POLICE,
    SERVICE,
    Safety,
    Watcher,
    made_up_identity,
    now,
    ts,
)
from tests.support import wait_until

pytestmark = pytest.mark.integration


def test_repeated_detections_of_a_kind_update_the_open_alert_instead_of_opening_another(
    safety: Safety,
) -> None:
    site = safety.register_site("Luqiao Experimental Middle School")
    camera = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "west gate")
    district = safety.watch(OPERATOR, site_id=site.site_id)
    try:
        first = safety.report(
            safety.detection(camera.sensor_id, safety_pb2.DETECTION_KIND_PERIMETER_BREACH),
            safety.detection(camera.sensor_id, safety_pb2.DETECTION_KIND_WEAPON, label="machete"),
        )
        (assessed,) = first.assessments
        assert assessed.level == safety_pb2.RISK_LEVEL_HIGH
        assert assessed.alert_raised
        second = safety.report(
            safety.detection(camera.sensor_id, safety_pb2.DETECTION_KIND_WEAPON, label="machete")
        )
        (again,) = second.assessments
        assert again.alert_id == assessed.alert_id
        assert not again.alert_raised
        district.wait_for(
            lambda r: r.alert.alert_id == assessed.alert_id and r.change == safety_pb2.ALERT_CHANGE_UPDATED,
            "the update on the stream",
        )
    finally:
        district.cancel()
    alerts = safety.call("ListAlerts", safety_pb2.ListAlertsRequest(site_id=site.site_id)).alerts
    assert [a.alert_id for a in alerts] == [assessed.alert_id]
    assert alerts[0].occurrences == 2
    full = safety.call("GetAlert", safety_pb2.GetAlertRequest(alert_id=assessed.alert_id)).alert
    assert len(full.detections) == 3
    events = safety.wait_for_events(
        {assessed.alert_id}, lambda found: len(found) >= 2, what="the alert's raise and update"
    )
    assert [t for t, _ in events] == ["cityhub.safety.v1.AlertRaised", "cityhub.safety.v1.AlertUpdated"]


def test_concurrent_batches_at_one_site_open_one_alert(safety: Safety) -> None:
    site = safety.register_site("Luqiao Hengjie Primary School")
    camera = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_VIDEO_CHANNEL, "south wall")
    barrier = threading.Barrier(6)
    results: list[str] = []

    def report() -> None:
        barrier.wait()
        response = safety.report(
            safety.detection(camera.sensor_id, safety_pb2.DETECTION_KIND_PERIMETER_BREACH),
            safety.detection(camera.sensor_id, safety_pb2.DETECTION_KIND_WEAPON, label="knife"),
        )
        results.append(response.assessments[0].alert_id)

    threads = [threading.Thread(target=report) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 6
    assert len(set(results)) == 1
    (alert,) = safety.call("ListAlerts", safety_pb2.ListAlertsRequest(site_id=site.site_id)).alerts
    assert alert.occurrences == 6


def test_the_one_click_alarm_raises_a_critical_alert_at_once(safety: Safety) -> None:
    site = safety.register_site("Luqiao Maternity Hospital", kind=safety_pb2.SITE_KIND_HOSPITAL)
    button = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_PANIC_BUTTON, "outpatient hall")
    room = safety.watch(**safety.duty_room(site.site_id))
    try:
        pressed = safety.call(
            "RaiseAlarm",
            safety_pb2.RaiseAlarmRequest(
                request_id="press-m1", site_id=site.site_id, sensor_id=button.sensor_id
            ),
            **safety.duty_room(site.site_id),
        )
        assert pressed.alert_raised
        pushed = room.wait_for(
            lambda r: r.alert.alert_id == pressed.alert.alert_id, "the alarm on the stream"
        )
    finally:
        room.cancel()
    assert pushed.change == safety_pb2.ALERT_CHANGE_RAISED
    assert pushed.alert.level == safety_pb2.RISK_LEVEL_CRITICAL
    assert pushed.alert.trigger == safety_pb2.ALERT_TRIGGER_PANIC_BUTTON
    assert list(pushed.alert.reasons) == ["one-click alarm pressed at outpatient hall"]
    # A bouncing button (the same press id again) raises nothing more.
    again = safety.call(
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(request_id="press-m1", site_id=site.site_id, sensor_id=button.sensor_id),
        **safety.duty_room(site.site_id),
    )
    assert again.alert.alert_id == pressed.alert.alert_id
    assert again.alert.occurrences == 1
    # Another site's duty room cannot press this site's button.
    error = safety.refused(
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(request_id="press-m2", site_id=site.site_id, sensor_id=button.sensor_id),
        **safety.duty_room("site_elsewhere"),
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_watcher_joining_late_is_sent_the_open_alerts_first(safety: Safety) -> None:
    site = safety.register_site("Luqiao Qiaoxi Primary School")
    button = safety.register_sensor(site.site_id, safety_pb2.SENSOR_KIND_PATROL_APP, "playground")
    pressed = safety.call(
        "RaiseAlarm",
        safety_pb2.RaiseAlarmRequest(request_id="press-q1", site_id=site.site_id, sensor_id=button.sensor_id),
        roles=SERVICE,
    )
    late = safety.watch(**safety.duty_room(site.site_id), include_open=True)
    try:
        found = late.wait_for(lambda r: r.alert.alert_id == pressed.alert.alert_id, "the open alert")
    finally:
        late.cancel()
    assert found.change == safety_pb2.ALERT_CHANGE_OPEN


def test_creates_are_idempotent_and_the_same_person_keeps_one_token(safety: Safety) -> None:
    request = safety_pb2.RegisterSiteRequest(
        request_id=f"site-{secrets.token_hex(4)}",
        name="Luqiao Mosque",
        kind=safety_pb2.SITE_KIND_RELIGIOUS_VENUE,
        address="3 Xinan Street",
        division_code="331004",
        town="Xinqiao Town",
        duty_room=safety_pb2.DutyRoomContact(name="Caretaker office", phone="0576-8200 0000"),
    )
    first = safety.call("RegisterSite", request).site
    second = safety.call("RegisterSite", request).site
    assert first.site_id == second.site_id
    assert safety.outbox_subjects().count(first.site_id) == 1

    number = made_up_identity(88)
    tokens = []
    for index, flags in enumerate(
        ([safety_pb2.RISK_FLAG_PRIOR_VIOLENCE], [safety_pb2.RISK_FLAG_THREATS_MADE])
    ):
        recorded = safety.call(
            "RecordPerson",
            safety_pb2.RecordPersonRequest(
                request_id=f"person-88-{index}", identity_number=number, name="Zhao Liu", risk_flags=flags
            ),
            roles=POLICE,
        )
        tokens.append((recorded.person_token, recorded.created))
    assert tokens[0][0] == tokens[1][0]
    assert [created for _, created in tokens] == [True, False]
    found = safety.call("FindPerson", safety_pb2.FindPersonRequest(identity_number=number), roles=POLICE)
    assert found.found
    assert found.person_token == tokens[0][0]
    missing = safety.call(
        "FindPerson", safety_pb2.FindPersonRequest(identity_number=made_up_identity(89)), roles=POLICE
    )
    assert not missing.found
    # The latest record counts: its flags replaced the earlier ones.
    person = safety.call(
        "GetPerson", safety_pb2.GetPersonRequest(person_token=tokens[0][0]), roles=POLICE, purpose="review"
    ).person
    assert list(person.risk_flags) == [safety_pb2.RISK_FLAG_THREATS_MADE]


def test_venue_inspections(safety: Safety) -> None:
    venue = safety.register_site("Luqiao Guanyin Temple", kind=safety_pb2.SITE_KIND_RELIGIOUS_VENUE)
    drone = safety.register_sensor(venue.site_id, safety_pb2.SENSOR_KIND_DRONE, "courtyard")
    recorded = safety.call(
        "RecordInspection",
        safety_pb2.RecordInspectionRequest(
            request_id="insp-1",
            site_id=venue.site_id,
            method=safety_pb2.INSPECTION_METHOD_DRONE,
            inspector="united front work team 2",
            inspected_at=ts(now() - timedelta(hours=1)),
            sensor_id=drone.sensor_id,
            summary="festival gathering, exits clear",
            findings=[
                safety_pb2.InspectionFinding(
                    category="fire safety",
                    description="incense near curtains",
                    severity=common_pb2.SEVERITY_HIGH,
                ),
                safety_pb2.InspectionFinding(
                    category="crowd", description="within capacity", severity=common_pb2.SEVERITY_INFO
                ),
            ],
        ),
    ).inspection
    listed = safety.call(
        "ListInspections", safety_pb2.ListInspectionsRequest(site_id=venue.site_id)
    ).inspections
    assert [i.inspection_id for i in listed] == [recorded.inspection_id]
    assert len(listed[0].findings) == 2
    school = safety.register_site("Luqiao Shiqu School")
    error = safety.refused(
        "RecordInspection",
        safety_pb2.RecordInspectionRequest(
            request_id="insp-2",
            site_id=school.site_id,
            method=safety_pb2.INSPECTION_METHOD_VIDEO,
            inspector="team 2",
            inspected_at=ts(now()),
        ),
    )
    # A site of the wrong kind is a state the request cannot change, not a malformed field.
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(error.details()).startswith("site_id:")
    assert "not a religious venue" in str(error.details())
    (event,) = [
        m for t, m in safety.wait_for_events({recorded.inspection_id}, bool, what="the inspection event")
    ]
    assert event.finding_count == 2  # type: ignore[attr-defined]
    assert event.worst_severity == common_pb2.SEVERITY_HIGH  # type: ignore[attr-defined]


def test_a_duty_room_lists_its_own_site_and_the_district_lists_every_site(safety: Safety) -> None:
    mine = safety.register_site("Luqiao Tongyu Primary School")
    safety.register_site("Luqiao Luobu Primary School")
    own = safety.call("ListSites", safety_pb2.ListSitesRequest(), **safety.duty_room(mine.site_id)).sites
    assert [s.site_id for s in own] == [mine.site_id]
    every: list[str] = []
    token = ""
    while True:
        page = safety.call(
            "ListSites",
            safety_pb2.ListSitesRequest(page=common_pb2.PageRequest(page_size=2, page_token=token)),
            roles=OPERATOR,
        )
        every.extend(s.site_id for s in page.sites)
        token = page.page.next_page_token
        if not token:
            break
    assert mine.site_id in every
    assert len(every) == len(set(every)) >= 2


def test_the_server_stops_promptly_with_watch_streams_open(
    kafka_bootstrap: str, database_url: str, security: SecuritySettings
) -> None:
    settings = safety_settings(kafka_bootstrap, database_url, grpc_shutdown_grace_s=30.0)
    runtime = build(settings, configure_logs=False, security=security)
    runtime.start()
    issuer = TokenIssuer.from_settings(security)
    channel = grpc.insecure_channel(runtime.address)
    stub = safety_pb2_grpc.SafetyServiceStub(channel)
    metadata: tuple[tuple[str, str | bytes], ...] = (
        ("authorization", f"Bearer {issuer.issue(sub='op', roles=['district_operator'])}"),
    )
    watchers = [
        Watcher(stub.WatchAlerts(safety_pb2.WatchAlertsRequest(), metadata=metadata, timeout=120)).start()
        for _ in range(3)
    ]
    try:
        started = time.monotonic()
        closer = threading.Thread(target=runtime.close)
        closer.start()
        closer.join(20)
        took = time.monotonic() - started
        assert not closer.is_alive(), "runtime.close() hung on open watch streams"
        assert took < 5.0, f"stopping took {took:.1f}s with a 30s grace: the streams held it"
        for watcher in watchers:
            wait_until(watcher.ended.is_set, timeout_s=5, what="the stream to end")
            assert watcher.error is None, watcher.error
    finally:
        channel.close()
        runtime.close()


def test_many_watching_duty_rooms_do_not_starve_health_or_the_alarm(safety: Safety) -> None:
    # Forty schools' duty rooms and the command centre watch: far more streams than worker threads (16).
    sites = [safety.register_site(f"Luqiao School {index}") for index in range(40)]
    rooms = [safety.watch(**safety.duty_room(site.site_id)) for site in sites for _ in range(2)]
    centre = [safety.watch(OPERATOR) for _ in range(20)]
    try:
        with grpc.insecure_channel(safety.runtime.address) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        target = sites[7]
        button = safety.register_sensor(target.site_id, safety_pb2.SENSOR_KIND_PANIC_BUTTON, "gate")
        pressed = safety.call(
            "RaiseAlarm",
            safety_pb2.RaiseAlarmRequest(
                request_id=f"press-{target.site_id}", site_id=target.site_id, sensor_id=button.sensor_id
            ),
            **safety.duty_room(target.site_id),
        )
        alert_id = pressed.alert.alert_id
        for watcher in [*rooms[14:16], *centre]:
            watcher.wait_for(lambda r: r.alert.alert_id == alert_id, "the alarm on every watching stream")
        # Other schools' rooms are not told.
        assert all(not w.changes(alert_id) for w in rooms[:14] + rooms[16:])
    finally:
        for watcher in [*rooms, *centre]:
            watcher.call.cancel()


def test_watching_an_unknown_site_is_not_found_instead_of_a_silent_stream(safety: Safety) -> None:
    call = safety.stub.WatchAlerts(
        safety_pb2.WatchAlertsRequest(site_id="site_does_not_exist"),
        metadata=safety.metadata(OPERATOR),
        timeout=10,
    )
    with pytest.raises(grpc.RpcError) as refused:
        next(iter(call))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
