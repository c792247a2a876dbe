"""Activity rules: what a new activity must say, who gets a place, what can be cancelled."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.commerce.domain.activities import (
    MAX_CAPACITY,
    CheckIn,
    CreateActivity,
    SignUpForActivity,
    SignUpStatus,
    cancellable,
    status_for_new_sign_up,
)
from services.platform.errors import InvalidArgumentError

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
STARTS = NOW + timedelta(days=7)
GOOD = CreateActivity(
    request_id="r-1",
    chamber_id="ch_1",
    title="Export forum",
    place="Luqiao hall 2",
    starts_at=STARTS,
    capacity=80,
    sign_up_deadline=NOW + timedelta(days=5),
)


def bad_fields(check: object) -> set[str]:
    with pytest.raises(InvalidArgumentError) as raised:
        check()  # type: ignore[operator]
    return {v.field for v in raised.value.violations}


def test_a_well_formed_activity_passes() -> None:
    GOOD.check(NOW)


def test_every_bad_field_is_named_at_once() -> None:
    command = CreateActivity(
        request_id="",
        chamber_id="",
        title=" ",
        place="",
        starts_at=None,
        capacity=0,
        sign_up_deadline=None,
    )
    assert bad_fields(lambda: command.check(NOW)) == {
        "request_id",
        "chamber_id",
        "title",
        "place",
        "starts_at",
        "capacity",
        "sign_up_deadline",
    }


@pytest.mark.parametrize(
    ("capacity", "ok"), [(0, False), (1, True), (MAX_CAPACITY, True), (MAX_CAPACITY + 1, False), (-5, False)]
)
def test_capacity_is_one_to_a_hundred_thousand(capacity: int, ok: bool) -> None:
    command = replace(GOOD, capacity=capacity)
    if ok:
        command.check(NOW)
    else:
        assert bad_fields(lambda: command.check(NOW)) == {"capacity"}


def test_starts_at_must_lie_ahead_and_within_five_years() -> None:
    past = replace(GOOD, starts_at=NOW - timedelta(minutes=1), sign_up_deadline=NOW + timedelta(hours=1))
    assert bad_fields(lambda: past.check(NOW)) == {"starts_at"}
    far = replace(GOOD, starts_at=NOW + timedelta(days=6 * 366))
    assert bad_fields(lambda: far.check(NOW)) == {"starts_at"}


def test_the_deadline_must_lie_ahead_and_before_the_start() -> None:
    passed = replace(GOOD, sign_up_deadline=NOW - timedelta(seconds=1))
    assert bad_fields(lambda: passed.check(NOW)) == {"sign_up_deadline"}
    at_start = replace(GOOD, sign_up_deadline=GOOD.starts_at)
    assert bad_fields(lambda: at_start.check(NOW)) == {"sign_up_deadline"}
    after_start = replace(GOOD, sign_up_deadline=STARTS + timedelta(hours=1))
    assert bad_fields(lambda: after_start.check(NOW)) == {"sign_up_deadline"}


def test_titles_with_control_characters_are_refused() -> None:
    assert bad_fields(lambda: replace(GOOD, title="Forum\x00").check(NOW)) == {"title"}
    assert bad_fields(lambda: replace(GOOD, place="x" * 501).check(NOW)) == {"place"}


@pytest.mark.parametrize(
    ("taken", "capacity", "status"),
    [
        (0, 1, SignUpStatus.CONFIRMED),
        (1, 2, SignUpStatus.CONFIRMED),
        (2, 2, SignUpStatus.WAITLISTED),
        (5, 2, SignUpStatus.WAITLISTED),
    ],
)
def test_a_place_is_confirmed_while_one_is_free(taken: int, capacity: int, status: SignUpStatus) -> None:
    assert status_for_new_sign_up(taken, capacity) is status


def test_only_confirmed_and_waitlisted_sign_ups_can_be_cancelled() -> None:
    assert cancellable(SignUpStatus.CONFIRMED)
    assert cancellable(SignUpStatus.WAITLISTED)
    assert not cancellable(SignUpStatus.CANCELLED)
    assert not cancellable(SignUpStatus.CHECKED_IN)


def test_a_sign_up_names_its_activity_member_and_request() -> None:
    SignUpForActivity("r-1", "act_1", "mem_1").check()
    assert bad_fields(SignUpForActivity("", "", "").check) == {"request_id", "activity_id", "membership_id"}
    assert bad_fields(SignUpForActivity("bad id!", "act_1", "mem_1").check) == {"request_id"}


def test_a_check_in_needs_a_code_of_bounded_length() -> None:
    CheckIn("act_1", "a.b.c").check()
    assert bad_fields(CheckIn("", "").check) == {"activity_id", "code_text"}
    assert bad_fields(CheckIn("act_1", "x" * 4097).check) == {"code_text"}
