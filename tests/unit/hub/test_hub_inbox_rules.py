"""The inbox's pure rules: the severity mapping, the dedup window, the escalation schedule, the
correlation reasons and the commands' checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.hub.domain.inbox import (
    DEFAULT_SEVERITY,
    DOMAIN_OF,
    Action,
    EscalationFact,
    FilterInput,
    InboxItem,
    ItemAction,
    ItemKind,
    ItemStatus,
    ListIncidents,
    ListItems,
    OccurrenceFact,
    Severity,
    SourceSignal,
    bucket_start,
    distance_m,
    distance_reason,
    escalated_severity,
    item_state,
    latitude_band,
    link_reason,
    may_correlate,
    next_escalation,
    same_subject_reason,
    severity_of,
)
from services.platform.errors import InvalidArgumentError

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


# --- severity ------------------------------------------------------------------------------------------


def test_every_kind_has_a_default_severity_and_a_domain() -> None:
    assert set(DEFAULT_SEVERITY) == set(ItemKind)
    assert set(DOMAIN_OF) == set(ItemKind)


def test_the_domains_severity_wins_over_the_kinds_default() -> None:
    assert severity_of(ItemKind.DEVICE_FAULT, Severity.CRITICAL) is Severity.CRITICAL
    assert severity_of(ItemKind.DEVICE_FAULT, None) is Severity.MEDIUM


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ItemKind.SAFETY_ALERT, Severity.HIGH),
        (ItemKind.COLD_CHAIN, Severity.HIGH),
        (ItemKind.MORNING_CHECK_FAILED, Severity.MEDIUM),
        (ItemKind.KITCHEN_VIOLATION, Severity.MEDIUM),
        (ItemKind.EQUIPMENT_OFFLINE, Severity.MEDIUM),
        (ItemKind.DEVICE_SILENT, Severity.LOW),
        (ItemKind.APPLICATION_OVERDUE, Severity.LOW),
        (ItemKind.SERVICE_REQUEST_OVERDUE, Severity.LOW),
    ],
)
def test_the_documented_mapping_for_events_without_a_severity(kind: ItemKind, expected: Severity) -> None:
    assert severity_of(kind, None) is expected


def test_escalation_raises_one_level_capped_at_critical() -> None:
    assert escalated_severity(Severity.INFO) is Severity.LOW
    assert escalated_severity(Severity.MEDIUM) is Severity.HIGH
    assert escalated_severity(Severity.HIGH) is Severity.CRITICAL
    assert escalated_severity(Severity.CRITICAL) is Severity.CRITICAL


# --- dedup window --------------------------------------------------------------------------------------


def test_dedup_buckets_are_fixed_from_the_epoch() -> None:
    hour = timedelta(hours=1)
    assert bucket_start(T0, hour) == T0
    assert bucket_start(T0 + timedelta(minutes=59, seconds=59, microseconds=999_999), hour) == T0
    assert bucket_start(T0 + hour, hour) == T0 + hour
    # Repeats straddling a boundary fall in two buckets (the documented trade-off for order independence).
    assert bucket_start(T0 - timedelta(minutes=1), hour) == T0 - hour
    odd = timedelta(seconds=1234.5)
    assert bucket_start(T0, odd) <= T0 < bucket_start(T0, odd) + odd


def _occ(
    event_id: str, minutes: int, severity: Severity = Severity.MEDIUM, source: str = "A-1"
) -> OccurrenceFact:
    return OccurrenceFact(event_id, T0 + timedelta(minutes=minutes), severity, source)


def test_an_items_state_is_the_same_for_any_order_of_its_facts() -> None:
    occurrences = [_occ("e2", 5, Severity.HIGH, "A-2"), _occ("e1", 0), _occ("e3", 9, source="A-2")]
    signals = [
        SourceSignal("A-1", Action.ACKNOWLEDGED, T0 + timedelta(minutes=1), "duty", "s1"),
        SourceSignal("A-1", Action.CLEARED, T0 + timedelta(minutes=20), "", "s2"),
        SourceSignal("A-2", Action.CLEARED, T0 + timedelta(minutes=30), "", "s3"),
    ]
    escalations = [EscalationFact(2, Severity.CRITICAL, T0 + timedelta(minutes=15))]
    forward = item_state("safety", occurrences, signals, [], escalations)
    backward = item_state("safety", occurrences[::-1], signals[::-1], [], escalations)
    assert forward == backward
    assert (forward.opened_at, forward.source_id, forward.occurrence_count) == (T0, "A-1", 3)
    assert (forward.severity, forward.effective_severity, forward.escalation_round) == (
        Severity.HIGH,
        Severity.CRITICAL,
        2,
    )
    # Resolved once every source is cleared, at the last clearing; acknowledged before that.
    assert forward.status is ItemStatus.RESOLVED
    assert (forward.resolved_at, forward.resolved_by) == (T0 + timedelta(minutes=30), "safety")
    assert (forward.acknowledged_at, forward.acknowledged_by) == (T0 + timedelta(minutes=1), "duty")


def test_an_acknowledgement_before_its_alert_counts_and_an_open_source_keeps_the_item_open() -> None:
    ack = SourceSignal("A-1", Action.ACKNOWLEDGED, T0 - timedelta(seconds=1), "duty", "s1")
    state = item_state("safety", [_occ("e1", 0)], [ack], [], [])
    assert state.status is ItemStatus.ACKNOWLEDGED
    cleared = SourceSignal("A-1", Action.CLEARED, T0 + timedelta(minutes=2), "", "s2")
    two = item_state("safety", [_occ("e1", 0), _occ("e2", 3, source="A-2")], [ack, cleared], [], [])
    assert two.status is ItemStatus.ACKNOWLEDGED
    assert two.resolved_at is None


def test_a_hub_resolution_covers_the_occurrences_up_to_its_time() -> None:
    resolved = ItemAction("r1", Action.RESOLVED, T0 + timedelta(minutes=10), "op")
    acked = ItemAction("k1", Action.ACKNOWLEDGED, T0 + timedelta(minutes=5), "op")
    state = item_state("kitchen", [_occ("e1", 0)], [], [resolved, acked], [])
    assert (state.status, state.resolved_at, state.acknowledged_by) == (
        ItemStatus.RESOLVED,
        T0 + timedelta(minutes=10),
        "op",
    )
    # An occurrence after the resolution: the item is open again (acknowledged, as it was).
    again = item_state("kitchen", [_occ("e1", 0), _occ("e2", 20)], [], [acked, resolved], [])
    assert (again.status, again.resolved_at) == (ItemStatus.ACKNOWLEDGED, None)


def _opened(item_id: str, minutes: int, resolved: int | None = None) -> InboxItem:
    at = T0 + timedelta(minutes=minutes)
    return InboxItem(
        item_id=item_id,
        kind=ItemKind.COLD_CHAIN,
        severity=Severity.HIGH,
        effective_severity=Severity.HIGH,
        status=ItemStatus.OPEN if resolved is None else ItemStatus.RESOLVED,
        subject_kind="KITCHEN",
        subject_id="K-1",
        domain="kitchen",
        title="Cold-chain alert",
        opened_at=at,
        last_occurred_at=at,
        occurrence_count=1,
        resolved_at=None if resolved is None else T0 + timedelta(minutes=resolved),
    )


def test_correlation_in_time_is_symmetric_and_ignores_items_resolved_before() -> None:
    window = timedelta(minutes=30)
    a, b = _opened("a", 0), _opened("b", 20)
    assert may_correlate(a, b, window)
    assert may_correlate(b, a, window)
    assert not may_correlate(a, _opened("c", 31), window)
    # The earlier one resolved before the later one opened: no correlation, whichever asks.
    early = _opened("a", 0, resolved=10)
    assert not may_correlate(early, b, window)
    assert not may_correlate(b, early, window)
    # Resolved after: they were open together.
    assert may_correlate(_opened("a", 0, resolved=25), b, window)


def test_correlation_stays_inside_one_window_so_an_incident_cannot_chain_for_days() -> None:
    window = timedelta(minutes=30)
    # One every ten minutes: each within the window of the next, but a chain of them is not one incident.
    chain = [_opened(f"i{k}", 10 * k) for k in range(12)]
    together = [
        (a.item_id, b.item_id) for a in chain for b in chain if a is not b and may_correlate(a, b, window)
    ]
    assert {frozenset(pair) for pair in together} == {
        frozenset((f"i{3 * w + x}", f"i{3 * w + y}"))
        for w in range(4)
        for x in range(3)
        for y in range(x + 1, 3)
    }
    # The price, at the window's edge: two minutes apart, either side of 08:30, are not correlated.
    assert not may_correlate(_opened("a", 29), _opened("b", 31), window)


# --- escalation schedule -------------------------------------------------------------------------------


def test_round_one_is_due_at_the_severitys_deadline_after_opening() -> None:
    assert next_escalation(T0, timedelta(minutes=5), timedelta(minutes=10), 0, None) == (
        1,
        T0 + timedelta(minutes=5),
    )


def test_each_reminder_is_due_an_interval_after_the_previous_round() -> None:
    published = T0 + timedelta(minutes=5, seconds=7)
    assert next_escalation(T0, timedelta(minutes=5), timedelta(minutes=10), 1, published) == (
        2,
        published + timedelta(minutes=10),
    )
    late = T0 + timedelta(hours=3)  # a hub that was down sends one late reminder, not the missed ones
    assert next_escalation(T0, timedelta(minutes=5), timedelta(minutes=10), 2, late) == (
        3,
        late + timedelta(minutes=10),
    )


# --- correlation reasons -------------------------------------------------------------------------------


def test_a_link_reads_from_its_source_to_its_target() -> None:
    reason = link_reason(
        "kitchen_of_site", ("KITCHEN", "K-1", "Sunrise Kitchen"), ("SITE", "S-1", "No. 3 School")
    )
    assert reason == "kitchen Sunrise Kitchen of site No. 3 School"
    assert (
        link_reason("in_park", ("ENTERPRISE", "913", ""), ("PARK", "P-1", "")) == "enterprise 913 in park P-1"
    )


def test_same_subject_and_distance_reasons() -> None:
    assert same_subject_reason("KITCHEN", "K-1", "Sunrise") == "both at kitchen Sunrise"
    assert distance_reason(612.3) == "within 620 m"
    assert distance_reason(620.0) == "within 620 m"
    assert distance_reason(0.4) == "within 10 m"


def test_distance_is_the_great_circle_distance() -> None:
    # One thousandth of a degree of latitude is about 111 m anywhere.
    assert distance_m(26.5, 107.9, 26.501, 107.9) == pytest.approx(111.2, abs=0.5)
    assert distance_m(26.5, 107.9, 26.5, 107.9) == 0


@settings(max_examples=500, deadline=None)
@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-179, 179),
    d_lat=st.floats(-0.05, 0.05),
    d_lon=st.floats(-0.05, 0.05),
    limit=st.sampled_from([10.0, 250.0, 1000.0, 5000.0]),
)
def test_points_within_the_distance_are_in_the_same_or_neighbouring_latitude_bands(
    lat: float, lon: float, d_lat: float, d_lon: float, limit: float
) -> None:
    """The correlation only tries items in neighbouring bands: it must never miss a pair within reach."""
    if distance_m(lat, lon, lat + d_lat, lon + d_lon) <= limit:
        assert abs(latitude_band(lat, limit) - latitude_band(lat + d_lat, limit)) <= 1


def test_points_a_band_apart_in_latitude_are_beyond_the_distance() -> None:
    # Exactly at the limit north-south: still neighbours; bands are not so wide that all points share one.
    assert abs(latitude_band(26.5, 1000) - latitude_band(26.5 + 1000 / 111_195, 1000)) <= 1
    assert latitude_band(26.5, 1000) != latitude_band(26.6, 1000)


# --- filters and commands ------------------------------------------------------------------------------


def _item(**changes: object) -> InboxItem:
    values: dict[str, object] = {
        "item_id": "itm_1",
        "kind": ItemKind.COLD_CHAIN,
        "severity": Severity.HIGH,
        "effective_severity": Severity.HIGH,
        "status": ItemStatus.OPEN,
        "subject_kind": "KITCHEN",
        "subject_id": "K-1",
        "domain": "kitchen",
        "title": "Cold-chain alert",
        "opened_at": T0,
        "last_occurred_at": T0,
        "occurrence_count": 1,
        "town": "Town A",
    }
    values.update(changes)
    return InboxItem(**values)  # type: ignore[arg-type]


def test_a_filter_matches_towns_severity_domains_and_statuses() -> None:
    flt = ListItems(
        FilterInput(
            towns=("Town A",), min_severity=Severity.HIGH, min_severity_set=True, domains=("kitchen",)
        )
    ).check()
    assert flt.matches(_item())
    assert not flt.matches(_item(town="Town B"))
    assert not flt.matches(_item(effective_severity=Severity.MEDIUM))
    assert not flt.matches(_item(domain="safety"))
    assert ListItems(FilterInput(statuses=(ItemStatus.RESOLVED,))).check().matches(_item()) is False


def test_a_bad_filter_names_every_bad_field() -> None:
    command = ListItems(
        FilterInput(towns=("",), min_severity_set=True, domains=("weather",), statuses=(None,))
    )
    with pytest.raises(InvalidArgumentError) as error:
        command.check()
    assert _fields(error) == {
        "filter.towns[0]",
        "filter.min_severity",
        "filter.domains[0]",
        "filter.statuses[0]",
    }


def test_an_incident_query_period_is_checked() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        ListIncidents(towns=("",), start=T0, end=T0 - timedelta(hours=1)).check()
    assert _fields(error) == {"towns[0]", "period.end_time"}
