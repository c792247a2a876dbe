"""Issue #9 part 2 at the domain level: the commands of safety and industry refuse what the tester's
malformed requests carried, also when built without the gRPC guard in front (use cases, consumers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.industry.domain import commands as industry
from services.industry.domain.model import MachineType, Subject
from services.platform.errors import InvalidArgumentError, PermissionDeniedError
from services.safety.domain.access import Viewer
from services.safety.domain.commands import (
    RecordPurchase,
    ReportDetections,
    ReportedDetection,
    StatisticsQuery,
)
from services.safety.domain.model import DetectionKind, HazardousItem, UnitKind

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
YEAR_1 = datetime(1, 1, 1, tzinfo=UTC)


def bad_fields(check: object) -> set[str]:
    with pytest.raises(InvalidArgumentError) as caught:
        check()  # type: ignore[operator]
    return {v.field for v in caught.value.violations}


def test_a_plate_on_anything_but_a_vehicle_match_is_refused() -> None:
    batch = ReportDetections(
        "b-1",
        (
            ReportedDetection("cam-1", DetectionKind.LOITERING, NOW, 0.6, plate="\u6d59J12345"),
            ReportedDetection("cam-1", DetectionKind.VEHICLE_MATCH, NOW, 0.6, plate="\u6d59J12345"),
            ReportedDetection("cam-1", DetectionKind.VEHICLE_MATCH, NOW, 0.6, plate="\u6d59J12345\n"),
        ),
    )
    assert bad_fields(lambda: batch.check(NOW)) == {"detections[0].plate", "detections[2].plate"}


def test_event_times_before_2000_are_refused_in_safety() -> None:
    batch = ReportDetections(
        "b-2",
        (
            ReportedDetection("cam-1", DetectionKind.LOITERING, YEAR_1, 0.6),
            ReportedDetection("cam-1", DetectionKind.LOITERING, datetime(1970, 1, 1, tzinfo=UTC), 0.6),
        ),
    )
    assert bad_fields(lambda: batch.check(NOW)) == {"detections[0].detected_at", "detections[1].detected_at"}
    purchase = RecordPurchase("p-1", "p_token", HazardousItem.LOOSE_PETROL, "", 2.0, "L", YEAR_1, "station")
    assert bad_fields(lambda: purchase.check(NOW)) == {"purchased_at"}


def test_text_with_a_nul_or_a_trailing_line_break_is_refused_in_commands() -> None:
    batch = ReportDetections(
        "b-3", (ReportedDetection("cam-1", DetectionKind.WEAPON, NOW, 0.6, label="bat\x00"),)
    )
    assert bad_fields(lambda: batch.check(NOW)) == {"detections[0].label"}
    park = industry.RegisterPark("r-1", "Park\n", "331004", "")
    assert bad_fields(park.check) == {"name"}


def test_statistics_periods_stay_within_the_query_range() -> None:
    query = StatisticsQuery("", NOW, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "month")
    assert bad_fields(query.check) == {"period.end_time"}


def test_industry_periods_event_times_and_dates_are_bounded() -> None:
    far = datetime(9999, 12, 31, 23, tzinfo=UTC)
    compare = industry.CompareUtilisation(Subject(credit_code="c"), (NOW, far), (YEAR_1, NOW))
    assert bad_fields(compare.check) == {"base_period.end_time", "compare_period.start_time"}
    backwards = industry.CycleStatsQuery("", (NOW, NOW - timedelta(days=1)))
    assert bad_fields(backwards.check) == {"period.end_time"}
    order = industry.CreateOrder("o-1", "c", "Works", "Valve", "", "0001-01-01", YEAR_1)
    assert bad_fields(lambda: order.check(NOW)) == {"promised_date", "ordered_at"}
    arabic = industry.CreateOrder("o-2", "c", "Works", "Valve", "", "\u0662\u0660\u0663\u0660-01-01", None)
    assert bad_fields(lambda: arabic.check(NOW)) == {"promised_date"}


def test_a_time_zone_name_the_file_system_refuses_is_invalid_not_an_os_error() -> None:
    query = industry.UtilisationQuery(Subject(park_id="p"), (NOW - timedelta(days=1), NOW), None, "A" * 300)
    assert bad_fields(query.check) == {"time_zone"}


def test_a_serial_number_with_a_trailing_line_break_is_invalid() -> None:
    device = industry.RegisterDevice("d-1", "BOX-1\n", "c", "W1", MachineType.LATHE, 10.0, 30.0, 1000)
    assert "serial_number" in bad_fields(device.check)


def test_a_duty_room_moves_only_its_own_guards() -> None:
    duty = Viewer("duty-1", all_sites=False, site_ids=frozenset({"site-1"}))
    duty.require_may_move(UnitKind.SITE_GUARDS)
    with pytest.raises(PermissionDeniedError):
        duty.require_may_move(UnitKind.PATROL_SWAT)
    Viewer("police-1", all_sites=True).require_may_move(UnitKind.PATROL_SWAT)
