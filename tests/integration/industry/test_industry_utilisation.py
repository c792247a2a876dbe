"""A simulated shift: telemetry with known running, idle, stopped and fault periods gives exactly the
expected availability, performance, quality and OEE per device, workshop, enterprise and park, per hour
and per day; fault and silence raise device alerts and recovery clears them; finished hours are
published; digital workshops follow the share of machines reporting.

The shift is 00:00-08:00 UTC (08:00-16:00 in Luqiao) two days ago:

* CNC machine A (ideal cycle 30 s, a sample per minute): running 00-02, idle 02:00-02:30, fault
  02:30-03:00, stopped (lunch, planned) 03-04, running 04-08. Two parts in even running minutes, one in
  odd ones (540 parts), the first 27 double-part minutes with one reject.
  run 21 600 s, planned 25 200 s -> A = 6/7; P = 30 x 540 / 21 600 = 0.75; Q = 513/540 = 0.95.
* Moulding machine B (ideal 45 s, a sample every 30 s): running 00-06 with a good part every other
  sample (360 parts), fault 06-08.  A = 0.75, P = 45 x 360 / 21 600 = 0.75, Q = 1.
* Press C of the second enterprise (ideal 10 s, a sample per minute), three good parts per running
  minute: three days ago running 00:00-04:00 then idle (OEE 0.25); two days ago running 00:00-05:24 then
  idle (OEE 0.3375): +35%.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import events_pb2, industry_pb2, telemetry_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tests.integration.industry.industry_support import Industry, credit_code
from tests.support import wait_until

pytestmark = pytest.mark.integration

RUNNING = telemetry_pb2.DEVICE_STATE_RUNNING
IDLE = telemetry_pb2.DEVICE_STATE_IDLE
STOPPED = telemetry_pb2.DEVICE_STATE_STOPPED
FAULT = telemetry_pb2.DEVICE_STATE_FAULT
HOUR = 3_600_000
MINUTE = 60_000

DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
SHIFT_START = int(DAY.timestamp() * 1000)
BASE_DAY_START = SHIFT_START - 24 * HOUR


def _stamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _period(start_ms: int, end_ms: int) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=_stamp(start_ms), end_time=_stamp(end_ms))


def _segment(
    device_id: str,
    start_ms: int,
    count: int,
    interval_ms: int,
    state: int,
    *,
    parts: Callable[[int], tuple[int, int]] = lambda _i: (0, 0),
) -> list[telemetry_pb2.TelemetrySample]:
    samples = []
    for i in range(count):
        good, bad = parts(i) if state == RUNNING else (0, 0)
        samples.append(
            telemetry_pb2.TelemetrySample(
                device_id=device_id,
                time_unix_ms=start_ms + i * interval_ms,
                state=state,  # type: ignore[arg-type]
                good_count=good,
                reject_count=bad,
                power_kw=9.0 if state == RUNNING else 1.0,
                spindle_load_pct=55.0 if state == RUNNING else 0.0,
                temperature_c=48.0,
            )
        )
    return samples


def _a_parts(offset: int) -> Callable[[int], tuple[int, int]]:
    """Running minute k (counted over the whole shift): 2 parts when k is even, else 1; the first 27
    double-part minutes carry one reject."""

    def parts(i: int) -> tuple[int, int]:
        k = offset + i
        if k % 2 == 0:
            return (1, 1) if k < 54 else (2, 0)
        return 1, 0

    return parts


def _send(industry: Industry, samples: list[telemetry_pb2.TelemetrySample]) -> None:
    response = industry.call(
        "IngestTelemetry",
        industry_pb2.IngestTelemetryRequest(request_id=secrets.token_hex(8), samples=samples),
    )
    assert response.rejected_count == 0, list(response.rejections)[:3]
    assert response.accepted_count == len(samples)


@pytest.fixture(scope="module")
def shift(industry: Industry) -> dict[str, Any]:
    park = industry.park()
    first = industry.enterprise(credit_code(201), park.park_id, "Moulds Co.")
    second = industry.enterprise(credit_code(202), park.park_id, "Presses Co.")
    a = industry.device(first.credit_code, workshop="W1", ideal_cycle_seconds=30, sample_interval_ms=MINUTE)
    b = industry.device(
        first.credit_code,
        workshop="W1",
        machine_type=industry_pb2.MACHINE_TYPE_INJECTION_MOULDING,
        ideal_cycle_seconds=45,
        sample_interval_ms=30_000,
    )
    c = industry.device(
        second.credit_code,
        workshop="Press hall",
        machine_type=industry_pb2.MACHINE_TYPE_STAMPING_PRESS,
        rated_power_kw=40,
        ideal_cycle_seconds=10,
        sample_interval_ms=MINUTE,
    )
    a_id, b_id, c_id = a.device_id, b.device_id, c.device_id
    three = lambda _i: (3, 0)  # noqa: E731 - a tiny parts rule
    every_other = lambda i: (1, 0) if i % 2 == 0 else (0, 0)  # noqa: E731
    _send(
        industry,
        [
            *_segment(a_id, SHIFT_START, 120, MINUTE, RUNNING, parts=_a_parts(0)),
            *_segment(a_id, SHIFT_START + 2 * HOUR, 30, MINUTE, IDLE),
            *_segment(a_id, SHIFT_START + 2 * HOUR + 30 * MINUTE, 30, MINUTE, FAULT),
            *_segment(a_id, SHIFT_START + 3 * HOUR, 60, MINUTE, STOPPED),
            *_segment(a_id, SHIFT_START + 4 * HOUR, 240, MINUTE, RUNNING, parts=_a_parts(120)),
        ],
    )
    # B's samples come in two requests, the later hours first: the rollup does not depend on order.
    _send(industry, _segment(b_id, SHIFT_START + 6 * HOUR, 240, 30_000, FAULT))
    _send(industry, _segment(b_id, SHIFT_START, 720, 30_000, RUNNING, parts=every_other))
    _send(
        industry,
        [
            *_segment(c_id, BASE_DAY_START, 240, MINUTE, RUNNING, parts=three),
            *_segment(c_id, BASE_DAY_START + 4 * HOUR, 240, MINUTE, IDLE),
            *_segment(c_id, SHIFT_START, 324, MINUTE, RUNNING, parts=three),
            *_segment(c_id, SHIFT_START + 324 * MINUTE, 156, MINUTE, IDLE),
        ],
    )
    return {"park": park, "first": first, "second": second, "a": a_id, "b": b_id, "c": c_id}


def _utilisation(
    industry: Industry,
    subject: industry_pb2.UtilisationSubject,
    start_ms: int = SHIFT_START,
    end_ms: int = SHIFT_START + 8 * HOUR,
    granularity: int = industry_pb2.GRANULARITY_UNSPECIFIED,
) -> industry_pb2.GetUtilisationResponse:
    return industry.call(  # type: ignore[no-any-return]
        "GetUtilisation",
        industry_pb2.GetUtilisationRequest(
            subject=subject,
            period=_period(start_ms, end_ms),
            granularity=granularity,  # type: ignore[arg-type]
        ),
    )


def _settled(industry: Industry, shift: dict[str, Any]) -> None:
    """Wait until the rollup consumer has counted every sample of the shift (8 h per device)."""

    def counted() -> bool:
        park = _utilisation(
            industry,
            industry_pb2.UtilisationSubject(park_id=shift["park"].park_id),
            BASE_DAY_START,
            SHIFT_START + 8 * HOUR,
        ).total
        reported = park.running_seconds + park.idle_seconds + park.stopped_seconds + park.fault_seconds
        return reported == 4 * 8 * 3600

    wait_until(counted, timeout_s=60, what="the rollup to count the whole shift", interval_s=0.3)


def _figures(
    f: industry_pb2.UtilisationFigures,
) -> tuple[float, float, float, float, float, float, int, int, float]:
    return (
        f.running_seconds,
        f.idle_seconds,
        f.stopped_seconds,
        f.fault_seconds,
        f.planned_seconds,
        f.ideal_seconds,
        f.good_count,
        f.reject_count,
        f.oee,
    )


def test_machine_a_over_the_shift(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    total = _utilisation(industry, industry_pb2.UtilisationSubject(device_id=shift["a"])).total
    assert (total.running_seconds, total.idle_seconds, total.stopped_seconds, total.fault_seconds) == (
        21_600,
        1_800,
        3_600,
        1_800,
    )
    assert total.planned_seconds == 25_200
    assert (total.good_count, total.reject_count) == (513, 27)
    assert total.ideal_seconds == 16_200
    assert total.availability == pytest.approx(6 / 7, rel=1e-12)
    assert total.performance == pytest.approx(0.75, rel=1e-12)
    assert total.quality == pytest.approx(0.95, rel=1e-12)
    assert total.oee == pytest.approx(6 / 7 * 0.75 * 0.95, rel=1e-12)


def test_machine_a_per_hour(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    hours = _utilisation(
        industry,
        industry_pb2.UtilisationSubject(device_id=shift["a"]),
        granularity=industry_pb2.GRANULARITY_HOUR,
    ).buckets
    assert [b.start_at.ToMilliseconds() - SHIFT_START for b in hours] == [h * HOUR for h in range(8)]
    assert all(b.end_at.ToMilliseconds() - b.start_at.ToMilliseconds() == HOUR for b in hours)
    third = hours[2].figures  # idle half an hour, fault half an hour: planned but nothing ran
    assert (third.running_seconds, third.idle_seconds, third.fault_seconds) == (0, 1800, 1800)
    assert (third.availability, third.oee) == (0.0, 0.0)
    lunch = hours[3].figures  # stopped is planned downtime: no planned time at all
    assert (lunch.stopped_seconds, lunch.planned_seconds, lunch.availability) == (3600, 0, 0.0)
    first = hours[0].figures  # 60 running minutes, 90 parts, 27 of them rejects
    assert (first.availability, first.good_count, first.reject_count) == (1.0, 63, 27)
    assert first.performance == pytest.approx(30 * 90 / 3600, rel=1e-12)


def test_machine_b_and_the_workshop(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    b = _utilisation(industry, industry_pb2.UtilisationSubject(device_id=shift["b"])).total
    assert _figures(b)[:8] == (21_600, 0, 0, 7_200, 28_800, 16_200, 360, 0)
    assert (b.availability, b.performance, b.quality) == (0.75, 0.75, 1.0)
    workshop = _utilisation(
        industry,
        industry_pb2.UtilisationSubject(
            workshop=industry_pb2.WorkshopRef(credit_code=shift["first"].credit_code, workshop="W1")
        ),
    ).total
    # Sums first, ratios from the sums: run 43 200 of planned 54 000, ideal 32 400, 873 good of 900.
    assert _figures(workshop)[:8] == (43_200, 1_800, 3_600, 9_000, 54_000, 32_400, 873, 27)
    assert workshop.availability == pytest.approx(0.8, rel=1e-12)
    assert workshop.performance == pytest.approx(0.75, rel=1e-12)
    assert workshop.quality == pytest.approx(0.97, rel=1e-12)
    assert workshop.oee == pytest.approx(0.8 * 0.75 * 0.97, rel=1e-12)
    enterprise = _utilisation(
        industry, industry_pb2.UtilisationSubject(credit_code=shift["first"].credit_code)
    ).total
    assert _figures(enterprise) == _figures(workshop)


def test_the_park_per_day(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    days = _utilisation(
        industry,
        industry_pb2.UtilisationSubject(park_id=shift["park"].park_id),
        BASE_DAY_START,
        SHIFT_START + 8 * HOUR,
        industry_pb2.GRANULARITY_DAY,
    ).buckets
    # Luqiao days (UTC+8): the shift 00-08 UTC is 08-16 local, inside one local day each.
    assert [b.start_at.ToMilliseconds() for b in days] == [
        BASE_DAY_START - 8 * HOUR,
        SHIFT_START - 8 * HOUR,
    ]
    base, shift_day = days[0].figures, days[1].figures
    assert _figures(base)[:8] == (14_400, 14_400, 0, 0, 28_800, 7_200, 720, 0)
    assert base.oee == pytest.approx(0.25, rel=1e-12)
    # A + B + C on the shift day: run 43 200 + 19 440, planned 54 000 + 28 800, ideal 32 400 + 9 720.
    assert _figures(shift_day)[:8] == (62_640, 1_800 + 9_360, 3_600, 9_000, 82_800, 42_120, 873 + 972, 27)
    assert shift_day.availability == pytest.approx(62_640 / 82_800, rel=1e-12)
    assert shift_day.performance == pytest.approx(42_120 / 62_640, rel=1e-12)
    assert shift_day.quality == pytest.approx(1845 / 1872, rel=1e-12)


def test_the_change_between_two_periods(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    response = industry.call(
        "CompareUtilisation",
        industry_pb2.CompareUtilisationRequest(
            subject=industry_pb2.UtilisationSubject(device_id=shift["c"]),
            base_period=_period(BASE_DAY_START, BASE_DAY_START + 8 * HOUR),
            compare_period=_period(SHIFT_START, SHIFT_START + 8 * HOUR),
        ),
    )
    assert response.base.oee == pytest.approx(0.25, rel=1e-12)
    assert response.compare.oee == pytest.approx(0.3375, rel=1e-12)
    assert response.change.oee == pytest.approx(0.35, rel=1e-9)
    assert response.change.availability == pytest.approx(0.35, rel=1e-9)
    assert response.change.performance == pytest.approx(0.0, abs=1e-12)


def test_state_changes_and_a_fault_alert_that_clears(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    a = shift["a"]
    found = industry.wait_for_events(
        {a},
        lambda evs: sum(t.endswith("DeviceAlertCleared") for t, _ in evs) >= 1,
        what="A's fault alert to clear",
    )
    changes = [m for _, m in found if isinstance(m, events_pb2.DeviceStateChanged)]
    assert [(c.previous_state, c.state, c.changed_at.ToMilliseconds() - SHIFT_START) for c in changes] == [
        (telemetry_pb2.DEVICE_STATE_UNSPECIFIED, RUNNING, 0),
        (RUNNING, IDLE, 2 * HOUR),
        (IDLE, FAULT, 2 * HOUR + 30 * MINUTE),
        (FAULT, STOPPED, 3 * HOUR),
        (STOPPED, RUNNING, 4 * HOUR),
    ]
    raised = [
        m
        for _, m in found
        if isinstance(m, events_pb2.DeviceAlertRaised) and m.kind == industry_pb2.DEVICE_ALERT_KIND_FAULT
    ]
    cleared = [
        m
        for _, m in found
        if isinstance(m, events_pb2.DeviceAlertCleared) and m.kind == industry_pb2.DEVICE_ALERT_KIND_FAULT
    ]
    assert len(raised) == len(cleared) == 1
    # Ten minutes (the configured fault_alert_after_s) into the fault; cleared when it stopped.
    assert raised[0].condition_since_at.ToMilliseconds() == SHIFT_START + 2 * HOUR + 30 * MINUTE
    assert raised[0].raised_at.ToMilliseconds() == SHIFT_START + 2 * HOUR + 40 * MINUTE
    assert raised[0].severity == common_pb2.SEVERITY_HIGH
    assert cleared[0].alert_id == raised[0].alert_id
    assert cleared[0].cleared_at.ToMilliseconds() == SHIFT_START + 3 * HOUR
    # B is still in fault at the end of the shift: its alert stays open.
    alerts = industry.call(
        "ListDeviceAlerts", industry_pb2.ListDeviceAlertsRequest(device_id=shift["b"], open_only=True)
    ).alerts
    assert [x.kind for x in alerts if x.kind == industry_pb2.DEVICE_ALERT_KIND_FAULT] == [
        industry_pb2.DEVICE_ALERT_KIND_FAULT
    ]


def test_finished_hours_are_published(industry: Industry, shift: dict[str, Any]) -> None:
    _settled(industry, shift)
    found = industry.wait_for_events(
        {shift["a"]},
        lambda evs: sum(t.endswith("UtilisationRolledUp") for t, _ in evs) >= 8,
        what="eight hourly rollups of A",
    )
    hours = {
        m.hour_started_at.ToMilliseconds() - SHIFT_START: m
        for _, m in found
        if isinstance(m, events_pb2.UtilisationRolledUp)
    }
    assert sorted(hours) == [h * HOUR for h in range(8)]
    first = hours[0]
    assert (first.workshop, first.credit_code) == ("W1", shift["first"].credit_code)
    assert (first.figures.running_seconds, first.figures.good_count, first.figures.reject_count) == (
        3600,
        63,
        27,
    )


def test_a_silent_device_raises_and_clears_an_offline_alert(
    industry: Industry, shift: dict[str, Any]
) -> None:
    device = industry.device(shift["second"].credit_code, workshop="Press hall", sample_interval_ms=1000)
    device_id = device.device_id

    def sample() -> None:
        _send(
            industry,
            [
                telemetry_pb2.TelemetrySample(
                    device_id=device_id,
                    time_unix_ms=time.time_ns() // 1_000_000,
                    state=RUNNING,
                    good_count=1,
                    power_kw=5.0,
                    temperature_c=40.0,
                )
            ],
        )

    sample()

    def open_offline() -> list[industry_pb2.DeviceAlert]:
        alerts = industry.call(
            "ListDeviceAlerts", industry_pb2.ListDeviceAlertsRequest(device_id=device_id, open_only=True)
        ).alerts
        return [a for a in alerts if a.kind == industry_pb2.DEVICE_ALERT_KIND_OFFLINE]

    # silence_alert_after_s is 2 s in these tests.
    alert = wait_until(open_offline, timeout_s=20, what="an offline alert")[0]
    assert alert.severity == common_pb2.SEVERITY_MEDIUM
    sample()
    wait_until(lambda: not open_offline(), timeout_s=20, what="the offline alert to clear")
    found = industry.wait_for_events(
        {device_id},
        lambda evs: any(t.endswith("DeviceAlertCleared") for t, _ in evs),
        what="the offline alert's events",
    )
    raised = [m for _, m in found if isinstance(m, events_pb2.DeviceAlertRaised)]
    cleared = [m for _, m in found if isinstance(m, events_pb2.DeviceAlertCleared)]
    assert raised[0].alert_id == cleared[0].alert_id == alert.alert_id
    assert raised[0].kind == cleared[0].kind == industry_pb2.DEVICE_ALERT_KIND_OFFLINE
    assert cleared[0].cleared_at.ToMilliseconds() >= raised[0].raised_at.ToMilliseconds()


def test_digital_workshops_follow_the_share_of_machines_reporting(
    industry: Industry, shift: dict[str, Any]
) -> None:
    park = industry.park("Digital park")
    enterprise = industry.enterprise(credit_code(203), park.park_id, "Connected Co.")
    code = enterprise.credit_code
    connected = [industry.device(code, workshop="Smart hall", sample_interval_ms=1000) for _ in range(4)]
    industry.device(code, workshop="Smart hall", sample_interval_ms=1000)  # never reports
    old = industry.device(code, workshop="Old hall", sample_interval_ms=1000)
    industry.device(code, workshop="Old hall", sample_interval_ms=1000)

    def listed() -> industry_pb2.ListDigitalWorkshopsResponse | None:
        # Reporting means heard from within the (2 s, in these tests) silence threshold: keep reporting.
        now = time.time_ns() // 1_000_000
        _send(
            industry,
            [
                telemetry_pb2.TelemetrySample(
                    device_id=d.device_id, time_unix_ms=now, state=RUNNING, power_kw=3.0
                )
                for d in [*connected, old]
            ],
        )
        response: industry_pb2.ListDigitalWorkshopsResponse = industry.call(
            "ListDigitalWorkshops", industry_pb2.ListDigitalWorkshopsRequest(park_id=park.park_id)
        )
        smart = [w for w in response.workshops if w.workshop.workshop == "Smart hall"]
        return response if smart and smart[0].reporting_count == 4 else None

    response = wait_until(listed, timeout_s=10, what="the workshops' machines to report", interval_s=0.3)
    by_name = {w.workshop.workshop: w for w in response.workshops}
    assert (by_name["Smart hall"].device_count, by_name["Smart hall"].digital) == (5, True)
    assert by_name["Smart hall"].reporting_share == pytest.approx(0.8)
    assert (by_name["Old hall"].reporting_count, by_name["Old hall"].digital) == (1, False)
    assert response.digital_count == 1
    assert response.threshold_share == pytest.approx(0.8)
