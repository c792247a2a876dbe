"""Application rules (domain/applications.py): the commands' checks, whose turn each step is, the order
of the lifecycle, and the deadline clock that a supplement round pauses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.govservice.adapters.calendar import HolidayCalendar
from services.govservice.domain.applications import (
    Application,
    ApplicationStep,
    EnterpriseApplicant,
    FileApplication,
    ListApplications,
    PersonApplicant,
    Step,
    acting_region,
    advance,
    application_no_of,
    check_order,
    invalid_application_no,
    live_working_days_used,
    on_time,
    random_tail,
    suffix_material,
    suffix_of,
)
from services.govservice.domain.model import ApplicantKind, ApplicationStatus
from services.platform.errors import FailedPreconditionError, InvalidArgumentError
from services.platform.identifiers import credit_code_check_char, identity_check_char

S = ApplicationStatus
CN = HolidayCalendar("CN").is_working_day
DISTRICT, RONGJIANG = "331004", "522632"


def weekdays(day: date) -> bool:
    return day.weekday() < 5


def _identity(division: str = RONGJIANG) -> str:
    first17 = f"{division}19900101123"
    return first17 + identity_check_char(first17)


def _credit_code() -> str:
    first17 = "91331004MA2AAAAA0"
    return first17 + credit_code_check_char(first17)


def _person() -> PersonApplicant:
    return PersonApplicant(identity_number=_identity(), name="Wu Lan", phone="138 0000 0017")


def _filing(**changes: object) -> FileApplication:
    command = FileApplication(
        request_id="r-1",
        item_code="social_insurance_transfer",
        filing_region=DISTRICT,
        handling_region=RONGJIANG,
        person=_person(),
        enterprise=None,
        materials=("id_card_copy", "insurance_record"),
    )
    return replace(command, **changes)  # type: ignore[arg-type]


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def _application(**changes: object) -> Application:
    application = Application(
        application_no=application_no_of(DISTRICT, date(2026, 9, 28), "7K3QX9"),
        item_code="social_insurance_transfer",
        filing_region=DISTRICT,
        handling_region=RONGJIANG,
        applicant_kind=ApplicantKind.PERSON,
        applicant_token="a_x",
        sealed_person=b"sealed",
        origin_division=RONGJIANG,
        enterprise=None,
        suffix_digest="d",
        materials=("id_card_copy",),
        status=S.SUBMITTED,
        current_region=DISTRICT,
        promised_working_days=5,
        accepted_on=None,
        due_date=None,
        working_days_used=0,
        clock_from=None,
        paused_on=None,
        overdue=False,
        filed_at=datetime(2026, 9, 28, 1, tzinfo=UTC),
        finished_at=None,
    )
    return replace(application, **changes)  # type: ignore[arg-type]


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, tzinfo=UTC)


def _go(application: Application, step: Step, day: date) -> Application:
    return advance(application, step, now=_at(day), today=day, is_working_day=CN)


# --- commands ------------------------------------------------------------------------------------


def test_a_good_filing_passes() -> None:
    _filing().check()
    _filing(person=None, enterprise=EnterpriseApplicant(_credit_code(), "", "", "")).check()


def test_a_wrong_check_digit_is_named() -> None:
    good = _identity()
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(InvalidArgumentError) as error:
        _filing(person=replace(_person(), identity_number=wrong)).check()
    assert _fields(error) == {"person.identity_number"}
    assert "check digit" in error.value.message


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _filing(
            request_id="",
            item_code="",
            handling_region=DISTRICT,
            person=PersonApplicant(identity_number="123", name="", phone="call me"),
            materials=("id_card_copy", "id_card_copy", ""),
        ).check()
    assert _fields(error) == {
        "request_id",
        "item_code",
        "handling_region",
        "person.identity_number",
        "person.name",
        "person.phone",
        "materials[1]",
        "materials[2]",
    }


def test_exactly_one_applicant() -> None:
    with pytest.raises(InvalidArgumentError) as neither:
        _filing(person=None).check()
    assert _fields(neither) == {"person"}
    with pytest.raises(InvalidArgumentError) as both:
        _filing(enterprise=EnterpriseApplicant(_credit_code(), "", "", "")).check()
    assert _fields(both) == {"person"}


def test_an_enterprise_needs_a_valid_credit_code() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        _filing(person=None, enterprise=EnterpriseApplicant("91331004MA2AAAAA0X", "", "", "")).check()
    assert _fields(error) == {"enterprise.credit_code"}


def test_step_texts_required_where_the_step_needs_them() -> None:
    number = application_no_of(DISTRICT, date(2026, 9, 28), "7K3QX9")
    ApplicationStep(number, Step.RECEIVE).check()
    ApplicationStep(number, Step.SUBMIT_SUPPLEMENT).check()
    for step, field in (
        (Step.REQUEST_SUPPLEMENT, "note"),
        (Step.COMPLETE, "result_ref"),
        (Step.REJECT, "reason"),
    ):
        with pytest.raises(InvalidArgumentError) as error:
            ApplicationStep(number, step, "").check()
        assert _fields(error) == {field}
    ApplicationStep(number, Step.REQUEST_SUPPLEMENT, "Please bring\nthe 2025 payment record").check()
    with pytest.raises(InvalidArgumentError) as bad:
        ApplicationStep("GS-1", Step.RECEIVE).check()
    assert _fields(bad) == {"application_no"}


def test_list_filters_are_checked() -> None:
    ListApplications("", (), False, None, None).check()
    with pytest.raises(InvalidArgumentError) as error:
        ListApplications(
            "33100", (None,), False, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        ).check()
    assert _fields(error) == {"division_code", "statuses[0]", "period.end_time"}


def test_application_numbers_and_suffixes() -> None:
    tail = random_tail()
    number = application_no_of(DISTRICT, date(2026, 12, 1), tail)
    assert number == f"GS-331004-20261201-{tail}"
    assert invalid_application_no(number) is None
    assert not set(tail) & set("01ILO")
    assert invalid_application_no("GS-331004-20261201-0OIL1A") is not None
    assert invalid_application_no(number + "\n") is not None
    assert suffix_of("52263219900101123x") == "01123X"
    assert suffix_material(number, "01123x") == f"suffix|{number}01123X".encode()


# --- whose turn, and the order -------------------------------------------------------------------


def test_each_step_belongs_to_one_side() -> None:
    application = _application(current_region=RONGJIANG)
    assert acting_region(application, Step.RECEIVE) == DISTRICT
    assert acting_region(application, Step.FORWARD) == DISTRICT
    assert acting_region(application, Step.SUBMIT_SUPPLEMENT) == DISTRICT
    assert acting_region(application, Step.ACCEPT) == RONGJIANG
    assert acting_region(application, Step.REQUEST_SUPPLEMENT) == RONGJIANG
    assert acting_region(application, Step.COMPLETE) == RONGJIANG
    assert acting_region(application, Step.REJECT) == RONGJIANG
    assert acting_region(replace(application, current_region=DISTRICT), Step.REJECT) == DISTRICT


def test_out_of_order_steps_are_refused() -> None:
    submitted = _application()
    for step in (Step.FORWARD, Step.ACCEPT, Step.REQUEST_SUPPLEMENT, Step.SUBMIT_SUPPLEMENT, Step.COMPLETE):
        with pytest.raises(FailedPreconditionError, match="SUBMITTED"):
            check_order(submitted, step)
    received = _go(submitted, Step.RECEIVE, date(2026, 9, 28))
    with pytest.raises(FailedPreconditionError):
        _go(received, Step.RECEIVE, date(2026, 9, 28))
    for final in (S.COMPLETED, S.REJECTED):
        with pytest.raises(FailedPreconditionError):
            check_order(_application(status=final), Step.REJECT)


def test_whose_turn_moves_with_the_steps() -> None:
    day = date(2026, 9, 28)
    received = _go(_application(), Step.RECEIVE, day)
    assert (received.status, received.current_region) == (S.RECEIVED, DISTRICT)
    forwarded = _go(received, Step.FORWARD, day)
    assert (forwarded.status, forwarded.current_region) == (S.FORWARDED, RONGJIANG)
    rejected = _go(forwarded, Step.REJECT, day)
    assert (rejected.status, rejected.current_region) == (S.REJECTED, DISTRICT)
    assert rejected.finished_at == _at(day)


# --- the deadline clock --------------------------------------------------------------------------


def _accepted_on_29_september() -> Application:
    forwarded = _application(status=S.FORWARDED, current_region=RONGJIANG)
    return _go(forwarded, Step.ACCEPT, date(2026, 9, 29))


def test_acceptance_sets_the_due_date_across_the_holiday() -> None:
    accepted = _accepted_on_29_september()
    # 30 Sep (1), 8 Oct (2), 9 Oct (3), Saturday 10 Oct worked (4), 12 Oct (5).
    assert (accepted.accepted_on, accepted.due_date) == (date(2026, 9, 29), date(2026, 10, 12))
    assert accepted.clock_from == date(2026, 9, 29)
    assert live_working_days_used(accepted, date(2026, 10, 7), CN) == 1
    assert live_working_days_used(accepted, date(2026, 10, 10), CN) == 4


def test_a_supplement_round_pauses_the_clock() -> None:
    paused = _go(_accepted_on_29_september(), Step.REQUEST_SUPPLEMENT, date(2026, 10, 8))
    assert (paused.status, paused.current_region) == (S.SUPPLEMENT_REQUESTED, DISTRICT)
    assert (paused.working_days_used, paused.clock_from, paused.paused_on) == (2, None, date(2026, 10, 8))
    # Paused: the days go by, the count does not.
    assert live_working_days_used(paused, date(2026, 10, 30), CN) == 2
    resumed = _go(paused, Step.SUBMIT_SUPPLEMENT, date(2026, 10, 9))
    assert (resumed.status, resumed.current_region) == (S.SUPPLEMENTED, RONGJIANG)
    # Three days left from 9 Oct: Saturday 10 Oct, 12 Oct, 13 Oct.
    assert resumed.due_date == date(2026, 10, 13)
    completed = _go(resumed, Step.COMPLETE, date(2026, 10, 13))
    assert completed.status is S.COMPLETED
    assert completed.working_days_used == 5
    assert on_time(completed, date(2026, 10, 13))
    assert not on_time(completed, date(2026, 10, 14))


def test_two_rounds_add_up() -> None:
    first = _go(_accepted_on_29_september(), Step.REQUEST_SUPPLEMENT, date(2026, 9, 30))
    assert first.working_days_used == 1
    running = _go(first, Step.SUBMIT_SUPPLEMENT, date(2026, 10, 9))
    assert running.due_date == date(2026, 10, 14)  # four left: 10, 12, 13, 14 Oct
    second = _go(running, Step.REQUEST_SUPPLEMENT, date(2026, 10, 12))
    assert second.working_days_used == 3
    again = _go(second, Step.SUBMIT_SUPPLEMENT, date(2026, 10, 13))
    assert again.due_date == date(2026, 10, 15)  # two left: 14, 15 Oct
    done = _go(again, Step.COMPLETE, date(2026, 10, 19))
    assert done.working_days_used == 7
    assert not on_time(done, date(2026, 10, 19))


def test_a_deadline_passed_before_the_pause_stays_passed() -> None:
    late = _go(_accepted_on_29_september(), Step.REQUEST_SUPPLEMENT, date(2026, 10, 14))
    assert late.working_days_used == 7
    resumed = _go(late, Step.SUBMIT_SUPPLEMENT, date(2026, 10, 20))
    assert resumed.due_date == date(2026, 10, 12)
    done = _go(resumed, Step.COMPLETE, date(2026, 10, 21))
    # The pause 15-20 Oct is not counted even though the deadline had passed.
    assert done.working_days_used == 8


def test_paused_on_the_due_date_leaves_the_resume_day() -> None:
    paused = _go(_accepted_on_29_september(), Step.REQUEST_SUPPLEMENT, date(2026, 10, 12))
    assert paused.working_days_used == 5
    resumed = _go(paused, Step.SUBMIT_SUPPLEMENT, date(2026, 10, 15))
    assert resumed.due_date == date(2026, 10, 15)


def test_a_rejection_stops_the_clock() -> None:
    rejected = _go(_accepted_on_29_september(), Step.REJECT, date(2026, 10, 9))
    assert (rejected.working_days_used, rejected.clock_from) == (3, None)
    assert live_working_days_used(rejected, date(2026, 12, 1), CN) == 3


def test_the_fake_calendar_counts_only_weekdays() -> None:
    forwarded = _application(status=S.FORWARDED, current_region=RONGJIANG, promised_working_days=3)
    accepted = advance(
        forwarded, Step.ACCEPT, now=_at(date(2030, 1, 10)), today=date(2030, 1, 10), is_working_day=weekdays
    )
    assert accepted.due_date == date(2030, 1, 15)  # Fri 11, Mon 14, Tue 15
