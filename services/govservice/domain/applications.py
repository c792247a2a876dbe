"""Applications: filing, the lifecycle, and the deadline in working days that a supplement round pauses.

Lifecycle (each step by the region whose turn it is)::

    SUBMITTED --receive(A)--> RECEIVED --forward(A)--> FORWARDED --accept(B)--> ACCEPTED
    ACCEPTED | SUPPLEMENTED --request supplement(B)--> SUPPLEMENT_REQUESTED
    SUPPLEMENT_REQUESTED --submit supplement(A)--> SUPPLEMENTED
    ACCEPTED | SUPPLEMENTED --complete(B)--> COMPLETED
    any unfinished status --reject(whoever's turn it is)--> REJECTED

A is the filing region, B the handling region. Whose turn it is (``current_region``): A until forwarded,
B once forwarded, A while a supplement is awaited, B again once it is handed over; a finished application
goes back to A (the result or the reason is delivered through the filing region's window).

The deadline (domain/workdays.py for the counting convention): accepted on ``a`` with ``P`` promised
working days, it is due on the ``P``-th working day after ``a``. ``working_days_used`` holds the working
days the clock ran before it last stopped, and ``clock_from`` the date it last (re)started (acceptance or
the last supplement handed over; None while stopped). A supplement request on ``p`` adds the working days
in ``(clock_from, p]`` and stops the clock; handing the supplement over on ``r`` restarts it and moves the
deadline to the remaining ``P - used`` working days after ``r``, unless the deadline had already passed
when the clock stopped (``p > due``): a late application stays late. Completion on ``c`` adds the
working days in ``(clock_from, c]``; it is on time when ``c <= due_date``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from services.govservice.domain.model import ApplicantKind, ApplicationStatus, Verification
from services.govservice.domain.trail import StepRecord
from services.govservice.domain.workdays import IsWorkingDay, add_working_days, working_days_between
from services.platform.errors import FailedPreconditionError, Violations
from services.platform.idempotency import check_request_id
from services.platform.identifiers import invalid_credit_code, invalid_division_code, invalid_identity_number
from services.platform.validation import check_query_period, text_problem

__all__ = [
    "FINAL",
    "NO_ALPHABET",
    "Application",
    "ApplicationStep",
    "ApplicationView",
    "EnterpriseApplicant",
    "FileApplication",
    "ListApplications",
    "PersonApplicant",
    "Side",
    "Step",
    "StepRecord",
    "acting_region",
    "advance",
    "application_no_of",
    "check_application_no",
    "check_order",
    "invalid_application_no",
    "live_working_days_used",
    "on_time",
    "random_tail",
    "suffix_material",
    "suffix_of",
]

# Six characters from an alphabet without look-alikes (no 0/O, 1/I/L): read out at a window, typed by
# the applicant. 31**6 ~ 887 million numbers per region per day.
NO_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_TAIL = 6
_APPLICATION_NO = re.compile(rf"GS-[0-9]{{6}}-[0-9]{{8}}-[{NO_ALPHABET}]{{{_TAIL}}}")
_PHONE = re.compile(r"\+?[0-9][0-9 -]{2,30}")
_MAX_NAME = 100
_MAX_ITEM_CODE = 64
_MAX_MATERIALS = 100
_MAX_NOTE = 2000
_MAX_RESULT_REF = 200
_MAX_REASON = 500
FINAL = frozenset({ApplicationStatus.COMPLETED, ApplicationStatus.REJECTED})


def random_tail() -> str:
    return "".join(secrets.choice(NO_ALPHABET) for _ in range(_TAIL))


def application_no_of(filing_region: str, filed_on: date, tail: str) -> str:
    """``GS-<filing code>-<YYYYMMDD, local>-<tail>``."""
    return f"GS-{filing_region}-{filed_on:%Y%m%d}-{tail}"


def invalid_application_no(value: str) -> str | None:
    if not _APPLICATION_NO.fullmatch(value):
        return "must be an application number like GS-331004-20261201-7K3QX9"
    return None


def check_application_no(value: str) -> None:
    """INVALID_ARGUMENT naming ``application_no`` unless ``value`` is shaped like one."""
    v = Violations()
    v.add_if("is required" if not value else invalid_application_no(value), "application_no")
    v.check()


def suffix_of(identifier: str) -> str:
    """The last six characters of an identity number or credit code, as the applicant tracks by them."""
    return identifier[-6:].upper()


def suffix_material(application_no: str, suffix: str) -> bytes:
    """What the vault's keyed MAC digests into ``suffix_digest`` (the tracking family computes the same
    for a (number, suffix) pair and compares digests): bound to the application number."""
    return b"suffix|" + (application_no + suffix.upper()).encode()


# --- the application -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonApplicant:
    identity_number: str
    name: str
    phone: str


@dataclass(frozen=True, slots=True)
class EnterpriseApplicant:
    credit_code: str
    name: str
    sector: str
    town: str
    # None in a request (the service decides it).
    verification: Verification | None = None


@dataclass(frozen=True, slots=True)
class Application:
    application_no: str
    item_code: str
    filing_region: str
    handling_region: str
    applicant_kind: ApplicantKind
    # A person's token ("" for an enterprise); the sealed identity number, name and phone.
    applicant_token: str
    sealed_person: bytes | None
    # A person's registration division (first six digits of the identity number; "" for an enterprise).
    origin_division: str
    enterprise: EnterpriseApplicant | None
    suffix_digest: str
    materials: tuple[str, ...]
    status: ApplicationStatus
    current_region: str
    promised_working_days: int
    accepted_on: date | None
    due_date: date | None
    working_days_used: int
    clock_from: date | None
    paused_on: date | None
    overdue: bool
    filed_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApplicationView:
    """What a caller is answered: the application, its person applicant opened (only for a clerk of one of
    its regions; None otherwise), its steps, and the working days used as of today."""

    application: Application
    person: PersonApplicant | None
    steps: tuple[StepRecord, ...]
    working_days_used: int


# --- the steps -----------------------------------------------------------------------------------


class Step(StrEnum):
    RECEIVE = "RECEIVE"
    FORWARD = "FORWARD"
    ACCEPT = "ACCEPT"
    REQUEST_SUPPLEMENT = "REQUEST_SUPPLEMENT"
    SUBMIT_SUPPLEMENT = "SUBMIT_SUPPLEMENT"
    COMPLETE = "COMPLETE"
    REJECT = "REJECT"


class Side(StrEnum):
    FILING = "FILING"
    HANDLING = "HANDLING"
    # Whoever's turn it is (reject).
    CURRENT = "CURRENT"


_S = ApplicationStatus
# step -> (the statuses it may start from, the side that takes it, the status it leads to)
_RULES: dict[Step, tuple[frozenset[ApplicationStatus], Side, ApplicationStatus]] = {
    Step.RECEIVE: (frozenset({_S.SUBMITTED}), Side.FILING, _S.RECEIVED),
    Step.FORWARD: (frozenset({_S.RECEIVED}), Side.FILING, _S.FORWARDED),
    Step.ACCEPT: (frozenset({_S.FORWARDED}), Side.HANDLING, _S.ACCEPTED),
    Step.REQUEST_SUPPLEMENT: (
        frozenset({_S.ACCEPTED, _S.SUPPLEMENTED}),
        Side.HANDLING,
        _S.SUPPLEMENT_REQUESTED,
    ),
    Step.SUBMIT_SUPPLEMENT: (frozenset({_S.SUPPLEMENT_REQUESTED}), Side.FILING, _S.SUPPLEMENTED),
    Step.COMPLETE: (frozenset({_S.ACCEPTED, _S.SUPPLEMENTED}), Side.HANDLING, _S.COMPLETED),
    Step.REJECT: (frozenset(set(_S) - FINAL), Side.CURRENT, _S.REJECTED),
}


def acting_region(application: Application, step: Step) -> str:
    """The region that takes ``step`` on ``application``."""
    side = _RULES[step][1]
    if side is Side.FILING:
        return application.filing_region
    if side is Side.HANDLING:
        return application.handling_region
    return application.current_region


def check_order(application: Application, step: Step) -> None:
    """FAILED_PRECONDITION unless ``step`` may follow the application's status."""
    allowed, _, _ = _RULES[step]
    if application.status not in allowed:
        wanted = " or ".join(sorted(s.value for s in allowed))
        raise FailedPreconditionError(
            f"application {application.application_no} is {application.status.value}: "
            f"{step.value.lower().replace('_', ' ')} needs {wanted}"
        )


def _clock_run(application: Application, today: date, is_working_day: IsWorkingDay) -> int:
    """Working days the clock has run since it last started (0 while stopped)."""
    if application.clock_from is None:
        return 0
    return working_days_between(application.clock_from, today, is_working_day)


def live_working_days_used(application: Application, today: date, is_working_day: IsWorkingDay) -> int:
    """Working days used so far, the running clock included (what the applicant is told)."""
    return application.working_days_used + _clock_run(application, today, is_working_day)


def on_time(application: Application, finished_on: date) -> bool:
    """A completion on ``finished_on`` meets the deadline (the whole due date is the authority's)."""
    return application.due_date is not None and finished_on <= application.due_date


def advance(
    application: Application,
    step: Step,
    *,
    now: datetime,
    today: date,
    is_working_day: IsWorkingDay,
) -> Application:
    """The application after ``step`` on local date ``today`` (order checked; who acts is the caller's)."""
    check_order(application, step)
    status = _RULES[step][2]
    moved = replace(application, status=status)
    if step is Step.FORWARD:
        return replace(moved, current_region=application.handling_region)
    if step is Step.ACCEPT:
        return replace(
            moved,
            accepted_on=today,
            due_date=add_working_days(today, application.promised_working_days, is_working_day),
            working_days_used=0,
            clock_from=today,
            paused_on=None,
        )
    if step is Step.REQUEST_SUPPLEMENT:
        return replace(
            moved,
            working_days_used=live_working_days_used(application, today, is_working_day),
            clock_from=None,
            paused_on=today,
            current_region=application.filing_region,
        )
    if step is Step.SUBMIT_SUPPLEMENT:
        due = application.due_date
        paused_on = application.paused_on
        # A deadline that passed before the pause stays passed; otherwise the remaining days run from now.
        if due is None or paused_on is None or paused_on <= due:
            remaining = max(application.promised_working_days - application.working_days_used, 0)
            due = add_working_days(today, remaining, is_working_day)
        return replace(moved, due_date=due, clock_from=today, current_region=application.handling_region)
    if step in (Step.COMPLETE, Step.REJECT):
        return replace(
            moved,
            working_days_used=live_working_days_used(application, today, is_working_day),
            clock_from=None,
            finished_at=now,
            current_region=application.filing_region,
        )
    return moved  # RECEIVE: the status alone


# --- commands ------------------------------------------------------------------------------------


def _text(v: Violations, field: str, value: str, limit: int, *, required: bool, free: bool = False) -> None:
    if required and not value.strip():
        v.add(field, "is required")
    elif value:
        v.add_if(text_problem(value, max_chars=limit, free_text=free), field)


@dataclass(frozen=True, slots=True)
class FileApplication:
    request_id: str
    item_code: str
    filing_region: str
    handling_region: str
    person: PersonApplicant | None
    enterprise: EnterpriseApplicant | None
    materials: tuple[str, ...]

    def check(self) -> None:
        v = Violations()
        check_request_id(v, self.request_id)
        _text(v, "item_code", self.item_code, _MAX_ITEM_CODE, required=True)
        for field, code in (("filing_region", self.filing_region), ("handling_region", self.handling_region)):
            v.add_if(invalid_division_code(code), field)
        if self.filing_region and self.filing_region == self.handling_region:
            v.add("handling_region", "must be another region than filing_region")
        if (self.person is None) == (self.enterprise is None):
            v.add("person", "name exactly one applicant: a person or an enterprise")
        self._check_applicant(v)
        if len(self.materials) > _MAX_MATERIALS:
            v.add("materials", f"must list at most {_MAX_MATERIALS} materials")
        else:
            seen: set[str] = set()
            for i, code in enumerate(self.materials):
                if not code:
                    v.add(f"materials[{i}]", "must be a material code")
                elif code in seen:
                    v.add(f"materials[{i}]", "is listed twice")
                else:
                    v.add_if(text_problem(code, max_chars=_MAX_ITEM_CODE), f"materials[{i}]")
                seen.add(code)
        v.check()

    def _check_applicant(self, v: Violations) -> None:
        if self.person is not None:
            v.add_if(invalid_identity_number(self.person.identity_number), "person.identity_number")
            _text(v, "person.name", self.person.name, _MAX_NAME, required=True)
            if not self.person.phone:
                v.add("person.phone", "is required")
            elif not _PHONE.fullmatch(self.person.phone):
                v.add("person.phone", "must be a phone number (digits, spaces, dashes, optional leading +)")
        if self.enterprise is not None:
            v.add_if(invalid_credit_code(self.enterprise.credit_code), "enterprise.credit_code")
            _text(v, "enterprise.name", self.enterprise.name, _MAX_NAME, required=False)
            _text(v, "enterprise.sector", self.enterprise.sector, _MAX_NAME, required=False)
            _text(v, "enterprise.town", self.enterprise.town, _MAX_NAME, required=False)

    @property
    def kind(self) -> ApplicantKind:
        return ApplicantKind.PERSON if self.person is not None else ApplicantKind.ENTERPRISE


@dataclass(frozen=True, slots=True)
class ApplicationStep:
    """One lifecycle step; ``text`` is the step's note, result reference or reason."""

    application_no: str
    step: Step
    text: str = ""

    def check(self) -> None:
        v = Violations()
        v.add_if(
            "is required" if not self.application_no else invalid_application_no(self.application_no),
            "application_no",
        )
        if self.step is Step.REQUEST_SUPPLEMENT:
            _text(v, "note", self.text, _MAX_NOTE, required=True, free=True)
        elif self.step is Step.SUBMIT_SUPPLEMENT:
            _text(v, "note", self.text, _MAX_NOTE, required=False, free=True)
        elif self.step is Step.COMPLETE:
            _text(v, "result_ref", self.text, _MAX_RESULT_REF, required=True)
        elif self.step is Step.REJECT:
            _text(v, "reason", self.text, _MAX_REASON, required=True)
        v.check()

    @property
    def status(self) -> ApplicationStatus:
        """The status the step leads to."""
        return _RULES[self.step][2]


@dataclass(frozen=True, slots=True)
class ListApplications:
    # "" for every region the caller sees.
    division_code: str
    statuses: tuple[ApplicationStatus | None, ...]
    overdue_only: bool
    filed_from: datetime | None
    filed_to: datetime | None

    def check(self) -> None:
        v = Violations()
        if self.division_code:
            v.add_if(invalid_division_code(self.division_code), "division_code")
        for i, status in enumerate(self.statuses):
            if status is None:
                v.add(f"statuses[{i}]", "must be an application status (UNSPECIFIED filters nothing)")
        check_query_period(v, "period", self.filed_from, self.filed_to, required=False)
        v.check()
