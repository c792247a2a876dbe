"""Tracking, statistics and people served over real gRPC, PostgreSQL, Kafka and commerce: the applicant's
right pairing gives status and steps and nothing personal; a wrong pairing and an unknown number get the
same answer; a caller guessing is slowed down while another is not; figures over known applications."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import psycopg
import pytest
from cityhub.common.v1 import common_pb2
from cityhub.govservice.v1 import govservice_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg import sql

from tests.integration.govservice.govservice_support import GovService, clerk, identity_number, rid
from tests.support import violations

pytestmark = pytest.mark.integration

HOME = "331004"  # Luqiao District, the district
RONGJIANG = "522632"
GUOYANG = "341621"
SHANGHAI = "310000"
XIAYI = "411426"  # not registered here: a person from there is nobody's "people served"
TRACK_ITEM = "si_transfer_track"
LICENCE_ITEM = "licence_change_track"
STATS_ITEM = "medical_filing_stats"
PUBLIC: dict[str, Any] = {"roles": ("public",)}
ZONE = ZoneInfo("Asia/Shanghai")


def _clerk(region: str) -> dict[str, Any]:
    """A clerk of ``region`` at the window: the answers carry the applicant's details, so a purpose."""
    return {**clerk(region), "purpose": "cross-region window service"}


def _call(govservice: GovService, rpc: str, request: Message, **kwargs: Any) -> Any:
    return govservice.call(rpc, request, **kwargs)


def _refusal(govservice: GovService, rpc: str, request: Message, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        govservice.call(rpc, request, **kwargs)
    return caught.value


@pytest.fixture(scope="module")
def catalogue(govservice: GovService) -> None:
    """The district and three partner places, three items, and the partnerships, as the programme office."""
    for code, name, province, home in (
        (HOME, "Luqiao District", "Zhejiang", True),
        (RONGJIANG, "Rongjiang County", "Guizhou", False),
        (GUOYANG, "Guoyang County", "Anhui", False),
        (SHANGHAI, "Shanghai", "Shanghai", False),
    ):
        _call(
            govservice,
            "RegisterRegion",
            pb.RegisterRegionRequest(
                request_id=rid(), division_code=code, name=name, province=province, home=home
            ),
        )
    for code, kinds, days in (
        (TRACK_ITEM, [pb.APPLICANT_KIND_PERSON], 15),
        (LICENCE_ITEM, [pb.APPLICANT_KIND_ENTERPRISE], 10),
        (STATS_ITEM, [pb.APPLICANT_KIND_PERSON], 5),
    ):
        _call(
            govservice,
            "DefineItem",
            pb.DefineItemRequest(
                request_id=rid(),
                item=pb.Item(
                    code=code,
                    name=code.replace("_", " "),
                    materials=[pb.Material(code="id_card_copy", name="Copy of the identity card")],
                    authority_level=pb.AUTHORITY_LEVEL_COUNTY,
                    promised_working_days=days,
                    applicant_kinds=kinds,
                ),
            ),
        )
    for partner in (RONGJIANG, GUOYANG, SHANGHAI):
        _call(
            govservice,
            "SetPartnership",
            pb.SetPartnershipRequest(
                request_id=rid(),
                partnership=pb.Partnership(
                    region_a=HOME,
                    region_b=partner,
                    items=[
                        pb.PartnershipItem(item_code=item, direction=pb.DIRECTION_BOTH)
                        for item in (TRACK_ITEM, LICENCE_ITEM, STATS_ITEM)
                    ],
                    start_date="2024-01-01",
                ),
            ),
        )


def _file_person(
    govservice: GovService, identity: str, *, item: str = TRACK_ITEM, name: str = "Yang Mei"
) -> pb.Application:
    """A person's application filed at the district's window for Rongjiang."""
    filed = _call(
        govservice,
        "FileApplication",
        pb.FileApplicationRequest(
            request_id=rid(),
            item_code=item,
            filing_region=HOME,
            handling_region=RONGJIANG,
            person=pb.PersonApplicant(identity_number=identity, name=name, phone="13800000000"),
            materials=["id_card_copy"],
        ),
        **_clerk(HOME),
    )
    application: pb.Application = filed.application
    return application


def _step(govservice: GovService, rpc: str, number: str, region: str, **fields: str) -> None:
    request = getattr(pb, f"{rpc}Request")(application_no=number, **fields)
    _call(govservice, rpc, request, **_clerk(region))


def _to_accepted(govservice: GovService, number: str) -> None:
    _step(govservice, "ReceiveApplication", number, HOME)
    _step(govservice, "ForwardApplication", number, HOME)
    _step(govservice, "AcceptApplication", number, RONGJIANG)


def _track(govservice: GovService, number: str, suffix: str, *, sub: str = "") -> pb.TrackApplicationResponse:
    answer: pb.TrackApplicationResponse = _call(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=number, id_suffix=suffix),
        sub=sub,
        **PUBLIC,
    )
    return answer


def _wrong_suffix(suffix: str) -> str:
    return "000000" if suffix != "000000" else "111111"


def _unknown_number(number: str) -> str:
    """A number of the right shape that was never issued (the tail changed)."""
    tail = "ZZZZZZ" if not number.endswith("ZZZZZZ") else "YYYYYY"
    return number[: -len(tail)] + tail


def _sql(govservice: GovService, query: str, params: tuple[Any, ...]) -> None:
    """Change the service's applications behind its back: a live service's clock cannot be moved, so the
    dates a past day would have left are written instead (``{applications}`` is the table)."""
    table = sql.Identifier(govservice.settings.service_name, "applications")
    with psycopg.connect(govservice.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL(query).format(applications=table), params)


def _texts(message: Message) -> list[str]:
    """Every string anywhere in ``message``."""
    found: list[str] = []
    for field, value in message.ListFields():
        items = list(value) if field.is_repeated else [value]
        for item in items:
            if isinstance(item, Message):
                found.extend(_texts(item))
            elif isinstance(item, str):
                found.append(item)
    return found


# --- tracking -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalogue")
def test_the_right_pairing_gives_status_and_steps_and_nothing_personal(govservice: GovService) -> None:
    identity = identity_number(RONGJIANG)
    filed = _file_person(govservice, identity, name="Long Xiaohua")
    number = filed.application_no
    _to_accepted(govservice, number)

    answer = _track(govservice, number, identity[-6:].lower())
    assert answer.application_no == number
    assert answer.item_code == TRACK_ITEM
    assert answer.status == pb.APPLICATION_STATUS_ACCEPTED
    assert answer.current_region == RONGJIANG
    assert date.fromisoformat(answer.due_date) > datetime.now(ZONE).date()
    assert [(s.status, s.region) for s in answer.steps] == [
        (pb.APPLICATION_STATUS_SUBMITTED, HOME),
        (pb.APPLICATION_STATUS_RECEIVED, HOME),
        (pb.APPLICATION_STATUS_FORWARDED, HOME),
        (pb.APPLICATION_STATUS_ACCEPTED, RONGJIANG),
    ]
    times = [s.at.ToDatetime(tzinfo=UTC) for s in answer.steps]
    assert times == sorted(times)
    assert abs(times[0] - datetime.now(UTC)) < timedelta(minutes=5)
    # Every field of the answer, and nothing that names or points at the applicant or the clerks.
    assert {f.name for f, _ in answer.ListFields()} <= {
        "application_no",
        "item_code",
        "status",
        "current_region",
        "due_date",
        "steps",
    }
    for step in answer.steps:
        assert {f.name for f, _ in step.ListFields()} == {"status", "region", "at"}
    assert filed.applicant_token
    blob = answer.SerializeToString()
    for secret in (identity, identity[-6:], "Long Xiaohua", "13800000000", filed.applicant_token):
        assert secret.encode() not in blob
        assert all(secret not in text for text in _texts(answer))


@pytest.mark.usefixtures("catalogue")
def test_an_enterprise_tracks_by_its_credit_code(govservice: GovService) -> None:
    credit_code = govservice.commerce.member(name="Luqiao Tracking Valves Co.")
    filed = _call(
        govservice,
        "FileApplication",
        pb.FileApplicationRequest(
            request_id=rid(),
            item_code=LICENCE_ITEM,
            filing_region=HOME,
            handling_region=RONGJIANG,
            enterprise=pb.EnterpriseApplicant(credit_code=credit_code),
            materials=["id_card_copy"],
        ),
        **_clerk(HOME),
    ).application
    answer = _track(govservice, filed.application_no, credit_code[-6:])
    assert answer.status == pb.APPLICATION_STATUS_SUBMITTED
    assert answer.current_region == HOME
    assert answer.due_date == ""
    assert [(s.status, s.region) for s in answer.steps] == [(pb.APPLICATION_STATUS_SUBMITTED, HOME)]
    for text in _texts(answer):
        assert credit_code not in text
        assert "Tracking Valves" not in text


@pytest.mark.usefixtures("catalogue")
def test_a_wrong_pairing_and_an_unknown_number_get_the_same_answer(govservice: GovService) -> None:
    identity = identity_number(XIAYI)
    number = _file_person(govservice, identity).application_no
    suffix = identity[-6:]
    # A fresh caller each time: the answers compared are not the slowing down's.
    wrong = _refusal(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=number, id_suffix=_wrong_suffix(suffix)),
        **PUBLIC,
    )
    unknown = _refusal(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=_unknown_number(number), id_suffix=suffix),
        **PUBLIC,
    )
    assert wrong.code() == unknown.code() == grpc.StatusCode.NOT_FOUND
    assert wrong.details() == unknown.details()
    assert number not in (wrong.details() or "")
    # A suffix of another application's applicant does not open this one either.
    other = identity_number(XIAYI)
    _file_person(govservice, other)
    again = _refusal(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=number, id_suffix=other[-6:]),
        **PUBLIC,
    )
    if other[-6:].upper() != suffix.upper():
        assert (again.code(), again.details()) == (wrong.code(), wrong.details())


@pytest.mark.usefixtures("catalogue")
@pytest.mark.parametrize(
    ("number", "suffix", "fields"),
    [
        ("GS-331004-2026-7K3QX9", "12345X", {"application_no"}),
        ("", "12345X", {"application_no"}),
        ("GS-331004-20261201-7K3QX9", "12-45X", {"id_suffix"}),
        ("not a number", "", {"application_no", "id_suffix"}),
    ],
)
def test_a_malformed_query_is_invalid_argument_naming_the_field(
    govservice: GovService, number: str, suffix: str, fields: set[str]
) -> None:
    error = _refusal(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=number, id_suffix=suffix),
        **PUBLIC,
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == fields


@pytest.mark.usefixtures("catalogue")
def test_a_guessing_caller_is_slowed_down_and_another_is_not(govservice: GovService) -> None:
    identity = identity_number(XIAYI)
    number = _file_person(govservice, identity).application_no
    suffix = identity[-6:]
    codes: list[grpc.StatusCode] = []
    message = ""
    for guess in range(7):
        wrong = f"{guess:06d}" if f"{guess:06d}" != suffix else "999999"
        try:
            _track(govservice, number, wrong, sub="guesser-1")
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                message = error.details() or ""
                break
    assert codes[:5] == [grpc.StatusCode.NOT_FOUND] * 5
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(codes) in (6, 7)
    assert "wait" in message
    # Refused before the pairing is looked at: the right one is refused just the same.
    refused = _refusal(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=number, id_suffix=suffix),
        sub="guesser-1",
        **PUBLIC,
    )
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Another caller meanwhile: the normal answers, wrong and right.
    other = _refusal(
        govservice,
        "TrackApplication",
        pb.TrackApplicationRequest(application_no=number, id_suffix=_wrong_suffix(suffix)),
        sub="bystander-1",
        **PUBLIC,
    )
    assert other.code() == grpc.StatusCode.NOT_FOUND
    assert _track(govservice, number, suffix, sub="bystander-1").status == pb.APPLICATION_STATUS_SUBMITTED


# --- statistics ---------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _period(start: datetime, end: datetime) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=_stamp(start), end_time=_stamp(end))


def _figures(govservice: GovService, period: common_pb2.TimeRange, **kwargs: Any) -> tuple[Any, ...]:
    division = kwargs.pop("division_code", "")
    item = kwargs.pop("item_code", STATS_ITEM)
    s = _call(
        govservice,
        "GetStatistics",
        pb.GetStatisticsRequest(division_code=division, item_code=item, period=period),
        **kwargs,
    ).statistics
    return (s.filed, s.completed, round(s.on_time_rate, 6), round(s.mean_working_days, 6), s.overdue_now)


@pytest.mark.usefixtures("catalogue")
def test_statistics_over_known_applications(govservice: GovService) -> None:
    today = datetime.now(ZONE).date()
    started = datetime.now(UTC) - timedelta(hours=1)
    numbers = [
        _file_person(govservice, identity_number(RONGJIANG), item=STATS_ITEM).application_no for _ in range(5)
    ]
    on_time, late, overdue, rejected, old = numbers
    for number in (on_time, late, overdue):
        _to_accepted(govservice, number)
    # On time: completed today, due days ahead; it used 4 working days (as if accepted four days ago).
    _step(govservice, "CompleteApplication", on_time, RONGJIANG, result_ref="RJ-2026-0001")
    _sql(govservice, "UPDATE {applications} SET working_days_used = 4 WHERE application_no = %s", (on_time,))
    # Late: the deadline was yesterday; it used 9 working days.
    _sql(
        govservice,
        "UPDATE {applications} SET due_date = %s WHERE application_no = %s",
        (today - timedelta(days=1), late),
    )
    _step(govservice, "CompleteApplication", late, RONGJIANG, result_ref="RJ-2026-0002")
    _sql(govservice, "UPDATE {applications} SET working_days_used = 9 WHERE application_no = %s", (late,))
    # Past its deadline and flagged, not finished: overdue now.
    _sql(
        govservice,
        "UPDATE {applications} SET due_date = %s, overdue = TRUE WHERE application_no = %s",
        (today - timedelta(days=7), overdue),
    )
    _step(govservice, "RejectApplication", rejected, HOME, reason="not a resident of the partner county")
    # Filed long before the period: counted by no figure of it.
    _sql(
        govservice,
        "UPDATE {applications} SET filed_at = filed_at - interval '40 days' WHERE application_no = %s",
        (old,),
    )
    period = _period(started, datetime.now(UTC) + timedelta(hours=1))

    # filed: on_time, late, overdue, rejected (old is outside); completed: on_time, late -> 1 of 2 on time,
    # (4 + 9) / 2 working days; overdue now: one.
    expected = (4, 2, 0.5, 6.5, 1)
    assert _figures(govservice, period) == expected
    for caller in (
        {"division_code": RONGJIANG},
        {"division_code": "520000"},
        {"division_code": HOME},
        clerk(RONGJIANG),
        clerk("520000"),
        {"division_code": RONGJIANG, **clerk("520000")},
        {"roles": ("service",)},
    ):
        assert _figures(govservice, period, **dict(caller)) == expected, caller
    # Guoyang's figures: none of these concern it; a clerk there sees only its own.
    assert _figures(govservice, period, division_code=GUOYANG) == (0, 0, 0.0, 0.0, 0)
    assert _figures(govservice, period, **clerk(GUOYANG)) == (0, 0, 0.0, 0.0, 0)
    # Last year: nothing filed or completed, but what is overdue now is overdue now.
    last_year = _period(started - timedelta(days=400), started - timedelta(days=300))
    assert _figures(govservice, last_year) == (0, 0, 0.0, 0.0, 1)
    # Every item: at least these.
    assert _figures(govservice, period, item_code="")[0] >= 4


@pytest.mark.usefixtures("catalogue")
def test_statistics_refusals(govservice: GovService) -> None:
    now = datetime.now(UTC)
    period = _period(now - timedelta(days=1), now)
    denied = _refusal(
        govservice,
        "GetStatistics",
        pb.GetStatisticsRequest(division_code=RONGJIANG, period=period),
        **clerk(GUOYANG),
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    for request, fields in (
        (pb.GetStatisticsRequest(), {"period.start_time", "period.end_time"}),
        (pb.GetStatisticsRequest(division_code="52263", period=period), {"division_code"}),
        (pb.GetStatisticsRequest(item_code="no_such_item", period=period), {"item_code"}),
        (pb.GetStatisticsRequest(period=_period(now, now - timedelta(days=1))), {"period.end_time"}),
    ):
        error = _refusal(govservice, "GetStatistics", request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert set(violations(error)) == fields, request
    public = _refusal(govservice, "GetStatistics", pb.GetStatisticsRequest(period=period), **PUBLIC)
    assert public.code() == grpc.StatusCode.PERMISSION_DENIED


# --- people served ------------------------------------------------------------------------------------


def _served(govservice: GovService, period: common_pb2.TimeRange) -> dict[str, tuple[str, int, int]]:
    answer = _call(govservice, "GetPeopleServed", pb.GetPeopleServedRequest(period=period))
    codes = [p.division_code for p in answer.places]
    assert codes == sorted(codes)
    return {p.division_code: (p.name, p.people, p.applications) for p in answer.places}


@pytest.mark.usefixtures("catalogue")
def test_people_served_from_each_partner_place(govservice: GovService) -> None:
    started = datetime.now(UTC) - timedelta(hours=1)
    later = _period(started, datetime.now(UTC) + timedelta(hours=1))
    before = _served(govservice, later)
    # Only the partner places, by code; the district itself is not one.
    assert list(before) == [SHANGHAI, GUOYANG, RONGJIANG]

    worker = identity_number(RONGJIANG, born="19880214")
    _file_person(govservice, worker)
    _file_person(govservice, worker, item=STATS_ITEM)  # the same person twice: one person, two applications
    _file_person(govservice, identity_number(RONGJIANG, born="19950701"))
    _file_person(govservice, identity_number(GUOYANG))
    _file_person(govservice, identity_number("310115"))  # Pudong: under Shanghai's code
    _file_person(govservice, identity_number(HOME))  # the district's own resident
    _file_person(govservice, identity_number(XIAYI))  # a place that is not a partner here
    credit_code = govservice.commerce.member(name="Served Counting Co.")
    _call(
        govservice,
        "FileApplication",
        pb.FileApplicationRequest(
            request_id=rid(),
            item_code=LICENCE_ITEM,
            filing_region=HOME,
            handling_region=RONGJIANG,
            enterprise=pb.EnterpriseApplicant(credit_code=credit_code),
            materials=["id_card_copy"],
        ),
        **_clerk(HOME),
    )

    after = _served(govservice, later)
    delta = {code: (after[code][1] - before[code][1], after[code][2] - before[code][2]) for code in after}
    assert delta == {RONGJIANG: (2, 3), GUOYANG: (1, 1), SHANGHAI: (1, 1)}
    assert after[RONGJIANG][0] == "Rongjiang County"
    assert after[SHANGHAI][0] == "Shanghai"
    # A period before any of them: nobody.
    empty = _served(govservice, _period(started - timedelta(days=30), started - timedelta(days=29)))
    assert {code: figures[1:] for code, figures in empty.items()} == dict.fromkeys(after, (0, 0))
    # No personal data in the answer: names of places and counts only.
    answer = _call(govservice, "GetPeopleServed", pb.GetPeopleServedRequest(period=later))
    assert worker not in str(answer)


@pytest.mark.usefixtures("catalogue")
def test_people_served_is_for_the_programme_office(govservice: GovService) -> None:
    now = datetime.now(UTC)
    period = _period(now - timedelta(days=1), now)
    for caller in (clerk(RONGJIANG), clerk("520000"), PUBLIC):
        error = _refusal(govservice, "GetPeopleServed", pb.GetPeopleServedRequest(period=period), **caller)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, caller
    served = _call(
        govservice, "GetPeopleServed", pb.GetPeopleServedRequest(period=period), roles=("service",)
    )
    assert len(served.places) == 3
    error = _refusal(govservice, "GetPeopleServed", pb.GetPeopleServedRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error)) == {"period.start_time", "period.end_time"}
