"""Morning checks over real gRPC, PostgreSQL, Kafka and a real safety service: a kindergarten's morning
with 12 staff (one feverish, one with an expired certificate), the masking of temperatures per caller, a
manager's replacement, and the NO_CHECK sweep run by two replicas that never alert twice."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2, kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.kitchen.bootstrap import build
from services.platform.identifiers import identity_check_char
from services.platform.runtime import ServiceRuntime
from services.platform.security import SecuritySettings, TokenIssuer
from tests.integration.kitchen.conftest import kitchen_settings
from tests.integration.kitchen.kitchen_support import Kitchen, SafetyPeer, rid
from tests.kafka_support import delete_topics
from tests.support import violations, wait_until

MANAGER = ("kitchen_manager",)
DISTRICT = ("district_operator",)
PURPOSE = "morning check review"
S = TypeVar("S", bound=Sized)
# Every field MorningCheckFailed may carry: nothing of a person's health, name or identity.
FAILED_FIELDS = {
    "kitchen_id",
    "check_id",
    "staff_token",
    "shift_date",
    "shift",
    "bar_reasons",
    "alert_id",
    "at",
}


def _identity(n: int) -> str:
    first17 = f"33100419880101{n:03d}"
    return first17 + identity_check_char(first17)


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _today(kitchen: Kitchen) -> date:
    return datetime.now(kitchen.settings.district_zone).date()


def _add_staff(kitchen: Kitchen, kitchen_id: str, n: int, *, expiry: date) -> kitchen_pb2.StaffMember:
    reply = kitchen.call(
        "AddStaff",
        kitchen_pb2.AddStaffRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            name=f"Staff member {n}",
            identity_number=_identity(n),
            role=kitchen_pb2.STAFF_ROLE_COOK if n % 2 else kitchen_pb2.STAFF_ROLE_HELPER,
            health_certificate_number=f"JK-2024-{n:04d}",
            health_certificate_expiry=expiry.isoformat(),
            face_template_ref=f"face/{n:04d}",
        ),
    )
    member: kitchen_pb2.StaffMember = reply.staff
    return member


def _check_request(
    kitchen_id: str, staff_id: str, shift_date: date, shift: str, *, at: datetime, temperature_c: float = 36.5
) -> kitchen_pb2.RecordMorningCheckRequest:
    return kitchen_pb2.RecordMorningCheckRequest(
        request_id=rid(),
        kitchen_id=kitchen_id,
        staff_id=staff_id,
        shift_date=shift_date.isoformat(),
        shift=shift,
        checked_at=_stamp(at),
        face_match_score=0.96,
        temperature_c=temperature_c,
    )


def _code(error: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    code: grpc.StatusCode = error.value.code()
    return code


def _at_least(count: int, fetch: Callable[[], S]) -> Callable[[], S | None]:
    """For wait_until: what ``fetch`` returns once it holds ``count`` items."""

    def check() -> S | None:
        found = fetch()
        return found if len(found) >= count else None

    return check


def _failed_events(
    kitchen: Kitchen, kitchen_id: str, shift_date: date
) -> list[events_pb2.MorningCheckFailed]:
    return [
        message
        for _, message in kitchen.events()
        if isinstance(message, events_pb2.MorningCheckFailed)
        and message.kitchen_id == kitchen_id
        and message.shift_date == shift_date.isoformat()
    ]


def _barred_alerts(kitchen: Kitchen, kitchen_id: str) -> list[kitchen_pb2.KitchenAlert]:
    reply = kitchen.call(
        "ListKitchenAlerts",
        kitchen_pb2.ListKitchenAlertsRequest(
            kitchen_id=kitchen_id, kinds=[kitchen_pb2.ALERT_KIND_MORNING_CHECK_BARRED]
        ),
        roles=DISTRICT,
    )
    return list(reply.alerts)


@dataclass
class Morning:
    kitchen_id: str
    tomorrow: date
    staff: list[kitchen_pb2.StaffMember]
    checks: list[kitchen_pb2.MorningCheck]
    checked_at: datetime

    @property
    def manager(self) -> dict[str, Any]:
        return {"roles": MANAGER, "scopes": (f"kitchen:{self.kitchen_id}",)}

    @property
    def barred(self) -> dict[str, kitchen_pb2.StaffMember]:
        """The barred checks' ids and whom they bar: staff 0 (37.8 °C) and staff 1 (expired)."""
        return {self.checks[0].check_id: self.staff[0], self.checks[1].check_id: self.staff[1]}

    def list_request(self) -> kitchen_pb2.ListMorningChecksRequest:
        return kitchen_pb2.ListMorningChecksRequest(
            kitchen_id=self.kitchen_id, shift_date=self.tomorrow.isoformat()
        )


@pytest.fixture(scope="module")
def morning(kitchen: Kitchen) -> Morning:
    """A kindergarten's kitchen, 12 staff (staff 1's certificate expired a month ago) and their checks for
    tomorrow's 06:00 breakfast, recorded now by the check-in terminal (so before the start): staff 0 at
    37.8 °C, everyone else at 36.5 °C. (Today's breakfast may have started already: then the sweep bars
    everyone for today, NO_CHECK; the tests look at tomorrow's checks, events and alerts only.)"""
    site = kitchen.safety.register_site(safety_pb2.SITE_KIND_KINDERGARTEN)
    registered = kitchen.register_kitchen(site.site_id, shifts=(("breakfast", "06:00", "09:00"),))
    kitchen_id = registered.kitchen_id
    today = _today(kitchen)
    tomorrow = today + timedelta(days=1)
    expired, valid = today - timedelta(days=30), today + timedelta(days=365)
    staff = [_add_staff(kitchen, kitchen_id, n, expiry=expired if n == 1 else valid) for n in range(12)]
    now = datetime.now(kitchen.settings.district_zone)
    checks = [
        kitchen.call(
            "RecordMorningCheck",
            _check_request(
                kitchen_id,
                member.staff_id,
                tomorrow,
                "breakfast",
                at=now,
                temperature_c=37.8 if n == 0 else 36.5,
            ),
        ).check
        for n, member in enumerate(staff)
    ]
    return Morning(kitchen_id, tomorrow, staff, checks, now)


def test_exactly_the_feverish_and_the_expired_are_barred(morning: Morning) -> None:
    outcomes = {c.staff_id: (c.outcome, list(c.bar_reasons)) for c in morning.checks}
    assert outcomes.pop(morning.staff[0].staff_id) == (
        kitchen_pb2.CHECK_OUTCOME_BARRED,
        [kitchen_pb2.BAR_REASON_HEALTH_SCREEN],
    )
    assert outcomes.pop(morning.staff[1].staff_id) == (
        kitchen_pb2.CHECK_OUTCOME_BARRED,
        [kitchen_pb2.BAR_REASON_CERTIFICATE_EXPIRED],
    )
    assert len(outcomes) == 10
    assert all(outcome == (kitchen_pb2.CHECK_OUTCOME_PASSED, []) for outcome in outcomes.values())


def test_two_events_carry_the_token_and_coarse_reasons_only(kitchen: Kitchen, morning: Morning) -> None:
    events = wait_until(
        _at_least(2, lambda: _failed_events(kitchen, morning.kitchen_id, morning.tomorrow)),
        timeout_s=20,
        what="2 events",
    )
    assert sorted(e.check_id for e in events) == sorted(morning.barred)
    assert {e.check_id: list(e.bar_reasons) for e in events} == {
        morning.checks[0].check_id: [kitchen_pb2.BAR_REASON_HEALTH_SCREEN],
        morning.checks[1].check_id: [kitchen_pb2.BAR_REASON_CERTIFICATE_EXPIRED],
    }
    for event in events:
        member = morning.barred[event.check_id]
        assert event.staff_token == member.staff_token
        assert event.shift_date == morning.tomorrow.isoformat()
        assert {f.name for f, _ in event.ListFields()} <= FAILED_FIELDS
        wire = event.SerializeToString()
        for secret in ("37.8", "Staff member", _identity(0), _identity(1), "JK-2024-"):
            assert secret.encode() not in wire


def test_two_alerts_name_the_token_never_the_temperature(kitchen: Kitchen, morning: Morning) -> None:
    alerts = [a for a in _barred_alerts(kitchen, morning.kitchen_id) if a.subject_id in morning.barred]
    assert len(alerts) == 2
    events = wait_until(
        _at_least(2, lambda: _failed_events(kitchen, morning.kitchen_id, morning.tomorrow)),
        timeout_s=20,
        what="2 events",
    )
    assert {a.alert_id for a in alerts} == {e.alert_id for e in events if e.check_id in morning.barred}
    for alert in alerts:
        assert morning.barred[alert.subject_id].staff_token in alert.message
        assert "37.8" not in alert.message
        assert alert.severity == common_pb2.SEVERITY_MEDIUM


def test_temperatures_are_masked_for_the_district_and_shown_to_the_manager(
    kitchen: Kitchen, morning: Morning
) -> None:
    listed, trailers = kitchen.call_with_trailers("ListMorningChecks", morning.list_request(), roles=DISTRICT)
    assert len(listed.checks) == 12
    assert sum(c.outcome == kitchen_pb2.CHECK_OUTCOME_BARRED for c in listed.checks) == 2
    assert all(c.temperature_c == 0 for c in listed.checks)
    assert "checks.temperature_c" in trailers["x-masked-fields"].split(",")

    cleared, _ = kitchen.call_with_trailers(
        "ListMorningChecks", morning.list_request(), purpose=PURPOSE, **morning.manager
    )
    by_staff = {c.staff_id: c for c in cleared.checks}
    assert by_staff[morning.staff[0].staff_id].temperature_c == pytest.approx(37.8)
    assert by_staff[morning.staff[5].staff_id].temperature_c == pytest.approx(36.5)
    with pytest.raises(grpc.RpcError) as no_purpose:
        kitchen.call("ListMorningChecks", morning.list_request(), **morning.manager)
    assert _code(no_purpose) == grpc.StatusCode.PERMISSION_DENIED


def test_a_manager_puts_a_member_who_passed_in_for_a_barred_one(kitchen: Kitchen, morning: Morning) -> None:
    checks, staff = morning.checks, morning.staff
    request = kitchen_pb2.RecordReplacementRequest(
        request_id=rid(),
        kitchen_id=morning.kitchen_id,
        check_id=checks[0].check_id,
        replacement_staff_id=staff[2].staff_id,
    )
    replaced, _ = kitchen.call_with_trailers("RecordReplacement", request, purpose=PURPOSE, **morning.manager)
    assert replaced.check.replaced_by_staff_id == staff[2].staff_id
    again, _ = kitchen.call_with_trailers("RecordReplacement", request, purpose=PURPOSE, **morning.manager)
    assert again.check == replaced.check
    # A barred member replaces nobody, and a passed check needs no replacement.
    for check_id, staff_id in (
        (checks[1].check_id, staff[0].staff_id),
        (checks[3].check_id, staff[4].staff_id),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            kitchen.call_with_trailers(
                "RecordReplacement",
                kitchen_pb2.RecordReplacementRequest(
                    request_id=rid(),
                    kitchen_id=morning.kitchen_id,
                    check_id=check_id,
                    replacement_staff_id=staff_id,
                ),
                purpose=PURPOSE,
                **morning.manager,
            )
        assert _code(refused) == grpc.StatusCode.FAILED_PRECONDITION
    listed, _ = kitchen.call_with_trailers("ListMorningChecks", morning.list_request(), roles=DISTRICT)
    assert {c.check_id: c.replaced_by_staff_id for c in listed.checks if c.replaced_by_staff_id} == {
        checks[0].check_id: staff[2].staff_id
    }


def test_one_check_per_shift_a_person_temperature_and_the_kitchen_shift(
    kitchen: Kitchen, morning: Morning
) -> None:
    member, day = morning.staff[3].staff_id, morning.tomorrow
    with pytest.raises(grpc.RpcError) as twice:
        kitchen.call(
            "RecordMorningCheck",
            _check_request(morning.kitchen_id, member, day, "breakfast", at=morning.checked_at),
        )
    assert _code(twice) == grpc.StatusCode.FAILED_PRECONDITION
    assert "one check per staff member per shift" in (twice.value.details() or "")
    with pytest.raises(grpc.RpcError) as cold:
        kitchen.call(
            "RecordMorningCheck",
            _check_request(
                morning.kitchen_id, member, day, "breakfast", at=morning.checked_at, temperature_c=29.5
            ),
        )
    assert _code(cold) == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(cold.value)) == {"temperature_c"}
    with pytest.raises(grpc.RpcError) as no_shift:
        kitchen.call(
            "RecordMorningCheck",
            _check_request(morning.kitchen_id, member, day, "dinner", at=morning.checked_at),
        )
    assert _code(no_shift) == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(no_shift.value)) == {"shift"}
    listed, _ = kitchen.call_with_trailers("ListMorningChecks", morning.list_request(), roles=DISTRICT)
    assert len(listed.checks) == 12


def test_the_roster_shows_certificates_to_the_manager_and_masks_identities(
    kitchen: Kitchen, morning: Morning
) -> None:
    roster, trailers = kitchen.call_with_trailers(
        "ListStaff",
        kitchen_pb2.ListStaffRequest(kitchen_id=morning.kitchen_id),
        purpose=PURPOSE,
        **morning.manager,
    )
    status = {m.staff_id: m.certificate_status for m in roster.staff}
    assert status.pop(morning.staff[1].staff_id) == kitchen_pb2.CERTIFICATE_STATUS_EXPIRED
    assert set(status.values()) == {kitchen_pb2.CERTIFICATE_STATUS_VALID}
    assert len(status) == 11
    assert {m.health_certificate_number for m in roster.staff} == {f"JK-2024-{n:04d}" for n in range(12)}
    # Identity data is not the kitchen manager's to see.
    assert all(m.name == "" and m.identity_number == "" for m in roster.staff)
    assert {"staff.name", "staff.identity_number"} <= set(trailers["x-masked-fields"].split(","))


# --- the NO_CHECK sweep, by two replicas -------------------------------------------------------------------


@dataclass
class Replicas:
    setup: Kitchen
    sweepers: list[ServiceRuntime]


@pytest.fixture
def replicas(
    kafka_bootstrap: str, database_url: str, kitchen_security: SecuritySettings, safety_peer: SafetyPeer
) -> Iterator[Replicas]:
    """One replica whose sweep stays idle (it sweeps once as it starts, before anything exists, then waits
    an hour), to set the scene without a sweep racing the test; then two replicas of the same schema,
    topics and person key that sweep every 0.2 s, started by the test."""
    settings = kitchen_settings(
        kafka_bootstrap, database_url, safety_peer.runtime.address, kitchen_check_sweep_interval_s=3600
    )
    key = settings.kitchen_person_key
    shared: dict[str, Any] = {
        "service_name": settings.service_name,
        "kitchen_events_topic": settings.kitchen_events_topic,
        "kitchen_readings_topic": settings.kitchen_readings_topic,
        "kitchen_person_key": key.get_secret_value() if key else "",
        "kitchen_check_sweep_interval_s": 0.2,
    }
    runtimes: list[ServiceRuntime] = []
    channel: grpc.Channel | None = None
    try:
        idle = build(settings, configure_logs=False, security=kitchen_security)
        runtimes.append(idle)
        idle.start()
        channel = grpc.insecure_channel(idle.address)
        setup = Kitchen(
            idle,
            settings,
            kitchen_pb2_grpc.KitchenServiceStub(channel),
            TokenIssuer.from_settings(kitchen_security),
            kafka_bootstrap,
            database_url,
            safety_peer,
        )
        for _ in range(2):
            replica = kitchen_settings(kafka_bootstrap, database_url, safety_peer.runtime.address, **shared)
            runtimes.append(build(replica, configure_logs=False, security=kitchen_security))
        yield Replicas(setup, runtimes[1:])
    finally:
        if channel is not None:
            channel.close()
        for runtime in reversed(runtimes):
            runtime.close()
        topics = [settings.kitchen_events_topic, settings.kitchen_readings_topic]
        delete_topics(kafka_bootstrap, [*topics, *(f"{t}.dlq" for t in topics)])


def test_the_sweep_bars_checkless_staff_once_however_many_replicas_sweep(replicas: Replicas) -> None:
    kitchen = replicas.setup
    zone = kitchen.settings.district_zone
    kitchen_id = kitchen.register_kitchen(shifts=(("allday", "00:00", "23:59"),)).kitchen_id
    today = _today(kitchen)
    valid = today + timedelta(days=365)
    checked, checkless = (_add_staff(kitchen, kitchen_id, 100 + n, expiry=valid) for n in range(2))
    # A check a minute before today's 00:00 start: passed, so the sweep leaves this member alone.
    before_start = datetime.combine(today, time(0, 0), zone) - timedelta(minutes=1)
    passed = kitchen.call(
        "RecordMorningCheck", _check_request(kitchen_id, checked.staff_id, today, "allday", at=before_start)
    ).check
    assert passed.outcome == kitchen_pb2.CHECK_OUTCOME_PASSED

    for runtime in replicas.sweepers:
        runtime.start()

    def day_checks() -> dict[str, kitchen_pb2.MorningCheck]:
        reply = kitchen.call(
            "ListMorningChecks",
            kitchen_pb2.ListMorningChecksRequest(kitchen_id=kitchen_id, shift_date=today.isoformat()),
            roles=DISTRICT,
        )
        return {c.staff_id: c for c in reply.checks}

    rows = wait_until(_at_least(2, day_checks), timeout_s=20, what="the NO_CHECK bar")
    assert len(rows) == 2
    bar = rows[checkless.staff_id]
    assert bar.outcome == kitchen_pb2.CHECK_OUTCOME_BARRED
    assert list(bar.bar_reasons) == [kitchen_pb2.BAR_REASON_NO_CHECK]
    assert not bar.HasField("checked_at")
    assert rows[checked.staff_id].check_id == passed.check_id

    # A member added now is barred by a later sweep: the replicas have gone round again since.
    late = _add_staff(kitchen, kitchen_id, 102, expiry=valid)
    rows = wait_until(_at_least(3, day_checks), timeout_s=20, what="a later sweep")
    assert len(rows) == 3
    assert list(rows[late.staff_id].bar_reasons) == [kitchen_pb2.BAR_REASON_NO_CHECK]
    assert rows[checked.staff_id].outcome == kitchen_pb2.CHECK_OUTCOME_PASSED

    # Exactly one alert and one event per bar, though two replicas swept many times.
    barred_ids = sorted([rows[checkless.staff_id].check_id, rows[late.staff_id].check_id])
    assert sorted(a.subject_id for a in _barred_alerts(kitchen, kitchen_id)) == barred_ids
    events = wait_until(
        _at_least(2, lambda: _failed_events(kitchen, kitchen_id, today)), timeout_s=20, what="events"
    )
    assert sorted(e.check_id for e in events) == barred_ids
    assert all(list(e.bar_reasons) == [kitchen_pb2.BAR_REASON_NO_CHECK] for e in events)
