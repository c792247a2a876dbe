"""One-click join (一键入会) and the one map (一图展示) over real gRPC, PostgreSQL, Kafka and a real
industry service: two chambers and twenty joins (known enterprises auto-approved, unknown ones pending,
joins made while industry is unreachable kept as pending), the staff lifecycle, every rejection named by
its field, the events read back, and the member map by box and radius with exact per-town counts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest
from cityhub.commerce.v1 import commerce_pb2, commerce_pb2_grpc, events_pb2
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2
from google.protobuf.message import Message

from services.commerce.bootstrap import build
from services.commerce.domain.memberships import EARTH_RADIUS_M, haversine_m
from services.commerce.domain.model import GeoPoint
from services.platform.identifiers import credit_code_check_char
from services.platform.security import SecuritySettings
from tests.integration.commerce.commerce_support import Commerce, fresh_code, rid
from tests.integration.commerce.conftest import commerce_settings
from tests.support import free_port, violations, wait_until

P = commerce_pb2
STAFF = ("chamber_staff",)
MEMBER = ("enterprise_user",)


def _refused(commerce: Commerce, rpc: str, request: Message, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        commerce.call(rpc, request, **kwargs)
    error = caught.value
    assert isinstance(error, grpc.RpcError)
    return error


def _fields(error: grpc.RpcError) -> set[str]:
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return set(violations(error))


def _apply(
    commerce: Commerce, chamber_id: str, code: str, *, name: str = "", request_id: str = "", **extra: Any
) -> P.Membership:
    request = P.ApplyForMembershipRequest(
        request_id=request_id or rid(), chamber_id=chamber_id, credit_code=code, enterprise_name=name, **extra
    )
    member: P.Membership = commerce.call("ApplyForMembership", request).membership
    return member


def _memberships(commerce: Commerce, **fields: Any) -> list[P.Membership]:
    found: list[P.Membership] = []
    token = ""
    while True:
        page = commerce.call(
            "ListMemberships",
            P.ListMembershipsRequest(page=common_pb2.PageRequest(page_size=3, page_token=token), **fields),
        )
        found.extend(page.memberships)
        token = page.page.next_page_token
        if not token:
            return found


def _types(commerce: Commerce, membership_id: str, count: int) -> list[tuple[str, Message]]:
    return wait_until(
        lambda: found if len(found := commerce.events({membership_id})) >= count else None,
        timeout_s=20,
        what=f"{count} events of {membership_id}",
    )


def _wrong_check(code: str) -> str:
    return code[:17] + ("1" if credit_code_check_char(code[:17]) != "1" else "2")


@contextmanager
def _industry_unreachable(
    commerce: Commerce, kafka_bootstrap: str, database_url: str, security: SecuritySettings
) -> Iterator[Commerce]:
    """A second commerce runtime over the same schema, topic and seal key whose industry address has
    nothing listening: what the service does while industry is stopped."""
    seal_key = commerce.settings.commerce_seal_key
    settings = commerce_settings(
        kafka_bootstrap,
        database_url,
        f"127.0.0.1:{free_port()}",
        service_name=commerce.settings.service_name,
        commerce_events_topic=commerce.settings.commerce_events_topic,
        commerce_seal_key=seal_key.get_secret_value() if seal_key else None,
    )
    runtime = build(settings, configure_logs=False, security=security)
    runtime.start()
    channel = grpc.insecure_channel(runtime.address)
    try:
        yield Commerce(
            runtime,
            settings,
            commerce_pb2_grpc.CommerceServiceStub(channel),
            commerce.issuer,
            kafka_bootstrap,
            database_url,
            commerce.industry,
        )
    finally:
        channel.close()
        runtime.close()


def test_two_chambers_twenty_joins_and_an_outage_of_industry(
    commerce: Commerce, kafka_bootstrap: str, database_url: str, commerce_security: SecuritySettings
) -> None:
    _, auto = commerce.federation_and_chamber(P.JOIN_RULE_AUTO_APPROVE_KNOWN)
    _, review = commerce.federation_and_chamber(P.JOIN_RULE_STAFF_REVIEW)
    known = [commerce.industry.onboard(name=f"Known {i}") for i in range(5)]
    unknown = [fresh_code() for _ in range(3)]

    # 16 joins while industry answers: 8 per chamber, the known enterprises in both.
    joined: dict[tuple[str, str], P.Membership] = {}
    for chamber in (auto, review):
        for code in known:
            # The applicant's own name is not used: industry's is prefilled.
            joined[chamber.chamber_id, code] = _apply(commerce, chamber.chamber_id, code, name="Typed name")
        for i, code in enumerate(unknown):
            joined[chamber.chamber_id, code] = _apply(commerce, chamber.chamber_id, code, name=f"Newco {i}")

    for i, code in enumerate(known):
        member = joined[auto.chamber_id, code]
        assert (member.status, member.lookup, member.auto_approved) == (
            P.MEMBERSHIP_STATUS_ACTIVE,
            P.ENTERPRISE_LOOKUP_FOUND,
            True,
        )
        assert (member.enterprise_name, member.sector) == (f"Known {i}", "MACHINERY")
        assert member.HasField("decided_at")
        pending = joined[review.chamber_id, code]
        assert (pending.status, pending.lookup, pending.auto_approved) == (
            P.MEMBERSHIP_STATUS_PENDING,
            P.ENTERPRISE_LOOKUP_FOUND,
            False,
        )
        assert pending.enterprise_name == f"Known {i}"
        assert not pending.HasField("decided_at")
    for chamber in (auto, review):
        for i, code in enumerate(unknown):
            member = joined[chamber.chamber_id, code]
            assert (member.status, member.lookup, member.enterprise_name, member.sector) == (
                P.MEMBERSHIP_STATUS_PENDING,
                P.ENTERPRISE_LOOKUP_NOT_FOUND,
                f"Newco {i}",
                "",
            )

    # 4 joins while industry cannot be reached (one known enterprise among them).
    extra = commerce.industry.onboard(name="Known but unreachable")
    outage_code = fresh_code()
    with _industry_unreachable(commerce, kafka_bootstrap, database_url, commerce_security) as offline:
        for chamber in (auto, review):
            for code, name in ((outage_code, "Offline Co"), (extra, "Typed Co")):
                joined[chamber.chamber_id, code] = _apply(offline, chamber.chamber_id, code, name=name)
    assert len(joined) == 20
    for chamber in (auto, review):
        for code in (outage_code, extra):
            member = joined[chamber.chamber_id, code]
            assert (member.status, member.lookup, member.auto_approved) == (
                P.MEMBERSHIP_STATUS_PENDING,
                P.ENTERPRISE_LOOKUP_UNAVAILABLE,
                False,
            )
    # A known enterprise joining during the outage is not auto-approved: nothing vouched for it.
    assert joined[auto.chamber_id, extra].enterprise_name == "Typed Co"
    applied = _types(commerce, joined[auto.chamber_id, extra].membership_id, 1)
    assert [(t.rsplit(".", 1)[-1], m.lookup, m.credit_code) for t, m in applied] == [  # type: ignore[attr-defined]
        ("MembershipApplied", P.ENTERPRISE_LOOKUP_UNAVAILABLE, extra)
    ]

    # Figures per chamber, as staff of each see them.
    active = _memberships(commerce, chamber_id=auto.chamber_id, statuses=[P.MEMBERSHIP_STATUS_ACTIVE])
    assert sorted(m.credit_code for m in active) == sorted(known)
    waiting = _memberships(commerce, chamber_id=auto.chamber_id, statuses=[P.MEMBERSHIP_STATUS_PENDING])
    assert sorted(m.credit_code for m in waiting) == sorted([*unknown, outage_code, extra])
    everything_review = _memberships(commerce, chamber_id=review.chamber_id)
    assert len(everything_review) == 10
    assert {m.status for m in everything_review} == {P.MEMBERSHIP_STATUS_PENDING}
    # An enterprise may belong to both chambers, and sees both memberships as itself.
    own = commerce.call(
        "ListMemberships",
        P.ListMembershipsRequest(credit_code=known[0]),
        roles=MEMBER,
        scopes=(f"enterprise:{known[0]}",),
    ).memberships
    assert {m.chamber_id for m in own} == {auto.chamber_id, review.chamber_id}

    # Auto-approval published MembershipApplied then MembershipApproved, each with the credit code.
    first = joined[auto.chamber_id, known[0]]
    events = _types(commerce, first.membership_id, 2)
    assert [t.rsplit(".", 1)[-1] for t, _ in events] == ["MembershipApplied", "MembershipApproved"]
    approved = events[1][1]
    assert isinstance(approved, events_pb2.MembershipApproved)
    assert (approved.credit_code, approved.chamber_id, approved.auto_approved, approved.enterprise_name) == (
        known[0],
        auto.chamber_id,
        True,
        "Known 0",
    )


def test_a_replayed_join_answers_the_first_and_stores_it_once(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    code = commerce.industry.onboard()
    request_id = rid()
    first = _apply(commerce, chamber.chamber_id, code, request_id=request_id)
    assert _apply(commerce, chamber.chamber_id, code, request_id=request_id) == first
    changed = _refused(
        commerce,
        "ApplyForMembership",
        P.ApplyForMembershipRequest(
            request_id=request_id, chamber_id=chamber.chamber_id, credit_code=code, town="Elsewhere"
        ),
    )
    assert _fields(changed) == {"request_id"}
    assert len(_memberships(commerce, chamber_id=chamber.chamber_id)) == 1
    events = _types(commerce, first.membership_id, 2)
    assert [t.rsplit(".", 1)[-1] for t, _ in events] == ["MembershipApplied", "MembershipApproved"]


def test_every_bad_join_is_named_and_nothing_is_stored(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    code = commerce.industry.onboard()
    member = _apply(commerce, chamber.chamber_id, code)

    def refused(**fields: Any) -> set[str]:
        values: dict[str, Any] = {"request_id": rid(), "chamber_id": chamber.chamber_id, **fields}
        return _fields(_refused(commerce, "ApplyForMembership", P.ApplyForMembershipRequest(**values)))

    # A second live membership of the same chamber: already a member.
    assert refused(credit_code=code) == {"credit_code"}
    assert refused(credit_code=_wrong_check(fresh_code())) == {"credit_code"}
    assert refused(credit_code="not a code") == {"credit_code"}
    assert refused(credit_code=fresh_code(), chamber_id="ch_nobody") == {"chamber_id"}
    # Industry does not know it, so the applicant must name it.
    assert refused(credit_code=fresh_code()) == {"enterprise_name"}
    assert refused(
        credit_code=fresh_code(),
        enterprise_name="X",
        location=common_pb2.GeoPoint(latitude=95, longitude=-200),
    ) == {"location.latitude", "location.longitude"}
    assert [m.membership_id for m in _memberships(commerce, chamber_id=chamber.chamber_id)] == [
        member.membership_id
    ]
    # Nothing was published for any refusal: a join made after them is the chamber's next event (one key,
    # one partition, in order).
    sentinel = _apply(commerce, chamber.chamber_id, commerce.industry.onboard())
    _types(commerce, sentinel.membership_id, 2)
    applied = [
        m.membership_id
        for _, m in commerce.events()
        if isinstance(m, events_pb2.MembershipApplied) and m.chamber_id == chamber.chamber_id
    ]
    assert applied == [member.membership_id, sentinel.membership_id]


def test_another_chambers_staff_see_nothing_and_a_member_decides_nothing(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber(P.JOIN_RULE_STAFF_REVIEW)
    _, other = commerce.federation_and_chamber()
    staff = {"roles": STAFF, "scopes": (f"chamber:{chamber.chamber_id}",)}
    foreign = {"roles": STAFF, "scopes": (f"chamber:{other.chamber_id}",)}
    code = commerce.industry.onboard()
    mid = _apply(commerce, chamber.chamber_id, code).membership_id
    itself = {"roles": MEMBER, "scopes": (f"enterprise:{code}",)}
    # Another chamber's staff cannot tell this membership from a missing one; the member cannot approve.
    for rpc, request in (
        ("ApproveMembership", P.ApproveMembershipRequest(membership_id=mid)),
        ("GetMembership", P.GetMembershipRequest(membership_id=mid)),
    ):
        assert _refused(commerce, rpc, request, **foreign).code() is grpc.StatusCode.NOT_FOUND
    listing = P.ListMembershipsRequest(chamber_id=chamber.chamber_id)
    assert (
        _refused(commerce, "ListMemberships", listing, **foreign).code() is grpc.StatusCode.PERMISSION_DENIED
    )
    approve = P.ApproveMembershipRequest(membership_id=mid)
    assert (
        _refused(commerce, "ApproveMembership", approve, **itself).code() is grpc.StatusCode.PERMISSION_DENIED
    )
    nobody = P.ApproveMembershipRequest(membership_id="mem_nobody")
    assert _refused(commerce, "ApproveMembership", nobody, **staff).code() is grpc.StatusCode.NOT_FOUND
    # The member itself still sees its application, untouched.
    own = commerce.call("GetMembership", P.GetMembershipRequest(membership_id=mid), **itself).membership
    assert own.status == P.MEMBERSHIP_STATUS_PENDING


def test_staff_run_the_lifecycle_and_the_member_may_leave(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber(P.JOIN_RULE_STAFF_REVIEW)
    staff = {"roles": STAFF, "scopes": (f"chamber:{chamber.chamber_id}",)}
    code, rejected_code = commerce.industry.onboard(), fresh_code()
    applied = _apply(commerce, chamber.chamber_id, code)
    doomed = _apply(commerce, chamber.chamber_id, rejected_code, name="Shell Co")
    assert applied.status == P.MEMBERSHIP_STATUS_PENDING
    mid = applied.membership_id
    itself = {"roles": MEMBER, "scopes": (f"enterprise:{code}",)}

    def step(rpc: str, request: Message, **who: Any) -> P.Membership:
        changed: P.Membership = commerce.call(rpc, request, **(who or staff)).membership
        return changed

    # Rejection needs a reason; a pending application is rejected with it.
    no_reason = P.RejectMembershipRequest(membership_id=doomed.membership_id)
    assert _fields(_refused(commerce, "RejectMembership", no_reason, **staff)) == {"reason"}
    rejected = step(
        "RejectMembership", P.RejectMembershipRequest(membership_id=doomed.membership_id, reason="no licence")
    )
    assert (rejected.status, rejected.reason) == (P.MEMBERSHIP_STATUS_REJECTED, "no licence")
    assert rejected.HasField("decided_at")

    approve = P.ApproveMembershipRequest(membership_id=mid)
    approved = step("ApproveMembership", approve)
    assert (approved.status, approved.auto_approved) == (P.MEMBERSHIP_STATUS_ACTIVE, False)
    # Approving twice, reinstating an active member, rejecting an approved one: the state forbids it.
    for rpc, request in (
        ("ApproveMembership", approve),
        ("ReinstateMembership", P.ReinstateMembershipRequest(membership_id=mid)),
        ("RejectMembership", P.RejectMembershipRequest(membership_id=mid, reason="late")),
    ):
        error = _refused(commerce, rpc, request, **staff)
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION, rpc
        assert "ACTIVE" in (error.details() or "")

    suspend = P.SuspendMembershipRequest(membership_id=mid, reason="dues unpaid")
    assert _fields(
        _refused(commerce, "SuspendMembership", P.SuspendMembershipRequest(membership_id=mid), **staff)
    ) == {"reason"}
    suspended = step("SuspendMembership", suspend)
    assert (suspended.status, suspended.reason) == (P.MEMBERSHIP_STATUS_SUSPENDED, "dues unpaid")
    reinstated = step("ReinstateMembership", P.ReinstateMembershipRequest(membership_id=mid))
    assert (reinstated.status, reinstated.reason) == (P.MEMBERSHIP_STATUS_ACTIVE, "")

    # The member itself leaves; after that nothing moves it, and it may apply afresh.
    ended = step("EndMembership", P.EndMembershipRequest(membership_id=mid, reason="moving away"), **itself)
    assert (ended.status, ended.reason) == (P.MEMBERSHIP_STATUS_ENDED, "moving away")
    error = _refused(commerce, "EndMembership", P.EndMembershipRequest(membership_id=mid), **itself)
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    stranger = {"roles": MEMBER, "scopes": (f"enterprise:{fresh_code()}",)}
    error = _refused(commerce, "EndMembership", P.EndMembershipRequest(membership_id=mid), **stranger)
    assert error.code() is grpc.StatusCode.NOT_FOUND
    again = _apply(commerce, chamber.chamber_id, code)
    assert again.membership_id != mid
    assert again.status == P.MEMBERSHIP_STATUS_PENDING

    # The story read back from Kafka, in order, each event carrying the credit code.
    events = _types(commerce, mid, 5)
    names = [t.rsplit(".", 1)[-1] for t, _ in events]
    assert names == [
        "MembershipApplied",
        "MembershipApproved",
        "MembershipSuspended",
        "MembershipReinstated",
        "MembershipEnded",
    ]
    assert {m.credit_code for _, m in events} == {code}  # type: ignore[attr-defined]
    assert events[2][1].reason == "dues unpaid"  # type: ignore[attr-defined]
    rejected_events = _types(commerce, doomed.membership_id, 2)
    assert [(t.rsplit(".", 1)[-1], m.credit_code) for t, m in rejected_events] == [  # type: ignore[attr-defined]
        ("MembershipApplied", rejected_code),
        ("MembershipRejected", rejected_code),
    ]
    # Staff see the whole chamber, statuses filtered.
    listed = _memberships(commerce, chamber_id=chamber.chamber_id, statuses=[P.MEMBERSHIP_STATUS_ENDED])
    assert [m.membership_id for m in listed] == [mid]
    assert _fields(_refused(commerce, "ListMemberships", P.ListMembershipsRequest())) == {"chamber_id"}


# --- the map --------------------------------------------------------------------------------------------

CENTER = GeoPoint(28.60, 121.40)


def _north(meters: float) -> GeoPoint:
    return GeoPoint(CENTER.latitude + math.degrees(meters / EARTH_RADIUS_M), CENTER.longitude)


def _east(meters: float) -> GeoPoint:
    dlon = 2 * math.asin(math.sin(meters / (2 * EARTH_RADIUS_M)) / math.cos(math.radians(CENTER.latitude)))
    return GeoPoint(CENTER.latitude, CENTER.longitude + math.degrees(dlon))


def _onboard(commerce: Commerce, sector: industry_pb2.Sector.ValueType) -> str:
    code = fresh_code()
    token = commerce.industry.issuer.issue(sub="tester", roles=("industry_operator",), scopes=(), ttl_s=600)
    commerce.industry.stub.OnboardEnterprise(
        industry_pb2.OnboardEnterpriseRequest(
            request_id=rid(), credit_code=code, name=f"Chem {code[-4:]}", sector=sector, address="Luqiao"
        ),
        metadata=(("authorization", f"Bearer {token}"),),
        timeout=30,
    )
    return code


def _search(commerce: Commerce, **fields: Any) -> tuple[list[P.MapMember], list[tuple[str, int]]]:
    """Every page of a map search; the town counts of every page (which must agree)."""
    members: list[P.MapMember] = []
    towns: list[list[tuple[str, int]]] = []
    token = ""
    who = {k: fields.pop(k) for k in ("roles", "scopes") if k in fields}
    while True:
        page = commerce.call(
            "SearchMemberMap",
            P.SearchMemberMapRequest(page=common_pb2.PageRequest(page_size=2, page_token=token), **fields),
            **who,
        )
        members.extend(page.members)
        towns.append([(t.town, t.members) for t in page.towns])
        token = page.page.next_page_token
        if not token:
            break
    assert all(t == towns[0] for t in towns), towns
    return members, towns[0]


def test_the_member_map_by_box_and_radius_with_exact_town_counts(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    _, other = commerce.federation_and_chamber()
    places = {
        "n1km": (_north(1_000), "Luqiao"),
        "n4900": (_north(4_900), "Luqiao"),
        "e3km": (_east(3_000), "Jiaojiang"),
        "e4990": (_east(4_990), "Luqiao"),
        "n5100": (_north(5_100), "Jiaojiang"),
        "e20km": (_east(20_000), "Huangyan"),
        "center": (CENTER, "Jiaojiang"),
    }
    code_of: dict[str, str] = {}
    membership_of: dict[str, str] = {}
    for label, (point, town) in places.items():
        code = commerce.industry.onboard()
        code_of[label] = code
        location = common_pb2.GeoPoint(latitude=point.latitude, longitude=point.longitude)
        member = _apply(commerce, chamber.chamber_id, code, location=location, town=town)
        assert member.status == P.MEMBERSHIP_STATUS_ACTIVE
        membership_of[label] = member.membership_id
    # Never on the map: a pending member, an active one without a location, a suspended one; another
    # chamber's member at the centre and a chemicals enterprise show only when their filters allow.
    at_center = common_pb2.GeoPoint(latitude=CENTER.latitude, longitude=CENTER.longitude)
    _apply(commerce, chamber.chamber_id, fresh_code(), name="Pending", location=at_center, town="Luqiao")
    _apply(commerce, chamber.chamber_id, commerce.industry.onboard(), town="Luqiao")
    hidden = _apply(
        commerce, chamber.chamber_id, commerce.industry.onboard(), location=at_center, town="Luqiao"
    )
    commerce.call(
        "SuspendMembership", P.SuspendMembershipRequest(membership_id=hidden.membership_id, reason="audit")
    )
    _apply(commerce, other.chamber_id, commerce.industry.onboard(), location=at_center, town="Luqiao")
    chemicals = _onboard(commerce, industry_pb2.SECTOR_CHEMICALS)
    chem = _apply(commerce, chamber.chamber_id, chemicals, location=at_center, town="Jiaojiang")
    assert (chem.status, chem.sector) == (P.MEMBERSHIP_STATUS_ACTIVE, "CHEMICALS")

    def labels(members: list[P.MapMember]) -> set[str]:
        back = {v: k for k, v in membership_of.items()}
        back[chem.membership_id] = "chem"
        return {back.get(m.membership_id, m.membership_id) for m in members}

    for label, (point, _) in places.items():
        if label.startswith(("n", "e")):
            expected = float(label.removeprefix("n").removeprefix("e").replace("km", "000"))
            assert haversine_m(CENTER, point) == pytest.approx(expected, abs=0.01)

    center = common_pb2.GeoPoint(latitude=CENTER.latitude, longitude=CENTER.longitude)
    radius = P.Radius(center=center, meters=5_000)
    members, towns = _search(commerce, radius=radius, chamber_id=chamber.chamber_id)
    assert labels(members) == {"n1km", "n4900", "e3km", "e4990", "center", "chem"}
    assert towns == [("Jiaojiang", 3), ("Luqiao", 3)]
    first = next(m for m in members if m.membership_id == membership_of["e3km"])
    assert (first.credit_code, first.town, first.sector) == (code_of["e3km"], "Jiaojiang", "MACHINERY")
    assert first.location.longitude == pytest.approx(places["e3km"][0].longitude)

    members, towns = _search(commerce, radius=radius, chamber_id=chamber.chamber_id, sector="MACHINERY")
    assert labels(members) == {"n1km", "n4900", "e3km", "e4990", "center"}
    assert towns == [("Luqiao", 3), ("Jiaojiang", 2)]

    wide = P.Radius(center=center, meters=25_000)
    members, towns = _search(commerce, radius=wide, chamber_id=chamber.chamber_id, sector="MACHINERY")
    assert labels(members) == set(places)
    assert towns == [("Jiaojiang", 3), ("Luqiao", 3), ("Huangyan", 1)]

    # A box reaching just past 5 km north and 3 km east (edges included).
    box = P.BoundingBox(
        south_west=common_pb2.GeoPoint(latitude=CENTER.latitude, longitude=CENTER.longitude),
        north_east=common_pb2.GeoPoint(latitude=_north(5_100).latitude, longitude=_east(3_000).longitude),
    )
    members, towns = _search(commerce, box=box, chamber_id=chamber.chamber_id, sector="MACHINERY")
    assert labels(members) == {"n1km", "n4900", "n5100", "e3km", "center"}
    assert towns == [("Jiaojiang", 3), ("Luqiao", 2)]

    # The chamber's staff see their chamber's members without naming it; the other chamber's staff
    # see only theirs.
    members, _ = _search(
        commerce, radius=radius, roles=STAFF, scopes=(f"chamber:{chamber.chamber_id}",), sector="MACHINERY"
    )
    assert labels(members) == {"n1km", "n4900", "e3km", "e4990", "center"}
    members, towns = _search(commerce, radius=radius, roles=STAFF, scopes=(f"chamber:{other.chamber_id}",))
    assert len(members) == 1
    assert towns == [("Luqiao", 1)]


def test_a_map_search_names_a_bad_area(commerce: Commerce) -> None:
    def refused(**fields: Any) -> set[str]:
        return _fields(_refused(commerce, "SearchMemberMap", P.SearchMemberMapRequest(**fields)))

    point = common_pb2.GeoPoint(latitude=28.6, longitude=121.4)
    north = common_pb2.GeoPoint(latitude=29.6, longitude=121.5)
    assert refused(box=P.BoundingBox(south_west=north, north_east=point)) == {"box.south_west.latitude"}
    assert refused(
        box=P.BoundingBox(
            south_west=common_pb2.GeoPoint(latitude=-91, longitude=0),
            north_east=common_pb2.GeoPoint(latitude=10, longitude=181),
        )
    ) == {"box.south_west.latitude", "box.north_east.longitude"}
    assert refused(radius=P.Radius(center=point, meters=0)) == {"radius.meters"}
    assert refused(radius=P.Radius(center=point, meters=200_001)) == {"radius.meters"}
    assert refused(
        box=P.BoundingBox(south_west=point, north_east=north), radius=P.Radius(center=point, meters=10)
    ) == {"radius"}
    assert refused(sector="SHIPBUILDING") == {"sector"}
    assert refused(page=common_pb2.PageRequest(page_token="garbage!")) == {"page.page_token"}
