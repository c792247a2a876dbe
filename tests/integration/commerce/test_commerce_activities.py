"""Activities over real gRPC, PostgreSQL and Kafka: a full activity with its waitlist promoted on a
cancellation, check-in by the member code (refused for a waitlisted member and a suspended member's code),
the attendance points and events, the figures, and every refusal."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2, events_pb2
from cityhub.common.v1 import common_pb2
from google.protobuf.message import Message

from services.platform.protoconv import to_timestamp
from tests.integration.commerce.commerce_support import Commerce, rid
from tests.support import wait_until

Chamber = commerce_pb2.Chamber


@pytest.fixture(scope="module")
def chamber(commerce: Commerce) -> Chamber:
    return commerce.federation_and_chamber()[1]


def staff(chamber: Chamber) -> dict[str, tuple[str, ...]]:
    return {"roles": ("chamber_staff",), "scopes": (f"chamber:{chamber.chamber_id}",)}


def member_of(membership: commerce_pb2.Membership) -> dict[str, tuple[str, ...]]:
    return {"roles": ("enterprise_user",), "scopes": (f"enterprise:{membership.credit_code}",)}


def join(commerce: Commerce, chamber: Chamber) -> commerce_pb2.Membership:
    code = commerce.industry.onboard()
    membership: commerce_pb2.Membership = commerce.call(
        "ApplyForMembership",
        commerce_pb2.ApplyForMembershipRequest(
            request_id=rid(), chamber_id=chamber.chamber_id, credit_code=code
        ),
    ).membership
    assert membership.status == commerce_pb2.MEMBERSHIP_STATUS_ACTIVE
    return membership


def create(
    commerce: Commerce,
    chamber: Chamber,
    *,
    capacity: int = 2,
    deadline: timedelta = timedelta(days=1),
    title: str = "Export forum",
) -> commerce_pb2.Activity:
    now = datetime.now(UTC)
    found: commerce_pb2.Activity = commerce.call(
        "CreateActivity",
        commerce_pb2.CreateActivityRequest(
            request_id=rid(),
            chamber_id=chamber.chamber_id,
            title=title,
            place="Luqiao hall 2",
            starts_at=to_timestamp(now + timedelta(days=2)),
            capacity=capacity,
            sign_up_deadline=to_timestamp(now + deadline),
        ),
        **staff(chamber),
    ).activity
    return found


def sign_up(
    commerce: Commerce,
    activity: commerce_pb2.Activity,
    membership: commerce_pb2.Membership,
    request_id: str = "",
) -> commerce_pb2.SignUp:
    found: commerce_pb2.SignUp = commerce.call(
        "SignUpForActivity",
        commerce_pb2.SignUpForActivityRequest(
            request_id=request_id or rid(),
            activity_id=activity.activity_id,
            membership_id=membership.membership_id,
        ),
        **member_of(membership),
    ).sign_up
    return found


def code_of(commerce: Commerce, membership: commerce_pb2.Membership) -> str:
    return str(
        commerce.call(
            "IssueMemberCode",
            commerce_pb2.IssueMemberCodeRequest(membership_id=membership.membership_id),
            **member_of(membership),
        ).code.text
    )


def check_in(
    commerce: Commerce, chamber: Chamber, activity: commerce_pb2.Activity, text: str
) -> commerce_pb2.SignUp:
    found: commerce_pb2.SignUp = commerce.call(
        "CheckInToActivity",
        commerce_pb2.CheckInToActivityRequest(activity_id=activity.activity_id, code_text=text),
        **staff(chamber),
    ).sign_up
    return found


def figures(commerce: Commerce, activity: commerce_pb2.Activity) -> tuple[int, int, int]:
    found = commerce.call(
        "GetActivity", commerce_pb2.GetActivityRequest(activity_id=activity.activity_id)
    ).activity
    return found.confirmed, found.waitlisted, found.checked_in


def sign_ups(
    commerce: Commerce, chamber: Chamber, activity: commerce_pb2.Activity
) -> list[tuple[str, str, int]]:
    listed = commerce.call(
        "ListSignUps", commerce_pb2.ListSignUpsRequest(activity_id=activity.activity_id), **staff(chamber)
    ).sign_ups
    return [(s.membership_id, commerce_pb2.SignUpStatus.Name(s.status), s.waitlist_position) for s in listed]


def refusal(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    return raised.value


def events_of(commerce: Commerce, activity_id: str, kind: type[Message]) -> list[Message]:
    return [m for _, m in commerce.events({activity_id}) if isinstance(m, kind)]


# --- the full activity ------------------------------------------------------------------------------


def test_a_full_activity_waitlists_promotes_and_checks_in_by_code(
    commerce: Commerce, chamber: Chamber
) -> None:
    activity = create(commerce, chamber, capacity=2)
    a, b, c, d = (join(commerce, chamber) for _ in range(4))

    first, second = sign_up(commerce, activity, a), sign_up(commerce, activity, b)
    assert (first.status, second.status) == (commerce_pb2.SIGN_UP_STATUS_CONFIRMED,) * 2
    third, fourth = sign_up(commerce, activity, c), sign_up(commerce, activity, d)
    assert (third.status, third.waitlist_position) == (commerce_pb2.SIGN_UP_STATUS_WAITLISTED, 1)
    assert (fourth.status, fourth.waitlist_position) == (commerce_pb2.SIGN_UP_STATUS_WAITLISTED, 2)
    assert figures(commerce, activity) == (2, 2, 0)

    # A confirmed member cancels: the first on the waitlist takes the place.
    cancelled = commerce.call(
        "CancelSignUp", commerce_pb2.CancelSignUpRequest(sign_up_id=first.sign_up_id), **member_of(a)
    )
    assert cancelled.sign_up.status == commerce_pb2.SIGN_UP_STATUS_CANCELLED
    assert cancelled.promoted.sign_up_id == third.sign_up_id
    assert cancelled.promoted.status == commerce_pb2.SIGN_UP_STATUS_CONFIRMED
    assert cancelled.promoted.waitlist_position == 0
    assert figures(commerce, activity) == (2, 1, 0)
    again = refusal(
        lambda: commerce.call(
            "CancelSignUp", commerce_pb2.CancelSignUpRequest(sign_up_id=first.sign_up_id), **member_of(a)
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Check-in by the member code at the door.
    checked = check_in(commerce, chamber, activity, code_of(commerce, b))
    assert checked.status == commerce_pb2.SIGN_UP_STATUS_CHECKED_IN
    assert checked.membership_id == b.membership_id
    assert checked.HasField("checked_in_at")
    twice = refusal(lambda: check_in(commerce, chamber, activity, code_of(commerce, b)))
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already checked in" in (twice.details() or "")

    # A waitlisted member's valid code does not get in.
    waitlisted = refusal(lambda: check_in(commerce, chamber, activity, code_of(commerce, d)))
    assert waitlisted.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "waitlist" in (waitlisted.details() or "")

    # A confirmed member suspended after issuing its code: the code fails online, so no check-in.
    c_code = code_of(commerce, c)
    commerce.call(
        "SuspendMembership",
        commerce_pb2.SuspendMembershipRequest(membership_id=c.membership_id, reason="dues"),
    )
    suspended = refusal(lambda: check_in(commerce, chamber, activity, c_code))
    assert suspended.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SUSPENDED" in (suspended.details() or "")
    forged = refusal(lambda: check_in(commerce, chamber, activity, c_code[:-12] + "AAAAAAAAAAAA"))
    assert forged.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FORGED" in (forged.details() or "")

    assert figures(commerce, activity) == (2, 1, 1)
    assert sign_ups(commerce, chamber, activity) == [
        (a.membership_id, "SIGN_UP_STATUS_CANCELLED", 0),
        (b.membership_id, "SIGN_UP_STATUS_CHECKED_IN", 0),
        (c.membership_id, "SIGN_UP_STATUS_CONFIRMED", 0),
        (d.membership_id, "SIGN_UP_STATUS_WAITLISTED", 1),
    ]

    # The attendance earned its points once, and one AttendanceRecorded event.
    ledger = commerce.call("ListLedger", commerce_pb2.ListLedgerRequest(membership_id=b.membership_id))
    assert [(e.source, e.source_id, e.points) for e in ledger.entries] == [
        (commerce_pb2.POINT_SOURCE_ACTIVITY_ATTENDANCE, activity.activity_id, 10)
    ]
    assert ledger.total_points == 10

    def attended() -> list[Message] | None:
        found = events_of(commerce, activity.activity_id, events_pb2.AttendanceRecorded)
        return found or None

    (event,) = wait_until(attended, timeout_s=15, what="AttendanceRecorded")
    assert isinstance(event, events_pb2.AttendanceRecorded)
    assert (event.membership_id, event.credit_code, event.chamber_id) == (
        b.membership_id,
        b.credit_code,
        chamber.chamber_id,
    )
    (held,) = events_of(commerce, activity.activity_id, events_pb2.ActivityHeld)
    assert isinstance(held, events_pb2.ActivityHeld)
    assert (held.title, held.capacity, held.chamber_id) == ("Export forum", 2, chamber.chamber_id)


def test_concurrent_sign_ups_never_exceed_the_capacity(commerce: Commerce, chamber: Chamber) -> None:
    activity = create(commerce, chamber, capacity=3)
    members = [join(commerce, chamber) for _ in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        made = list(pool.map(lambda m: sign_up(commerce, activity, m), members))

    confirmed = [s for s in made if s.status == commerce_pb2.SIGN_UP_STATUS_CONFIRMED]
    waitlisted = sorted(
        s.waitlist_position for s in made if s.status == commerce_pb2.SIGN_UP_STATUS_WAITLISTED
    )
    assert len(confirmed) == 3
    assert waitlisted == list(range(1, 8))
    assert figures(commerce, activity) == (3, 7, 0)
    listed = sign_ups(commerce, chamber, activity)
    assert [p for _, s, p in listed if s == "SIGN_UP_STATUS_WAITLISTED"] == list(range(1, 8))


def test_sign_ups_page_in_arrival_order(commerce: Commerce, chamber: Chamber) -> None:
    activity = create(commerce, chamber, capacity=1)
    members = [join(commerce, chamber) for _ in range(3)]
    for m in members:
        sign_up(commerce, activity, m)
    seen: list[str] = []
    token = ""
    while True:
        page = commerce.call(
            "ListSignUps",
            commerce_pb2.ListSignUpsRequest(
                activity_id=activity.activity_id, page=common_pb2.PageRequest(page_size=2, page_token=token)
            ),
            **staff(chamber),
        )
        seen += [s.membership_id for s in page.sign_ups]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [m.membership_id for m in members]


# --- sign-up rules ----------------------------------------------------------------------------------


def test_signing_up_twice_is_already_exists_and_a_replay_returns_the_first(
    commerce: Commerce, chamber: Chamber
) -> None:
    activity = create(commerce, chamber)
    member = join(commerce, chamber)
    request_id = rid()
    first = sign_up(commerce, activity, member, request_id)
    assert sign_up(commerce, activity, member, request_id).sign_up_id == first.sign_up_id
    twice = refusal(lambda: sign_up(commerce, activity, member))
    assert twice.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first.sign_up_id in (twice.details() or "")
    assert figures(commerce, activity) == (1, 0, 0)
    # After cancelling, the member may sign up again.
    commerce.call(
        "CancelSignUp", commerce_pb2.CancelSignUpRequest(sign_up_id=first.sign_up_id), **member_of(member)
    )
    assert sign_up(commerce, activity, member).status == commerce_pb2.SIGN_UP_STATUS_CONFIRMED


def test_a_sign_up_after_the_deadline_is_invalid_argument_naming_activity_id(
    commerce: Commerce, chamber: Chamber
) -> None:
    activity = create(commerce, chamber, deadline=timedelta(seconds=1))
    early, late = join(commerce, chamber), join(commerce, chamber)
    assert sign_up(commerce, activity, early).status == commerce_pb2.SIGN_UP_STATUS_CONFIRMED

    deadline = datetime.fromtimestamp(activity.sign_up_deadline.seconds, UTC) + timedelta(
        microseconds=activity.sign_up_deadline.nanos // 1000
    )
    wait_until(
        lambda: datetime.now(UTC) > deadline or None, timeout_s=10, what="the sign-up deadline to pass"
    )
    error = refusal(lambda: sign_up(commerce, activity, late))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "activity_id" in (error.details() or "")
    assert "sign_up_deadline" in (error.details() or "")
    assert figures(commerce, activity) == (1, 0, 0)


def test_only_an_active_member_of_the_activitys_chamber_signs_up(
    commerce: Commerce, chamber: Chamber
) -> None:
    activity = create(commerce, chamber)
    elsewhere = join(commerce, commerce.federation_and_chamber()[1])
    error = refusal(lambda: sign_up(commerce, activity, elsewhere))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "membership_id" in (error.details() or "")

    suspended = join(commerce, chamber)
    commerce.call(
        "SuspendMembership",
        commerce_pb2.SuspendMembershipRequest(membership_id=suspended.membership_id, reason="x"),
    )
    error = refusal(lambda: sign_up(commerce, activity, suspended))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SUSPENDED" in (error.details() or "")

    # An enterprise cannot sign another up: that membership is not visible to it.
    member, other = join(commerce, chamber), join(commerce, chamber)
    request = commerce_pb2.SignUpForActivityRequest(
        request_id=rid(), activity_id=activity.activity_id, membership_id=member.membership_id
    )
    error = refusal(lambda: commerce.call("SignUpForActivity", request, **member_of(other)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Its chamber's staff may sign it up.
    staffed = commerce.call("SignUpForActivity", request, **staff(chamber)).sign_up
    assert staffed.membership_id == member.membership_id
    unknown = commerce_pb2.SignUpForActivityRequest(
        request_id=rid(), activity_id="act_nowhere", membership_id=member.membership_id
    )
    assert refusal(lambda: commerce.call("SignUpForActivity", unknown, **staff(chamber))).code() == (
        grpc.StatusCode.NOT_FOUND
    )
    assert figures(commerce, activity) == (1, 0, 0)


def test_a_code_of_a_member_without_a_sign_up_does_not_check_in(commerce: Commerce, chamber: Chamber) -> None:
    activity = create(commerce, chamber)
    stranger = join(commerce, chamber)
    error = refusal(lambda: check_in(commerce, chamber, activity, code_of(commerce, stranger)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not signed up" in (error.details() or "")
    other_staff = refusal(
        lambda: commerce.call(
            "CheckInToActivity",
            commerce_pb2.CheckInToActivityRequest(activity_id=activity.activity_id, code_text="a.b.c"),
            roles=("chamber_staff",),
            scopes=("chamber:ch_elsewhere",),
        )
    )
    assert other_staff.code() == grpc.StatusCode.NOT_FOUND


# --- creation and reading ---------------------------------------------------------------------------


def test_a_bad_activity_names_every_field_and_stores_nothing(commerce: Commerce, chamber: Chamber) -> None:
    federation_chamber = commerce.federation_and_chamber()[1]
    now = datetime.now(UTC)
    request = commerce_pb2.CreateActivityRequest(
        request_id=rid(),
        chamber_id=federation_chamber.chamber_id,
        title="",
        place="Hall",
        starts_at=to_timestamp(now - timedelta(hours=1)),
        capacity=100_001,
        sign_up_deadline=to_timestamp(now - timedelta(hours=2)),
    )
    error = refusal(lambda: commerce.call("CreateActivity", request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    for field in ("title", "starts_at", "capacity", "sign_up_deadline"):
        assert field in details
    late_deadline = commerce_pb2.CreateActivityRequest(
        request_id=rid(),
        chamber_id=federation_chamber.chamber_id,
        title="Visit",
        place="Hall",
        starts_at=to_timestamp(now + timedelta(days=1)),
        capacity=5,
        sign_up_deadline=to_timestamp(now + timedelta(days=2)),
    )
    error = refusal(lambda: commerce.call("CreateActivity", late_deadline))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sign_up_deadline" in (error.details() or "")
    listed = commerce.call(
        "ListActivities", commerce_pb2.ListActivitiesRequest(chamber_id=federation_chamber.chamber_id)
    )
    assert list(listed.activities) == []
    # Another chamber's staff cannot create here.
    denied = refusal(lambda: commerce.call("CreateActivity", late_deadline, **staff(chamber)))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


def test_create_is_idempotent_and_members_see_their_chambers_activities(commerce: Commerce) -> None:
    _, home = commerce.federation_and_chamber()
    now = datetime.now(UTC)
    request = commerce_pb2.CreateActivityRequest(
        request_id=rid(),
        chamber_id=home.chamber_id,
        title="Factory visit",
        place="Park gate",
        starts_at=to_timestamp(now + timedelta(days=3)),
        capacity=30,
        sign_up_deadline=to_timestamp(now + timedelta(days=2)),
    )
    first = commerce.call("CreateActivity", request, **staff(home)).activity
    assert commerce.call("CreateActivity", request, **staff(home)).activity.activity_id == first.activity_id
    later = create(commerce, home, title="Later forum")

    member = join(commerce, home)
    listed = commerce.call(
        "ListActivities", commerce_pb2.ListActivitiesRequest(chamber_id=home.chamber_id), **member_of(member)
    )
    assert [a.activity_id for a in listed.activities] == [first.activity_id, later.activity_id]
    got = commerce.call(
        "GetActivity", commerce_pb2.GetActivityRequest(activity_id=first.activity_id), **member_of(member)
    )
    assert (got.activity.title, got.activity.capacity) == ("Factory visit", 30)

    outsider = join(commerce, commerce.federation_and_chamber()[1])
    hidden = refusal(
        lambda: commerce.call(
            "GetActivity",
            commerce_pb2.GetActivityRequest(activity_id=first.activity_id),
            **member_of(outsider),
        )
    )
    assert hidden.code() == grpc.StatusCode.NOT_FOUND
    none = commerce.call(
        "ListActivities",
        commerce_pb2.ListActivitiesRequest(chamber_id=home.chamber_id),
        **member_of(outsider),
    )
    assert list(none.activities) == []
