"""The risk rules, case by case: what the duty room is told, and at what level."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.safety.domain.model import DetectionKind, HazardousItem, RiskFlag, RiskLevel
from services.safety.domain.risk import (
    CRITICAL_FROM,
    ELEVATED_FROM,
    HIGH_FROM,
    Observation,
    PersonProfile,
    PurchaseFact,
    assess,
    level_for,
    panic_assessment,
)

AT = datetime(2026, 3, 16, 15, 40, tzinfo=UTC)  # near dismissal time
TOKEN = "p_0123456789abcdef0123456789abcdef"


def seen(kind: DetectionKind, zone: str = "north wall", confidence: float = 0.9, **extra: str) -> Observation:
    return Observation(kind, zone, AT - timedelta(seconds=30), confidence, **extra)


def profile(*flags: RiskFlag, purchases: tuple[PurchaseFact, ...] = ()) -> dict[str, PersonProfile]:
    return {TOKEN: PersonProfile(TOKEN, frozenset(flags), purchases)}


def test_reference_incident_is_critical_with_the_four_reasons_the_duty_room_needs() -> None:
    observations = [
        seen(DetectionKind.PERIMETER_BREACH, confidence=0.93),
        seen(DetectionKind.WEAPON, confidence=0.88, label="baseball bat"),
        seen(DetectionKind.FACE_MATCH, confidence=0.91, person_token=TOKEN),
    ]
    petrol = PurchaseFact(HazardousItem.LOOSE_PETROL, AT - timedelta(days=3, hours=2))

    result = assess(observations, profile(RiskFlag.PSYCHIATRIC_HISTORY, purchases=(petrol,)), AT)

    assert result.level is RiskLevel.CRITICAL
    for reason in (
        "perimeter breach at north wall",
        "carrying a baseball bat",
        "psychiatric history",
        "bought loose petrol 3 days ago",
    ):
        assert reason in result.reasons
    # Behaviour first, then who, then what they bought.
    assert result.reasons.index("perimeter breach at north wall") < result.reasons.index(
        "psychiatric history"
    )
    assert result.reasons.index("psychiatric history") < result.reasons.index(
        "bought loose petrol 3 days ago"
    )
    assert result.person_tokens == (TOKEN,)
    assert result.flag_categories == (RiskFlag.PSYCHIATRIC_HISTORY,)


def test_reasons_never_name_the_person() -> None:
    observations = [seen(DetectionKind.FACE_MATCH, person_token=TOKEN)]
    result = assess(observations, profile(RiskFlag.PRIOR_VIOLENCE), AT)
    assert all(TOKEN not in reason for reason in result.reasons)


def test_a_perimeter_breach_alone_is_elevated_and_raises_no_alert() -> None:
    result = assess([seen(DetectionKind.PERIMETER_BREACH)], {}, AT)
    assert result.level is RiskLevel.ELEVATED
    assert not result.raises_alert
    assert result.reasons == ("perimeter breach at north wall",)


def test_a_breach_with_a_weapon_is_high_and_raises_an_alert() -> None:
    result = assess([seen(DetectionKind.PERIMETER_BREACH), seen(DetectionKind.WEAPON, label="knife")], {}, AT)
    assert result.level is RiskLevel.HIGH
    assert result.raises_alert
    assert "carrying a knife" in result.reasons


def test_nothing_seen_is_low() -> None:
    result = assess([], {}, AT)
    assert result.level is RiskLevel.LOW
    assert result.reasons == ()


def test_loitering_alone_is_low() -> None:
    result = assess([seen(DetectionKind.LOITERING, zone="main gate")], {}, AT)
    assert result.level is RiskLevel.LOW
    assert result.reasons == ("loitering at main gate",)


def test_the_same_behaviour_seen_by_two_cameras_counts_once_but_names_each_zone() -> None:
    once = assess([seen(DetectionKind.PERIMETER_BREACH)], {}, AT)
    twice = assess(
        [seen(DetectionKind.PERIMETER_BREACH), seen(DetectionKind.PERIMETER_BREACH, zone="east fence")],
        {},
        AT,
    )
    assert twice.score == once.score
    assert twice.reasons == ("perimeter breach at north wall", "perimeter breach at east fence")


def test_detections_below_the_confidence_floor_are_noise() -> None:
    result = assess([seen(DetectionKind.WEAPON, confidence=0.3, label="baseball bat")], {}, AT)
    assert result.level is RiskLevel.LOW
    assert result.reasons == ()


def test_a_weak_face_match_does_not_bring_the_persons_record_in() -> None:
    observations = [seen(DetectionKind.FACE_MATCH, confidence=0.6, person_token=TOKEN)]
    result = assess(observations, profile(RiskFlag.PSYCHIATRIC_HISTORY), AT)
    assert "psychiatric history" not in result.reasons
    assert result.person_tokens == ()


def test_a_person_on_record_but_not_seen_does_not_count() -> None:
    result = assess([seen(DetectionKind.PERIMETER_BREACH)], profile(RiskFlag.PSYCHIATRIC_HISTORY), AT)
    assert "psychiatric history" not in result.reasons
    assert result.level is RiskLevel.ELEVATED


def test_a_known_person_seen_with_flags_and_petrol_is_high_without_any_behaviour() -> None:
    petrol = PurchaseFact(HazardousItem.LOOSE_PETROL, AT - timedelta(days=1))
    result = assess(
        [seen(DetectionKind.FACE_MATCH, zone="main gate", person_token=TOKEN)],
        profile(RiskFlag.PSYCHIATRIC_HISTORY, purchases=(petrol,)),
        AT,
    )
    assert result.level is RiskLevel.HIGH
    assert result.reasons == (
        "person of concern recognised at main gate",
        "psychiatric history",
        "bought loose petrol 1 day ago",
    )


@pytest.mark.parametrize(
    ("age", "counted", "text"),
    [
        (timedelta(hours=5), True, "bought loose petrol today"),
        (timedelta(days=29, hours=23), True, "bought loose petrol 29 days ago"),
        (timedelta(days=30, minutes=1), False, ""),
        (-timedelta(hours=1), False, ""),  # bought after the detection: not part of this story
    ],
)
def test_purchases_count_within_the_last_30_days_only(age: timedelta, counted: bool, text: str) -> None:
    purchase = PurchaseFact(HazardousItem.LOOSE_PETROL, AT - age)
    result = assess([seen(DetectionKind.FACE_MATCH, person_token=TOKEN)], profile(purchases=(purchase,)), AT)
    assert (text in result.reasons) is counted
    assert any(r.startswith("bought") for r in result.reasons) is counted


def test_repeated_purchases_of_one_item_count_once_and_the_latest_is_named() -> None:
    purchases = (
        PurchaseFact(HazardousItem.LOOSE_PETROL, AT - timedelta(days=10)),
        PurchaseFact(HazardousItem.LOOSE_PETROL, AT - timedelta(days=2)),
    )
    single = assess(
        [seen(DetectionKind.FACE_MATCH, person_token=TOKEN)], profile(purchases=purchases[1:]), AT
    )
    both = assess([seen(DetectionKind.FACE_MATCH, person_token=TOKEN)], profile(purchases=purchases), AT)
    assert both.score == single.score
    assert "bought loose petrol 2 days ago" in both.reasons
    assert "bought loose petrol 10 days ago" not in both.reasons


def test_weapon_labels_read_as_sentences() -> None:
    labels = {
        "Baseball  Bat": "carrying a baseball bat",
        "axe": "carrying an axe",
        "knives": "carrying knives",
    }
    for label, reason in labels.items():
        assert assess([seen(DetectionKind.WEAPON, label=label)], {}, AT).reasons == (reason,)


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, RiskLevel.LOW),
        (ELEVATED_FROM - 1, RiskLevel.LOW),
        (ELEVATED_FROM, RiskLevel.ELEVATED),
        (HIGH_FROM - 1, RiskLevel.ELEVATED),
        (HIGH_FROM, RiskLevel.HIGH),
        (CRITICAL_FROM - 1, RiskLevel.HIGH),
        (CRITICAL_FROM, RiskLevel.CRITICAL),
    ],
)
def test_level_thresholds(score: int, level: RiskLevel) -> None:
    assert level_for(score) is level


def test_the_one_click_alarm_is_critical_at_once() -> None:
    result = panic_assessment("main gate")
    assert result.level is RiskLevel.CRITICAL
    assert result.reasons == ("one-click alarm pressed at main gate",)
