"""The pure helpers behind the pages: figures as people read them, the town view's projection."""

from __future__ import annotations

from datetime import date

from cityhub.common.v1 import common_pb2
from cityhub.hub.v1 import hub_pb2

from services.web import views


def test_counts_shares_and_changes_read_as_a_person_expects() -> None:
    assert views.format_figure("enterprises", 1234.0) == "1,234"
    assert views.format_figure("utilisation", 0.875) == "87.5 %"
    assert views.format_figure("applications_on_time_rate", 1.0) == "100.0 %"
    assert views.format_change("warnings_raised", 3.0, 0.5, 6.0) == "+3 (+50.0 %)"
    assert views.format_change("warnings_raised", -2.0, -1.0, 2.0) == "\u22122 (\u2212100.0 %)"
    # Nothing the period before: no ratio to speak of.
    assert views.format_change("new_joins", 4.0, 0.0, 0.0) == "+4"
    assert views.format_change("oee", 0.05, 0.1, 0.5) == "+5.0 pt"
    assert views.format_change("enterprises", 0.0, 0.0, 10.0) == "±0"


def test_enum_labels_drop_the_prefix() -> None:
    assert views.enum_label(common_pb2.Severity, common_pb2.SEVERITY_HIGH) == "high"
    assert views.enum_label(hub_pb2.ItemKind, hub_pb2.ITEM_KIND_COLD_CHAIN) == "cold chain"


def test_chart_days_end_on_the_day_asked_oldest_first() -> None:
    assert views.chart_days(date(2026, 3, 2), 3) == [date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)]


def _point(lat: float, lon: float, ident: str) -> tuple[float, float, str, str, str, str, int, bool]:
    return (lat, lon, "site", ident, ident, "Town", 0, False)


def test_the_town_view_puts_north_up_east_right_inside_the_margins() -> None:
    dots = views.project(
        [_point(28.59, 121.38, "north"), _point(28.57, 121.38, "south"), _point(28.58, 121.40, "east")],
        width=800,
        height=560,
        margin=40,
    )
    by_id = {d.id: d for d in dots}
    assert by_id["north"].y < by_id["south"].y
    assert by_id["east"].x > by_id["north"].x
    for dot in dots:
        assert 40 <= dot.x <= 760
        assert 40 <= dot.y <= 520
    # One scale both ways: 0.02 degrees of latitude span the height, and the longitude span is scaled by
    # cos(latitude), so east-west distances are not stretched.
    assert by_id["south"].y - by_id["north"].y == 480
    assert 420 < (by_id["east"].x - by_id["north"].x) < 425


def test_a_single_place_goes_in_the_middle() -> None:
    (dot,) = views.project([_point(28.58, 121.38, "only")], width=800, height=560, margin=40)
    assert (dot.x, dot.y) == (400, 280)


def test_entities_at_one_address_are_set_apart() -> None:
    school, kitchen = views.project([_point(28.58, 121.38, "school"), _point(28.58, 121.38, "kitchen")])
    assert (school.x, school.y) != (kitchen.x, kitchen.y)
    assert abs(kitchen.x - school.x) + abs(kitchen.y - school.y) >= 16
