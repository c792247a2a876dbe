"""The equipment rules without sockets: limits per kind, reading screening, the per-unit state machine
(cold chain with hysteresis, minutes out of range per local day, disinfection cycles, UV minutes, service
coverage, late readings), and the ingest use case on a fake unit of work and producer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cityhub.kitchen.v1 import kitchen_pb2
from kafka.errors import KafkaTimeoutError

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.equipment import (
    AlertCleared,
    AlertRaised,
    CycleFinished,
    Equipment,
    EquipmentKind,
    EquipmentLimits,
    EquipmentStatus,
    LimitOverrides,
    ListEquipmentDays,
    OfflineCleared,
    Outcome,
    Reading,
    ReadingInput,
    RegisterEquipment,
    UnitRef,
    UnitState,
    apply_readings,
    check_ingest,
    effective_limits,
    screen_readings,
    split_by_day,
    uv_days_to_judge,
)
from services.kitchen.usecases.common import KitchenConfig, KitchenContext
from services.kitchen.usecases.readings import ReadingsIngest
from services.platform.breaker import Breaker
from services.platform.errors import InvalidArgumentError, UnavailableError
from services.platform.protoconv import to_timestamp
from services.platform.uow import FakeUnitOfWork

ZONE = ZoneInfo("Asia/Shanghai")
# 10:00 local on a plain day: far from midnight, inside no service hours unless a test says so.
MORNING = datetime(2025, 3, 10, 10, 0, tzinfo=ZONE)
DAY = MORNING.date()
LUNCH = [(9 * 60, 13 * 60 + 30)]


def _unit(kind: EquipmentKind, **overrides: float) -> Equipment:
    return Equipment(
        "eq_1",
        "kit_1",
        kind,
        "unit",
        effective_limits(kind, LimitOverrides(**overrides)),  # type: ignore[arg-type]
        EquipmentStatus.AWAITING,
        None,
        None,
        MORNING - timedelta(days=1),
    )


def _series(start: datetime, *runs: tuple[int, float], running: bool = False) -> list[Reading]:
    """One reading a minute: ``runs`` of (minutes, temperature)."""
    readings: list[Reading] = []
    minute = 0
    for minutes, temperature in runs:
        for _ in range(minutes):
            readings.append(Reading("eq_1", start + timedelta(minutes=minute), temperature, running))
            minute += 1
    return readings


def _apply(
    unit: Equipment,
    state: UnitState,
    readings: list[Reading],
    *,
    now: datetime | None = None,
    service: list[tuple[int, int]] | None = None,
) -> Outcome:
    ids = count(1)
    return apply_readings(
        unit,
        state,
        readings,
        zone=ZONE,
        service=service or [],
        now=now or (readings[-1].read_at if readings else MORNING),
        new_alert_id=lambda: f"kal_{next(ids)}",
    )


# --- limits --------------------------------------------------------------------------------------------


def test_each_kind_gets_its_defaults_and_overrides_apply_only_where_they_mean_something() -> None:
    fridge = effective_limits(EquipmentKind.FRIDGE, LimitOverrides())
    assert fridge == EquipmentLimits(
        max_temperature_c=8.0, alert_after_minutes=15, clear_after_minutes=10, hysteresis_c=1.0
    )
    assert effective_limits(EquipmentKind.FREEZER, LimitOverrides()).max_temperature_c == -12.0
    hot = effective_limits(EquipmentKind.HOT_HOLDING, LimitOverrides())
    assert (hot.min_temperature_c, hot.max_temperature_c) == (60.0, None)
    cabinet = effective_limits(EquipmentKind.DISINFECTION_CABINET, LimitOverrides(cycle_min_minutes=20))
    assert (cabinet.cycle_min_minutes, cabinet.cycle_min_temperature_c) == (20, 120.0)
    lamp = effective_limits(EquipmentKind.UV_LAMP, LimitOverrides(max_temperature_c=30.0))
    assert (lamp.max_temperature_c, lamp.uv_daily_min_minutes, lamp.offline_after_minutes) == (None, 30, 10)
    assert (
        effective_limits(EquipmentKind.CAMERA, LimitOverrides(offline_after_minutes=2)).offline_after_minutes
        == 2
    )


def test_senseless_limits_are_named_every_one() -> None:
    command = RegisterEquipment(
        "r-1",
        "kit_1",
        EquipmentKind.FRIDGE,
        "Fridge",
        LimitOverrides(
            alert_after_minutes=-1, hysteresis_c=-0.5, offline_after_minutes=0, max_temperature_c=400
        ),
    )
    with pytest.raises(InvalidArgumentError) as caught:
        command.check()
    assert {v.field for v in caught.value.violations} == {
        "limits.alert_after_minutes",
        "limits.hysteresis_c",
        "limits.offline_after_minutes",
        "limits.max_temperature_c",
    }
    with pytest.raises(InvalidArgumentError) as caught:
        RegisterEquipment("", "", None, "", LimitOverrides()).check()
    assert {v.field for v in caught.value.violations} == {"request_id", "kitchen_id", "kind"}


def test_days_query_names_bad_dates_and_caps_the_period() -> None:
    assert ListEquipmentDays("kit_1", "", "2025-01-01", "2025-12-31").check() == (
        date(2025, 1, 1),
        date(2025, 12, 31),
    )
    for first, last, bad in (
        ("2025-1-1", "2025-01-02", "from_date"),
        ("2025-01-02", "2025-01-01", "to_date"),
        ("2024-01-01", "2025-01-01", "to_date"),  # 367 days
        ("2025-01-01", "", "to_date"),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            ListEquipmentDays("kit_1", "", first, last).check()
        assert [v.field for v in caught.value.violations] == [bad]


# --- screening -----------------------------------------------------------------------------------------


def test_each_reading_is_screened_on_its_own() -> None:
    now = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
    units = {
        "fridge": UnitRef("kit_1", "site_1", EquipmentKind.FRIDGE),
        "lamp": UnitRef("kit_1", "site_1", EquipmentKind.UV_LAMP),
        "theirs": UnitRef("kit_2", "site_2", EquipmentKind.FRIDGE),
    }
    readings = [
        ReadingInput("fridge", now, 4.0, running=False),
        ReadingInput("nope", now, 4.0, running=False),
        ReadingInput("fridge", now, 200.0, running=False),
        ReadingInput("lamp", now, 999.0, running=True),  # a lamp's temperature means nothing
        ReadingInput("theirs", now, 4.0, running=False),
        ReadingInput("fridge", now + timedelta(minutes=6), 4.0, running=False),
        ReadingInput("fridge", now - timedelta(days=3), 4.0, running=False),
        ReadingInput("fridge", None, 4.0, running=False),
        ReadingInput("fridge", now, float("nan"), running=False),
    ]
    screened = screen_readings(
        readings,
        units,
        lambda unit: unit.kitchen_id == "kit_1",
        now=now,
        max_future=timedelta(minutes=5),
        max_age=timedelta(days=2),
    )
    assert screened.accepted == {"kit_1": [0, 3]}
    assert [(r.index, r.field) for r in screened.rejections] == [
        (1, "readings[1].equipment_id"),
        (2, "readings[2].temperature_c"),
        (4, "readings[4].equipment_id"),
        (5, "readings[5].read_at"),
        (6, "readings[6].read_at"),
        (7, "readings[7].read_at"),
        (8, "readings[8].temperature_c"),
    ]
    # Another kitchen's unit is answered exactly as an unknown one.
    assert screened.rejections[0].reason == screened.rejections[2].reason


def test_request_level_problems_refuse_the_whole_request() -> None:
    check_ingest("r-1", 1, 10)
    for request_id, size, field in (("", 1, "request_id"), ("r-1", 0, "readings"), ("r-1", 11, "readings")):
        with pytest.raises(InvalidArgumentError) as caught:
            check_ingest(request_id, size, 10)
        assert [v.field for v in caught.value.violations] == [field]


# --- cold chain ------------------------------------------------------------------------------------------


def test_a_fridge_warming_for_twenty_minutes_raises_one_alert_and_clears_after_recovery() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE), UnitState()
    outcome = _apply(fridge, state, _series(MORNING, (10, 4.0), (20, 10.0), (15, 4.0)))
    raised = [h for h in outcome.happenings if isinstance(h, AlertRaised)]
    cleared = [h for h in outcome.happenings if isinstance(h, AlertCleared)]
    assert raised == [
        AlertRaised("kal_1", MORNING + timedelta(minutes=10), 8.0, 10.0, MORNING + timedelta(minutes=25))
    ]
    # Back at or below 7 °C from minute 30; cleared ten minutes later.
    assert cleared == [AlertCleared("kal_1", 20, MORNING + timedelta(minutes=40))]
    assert outcome.days[DAY].seconds_out_of_range == 20 * 60
    assert outcome.days[DAY].readings == 45
    assert state.status(EquipmentKind.FRIDGE) is EquipmentStatus.OK
    assert state.last_temperature_c == 4.0


def test_noise_around_the_limit_never_raises_an_alert() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE), UnitState()
    readings = [
        Reading("eq_1", MORNING + timedelta(minutes=m), 8.3 if m % 2 else 7.8, False) for m in range(120)
    ]
    outcome = _apply(fridge, state, readings)
    assert outcome.happenings == []
    # Half of the time out of range, counted all the same (the last reading's minute is still open:
    # an interval ends at the next reading).
    assert outcome.days[DAY].seconds_out_of_range == 59 * 60
    assert state.status(EquipmentKind.FRIDGE) is EquipmentStatus.OUT_OF_RANGE


def test_inside_the_limit_but_not_by_the_hysteresis_never_clears() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE), UnitState()
    first = _apply(fridge, state, _series(MORNING, (16, 9.0), (60, 7.5)))
    assert [type(h) for h in first.happenings] == [AlertRaised]
    assert state.status(EquipmentKind.FRIDGE) is EquipmentStatus.ALERTING
    # Noise between 6.9 and 7.5 restarts the clear window each time it rises above 7 °C.
    noisy = [
        Reading("eq_1", MORNING + timedelta(minutes=76 + m), 7.5 if m % 5 == 4 else 6.9, False)
        for m in range(30)
    ]
    assert _apply(fridge, state, noisy).happenings == []
    later = _apply(fridge, state, _series(MORNING + timedelta(minutes=106), (11, 6.5)))
    assert later.happenings == [AlertCleared("kal_1", 16, MORNING + timedelta(minutes=116))]


def test_hot_holding_mirrors_the_rule_with_a_minimum() -> None:
    cabinet, state = _unit(EquipmentKind.HOT_HOLDING), UnitState()
    outcome = _apply(cabinet, state, _series(MORNING, (5, 65.0), (16, 58.0), (10, 60.5), (11, 61.0)))
    kinds = [type(h) for h in outcome.happenings]
    assert kinds == [AlertRaised, AlertCleared]
    raised, cleared = outcome.happenings
    assert isinstance(raised, AlertRaised)
    assert isinstance(cleared, AlertCleared)
    assert (raised.limit_c, raised.at) == (60.0, MORNING + timedelta(minutes=20))
    # 60.5 is in range (no longer out) but not by the 1 °C hysteresis: only 61 °C counts towards clearing.
    assert cleared.at == MORNING + timedelta(minutes=41)
    assert cleared.minutes_out_of_range == 16


def test_a_silence_longer_than_the_offline_window_is_not_counted_nor_continuous() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE), UnitState()
    readings = [
        Reading("eq_1", MORNING, 10.0, False),
        Reading("eq_1", MORNING + timedelta(minutes=60), 10.0, False),
        Reading("eq_1", MORNING + timedelta(minutes=70), 4.0, False),
    ]
    outcome = _apply(fridge, state, readings)
    # The first reading describes at most the 10-minute offline window, the second its 10 minutes.
    assert outcome.days[DAY].seconds_out_of_range == 20 * 60
    # Out at 10:00 and at 11:00 is not "continuously out for 15 minutes": no alert.
    assert outcome.happenings == []


def test_minutes_out_of_range_are_split_at_local_midnight() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE, alert_after_minutes=60), UnitState()
    start = datetime(2025, 3, 10, 23, 50, tzinfo=ZONE)
    outcome = _apply(fridge, state, _series(start, (20, 9.0), (1, 4.0)))
    assert outcome.days[date(2025, 3, 10)].seconds_out_of_range == 600
    assert outcome.days[date(2025, 3, 11)].seconds_out_of_range == 600
    assert (outcome.days[date(2025, 3, 10)].readings, outcome.days[date(2025, 3, 11)].readings) == (10, 11)
    assert split_by_day(start, start + timedelta(minutes=20), ZONE)[0] == (
        date(2025, 3, 10),
        start,
        datetime(2025, 3, 11, tzinfo=ZONE),
    )


def test_a_late_reading_is_counted_but_moves_nothing() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE), UnitState()
    _apply(fridge, state, _series(MORNING, (20, 4.0)))
    before = UnitState.from_json(state.as_json())
    late = _apply(fridge, state, [Reading("eq_1", MORNING + timedelta(minutes=5), 30.0, False)])
    assert late.happenings == []
    assert late.days[DAY].readings == 1
    assert late.days[DAY].seconds_out_of_range == 0
    assert state == before


def test_a_fresh_reading_clears_the_offline_alert_and_an_old_one_does_not() -> None:
    fridge = _unit(EquipmentKind.FRIDGE)
    state = UnitState(last_at=MORNING, offline_alert_id="kal_off")
    assert state.status(EquipmentKind.FRIDGE) is EquipmentStatus.OFFLINE
    now = MORNING + timedelta(hours=2)
    backfill = _apply(fridge, state, [Reading("eq_1", MORNING + timedelta(minutes=30), 4.0, False)], now=now)
    assert backfill.happenings == []
    fresh = _apply(fridge, state, [Reading("eq_1", now - timedelta(minutes=1), 4.0, False)], now=now)
    assert fresh.happenings == [OfflineCleared("kal_off", now - timedelta(minutes=1))]
    assert state.status(EquipmentKind.FRIDGE) is EquipmentStatus.OK


# --- disinfection, UV, service coverage --------------------------------------------------------------------


def test_disinfection_cycles_too_short_or_too_cool_are_short() -> None:
    cabinet, state = _unit(EquipmentKind.DISINFECTION_CABINET), UnitState()
    readings = [
        *_series(MORNING, (10, 125.0), running=True),  # 10 minutes: short
        Reading("eq_1", MORNING + timedelta(minutes=10), 80.0, False),
        *_series(MORNING + timedelta(minutes=30), (10, 125.0), (1, 115.0), (9, 125.0), running=True),  # cool
        Reading("eq_1", MORNING + timedelta(minutes=50), 90.0, False),
        *_series(MORNING + timedelta(minutes=60), (16, 121.0), running=True),  # 16 minutes at 121: fine
        Reading("eq_1", MORNING + timedelta(minutes=76), 90.0, False),
    ]
    outcome = _apply(cabinet, state, readings)
    cycles = [h for h in outcome.happenings if isinstance(h, CycleFinished)]
    assert [(c.minutes, c.min_temperature_c, c.short) for c in cycles] == [
        (10, 125.0, True),
        (20, 115.0, True),
        (16, 121.0, False),
    ]
    assert (outcome.days[DAY].cycles, outcome.days[DAY].short_cycles) == (3, 2)


def test_uv_minutes_are_summed_per_day_and_judged_from_the_next_day() -> None:
    lamp, state = _unit(EquipmentKind.UV_LAMP), UnitState()
    readings = [
        *_series(MORNING, (40, 0.0), running=True),
        Reading("eq_1", MORNING + timedelta(minutes=40), 0, False),
    ]
    outcome = _apply(lamp, state, readings)
    assert outcome.days[DAY].uv_seconds == 40 * 60
    assert state.judge_from == DAY + timedelta(days=1)
    assert uv_days_to_judge(state.judge_from, DAY + timedelta(days=1)) == []
    assert uv_days_to_judge(state.judge_from, DAY + timedelta(days=3)) == [
        DAY + timedelta(days=1),
        DAY + timedelta(days=2),
    ]


def test_camera_heartbeats_cover_the_service_hours_they_span() -> None:
    camera, state = _unit(EquipmentKind.CAMERA), UnitState()
    start = datetime(2025, 3, 10, 8, 50, tzinfo=ZONE)
    outcome = _apply(camera, state, _series(start, (31, 0.0), running=True), service=LUNCH)
    figures = outcome.days[DAY]
    # 09:00 to 09:20: the last heartbeat's interval ends only when the next one arrives.
    assert figures.online_service_seconds == 20 * 60
    assert figures.service_seconds == 270 * 60
    assert state.last_temperature_c is None


def test_state_survives_its_json_form() -> None:
    fridge, state = _unit(EquipmentKind.FRIDGE), UnitState()
    _apply(fridge, state, _series(MORNING, (20, 10.0), (3, 4.0)))
    assert state.alert_id is not None
    assert UnitState.from_json(state.as_json()) == state


# --- the ingest use case, on a fake unit of work and a fake producer --------------------------------------


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self._error = error

    def get(self, timeout: float) -> None:  # noqa: ARG002 - the producer's future's signature
        if self._error is not None:
            raise self._error


class _Producer:
    def __init__(self) -> None:
        self.down = False
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, **record: Any) -> _Future:
        self.sent.append({"topic": topic, **record})
        return _Future(KafkaTimeoutError("no ack") if self.down else None)


class _Units:
    def __init__(self, units: dict[str, tuple[Equipment, str]]) -> None:
        self.units = units

    def equipment_by_ids(self, ids: Any) -> dict[str, tuple[Equipment, str]]:
        return {i: self.units[i] for i in set(ids) if i in self.units}


def test_kafka_down_answers_unavailable_and_a_retry_with_the_same_id_goes_through() -> None:
    now = datetime.now(UTC)
    fridge = _unit(EquipmentKind.FRIDGE)
    repo = _Units({fridge.equipment_id: (fridge, "site_1")})
    uow: FakeUnitOfWork[Any] = FakeUnitOfWork(repo)
    producer = _Producer()
    ctx = KitchenContext(
        uow=uow,
        config=KitchenConfig(),
        vault=None,  # type: ignore[arg-type]
        sites=None,  # type: ignore[arg-type]
        clock=lambda: now,
        producer=producer,
        kafka_breaker=Breaker("Kafka", threshold=5),
    )
    ingest = ReadingsIngest(ctx)
    readings = [
        kitchen_pb2.EquipmentReading(equipment_id="eq_1", read_at=to_timestamp(now), temperature_c=4.0),
        kitchen_pb2.EquipmentReading(equipment_id="eq_1", read_at=to_timestamp(now), temperature_c=5.0),
        kitchen_pb2.EquipmentReading(equipment_id="eq_x", read_at=to_timestamp(now), temperature_c=5.0),
    ]
    producer.down = True
    with pytest.raises(UnavailableError):
        ingest.ingest("r-1", readings, Visibility.of(everything=True))
    producer.down = False
    result = ingest.ingest("r-1", readings, Visibility.of(everything=True))
    assert (result.accepted, [r.field for r in result.rejections]) == (2, ["readings[2].equipment_id"])
    # One record per kitchen, keyed by it, with the same CloudEvents id on the retry (the consumer skips
    # what got through twice).
    assert [r["key"] for r in producer.sent] == [b"kit_1", b"kit_1"]
    ids = [dict(r["headers"])["ce_id"] for r in producer.sent]
    assert ids[0] == ids[1]
    # A replay answers the stored result without producing.
    assert ingest.ingest("r-1", readings, Visibility.of(everything=True)) == result
    assert len(producer.sent) == 2
