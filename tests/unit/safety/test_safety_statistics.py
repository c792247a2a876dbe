"""Statistics arithmetic: means combine exactly across rows."""

from __future__ import annotations

from datetime import UTC, datetime

from services.safety.domain.statistics import Figures, Mean, total

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


def test_total_sums_counts_and_weights_means_by_their_alerts() -> None:
    rows = [
        Figures("site_a", START, END, 3, 1, 1, 0, Mean(30.0, 3), Mean(60.0, 1), Mean(600.0, 1)),
        Figures("site_b", START, END, 1, 0, 0, 1, Mean(90.0, 1)),
    ]
    overall = total(rows, START, END)
    assert (
        overall.warnings_raised,
        overall.critical_warnings,
        overall.joint_responses,
        overall.false_alarms,
    ) == (
        4,
        1,
        1,
        1,
    )
    assert overall.to_acknowledge.value == 30.0  # (30 + 90) / 4, not (10 + 90) / 2
    assert overall.to_arrive.value == 600.0
    assert overall.site_id == ""


def test_a_mean_over_nothing_is_zero() -> None:
    assert Mean().value == 0.0
