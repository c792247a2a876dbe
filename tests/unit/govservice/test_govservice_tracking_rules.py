"""Tracking, its slowing down of wrong tries, and the statistics' rules: pure, no sockets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from services.govservice.domain.access import Visibility
from services.govservice.domain.applications import suffix_material
from services.govservice.domain.model import ApplicationStatus
from services.govservice.domain.statistics import (
    PeopleServedQuery,
    Statistics,
    StatisticsCounts,
    StatisticsQuery,
    division_pattern,
    statistics_scope,
)
from services.govservice.domain.tracking import (
    NOT_TRACKED,
    TrackApplication,
    TrackedApplication,
    TrackedStep,
    TrackLimiter,
)
from services.govservice.usecases.common import GovServiceConfig, GovServiceContext
from services.govservice.usecases.tracking import ApplicationTracking
from services.platform.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
)
from services.platform.uow import FakeUnitOfWork
from services.platform.vault import Vault

NUMBER = "GS-331004-20261201-7K3QX9"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def bad_fields(error: InvalidArgumentError) -> set[str]:
    return {v.field for v in error.violations}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: FakeClock, **kwargs: Any) -> TrackLimiter:
    values: dict[str, Any] = {"free_failures": 5, "window_s": 600.0, "max_wait_s": 900.0, "clock": clock}
    values.update(kwargs)
    return TrackLimiter(**values)


def wrong(limits: TrackLimiter, key: str = "alice") -> None:
    limits.begin(key)
    limits.finish(key, wrong=True)


def refused_wait(limits: TrackLimiter, key: str = "alice") -> str:
    with pytest.raises(ResourceExhaustedError) as caught:
        limits.begin(key)
    return caught.value.message


# --- the query ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["12345X", "12345x", "A1B2C3", "000000"])
def test_a_well_formed_query_passes(suffix: str) -> None:
    TrackApplication(NUMBER, suffix).check()


@pytest.mark.parametrize(
    "number",
    [
        "",
        "GS-331004-20261201-7K3QX",
        "GS-331004-20261201-7k3qx9",
        "gs-331004-20261201-7K3QX9",
        "GS-33100-420261201-7K3QX9",
        "GS-331004-2026120-17K3QX9",
        "GS-331004-20261201-7K3QX9 ",
        "GS-\u0663\u0663\u0661\u0660\u0660\u0664-20261201-7K3QX9",
        "GS-331004-20261201-7K3QX9\n",
        "' OR 1=1 --",
    ],
)
def test_a_malformed_number_is_named(number: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        TrackApplication(number, "12345X").check()
    assert bad_fields(caught.value) == {"application_no"}


@pytest.mark.parametrize("suffix", ["", "12345", "1234567", "12-45X", "\uff11\uff12\uff13\uff14\uff15\uff16"])
def test_a_malformed_suffix_is_named(suffix: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        TrackApplication(NUMBER, suffix).check()
    assert bad_fields(caught.value) == {"id_suffix"}


def test_both_bad_fields_are_named_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        TrackApplication("nope", "x").check()
    assert bad_fields(caught.value) == {"application_no", "id_suffix"}


def test_the_suffix_material_is_bound_to_the_number_and_case_blind() -> None:
    # The applications family stores the digest of exactly this (the brief both families follow).
    assert suffix_material(NUMBER, "12345x") == b"suffix|" + NUMBER.encode() + b"12345X"
    assert suffix_material(NUMBER, "12345x") == suffix_material(NUMBER, "12345X")
    assert suffix_material(NUMBER, "12345X") != suffix_material("GS-331004-20261201-7K3QX8", "12345X")


# --- slowing down -------------------------------------------------------------------------------------


def test_five_wrong_tries_are_free_then_the_caller_waits() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    for _ in range(5):
        wrong(limits)
    assert "wait 1 s" in refused_wait(limits)
    # Another caller is not slowed down by alice's tries.
    wrong(limits, "bob")
    clock.now += 1.0
    wrong(limits)  # the sixth wrong try, after the first wait
    assert "wait 2 s" in refused_wait(limits)
    clock.now += 2.0
    wrong(limits)
    assert "wait 4 s" in refused_wait(limits)


def test_the_wait_doubles_up_to_the_maximum() -> None:
    limits = limiter(FakeClock(), max_wait_s=60.0)
    assert [limits.wait_s(n) for n in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert [limits.wait_s(n) for n in range(5, 12)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert limits.wait_s(10_000) == 60.0


def test_a_refused_try_counts_as_nothing_and_rounds_the_wait_up() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    for _ in range(5):
        wrong(limits)
    clock.now += 0.4
    assert "wait 1 s" in refused_wait(limits)
    refused_wait(limits)
    clock.now += 0.6
    limits.begin("alice")  # still only five wrong tries: the first wait has passed
    limits.finish("alice", wrong=False)


def test_a_right_pairing_does_not_reset_the_wrong_tries_before_it() -> None:
    clock = FakeClock()
    limits = limiter(clock)
    for _ in range(4):
        wrong(limits)
    limits.begin("alice")
    limits.finish("alice", wrong=False)
    wrong(limits)
    assert "wait 1 s" in refused_wait(limits)


def test_wrong_tries_age_out_of_the_window_and_the_caller_is_forgotten() -> None:
    clock = FakeClock()
    limits = limiter(clock, window_s=600.0)
    for _ in range(5):
        wrong(limits)
    clock.now += 300
    limits.begin("alice")
    limits.finish("alice", wrong=True)
    clock.now += 301  # the first five left the window, the sixth has not
    limits.begin("alice")
    limits.finish("alice", wrong=False)
    assert len(limits) == 1
    clock.now += 600
    limits.begin("bob")  # a later call forgets alice: her tries all left the window
    limits.finish("bob", wrong=False)
    assert len(limits) == 0


def test_the_table_is_capped_forgetting_the_least_recently_active() -> None:
    clock = FakeClock()
    limits = limiter(clock, max_callers=3)
    for key in ("a", "b", "c", "d"):
        wrong(limits, key)
        clock.now += 1
    assert len(limits) == 3
    for _ in range(4):
        wrong(limits, "b")
    refused_wait(limits, "b")


def test_concurrent_tries_count_until_they_finish() -> None:
    limits = limiter(FakeClock())
    for _ in range(5):
        limits.begin("alice")
    # Five tries in flight: a sixth cannot slip past the free allowance before they are judged.
    refused_wait(limits)
    for _ in range(5):
        limits.finish("alice", wrong=False)
    limits.begin("alice")
    limits.finish("alice", wrong=False)
    assert len(limits) == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TrackLimiter(free_failures=0, window_s=600.0, max_wait_s=900.0)


# --- the use case on an in-memory repository -------------------------------------------------------------


@dataclass
class TrackingRepo:
    rows: dict[str, tuple[TrackedApplication, str]] = field(default_factory=dict)
    down: bool = False

    def tracked_application(self, application_no: str) -> tuple[TrackedApplication, str] | None:
        if self.down:
            raise UnavailableError("PostgreSQL is unavailable")
        return self.rows.get(application_no)


class CountingVault(Vault):
    macs = 0

    def mac(self, data: bytes) -> str:
        CountingVault.macs += 1
        return super().mac(data)


def tracking(repo: TrackingRepo, clock: FakeClock) -> tuple[ApplicationTracking, Vault]:
    vault = CountingVault(secrets.token_bytes(32), "govservice", id_prefix="a_")
    ctx = GovServiceContext(
        uow=cast(Any, FakeUnitOfWork(repo)),
        config=GovServiceConfig(),
        vault=vault,
        members=cast(Any, None),
        calendar=cast(Any, None),
    )
    return ApplicationTracking(ctx, limiter(clock)), vault


def application() -> TrackedApplication:
    return TrackedApplication(
        application_no=NUMBER,
        item_code="social_insurance_transfer",
        status=ApplicationStatus.RECEIVED,
        current_region="331004",
        due_date=None,
        steps=(
            TrackedStep(ApplicationStatus.SUBMITTED, "331004", T0),
            TrackedStep(ApplicationStatus.RECEIVED, "331004", T1),
        ),
    )


def test_a_wrong_pairing_and_an_unknown_number_get_the_same_answer_after_the_same_work() -> None:
    repo = TrackingRepo()
    use_case, vault = tracking(repo, FakeClock())
    repo.rows[NUMBER] = (application(), vault.mac(suffix_material(NUMBER, "12345X")))
    answers = []
    for query in (
        TrackApplication(NUMBER, "99999X"),
        TrackApplication("GS-331004-20261201-AAAAAA", "12345X"),
    ):
        before = CountingVault.macs
        with pytest.raises(NotFoundError) as caught:
            use_case.track(query, "caller")
        assert CountingVault.macs == before + 1
        answers.append(caught.value.message)
    assert answers == [NOT_TRACKED, NOT_TRACKED]
    assert use_case.track(TrackApplication(NUMBER, "12345x"), "caller") == application()


def test_the_use_case_slows_a_guessing_caller_down_and_not_another() -> None:
    repo = TrackingRepo()
    use_case, vault = tracking(repo, FakeClock())
    repo.rows[NUMBER] = (application(), vault.mac(suffix_material(NUMBER, "12345X")))
    for guess in range(5):
        with pytest.raises(NotFoundError):
            use_case.track(TrackApplication(NUMBER, f"{guess:06d}"), "guesser")
    with pytest.raises(ResourceExhaustedError):
        use_case.track(TrackApplication(NUMBER, "12345X"), "guesser")
    assert (
        use_case.track(TrackApplication(NUMBER, "12345X"), "applicant").status is ApplicationStatus.RECEIVED
    )


def test_bad_input_and_outages_are_not_wrong_tries() -> None:
    repo = TrackingRepo(down=True)
    use_case, _ = tracking(repo, FakeClock())
    for _ in range(10):
        with pytest.raises(InvalidArgumentError):
            use_case.track(TrackApplication("nope", "12345X"), "caller")
        with pytest.raises(UnavailableError):
            use_case.track(TrackApplication(NUMBER, "12345X"), "caller")
    assert len(use_case.limiter) == 0


# --- statistics -----------------------------------------------------------------------------------------


def test_division_patterns_nest_like_the_codes() -> None:
    assert division_pattern("520000") == "52%"
    assert division_pattern("331000") == "3310%"
    assert division_pattern("331004") == "331004"
    assert division_pattern("310000") == "31%"
    for bad in ("%%%%%%", "33100_", "3310", "\u0663\u0663\u0661\u0660\u0660\u0664", "3310041"):
        assert division_pattern(bad) is None


def test_the_statistics_scope_follows_the_caller() -> None:
    office = Visibility.of(everything=True)
    assert statistics_scope(office, "") is None
    assert statistics_scope(office, "522632") == ("522632",)
    province = Visibility.of(regions={"520000"})
    assert statistics_scope(province, "") == ("52%",)
    assert statistics_scope(province, "522632") == ("522632",)
    county = Visibility.of(regions={"522632", "331004", "%%%%%%"})
    # A scope that is no division code never becomes a pattern.
    assert statistics_scope(county, "") == ("331004", "522632")
    with pytest.raises(PermissionDeniedError):
        statistics_scope(county, "520000")
    with pytest.raises(PermissionDeniedError):
        statistics_scope(Visibility.of(), "331004")
    assert statistics_scope(Visibility.of(), "") == ()


def test_the_statistics_query_names_its_bad_fields() -> None:
    StatisticsQuery("", "", T0, T1).check()
    with pytest.raises(InvalidArgumentError) as caught:
        StatisticsQuery("33100", "", None, None).check()
    assert bad_fields(caught.value) == {"division_code", "period.start_time", "period.end_time"}
    with pytest.raises(InvalidArgumentError) as caught:
        StatisticsQuery("", "", T1, T0).check()
    assert bad_fields(caught.value) == {"period.end_time"}
    with pytest.raises(InvalidArgumentError) as caught:
        PeopleServedQuery(T0, None).check()
    assert bad_fields(caught.value) == {"period.end_time"}
    with pytest.raises(InvalidArgumentError) as caught:
        PeopleServedQuery(datetime(1800, 1, 1, tzinfo=UTC), T1).check()
    assert bad_fields(caught.value) == {"period.start_time"}


def test_rates_and_means_come_from_the_completed_ones() -> None:
    figures = Statistics.of(
        StatisticsCounts(filed=7, completed=4, completed_on_time=3, working_days=18, overdue_now=1)
    )
    assert figures == Statistics(
        filed=7, completed=4, on_time_rate=0.75, mean_working_days=4.5, overdue_now=1
    )
    none = Statistics.of(
        StatisticsCounts(filed=2, completed=0, completed_on_time=0, working_days=0, overdue_now=0)
    )
    assert (none.on_time_rate, none.mean_working_days) == (0.0, 0.0)


def test_a_tracked_application_carries_nothing_personal() -> None:
    fields = set(TrackedApplication.__dataclass_fields__) | set(TrackedStep.__dataclass_fields__)
    assert fields == {
        "application_no",
        "item_code",
        "status",
        "current_region",
        "due_date",
        "steps",
        "region",
        "at",
    }
