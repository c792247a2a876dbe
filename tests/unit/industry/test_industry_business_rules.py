"""Utilisation figures, the order state machine, lateness, digital workshops, visibility and
registration checks, without sockets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.industry.domain.access import Visibility
from services.industry.domain.commands import AdvanceOrder, OnboardEnterprise, RegisterDevice
from services.industry.domain.model import OrderStage, Sector
from services.industry.domain.orders import check_advance, cycle_days, is_late
from services.industry.domain.utilisation import Totals, compare, relative_change
from services.industry.domain.workshops import WorkshopCoverage
from services.platform.errors import FailedPreconditionError, InvalidArgumentError
from services.platform.identifiers import credit_code_check_char

LUQIAO = ZoneInfo("Asia/Shanghai")


def _code(first17: str = "91331004MA2K7Q5R1") -> str:
    return first17 + credit_code_check_char(first17)


# --- utilisation ----------------------------------------------------------------------------------------


def test_the_four_figures_come_from_the_sums() -> None:
    # 6 h running, 30 min idle, 30 min fault, 1 h stopped; 540 parts of 30 s ideal, 27 rejects.
    totals = Totals(21_600_000, 1_800_000, 3_600_000, 1_800_000, 513, 27, 16_200_000.0)
    assert totals.planned_ms == 25_200_000
    assert totals.availability == pytest.approx(6 / 7)
    assert totals.performance == pytest.approx(0.75)
    assert totals.quality == pytest.approx(0.95)
    assert totals.oee == pytest.approx(6 / 7 * 0.75 * 0.95)


def test_nothing_planned_or_made_gives_zeros_not_errors() -> None:
    stopped = Totals(stopped_ms=3_600_000)
    assert (stopped.availability, stopped.performance, stopped.quality, stopped.oee) == (0.0, 0.0, 0.0, 0.0)


def test_a_group_is_weighed_by_time_and_output_not_by_averaging_ratios() -> None:
    busy = Totals(running_ms=9_000, idle_ms=1_000, good_count=10, ideal_ms=9_000.0)
    idle = Totals(running_ms=0, idle_ms=30_000)
    group = busy + idle
    # 9 s of 40 s planned, where the mean of the two ratios (0.9 and 0) would say 0.45.
    assert group.availability == pytest.approx(0.225)
    assert (group.performance, group.quality) == (1.0, 1.0)


def test_changes_are_relative_to_the_base() -> None:
    base = Totals(running_ms=100, idle_ms=100, good_count=10, ideal_ms=50.0)
    later = Totals(running_ms=135, idle_ms=65, good_count=10, ideal_ms=67.5)
    change = compare(base, later)
    assert change.availability == pytest.approx(0.35)
    assert change.performance == pytest.approx(0.0)
    assert relative_change(0.0, 5.0) == 0.0


# --- orders ---------------------------------------------------------------------------------------------


def test_an_order_moves_one_stage_forward_at_a_time() -> None:
    stage = OrderStage.SALES
    for following in list(OrderStage)[1:]:
        stage = check_advance(stage, following)
    assert stage == OrderStage.CLOSED


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (OrderStage.DESIGN, OrderStage.SALES, "cannot move an order backwards, from design to sales"),
        (OrderStage.SALES, OrderStage.DESIGN, "the next stage is customisation, not design"),
        (OrderStage.DELIVERY, OrderStage.DELIVERY, "the order is already in delivery"),
        (OrderStage.CLOSED, OrderStage.CLOSED, "the order is closed"),
    ],
)
def test_other_moves_are_failed_preconditions_on_stage(
    current: OrderStage, target: OrderStage, message: str
) -> None:
    with pytest.raises(FailedPreconditionError) as caught:
        check_advance(current, target)
    assert caught.value.message.startswith("stage: ")
    assert message in caught.value.message


def test_an_unknown_stage_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        AdvanceOrder("ord-1", None, None).check(datetime.now(UTC))
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("stage", "must be one of the OrderStage values")
    ]


def test_lateness_uses_the_district_calendar_day() -> None:
    promised = date(2026, 3, 10)
    # 23:30 on the 10th in Luqiao is 15:30 UTC: on time; 00:30 on the 11th is late.
    assert not is_late(promised, datetime(2026, 3, 10, 15, 30, tzinfo=UTC), datetime.now(UTC), LUQIAO)
    assert is_late(promised, datetime(2026, 3, 10, 16, 30, tzinfo=UTC), datetime.now(UTC), LUQIAO)
    assert is_late(promised, None, datetime(2026, 3, 11, 1, tzinfo=UTC), LUQIAO)
    assert not is_late(promised, None, datetime(2026, 3, 10, 1, tzinfo=UTC), LUQIAO)


def test_the_delivery_cycle_is_in_days() -> None:
    ordered = datetime(2026, 1, 1, tzinfo=UTC)
    assert cycle_days(ordered, ordered + timedelta(days=25, hours=12)) == 25.5


# --- workshops, visibility, registration --------------------------------------------------------------


def test_a_workshop_is_digital_at_the_threshold_share() -> None:
    assert WorkshopCoverage("E", "W", "P", 5, 4).is_digital(0.8)
    assert not WorkshopCoverage("E", "W", "P", 5, 3).is_digital(0.8)
    assert not WorkshopCoverage("E", "W", "P", 0, 0).is_digital(0.8)
    assert WorkshopCoverage("E", "W", "P", 3, 3).share == 1.0


def test_visibility_by_enterprise_and_park() -> None:
    park_staff = Visibility.of(parks=["P1"])
    assert park_staff.sees_enterprise("E9", "P1")
    assert not park_staff.sees_enterprise("E9", "P2")
    assert not park_staff.sees_enterprise("E9", None)
    user = Visibility.of(enterprises=["E1"])
    assert user.sees_enterprise("E1", None)
    assert not user.sees_park("P1")
    assert Visibility.of(everything=True).sees_park("anything")


def test_a_credit_code_with_a_wrong_check_character_names_the_field() -> None:
    code = _code()
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    OnboardEnterprise("r1", code, "Co.", Sector.MACHINERY, "", "").check()
    with pytest.raises(InvalidArgumentError) as caught:
        OnboardEnterprise("r1", wrong, "Co.", Sector.MACHINERY, "", "").check()
    assert [(v.field, v.description) for v in caught.value.violations] == [
        ("credit_code", "has a wrong check character")
    ]


def test_a_device_needs_physical_figures() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        RegisterDevice("r1", "BOX 1", _code(), "", None, -1.0, 0.0, 50).check()
    assert {v.field for v in caught.value.violations} == {
        "serial_number",
        "workshop",
        "machine_type",
        "rated_power_kw",
        "ideal_cycle_seconds",
        "sample_interval_ms",
    }
