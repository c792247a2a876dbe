"""Ratings, the alert list, the public profile (五个可) with its compliance score, and the statistics —
the real kitchen service over gRPC with real PostgreSQL, Kafka and safety. Every figure of the profile is
built through the real RPCs and checked against values computed by hand."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.kitchen.v1 import events_pb2, kitchen_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.identifiers import identity_check_char
from services.platform.security import SecuritySettings
from tests.integration.kitchen.conftest import running_kitchen
from tests.integration.kitchen.kitchen_support import INSPECTOR, Kitchen, SafetyPeer, credit_code, rid
from tests.support import violations, wait_until

PUBLIC = ("public",)
OPERATOR = ("district_operator",)
DUTY_ROOM = ("duty_room",)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _last_local_noon(real: datetime) -> datetime:
    local = real.astimezone(SHANGHAI)
    noon = local.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon <= local else noon - timedelta(days=1)


# The profile's story is tied to the local time of day (a breakfast that has ended, a lunch to come), so
# this module's kitchen runs on a clock set back to the last local noon, and so do the requests below:
# the same story whatever hour the suite runs at. Set back, never ahead: the platform refuses event
# times more than five minutes past the real clock.
_SHIFT = _last_local_noon(datetime.now(UTC)) - datetime.now(UTC)


def _now() -> datetime:
    return datetime.now(UTC) + _SHIFT


@pytest.fixture(scope="module")
def kitchen(
    kafka_bootstrap: str, database_url: str, kitchen_security: SecuritySettings, safety_peer: SafetyPeer
) -> Iterator[Kitchen]:
    with running_kitchen(kafka_bootstrap, database_url, kitchen_security, safety_peer, clock=_now) as running:
        yield running


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _period(start: datetime, end: datetime) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=_ts(start), end_time=_ts(end))


def _identity() -> str:
    first17 = f"33100419900101{secrets.randbelow(1000):03d}"
    return first17 + identity_check_char(first17)


def _today() -> date:
    return _now().astimezone(SHANGHAI).date()


def _local_day(day: date) -> tuple[datetime, datetime]:
    """[local midnight of ``day``, the next local midnight)."""
    start = datetime.combine(day, time(0), SHANGHAI)
    return start, datetime.combine(day + timedelta(days=1), time(0), SHANGHAI)


def _code(kind: str, error: grpc.RpcError) -> None:
    assert error.code() == getattr(grpc.StatusCode, kind), error.details()


def _add_staff(
    kitchen: Kitchen, kitchen_id: str, *, shifts: Sequence[str], expiry: date | None = None
) -> kitchen_pb2.StaffMember:
    expiry = expiry or _today() + timedelta(days=180)
    reply = kitchen.call(
        "AddStaff",
        kitchen_pb2.AddStaffRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            name="Wang Fang",
            identity_number=_identity(),
            role=kitchen_pb2.STAFF_ROLE_COOK,
            health_certificate_number=f"HC-{secrets.token_hex(4)}",
            health_certificate_expiry=expiry.isoformat(),
            face_template_ref=f"face-{secrets.token_hex(4)}",
            shifts=list(shifts),
        ),
    )
    staff: kitchen_pb2.StaffMember = reply.staff
    return staff


def _check(
    kitchen: Kitchen, kitchen_id: str, staff_id: str, shift: str, *, temperature_c: float = 36.5
) -> kitchen_pb2.MorningCheck:
    reply = kitchen.call(
        "RecordMorningCheck",
        kitchen_pb2.RecordMorningCheckRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            staff_id=staff_id,
            shift_date=_today().isoformat(),
            shift=shift,
            checked_at=_ts(_now() - timedelta(seconds=5)),
            face_match_score=0.97,
            temperature_c=temperature_c,
        ),
    )
    check: kitchen_pb2.MorningCheck = reply.check
    return check


def _delivery(kitchen: Kitchen, kitchen_id: str, product: str = "rice") -> str:
    reply = kitchen.call(
        "ReceiveDelivery",
        kitchen_pb2.ReceiveDeliveryRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            supplier_credit_code=credit_code(secrets.randbelow(10_000)),
            product=product,
            lot_number=f"LOT-{secrets.token_hex(3)}",
            quantity=50,
            unit="kg",
            production_date=(_today() - timedelta(days=2)).isoformat(),
            shelf_life_days=180,
            certificate_ref=f"CERT-{secrets.token_hex(3)}",
            received_at=_ts(_now() - timedelta(minutes=2)),
        ),
    )
    assert reply.delivery.status == kitchen_pb2.DELIVERY_STATUS_ACCEPTED
    return str(reply.delivery.delivery_id)


def _meal(kitchen: Kitchen, kitchen_id: str, dishes: Sequence[Sequence[str]]) -> str:
    """A lunch served a few seconds ago; each dish names the given lots (none: an untraced dish)."""
    reply = kitchen.call(
        "RecordMeal",
        kitchen_pb2.RecordMealRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            meal_date=_today().isoformat(),
            sitting=kitchen_pb2.SITTING_LUNCH,
            dishes=[
                kitchen_pb2.Dish(
                    name=f"dish {i}",
                    ingredients=[
                        kitchen_pb2.IngredientUse(delivery_id=d, quantity=2, unit="kg") for d in lots
                    ],
                    retained_sample_grams=150,
                )
                for i, lots in enumerate(dishes)
            ],
            servings=300,
            served_at=_ts(_now() - timedelta(seconds=5)),
        ),
    )
    return str(reply.meal.meal_id)


def _rate(kitchen: Kitchen, meal_id: str, rater: str, score: int, **extra: Any) -> kitchen_pb2.Rating:
    request = kitchen_pb2.RateMealRequest(
        request_id=extra.pop("request_id", rid()), meal_id=meal_id, rater_id=rater, score=score, **extra
    )
    rating: kitchen_pb2.Rating = kitchen.call("RateMeal", request, roles=PUBLIC).rating
    return rating


def _ratings(kitchen: Kitchen, kitchen_id: str) -> list[kitchen_pb2.Rating]:
    reply = kitchen.call("ListRatings", kitchen_pb2.ListRatingsRequest(kitchen_id=kitchen_id), roles=PUBLIC)
    return list(reply.ratings)


def _alerts(kitchen: Kitchen, request: kitchen_pb2.ListKitchenAlertsRequest, **who: Any) -> Any:
    return kitchen.call("ListKitchenAlerts", request, **who)


# --- ratings -------------------------------------------------------------------------------------


def test_one_rating_per_rater_per_meal_and_no_rater_ever_leaves(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    meal_id = _meal(kitchen, kitchen_id, [[_delivery(kitchen, kitchen_id)]])
    rater = f"parent-{secrets.token_hex(4)}"

    request_id = rid()
    first = _rate(kitchen, meal_id, rater, 4, comment="Tasty.\nMore fruit, please.", request_id=request_id)
    assert (first.meal_id, first.kitchen_id, first.score) == (meal_id, kitchen_id, 4)
    assert first.comment == "Tasty.\nMore fruit, please."
    # A replay answers the first rating and stores nothing more.
    again = _rate(kitchen, meal_id, rater, 4, comment="Tasty.\nMore fruit, please.", request_id=request_id)
    assert again == first

    # A second rating by the same rater, even with another score: refused naming rater_id.
    with pytest.raises(grpc.RpcError) as second:
        _rate(kitchen, meal_id, rater, 1)
    _code("INVALID_ARGUMENT", second.value)
    assert violations(second.value) == {"rater_id": "has already rated this meal"}

    # Bad input names its field; nothing is stored.
    with pytest.raises(grpc.RpcError) as six:
        _rate(kitchen, meal_id, f"pupil-{secrets.token_hex(3)}", 6)
    _code("INVALID_ARGUMENT", six.value)
    assert list(violations(six.value)) == ["score"]
    with pytest.raises(grpc.RpcError) as long_comment:
        _rate(kitchen, meal_id, f"pupil-{secrets.token_hex(3)}", 3, comment="x" * 501)
    assert list(violations(long_comment.value)) == ["comment"]
    with pytest.raises(grpc.RpcError) as no_rater:
        _rate(kitchen, meal_id, "", 3)
    assert list(violations(no_rater.value)) == ["rater_id"]
    with pytest.raises(grpc.RpcError) as unknown_meal:
        _rate(kitchen, f"meal_{secrets.token_hex(8)}", rater, 3)
    _code("NOT_FOUND", unknown_meal.value)

    # Another rater may rate the same meal; the list is newest first and never names a rater.
    other = _rate(kitchen, meal_id, f"pupil-{secrets.token_hex(3)}", 2)
    listed = _ratings(kitchen, kitchen_id)
    assert [r.rating_id for r in listed] == [other.rating_id, first.rating_id]
    assert [r.score for r in listed] == [2, 4]
    for rating in listed:
        assert rater.encode() not in rating.SerializeToString()

    # Exactly one RatingRecorded per stored rating, with the score and never the rater or the comment.
    def recorded() -> list[Any]:
        found = kitchen.events({first.rating_id, other.rating_id})
        return found if len(found) == 2 else []

    events = wait_until(recorded, timeout_s=20, what="two RatingRecorded events")
    assert {ce_type for ce_type, _ in events} == {"cityhub.kitchen.v1.RatingRecorded"}
    by_id = {m.rating_id: m for _, m in events}
    assert isinstance(by_id[first.rating_id], events_pb2.RatingRecorded)
    assert (by_id[first.rating_id].score, by_id[other.rating_id].score) == (4, 2)
    assert by_id[first.rating_id].meal_id == meal_id
    for _, message in events:
        payload = message.SerializeToString()
        assert rater.encode() not in payload
        assert b"fruit" not in payload


def test_concurrent_ratings_by_one_rater_store_one_and_refuse_the_rest_on_rater_id(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    meal_id = _meal(kitchen, kitchen_id, [[_delivery(kitchen, kitchen_id)]])
    rater = f"parent-{secrets.token_hex(4)}"

    def attempt(score: int) -> str:
        try:
            _rate(kitchen, meal_id, rater, score)
        except grpc.RpcError as error:
            return f"{error.code().name} {sorted(violations(error))}"
        return "OK"

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, [1, 2, 3, 4, 5, 5]))
    assert sorted(answers) == ["INVALID_ARGUMENT ['rater_id']"] * 5 + ["OK"]
    assert len(_ratings(kitchen, kitchen_id)) == 1


def test_ratings_are_listed_by_period_and_paged(kitchen: Kitchen) -> None:
    kitchen_id = kitchen.register_kitchen().kitchen_id
    meal_id = _meal(kitchen, kitchen_id, [[_delivery(kitchen, kitchen_id)]])
    made = [_rate(kitchen, meal_id, f"parent-{i}-{secrets.token_hex(3)}", 1 + i % 5) for i in range(3)]
    newest_first = [r.rating_id for r in reversed(made)]

    first_page = kitchen.call(
        "ListRatings",
        kitchen_pb2.ListRatingsRequest(kitchen_id=kitchen_id, page=common_pb2.PageRequest(page_size=2)),
        roles=PUBLIC,
    )
    assert [r.rating_id for r in first_page.ratings] == newest_first[:2]
    second_page = kitchen.call(
        "ListRatings",
        kitchen_pb2.ListRatingsRequest(
            kitchen_id=kitchen_id,
            page=common_pb2.PageRequest(page_size=2, page_token=first_page.page.next_page_token),
        ),
        roles=PUBLIC,
    )
    assert [r.rating_id for r in second_page.ratings] == newest_first[2:]
    assert second_page.page.next_page_token == ""

    later = _now() + timedelta(hours=1)
    empty = kitchen.call(
        "ListRatings",
        kitchen_pb2.ListRatingsRequest(
            kitchen_id=kitchen_id, period=_period(later, later + timedelta(hours=1))
        ),
        roles=PUBLIC,
    )
    assert list(empty.ratings) == []
    with pytest.raises(grpc.RpcError) as backwards:
        kitchen.call(
            "ListRatings",
            kitchen_pb2.ListRatingsRequest(kitchen_id=kitchen_id, period=_period(later, later)),
            roles=PUBLIC,
        )
    assert list(violations(backwards.value)) == ["period.end_time"]


# --- the alert list ------------------------------------------------------------------------------


def test_alerts_are_listed_newest_first_and_a_duty_room_sees_only_its_school(kitchen: Kitchen) -> None:
    site_id = kitchen.safety.register_site().site_id
    # Lunch still to come on this module's clock, in both kitchens: a shift already started lets the
    # NO_CHECK sweep bar a newly added member before the test's own check reaches it.
    late_lunch = (("lunch", "23:58", "23:59"),)
    kitchen_id = kitchen.register_kitchen(site_id, shifts=late_lunch).kitchen_id
    other_id = kitchen.register_kitchen(shifts=late_lunch).kitchen_id
    fevered = [_add_staff(kitchen, kitchen_id, shifts=["lunch"]) for _ in range(2)]
    barred = [_check(kitchen, kitchen_id, s.staff_id, "lunch", temperature_c=37.8) for s in fevered]
    assert [c.outcome for c in barred] == [kitchen_pb2.CHECK_OUTCOME_BARRED] * 2
    elsewhere = _add_staff(kitchen, other_id, shifts=["lunch"])
    _check(kitchen, other_id, elsewhere.staff_id, "lunch", temperature_c=38.2)
    barred_kind = [kitchen_pb2.ALERT_KIND_MORNING_CHECK_BARRED]

    listed = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(kitchen_id=kitchen_id, kinds=barred_kind),
        roles=OPERATOR,
    ).alerts
    assert [a.subject_id for a in listed] == [barred[1].check_id, barred[0].check_id]
    assert {a.kitchen_id for a in listed} == {kitchen_id}
    assert all(a.message and "37.8" not in a.message for a in listed)

    # Paged one at a time.
    page_one = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(
            kitchen_id=kitchen_id, kinds=barred_kind, page=common_pb2.PageRequest(page_size=1)
        ),
        roles=OPERATOR,
    )
    page_two = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(
            kitchen_id=kitchen_id,
            kinds=barred_kind,
            page=common_pb2.PageRequest(page_size=1, page_token=page_one.page.next_page_token),
        ),
        roles=OPERATOR,
    )
    assert [a.alert_id for a in [*page_one.alerts, *page_two.alerts]] == [a.alert_id for a in listed]
    assert page_two.page.next_page_token == ""

    # Filters: another kind, a period before them, open only (one-off alerts stay open).
    cold = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(
            kitchen_id=kitchen_id, kinds=[kitchen_pb2.ALERT_KIND_COLD_CHAIN]
        ),
        roles=OPERATOR,
    )
    assert list(cold.alerts) == []
    past = _now() - timedelta(days=3)
    before = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(
            kitchen_id=kitchen_id, period=_period(past, past + timedelta(days=1))
        ),
        roles=OPERATOR,
    )
    assert list(before.alerts) == []
    open_only = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(kitchen_id=kitchen_id, kinds=barred_kind, open_only=True),
        roles=OPERATOR,
    )
    assert len(open_only.alerts) == 2

    # The school's duty room sees its kitchen's alerts, with or without naming the kitchen, and no other's.
    own = (f"site:{site_id}",)
    named = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(kitchen_id=kitchen_id, kinds=barred_kind),
        roles=DUTY_ROOM,
        scopes=own,
    )
    assert [a.alert_id for a in named.alerts] == [a.alert_id for a in listed]
    unnamed = _alerts(kitchen, kitchen_pb2.ListKitchenAlertsRequest(), roles=DUTY_ROOM, scopes=own)
    assert {a.kitchen_id for a in unnamed.alerts} == {kitchen_id}
    stranger = (f"site:{kitchen.safety.register_site().site_id}",)
    with pytest.raises(grpc.RpcError) as hidden:
        _alerts(
            kitchen,
            kitchen_pb2.ListKitchenAlertsRequest(kitchen_id=kitchen_id),
            roles=DUTY_ROOM,
            scopes=stranger,
        )
    _code("NOT_FOUND", hidden.value)
    assert (
        list(
            _alerts(kitchen, kitchen_pb2.ListKitchenAlertsRequest(), roles=DUTY_ROOM, scopes=stranger).alerts
        )
        == []
    )

    # A kitchen manager sees its own kitchen only.
    mine = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(),
        roles=("kitchen_manager",),
        scopes=(f"kitchen:{other_id}",),
    )
    assert {a.kitchen_id for a in mine.alerts} == {other_id}

    with pytest.raises(grpc.RpcError) as unspecified:
        _alerts(
            kitchen,
            kitchen_pb2.ListKitchenAlertsRequest(kinds=[kitchen_pb2.ALERT_KIND_UNSPECIFIED]),
            roles=OPERATOR,
        )
    _code("INVALID_ARGUMENT", unspecified.value)
    assert list(violations(unspecified.value)) == ["kinds[0]"]
    with pytest.raises(grpc.RpcError) as backwards:
        _alerts(
            kitchen,
            kitchen_pb2.ListKitchenAlertsRequest(period=_period(past, past - timedelta(hours=1))),
            roles=OPERATOR,
        )
    assert list(violations(backwards.value)) == ["period.end_time"]


# --- the public profile from known inputs, and the statistics -------------------------------------


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _readings(kitchen: Kitchen, readings: list[kitchen_pb2.EquipmentReading]) -> None:
    reply = kitchen.call(
        "IngestReadings", kitchen_pb2.IngestReadingsRequest(request_id=rid(), readings=readings)
    )
    assert (reply.accepted, list(reply.rejections)) == (len(readings), [])


def _equipment(
    kitchen: Kitchen, kitchen_id: str, kind: kitchen_pb2.EquipmentKind.ValueType, name: str
) -> str:
    reply = kitchen.call(
        "RegisterEquipment",
        kitchen_pb2.RegisterEquipmentRequest(request_id=rid(), kitchen_id=kitchen_id, kind=kind, name=name),
    )
    return str(reply.equipment.equipment_id)


def _equipment_days(kitchen: Kitchen, kitchen_id: str, first: date, last: date) -> dict[str, Any]:
    reply = kitchen.call(
        "ListEquipmentDays",
        kitchen_pb2.ListEquipmentDaysRequest(
            kitchen_id=kitchen_id, from_date=first.isoformat(), to_date=last.isoformat()
        ),
        roles=OPERATOR,
    )
    return {f"{d.equipment_id}/{d.date}": d for d in reply.days}


def _capture(
    kitchen: Kitchen, kitchen_id: str, camera_id: str, kind: kitchen_pb2.ViolationKind.ValueType
) -> kitchen_pb2.Violation:
    reply = kitchen.call(
        "ReportCapture",
        kitchen_pb2.ReportCaptureRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            camera_id=camera_id,
            kind=kind,
            captured_at=_ts(_now() - timedelta(minutes=1)),
            snapshot_ref=f"snap-{secrets.token_hex(4)}",
            confidence=0.93,
        ),
    )
    violation: kitchen_pb2.Violation = reply.violation
    return violation


def _inspection(
    kitchen: Kitchen, kitchen_id: str, at: datetime, result: kitchen_pb2.InspectionResult.ValueType
) -> None:
    kitchen.call(
        "RecordInspection",
        kitchen_pb2.RecordInspectionRequest(
            request_id=rid(),
            kitchen_id=kitchen_id,
            inspected_at=_ts(at),
            inspector="Inspector Li (badge 0417)",
            findings=["floor drain uncovered"],
            result=result,
        ),
        roles=INSPECTOR,
    )


def _profile(kitchen: Kitchen, kitchen_id: str, period: common_pb2.TimeRange | None, **who: Any) -> Any:
    request = kitchen_pb2.GetPublicProfileRequest(kitchen_id=kitchen_id, period=period)
    return kitchen.call("GetPublicProfile", request, **who).profile


def _statistics(kitchen: Kitchen, kitchen_id: str, period: common_pb2.TimeRange, **who: Any) -> Any:
    request = kitchen_pb2.GetKitchenStatisticsRequest(kitchen_id=kitchen_id, period=period)
    return kitchen.call("GetKitchenStatistics", request, **who).statistics


def test_a_public_profile_computed_from_known_inputs(kitchen: Kitchen) -> None:  # noqa: PLR0915 - one story
    now_local = _now().astimezone(SHANGHAI).replace(second=0, microsecond=0)
    # Breakfast ended a few minutes ago (its unchecked staff are barred by the sweep); lunch is still to
    # come (its staff are checked in time). Both must fit in today's local calendar.
    breakfast = (now_local - timedelta(minutes=40), now_local - timedelta(minutes=5))
    lunch = (now_local + timedelta(minutes=30), now_local + timedelta(minutes=60))
    service_seconds = (35 + 30) * 60
    site_id = kitchen.safety.register_site().site_id
    registered = kitchen.register_kitchen(
        site_id,
        shifts=(
            ("breakfast", _hhmm(breakfast[0]), _hhmm(breakfast[1])),
            ("lunch", _hhmm(lunch[0]), _hhmm(lunch[1])),
        ),
    )
    kitchen_id = registered.kitchen_id
    today = _today()

    # 可查 + 可示: four lunch staff checked before their shift (one at 37.8 °C: barred), one breakfast
    # member with an expired certificate never checked (the sweep bars them: NO_CHECK).
    lunch_staff = [_add_staff(kitchen, kitchen_id, shifts=["lunch"]) for _ in range(4)]
    checks = [_check(kitchen, kitchen_id, s.staff_id, "lunch") for s in lunch_staff[:3]]
    checks.append(_check(kitchen, kitchen_id, lunch_staff[3].staff_id, "lunch", temperature_c=37.8))
    assert [c.outcome for c in checks] == [kitchen_pb2.CHECK_OUTCOME_PASSED] * 3 + [
        kitchen_pb2.CHECK_OUTCOME_BARRED
    ]
    late = _add_staff(kitchen, kitchen_id, shifts=["breakfast"], expiry=today - timedelta(days=1))

    def swept() -> list[Any]:
        reply = kitchen.call(
            "ListMorningChecks",
            kitchen_pb2.ListMorningChecksRequest(kitchen_id=kitchen_id, shift_date=today.isoformat()),
            roles=OPERATOR,
        )
        return [c for c in reply.checks if c.staff_id == late.staff_id]

    no_check = wait_until(swept, timeout_s=20, what="the sweep's NO_CHECK bar")[0]
    assert kitchen_pb2.BAR_REASON_NO_CHECK in no_check.bar_reasons
    assert not no_check.HasField("checked_at")

    # 可溯: three meals, two of them naming a lot for every dish.
    rice, pork = _delivery(kitchen, kitchen_id, "rice"), _delivery(kitchen, kitchen_id, "pork")
    traced_a = _meal(kitchen, kitchen_id, [[rice], [pork]])
    untraced = _meal(kitchen, kitchen_id, [[rice], []])
    _meal(kitchen, kitchen_id, [[rice, pork]])

    # 可评: 5 and 4 for one meal, 3 for another: mean 4.0 of 3.
    _rate(kitchen, traced_a, f"parent-{secrets.token_hex(3)}", 5)
    _rate(kitchen, traced_a, f"pupil-{secrets.token_hex(3)}", 4)
    _rate(kitchen, untraced, f"parent-{secrets.token_hex(3)}", 3)

    # 可查: an old FAIL, then a PASS_WITH_REMARKS two hours ago (the last one).
    last_inspected = _now().replace(microsecond=0) - timedelta(hours=2)
    _inspection(kitchen, kitchen_id, last_inspected - timedelta(days=3), kitchen_pb2.INSPECTION_RESULT_FAIL)
    _inspection(kitchen, kitchen_id, last_inspected, kitchen_pb2.INSPECTION_RESULT_PASS_WITH_REMARKS)

    # 可视: two cameras seen through breakfast, one for 20 minutes and one for 5 (heartbeats every minute).
    cameras = [
        _equipment(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_CAMERA, f"camera {i}") for i in (1, 2)
    ]
    fridge = _equipment(kitchen, kitchen_id, kitchen_pb2.EQUIPMENT_KIND_FRIDGE, "fridge")
    start = breakfast[0].astimezone(UTC)
    heartbeats = [
        kitchen_pb2.EquipmentReading(
            equipment_id=camera, read_at=_ts(start + timedelta(minutes=m)), running=True
        )
        for camera, minutes in ((cameras[0], 20), (cameras[1], 5))
        for m in range(minutes + 1)
    ]
    # The fridge: 20 minutes at 10 °C (above its 8 °C limit: one alert after 15), then 16 minutes at 3 °C.
    fridge_start = _now().replace(second=0, microsecond=0) - timedelta(minutes=50)
    fridge_readings = [
        kitchen_pb2.EquipmentReading(
            equipment_id=fridge,
            read_at=_ts(fridge_start + timedelta(minutes=m)),
            temperature_c=10.0 if m < 20 else 3.0,
        )
        for m in range(36)
    ]
    _readings(kitchen, heartbeats + fridge_readings)
    first_day = min(today, fridge_start.astimezone(SHANGHAI).date())

    def days_counted() -> dict[str, Any] | None:
        days = _equipment_days(kitchen, kitchen_id, first_day, today)
        seen = {k.split("/")[0]: d for k, d in days.items() if k.endswith(today.isoformat())}
        ok = (
            seen.get(cameras[0]) is not None
            and seen[cameras[0]].online_service_minutes == 20
            and seen.get(cameras[1]) is not None
            and seen[cameras[1]].online_service_minutes == 5
            and sum(d.minutes_out_of_range for k, d in days.items() if k.startswith(fridge)) == 20
        )
        return days if ok else None

    days = wait_until(days_counted, timeout_s=30, what="the readings counted in the equipment days")
    assert {d.service_minutes for k, d in days.items() if k.split("/")[0] in cameras} == {
        service_seconds // 60
    }

    # One open violation (no hat); the other (smoking) rectified.
    kept_open = _capture(kitchen, kitchen_id, cameras[0], kitchen_pb2.VIOLATION_KIND_NO_HAT)
    rectified = _capture(kitchen, kitchen_id, cameras[1], kitchen_pb2.VIOLATION_KIND_SMOKING)
    rectified = kitchen.call(
        "RectifyViolation",
        kitchen_pb2.RectifyViolationRequest(
            violation_id=rectified.violation_id,
            action="Talked to the cook; no smoking sign",
            photo_ref="ph-1",
        ),
    ).violation
    assert (kept_open.status, rectified.status) == (
        kitchen_pb2.VIOLATION_STATUS_OPEN,
        kitchen_pb2.VIOLATION_STATUS_RECTIFIED,
    )

    day_start, day_end = _local_day(today)
    profile = _profile(kitchen, kitchen_id, _period(day_start, day_end), roles=PUBLIC)
    assert (profile.kitchen_id, profile.kitchen_name, profile.site_id) == (
        kitchen_id,
        registered.name,
        site_id,
    )
    assert profile.period.start_time.ToDatetime(UTC) == day_start.astimezone(UTC)
    # 可视: per day the best camera's 1,200 s against the day's 3,900 s of service.
    assert profile.observable.cameras == 2
    assert profile.observable.camera_coverage == pytest.approx(1200 / 3900)
    # 可溯: 2 of 3 meals.
    assert (profile.traceable.meals, profile.traceable.fully_traced_meals) == (3, 2)
    assert profile.traceable.traced_share == pytest.approx(2 / 3)
    # 可查: 4 of 5 rostered staff-shifts checked before the shift; 3 of the 4 checks passed.
    assert profile.checkable.morning_check_completion == pytest.approx(0.8)
    assert profile.checkable.morning_check_pass_rate == pytest.approx(0.75)
    assert profile.checkable.open_violations == 1
    assert profile.checkable.last_inspection_result == kitchen_pb2.INSPECTION_RESULT_PASS_WITH_REMARKS
    assert profile.checkable.last_inspected_at.ToDatetime(UTC) == last_inspected
    # 可示: the commitment; 4 of 5 certificates valid today.
    assert profile.displayable.commitment == "We promise safe food for every pupil."
    assert (profile.displayable.staff, profile.displayable.staff_with_valid_certificate) == (5, 4)
    # 可评: mean 4.0 of 3 ratings.
    assert (profile.ratable.mean_rating, profile.ratable.ratings) == (4.0, 3)
    # The score (docs/services/kitchen.md): 20 x 1200/3900 + 20 x 2/3 + (10 x 0.8 + 8 x 0.75 + (4 - 1) + 2)
    # + (10 x 4/5 + 5) + 20 x 4.0/5 = 6.154 + 13.333 + 19 + 13 + 16 = 67.487 -> 67.5
    assert profile.compliance_score == 67.5

    # Without a period: the last 30 days up to now. Lunch has not started yet, so its checks do not
    # count; only the breakfast NO_CHECK row does (completion 0 of 1, no check recorded for a started shift).
    recent = _profile(kitchen, kitchen_id, None, roles=PUBLIC)
    span = recent.period.end_time.ToDatetime(UTC) - recent.period.start_time.ToDatetime(UTC)
    assert span == timedelta(days=30)
    assert abs(recent.period.end_time.ToDatetime(UTC) - _now()).total_seconds() < 60
    assert (recent.checkable.morning_check_completion, recent.checkable.morning_check_pass_rate) == (0.0, 0.0)
    assert (recent.traceable.meals, recent.ratable.ratings) == (3, 3)

    # The school's duty room reads the profile and the alerts of its kitchen; another school's does not.
    own = _profile(
        kitchen, kitchen_id, _period(day_start, day_end), roles=DUTY_ROOM, scopes=(f"site:{site_id}",)
    )
    assert own == profile
    alerts = _alerts(
        kitchen,
        kitchen_pb2.ListKitchenAlertsRequest(kinds=[kitchen_pb2.ALERT_KIND_MORNING_CHECK_BARRED]),
        roles=DUTY_ROOM,
        scopes=(f"site:{site_id}",),
    )
    assert {a.subject_id for a in alerts.alerts} == {checks[3].check_id, no_check.check_id}
    stranger = (f"site:{kitchen.safety.register_site().site_id}",)
    for rpc, request in (
        ("GetPublicProfile", kitchen_pb2.GetPublicProfileRequest(kitchen_id=kitchen_id)),
        ("ListKitchenAlerts", kitchen_pb2.ListKitchenAlertsRequest(kitchen_id=kitchen_id)),
    ):
        with pytest.raises(grpc.RpcError) as hidden:
            kitchen.call(rpc, request, roles=DUTY_ROOM, scopes=stranger)
        _code("NOT_FOUND", hidden.value)

    # Statistics of the kitchen over yesterday and today.
    stats_period = _period(_local_day(today - timedelta(days=1))[0], day_end)
    wait_until(
        lambda: _statistics(kitchen, kitchen_id, stats_period, roles=OPERATOR).cold_chain_alerts == 1,
        timeout_s=30,
        what="the fridge's cold-chain alert",
    )
    figures = _statistics(kitchen, kitchen_id, stats_period, roles=OPERATOR)
    assert figures.kitchens == 1
    # Checks recorded (the NO_CHECK bar has none): 4, of which 3 passed.
    assert (figures.morning_checks, figures.morning_check_pass_rate) == (4, 0.75)
    assert (figures.cold_chain_alerts, figures.minutes_out_of_range) == (1, 20)
    assert {(v.kind, v.count) for v in figures.violations_by_kind} == {
        (kitchen_pb2.VIOLATION_KIND_NO_HAT, 1),
        (kitchen_pb2.VIOLATION_KIND_SMOKING, 1),
    }
    rectified_at = next(s.at for s in rectified.history if s.status == kitchen_pb2.VIOLATION_STATUS_RECTIFIED)
    to_rectify = (rectified_at.ToDatetime(UTC) - rectified.opened_at.ToDatetime(UTC)).total_seconds()
    assert figures.median_seconds_to_rectify == int(to_rectify + 0.5)
    assert (figures.mean_rating, figures.ratings) == (4.0, 3)

    # The same figures for its manager (every kitchen it may see: this one).
    mine = _statistics(
        kitchen, "", stats_period, roles=("kitchen_manager",), scopes=(f"kitchen:{kitchen_id}",)
    )
    assert mine == figures


def test_district_statistics_add_up_every_kitchen(kitchen: Kitchen) -> None:
    kitchen_ids = [
        kitchen.register_kitchen(shifts=(("lunch", "23:58", "23:59"),)).kitchen_id for _ in range(2)
    ]
    for kitchen_id, scores in zip(kitchen_ids, ((5, 3), (2,)), strict=True):
        meal_id = _meal(kitchen, kitchen_id, [[_delivery(kitchen, kitchen_id)]])
        for score in scores:
            _rate(kitchen, meal_id, f"parent-{secrets.token_hex(3)}", score)
        staff = _add_staff(kitchen, kitchen_id, shifts=["lunch"])
        _check(kitchen, kitchen_id, staff.staff_id, "lunch")
    period = _period(_now() - timedelta(days=2), _now() + timedelta(days=1))

    listed = kitchen.call("ListKitchens", kitchen_pb2.ListKitchensRequest(), roles=OPERATOR).kitchens
    every = [_statistics(kitchen, k.kitchen_id, period, roles=OPERATOR) for k in listed]
    district = _statistics(kitchen, "", period, roles=OPERATOR)
    assert district.kitchens == len(listed) >= 2
    for name in ("morning_checks", "ratings", "cold_chain_alerts"):
        assert getattr(district, name) == sum(getattr(s, name) for s in every), name
    scored = sum(s.mean_rating * s.ratings for s in every)
    assert district.mean_rating == pytest.approx(scored / district.ratings)
    ours = [_statistics(kitchen, k, period, roles=OPERATOR) for k in kitchen_ids]
    assert [(s.ratings, s.mean_rating, s.morning_checks, s.morning_check_pass_rate) for s in ours] == [
        (2, 4.0, 1, 1.0),
        (1, 2.0, 1, 1.0),
    ]

    with pytest.raises(grpc.RpcError) as no_period:
        kitchen.call("GetKitchenStatistics", kitchen_pb2.GetKitchenStatisticsRequest(), roles=OPERATOR)
    _code("INVALID_ARGUMENT", no_period.value)
    assert set(violations(no_period.value)) == {"period.start_time", "period.end_time"}
    with pytest.raises(grpc.RpcError) as hidden:
        _statistics(
            kitchen, kitchen_ids[0], period, roles=("kitchen_manager",), scopes=(f"kitchen:{kitchen_ids[1]}",)
        )
    _code("NOT_FOUND", hidden.value)
