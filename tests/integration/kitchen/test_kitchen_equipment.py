"""Equipment and readings over real gRPC, PostgreSQL and Kafka: registration with per-kind limits, the
batch ingest with per-reading rejections and request-id replays, and the consumer's rules read back
(cold-chain alert raised once and cleared, minutes out of range per day, a short disinfection cycle, a
silent unit going offline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2, readings_pb2

from services.platform.protoconv import to_timestamp
from tests.integration.industry.industry_support import read_to_end
from tests.integration.kitchen.kitchen_support import Kitchen, rid
from tests.support import wait_until

MANAGER = ("kitchen_manager",)
ZONE = ZoneInfo("Asia/Shanghai")


def _register(
    kitchen: Kitchen,
    kitchen_id: str,
    kind: kitchen_pb2.EquipmentKind.ValueType,
    *,
    name: str = "unit",
    **limits: Any,
) -> kitchen_pb2.Equipment:
    request = kitchen_pb2.RegisterEquipmentRequest(
        request_id=rid(),
        kitchen_id=kitchen_id,
        kind=kind,
        name=name,
        limits=kitchen_pb2.EquipmentLimits(**limits) if limits else None,
    )
    equipment: kitchen_pb2.Equipment = kitchen.call("RegisterEquipment", request).equipment
    return equipment


def _reading(equipment_id: str, at: datetime, temperature: float, *, running: bool = False) -> Any:
    return kitchen_pb2.EquipmentReading(
        equipment_id=equipment_id, read_at=to_timestamp(at), temperature_c=temperature, running=running
    )


def _ingest(kitchen: Kitchen, readings: list[Any], request_id: str = "", **kwargs: Any) -> Any:
    return kitchen.call(
        "IngestReadings",
        kitchen_pb2.IngestReadingsRequest(request_id=request_id or rid(), readings=readings),
        **kwargs,
    )


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details() or ""


def _units(kitchen: Kitchen, kitchen_id: str) -> dict[str, kitchen_pb2.Equipment]:
    reply = kitchen.call("ListEquipment", kitchen_pb2.ListEquipmentRequest(kitchen_id=kitchen_id))
    return {e.equipment_id: e for e in reply.equipment}


def test_registration_fills_the_kinds_defaults_and_keeps_overrides(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    fridge = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_FRIDGE, name="Fridge 1")
    assert fridge.status == kitchen_pb2.EQUIPMENT_STATUS_AWAITING
    assert fridge.limits.max_temperature_c == 8.0
    assert not fridge.limits.HasField("min_temperature_c")
    assert (fridge.limits.alert_after_minutes, fridge.limits.clear_after_minutes) == (15, 10)
    assert (fridge.limits.hysteresis_c, fridge.limits.offline_after_minutes) == (1.0, 10)
    freezer = _register(
        kitchen,
        kitchen_id,
        kitchen_pb2.EQUIPMENT_KIND_FREEZER,
        max_temperature_c=-18.0,
        alert_after_minutes=5,
    )
    assert (freezer.limits.max_temperature_c, freezer.limits.alert_after_minutes) == (-18.0, 5)
    hot = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_HOT_HOLDING)
    assert hot.limits.min_temperature_c == 60.0
    assert not hot.limits.HasField("max_temperature_c")
    cabinet = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_DISINFECTION_CABINET)
    assert (cabinet.limits.cycle_min_minutes, cabinet.limits.cycle_min_temperature_c) == (15, 120.0)
    # A maximum temperature means nothing for a UV lamp: ignored, not stored.
    lamp = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_UV_LAMP, max_temperature_c=30.0)
    assert lamp.limits.uv_daily_min_minutes == 30
    assert not lamp.limits.HasField("max_temperature_c")
    camera = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_CAMERA)

    units = _units(kitchen, kitchen_id)
    assert set(units) == {u.equipment_id for u in (fridge, freezer, hot, cabinet, lamp, camera)}
    assert units[freezer.equipment_id].limits.max_temperature_c == -18.0
    cameras = kitchen.call(
        "ListEquipment",
        kitchen_pb2.ListEquipmentRequest(kitchen_id=kitchen_id, kind=kitchen_pb2.EQUIPMENT_KIND_CAMERA),
    )
    assert [e.equipment_id for e in cameras.equipment] == [camera.equipment_id]


def test_registration_refuses_senseless_limits_and_replays_by_request_id(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    request = kitchen_pb2.RegisterEquipmentRequest(
        request_id=rid(),
        kitchen_id=kitchen_id,
        kind=kitchen_pb2.EQUIPMENT_KIND_FRIDGE,
        limits=kitchen_pb2.EquipmentLimits(alert_after_minutes=-1, hysteresis_c=-0.5),
    )
    code, details = _code(lambda: kitchen.call("RegisterEquipment", request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "limits.alert_after_minutes" in details
    assert "limits.hysteresis_c" in details
    no_kind = kitchen_pb2.RegisterEquipmentRequest(request_id=rid(), kitchen_id=kitchen_id)
    code, details = _code(lambda: kitchen.call("RegisterEquipment", no_kind))
    assert (code, "kind" in details) == (grpc.StatusCode.INVALID_ARGUMENT, True)
    assert _units(kitchen, kitchen_id) == {}

    first = kitchen_pb2.RegisterEquipmentRequest(
        request_id=rid(), kitchen_id=kitchen_id, kind=kitchen_pb2.EQUIPMENT_KIND_FRIDGE, name="Fridge"
    )
    once = kitchen.call("RegisterEquipment", first).equipment
    again = kitchen.call("RegisterEquipment", first).equipment
    assert again.equipment_id == once.equipment_id
    assert list(_units(kitchen, kitchen_id)) == [once.equipment_id]
    # Another kitchen's manager sees no such kitchen.
    code, _ = _code(
        lambda: kitchen.call(
            "ListEquipment",
            kitchen_pb2.ListEquipmentRequest(kitchen_id=kitchen_id),
            roles=MANAGER,
            scopes=("kitchen:kit_other",),
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


def _events(kitchen: Kitchen, subject: str) -> list[tuple[str, Any]]:
    return kitchen.events({subject})


def _alerts(
    kitchen: Kitchen, kitchen_id: str, kind: kitchen_pb2.AlertKind.ValueType
) -> list[kitchen_pb2.KitchenAlert]:
    reply = kitchen.call(
        "ListKitchenAlerts", kitchen_pb2.ListKitchenAlertsRequest(kitchen_id=kitchen_id, kinds=[kind])
    )
    return list(reply.alerts)


def _expected_out_seconds(starts: list[datetime]) -> dict[str, int]:
    """Each one-minute interval [start, start + 60 s) cut at local midnight, summed per local day."""
    totals: dict[str, int] = {}
    for start in starts:
        end = start + timedelta(minutes=1)
        cursor = start
        while cursor < end:
            local = cursor.astimezone(ZONE)
            midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), ZONE)
            piece_end = min(end, midnight)
            day = local.date().isoformat()
            totals[day] = totals.get(day, 0) + int((piece_end - cursor).total_seconds())
            cursor = piece_end
    return totals


def test_a_fridge_warming_for_twenty_minutes_raises_one_alert_cleared_after_recovery(
    kitchen: Kitchen,
) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    fridge = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_FRIDGE, name="Walk-in fridge")
    # Ending a minute ago, so the unit is not silent past its offline window by the end of the test.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=46)
    temperatures = [4.0] * 10 + [10.0] * 20 + [4.0] * 15
    times = [start + timedelta(minutes=m) for m in range(len(temperatures))]
    reply = _ingest(
        kitchen, [_reading(fridge.equipment_id, t, c) for t, c in zip(times, temperatures, strict=True)]
    )
    assert (reply.accepted, list(reply.rejections)) == (45, [])

    found = wait_until(
        lambda: [
            m
            for t, m in _events(kitchen, fridge.equipment_id)
            if isinstance(m, events_pb2.ColdChainAlertCleared)
        ],
        timeout_s=20,
        what="the cold-chain alert cleared",
    )
    events = _events(kitchen, fridge.equipment_id)
    raised = [m for _, m in events if isinstance(m, events_pb2.ColdChainAlertRaised)]
    assert len(raised) == 1
    assert len(found) == 1
    assert raised[0].alert_id == found[0].alert_id
    assert raised[0].out_of_range_since.ToDatetime(UTC) == times[10]
    assert raised[0].raised_at.ToDatetime(UTC) == times[25]
    assert (raised[0].limit_c, raised[0].temperature_c) == (8.0, 10.0)
    assert found[0].minutes_out_of_range == 20
    # Back at or below 7 °C from minute 30, for ten minutes.
    assert found[0].cleared_at.ToDatetime(UTC) == times[40]

    alerts = _alerts(kitchen, kitchen_id, kitchen_pb2.ALERT_KIND_COLD_CHAIN)
    assert [(a.alert_id, a.subject_id, a.severity) for a in alerts] == [
        (raised[0].alert_id, fridge.equipment_id, 4)  # common.v1 SEVERITY_HIGH
    ]
    assert alerts[0].cleared_at.ToDatetime(UTC) == times[40]

    unit = _units(kitchen, kitchen_id)[fridge.equipment_id]
    assert unit.status == kitchen_pb2.EQUIPMENT_STATUS_OK
    assert (unit.last_reading_at.ToDatetime(UTC), unit.last_temperature_c) == (times[-1], 4.0)

    expected = _expected_out_seconds(times[10:30])
    first, last = min(expected), max(expected)
    days = kitchen.call(
        "ListEquipmentDays",
        kitchen_pb2.ListEquipmentDaysRequest(
            kitchen_id=kitchen_id, equipment_id=fridge.equipment_id, from_date=first, to_date=last
        ),
    ).days
    assert {d.date: d.minutes_out_of_range for d in days} == {day: s // 60 for day, s in expected.items()}
    assert sum(d.readings for d in days) == 45


def test_a_batch_keeps_its_good_readings_and_rejects_the_bad_ones_by_field(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    fridge = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_FRIDGE)
    now = datetime.now(UTC)
    readings = [
        _reading(fridge.equipment_id, now - timedelta(minutes=3), 4.0),
        _reading("eq_does_not_exist", now - timedelta(minutes=2), 4.0),
        _reading(fridge.equipment_id, now - timedelta(minutes=2), 200.0),
        _reading(fridge.equipment_id, now - timedelta(minutes=1), 5.0),
    ]
    reply = _ingest(kitchen, readings)
    assert reply.accepted == 2
    assert [(r.index, r.field) for r in reply.rejections] == [
        (1, "readings[1].equipment_id"),
        (2, "readings[2].temperature_c"),
    ]
    wait_until(
        lambda: _units(kitchen, kitchen_id)[fridge.equipment_id].last_temperature_c == 5.0,
        timeout_s=20,
        what="the accepted readings applied",
    )
    # Another kitchen's manager may not write this kitchen's units: rejected as unknown.
    theirs = _ingest(
        kitchen,
        [_reading(fridge.equipment_id, now, 4.0)],
        roles=MANAGER,
        scopes=("kitchen:kit_elsewhere",),
    )
    assert (theirs.accepted, [r.field for r in theirs.rejections]) == (0, ["readings[0].equipment_id"])
    code, details = _code(lambda: _ingest(kitchen, []))
    assert (code, "readings" in details) == (grpc.StatusCode.INVALID_ARGUMENT, True)


def _records_of(kitchen: Kitchen, request_id: str) -> int:
    count = 0
    for record in read_to_end(kitchen.kafka_bootstrap, kitchen.settings.kitchen_readings_topic):
        batch = readings_pb2.ReadingBatch.FromString(record.value)
        count += batch.request_id == request_id
    return count


def test_a_reused_request_id_replays_or_is_refused_and_produces_nothing(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    fridge = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_FRIDGE)
    now = datetime.now(UTC)
    request_id = rid()
    first = [_reading(fridge.equipment_id, now - timedelta(minutes=1), 4.0), _reading("eq_nope", now, 4.0)]
    reply = _ingest(kitchen, first, request_id)
    assert (reply.accepted, len(reply.rejections)) == (1, 1)
    assert _ingest(kitchen, first, request_id) == reply
    code, details = _code(lambda: _ingest(kitchen, [_reading(fridge.equipment_id, now, 6.0)], request_id))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in details
    assert _records_of(kitchen, request_id) == 1


def test_a_disinfection_cycle_too_short_raises_a_violation(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    cabinet = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_DISINFECTION_CABINET)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    readings = [
        *(
            _reading(cabinet.equipment_id, start + timedelta(minutes=m), 125.0, running=True)
            for m in range(6)
        ),
        _reading(cabinet.equipment_id, start + timedelta(minutes=6), 70.0, running=False),
    ]
    assert _ingest(kitchen, readings).accepted == 7
    found = wait_until(
        lambda: [
            m
            for _, m in _events(kitchen, cabinet.equipment_id)
            if isinstance(m, events_pb2.EquipmentViolationFound)
        ],
        timeout_s=20,
        what="the short cycle found",
    )
    assert [(m.alert_kind, m.minutes, m.min_temperature_c) for m in found] == [
        (kitchen_pb2.ALERT_KIND_DISINFECTION_SHORT, 6, 125.0)
    ]
    alerts = _alerts(kitchen, kitchen_id, kitchen_pb2.ALERT_KIND_DISINFECTION_SHORT)
    assert [a.alert_id for a in alerts] == [found[0].alert_id]
    days = kitchen.call(
        "ListEquipmentDays",
        kitchen_pb2.ListEquipmentDaysRequest(
            kitchen_id=kitchen_id,
            equipment_id=cabinet.equipment_id,
            from_date=(start.astimezone(ZONE).date() - timedelta(days=1)).isoformat(),
            to_date=(start.astimezone(ZONE).date() + timedelta(days=1)).isoformat(),
        ),
    ).days
    assert [(d.cycles, d.short_cycles) for d in days] == [(1, 1)]


def test_a_unit_silent_past_its_offline_window_goes_offline(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    camera = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_CAMERA, offline_after_minutes=1)
    two_minutes_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    assert _ingest(kitchen, [_reading(camera.equipment_id, two_minutes_ago, 0.0, running=True)]).accepted == 1
    found = wait_until(
        lambda: [
            m for _, m in _events(kitchen, camera.equipment_id) if isinstance(m, events_pb2.EquipmentOffline)
        ],
        timeout_s=20,
        what="the camera offline",
    )
    assert len(found) == 1
    assert found[0].last_reading_at.ToDatetime(UTC) == two_minutes_ago
    assert _units(kitchen, kitchen_id)[camera.equipment_id].status == kitchen_pb2.EQUIPMENT_STATUS_OFFLINE
    alerts = _alerts(kitchen, kitchen_id, kitchen_pb2.ALERT_KIND_EQUIPMENT_OFFLINE)
    assert [(a.alert_id, a.HasField("cleared_at")) for a in alerts] == [(found[0].alert_id, False)]
    # A fresh heartbeat brings it back and clears the alert.
    assert (
        _ingest(kitchen, [_reading(camera.equipment_id, datetime.now(UTC), 0.0, running=True)]).accepted == 1
    )
    wait_until(
        lambda: _units(kitchen, kitchen_id)[camera.equipment_id].status == kitchen_pb2.EQUIPMENT_STATUS_OK,
        timeout_s=20,
        what="the camera back online",
    )
    alerts = _alerts(kitchen, kitchen_id, kitchen_pb2.ALERT_KIND_EQUIPMENT_OFFLINE)
    assert [a.HasField("cleared_at") for a in alerts] == [True]


def test_a_uv_lamp_short_of_its_daily_minimum_is_a_violation_once(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    lamp = _register(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_UV_LAMP)
    now = datetime.now(UTC)
    # 71 h back lies on a day at least two before today (the module's service accepts readings 4 days old),
    # so at least one whole finished day follows the first reading's, whatever the hour.
    first = (now - timedelta(hours=71)).replace(microsecond=0)
    today = now.astimezone(ZONE).date()
    judged = first.astimezone(ZONE).date() + timedelta(days=1)
    finished = [judged + timedelta(days=n) for n in range((today - judged).days)]
    noon = datetime.combine(judged, datetime.min.time(), ZONE) + timedelta(hours=12)
    readings = [
        _reading(lamp.equipment_id, first, 0.0, running=False),
        *(_reading(lamp.equipment_id, noon + timedelta(minutes=m), 0.0, running=True) for m in range(10)),
        _reading(lamp.equipment_id, noon + timedelta(minutes=10), 0.0, running=False),
    ]
    assert _ingest(kitchen, readings).accepted == 12
    found = wait_until(
        lambda: [
            m
            for _, m in _events(kitchen, lamp.equipment_id)
            if isinstance(m, events_pb2.EquipmentViolationFound)
        ],
        timeout_s=20,
        what="the short UV days found",
    )
    # Only the finished day after the first reading's is judged (the lamp is silent since: offline too).
    wait_until(
        lambda: _units(kitchen, kitchen_id)[lamp.equipment_id].status == kitchen_pb2.EQUIPMENT_STATUS_OFFLINE,
        timeout_s=20,
        what="the lamp offline",
    )
    found = [
        m for _, m in _events(kitchen, lamp.equipment_id) if isinstance(m, events_pb2.EquipmentViolationFound)
    ]
    # Every finished day after the first reading's is judged once: 10 minutes on the first, none after.
    assert [(m.alert_kind, m.date, m.minutes) for m in found] == [
        (kitchen_pb2.ALERT_KIND_UV_SHORT, day.isoformat(), 10 if day == judged else 0) for day in finished
    ]
    days = kitchen.call(
        "ListEquipmentDays",
        kitchen_pb2.ListEquipmentDaysRequest(
            kitchen_id=kitchen_id, from_date=judged.isoformat(), to_date=judged.isoformat()
        ),
    ).days
    assert [(d.equipment_id, d.uv_minutes, d.readings) for d in days] == [(lamp.equipment_id, 10, 11)]
