"""Pure rules of federations, chambers, memberships and the member map: division codes by level, the
join decision, the membership lifecycle, and the map's geometry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.commerce.domain.federations import (
    AddChamberStaff,
    CreateChamber,
    CreateFederation,
    StaffRole,
    division_level_problem,
    parent_problem,
)
from services.commerce.domain.memberships import (
    ApplyForMembership,
    BoundingBox,
    ListMemberships,
    MapQuery,
    Radius,
    Transition,
    TransitionCommand,
    decide,
    haversine_m,
    transition,
)
from services.commerce.domain.model import (
    ChamberKind,
    EnterpriseLookup,
    FederationLevel,
    GeoPoint,
    JoinRule,
    Membership,
    MembershipStatus,
)
from services.platform.errors import FailedPreconditionError, InvalidArgumentError
from services.platform.identifiers import credit_code_check_char

AT = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
_FIRST17 = "91331004MA2AB1CDE"


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


def _code() -> str:
    return _FIRST17 + credit_code_check_char(_FIRST17)


def _bad_code() -> str:
    """The same code with a wrong check character."""
    return _FIRST17 + ("1" if credit_code_check_char(_FIRST17) != "1" else "2")


# --- federations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "code", "ok"),
    [
        (FederationLevel.PROVINCE, "330000", True),
        (FederationLevel.PROVINCE, "331000", False),
        (FederationLevel.CITY, "331000", True),
        (FederationLevel.CITY, "330000", False),
        (FederationLevel.CITY, "331004", False),
        (FederationLevel.COUNTY, "331004", True),
        (FederationLevel.COUNTY, "331000", False),
        (FederationLevel.COUNTY, "031004", False),
        (FederationLevel.COUNTY, "33100", False),
    ],
)
def test_a_division_code_must_have_its_levels_shape(level: FederationLevel, code: str, ok: bool) -> None:
    assert (division_level_problem(level, code) is None) is ok


def test_a_parent_is_one_level_up_and_contains_the_child() -> None:
    assert parent_problem(FederationLevel.CITY, "331000", FederationLevel.PROVINCE, "330000") is None
    assert parent_problem(FederationLevel.COUNTY, "331004", FederationLevel.CITY, "331000") is None
    assert parent_problem(FederationLevel.CITY, "331000", FederationLevel.PROVINCE, "320000") is not None
    assert parent_problem(FederationLevel.COUNTY, "331004", FederationLevel.CITY, "332000") is not None
    # A county straight under a province skips a level.
    assert parent_problem(FederationLevel.COUNTY, "331004", FederationLevel.PROVINCE, "330000") is not None


def test_create_federation_names_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        CreateFederation("", "", FederationLevel.COUNTY, "331000", "").check()
    assert _fields(error) == {"request_id", "name", "division_code", "parent_id"}


def test_a_province_has_no_parent_and_a_city_needs_one() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        CreateFederation("r1", "Zhejiang", FederationLevel.PROVINCE, "330000", "fed_x").check()
    assert _fields(error) == {"parent_id"}
    with pytest.raises(InvalidArgumentError) as error:
        CreateFederation("r1", "Taizhou", FederationLevel.CITY, "331000", "").check()
    assert _fields(error) == {"parent_id"}
    CreateFederation("r1", "Taizhou", FederationLevel.CITY, "331000", "fed_zj").check()


def test_a_trade_chamber_names_a_known_sector_and_a_regional_one_a_division() -> None:
    def chamber(kind: ChamberKind | None, sector: str, known: bool, division: str) -> CreateChamber:
        return CreateChamber("r1", "fed_1", "Chamber", kind, sector, known, division, JoinRule.STAFF_REVIEW)

    chamber(ChamberKind.TRADE, "MACHINERY", True, "").check()
    chamber(ChamberKind.REGIONAL, "", False, "331004").check()
    with pytest.raises(InvalidArgumentError) as error:
        chamber(ChamberKind.TRADE, "", False, "").check()
    assert _fields(error) == {"sector"}
    with pytest.raises(InvalidArgumentError) as error:
        chamber(ChamberKind.TRADE, "SHIPBUILDING", False, "").check()
    assert _fields(error) == {"sector"}
    with pytest.raises(InvalidArgumentError) as error:
        chamber(ChamberKind.REGIONAL, "", False, "").check()
    assert _fields(error) == {"division_code"}
    with pytest.raises(InvalidArgumentError) as error:
        CreateChamber("r1", "", "Chamber", None, "", False, "", None).check()
    assert _fields(error) == {"federation_id", "kind", "join_rule"}


def test_chamber_staff_need_subject_name_and_role() -> None:
    AddChamberStaff("r1", "ch_1", "user-7", "Wang Fang", StaffRole.OFFICER).check()
    with pytest.raises(InvalidArgumentError) as error:
        AddChamberStaff("r1", "ch_1", "", "", None).check()
    assert _fields(error) == {"subject", "name", "role"}


# --- joining and the lifecycle ----------------------------------------------------------------------


def test_an_application_names_every_bad_field() -> None:
    ApplyForMembership("r1", "ch_1", _code(), "", GeoPoint(28.6, 121.4), "Luqiao").check()
    with pytest.raises(InvalidArgumentError) as error:
        ApplyForMembership("", "", _bad_code(), "", GeoPoint(91.0, -181.0), "").check()
    assert _fields(error) == {
        "request_id",
        "chamber_id",
        "credit_code",
        "location.latitude",
        "location.longitude",
    }


@pytest.mark.parametrize(
    ("rule", "lookup", "status"),
    [
        (JoinRule.AUTO_APPROVE_KNOWN, EnterpriseLookup.FOUND, MembershipStatus.ACTIVE),
        (JoinRule.AUTO_APPROVE_KNOWN, EnterpriseLookup.NOT_FOUND, MembershipStatus.PENDING),
        (JoinRule.AUTO_APPROVE_KNOWN, EnterpriseLookup.UNAVAILABLE, MembershipStatus.PENDING),
        (JoinRule.STAFF_REVIEW, EnterpriseLookup.FOUND, MembershipStatus.PENDING),
        (JoinRule.STAFF_REVIEW, EnterpriseLookup.UNAVAILABLE, MembershipStatus.PENDING),
    ],
)
def test_only_a_known_enterprise_is_approved_by_the_rule(
    rule: JoinRule, lookup: EnterpriseLookup, status: MembershipStatus
) -> None:
    assert decide(rule, lookup) is status


def _membership(status: MembershipStatus) -> Membership:
    return Membership(
        "mem_1", "ch_1", _code(), "Acme", "", "MACHINERY", None, "Luqiao",
        EnterpriseLookup.FOUND, status, "", AT, None, False,
    )  # fmt: skip


LEGAL = {
    (MembershipStatus.PENDING, Transition.APPROVE): MembershipStatus.ACTIVE,
    (MembershipStatus.PENDING, Transition.REJECT): MembershipStatus.REJECTED,
    (MembershipStatus.ACTIVE, Transition.SUSPEND): MembershipStatus.SUSPENDED,
    (MembershipStatus.SUSPENDED, Transition.REINSTATE): MembershipStatus.ACTIVE,
    (MembershipStatus.ACTIVE, Transition.END): MembershipStatus.ENDED,
    (MembershipStatus.SUSPENDED, Transition.END): MembershipStatus.ENDED,
}


@pytest.mark.parametrize("status", list(MembershipStatus))
@pytest.mark.parametrize("step", list(Transition))
def test_the_lifecycle_allows_exactly_its_steps(status: MembershipStatus, step: Transition) -> None:
    target = LEGAL.get((status, step))
    if target is None:
        with pytest.raises(FailedPreconditionError, match=status.value):
            transition(_membership(status), step, "why", AT)
    else:
        after = transition(_membership(status), step, "why", AT)
        assert after.status is target


def test_a_decision_is_stamped_and_reasons_kept_where_they_explain() -> None:
    rejected = transition(_membership(MembershipStatus.PENDING), Transition.REJECT, "no licence", AT)
    assert (rejected.decided_at, rejected.reason) == (AT, "no licence")
    suspended = transition(_membership(MembershipStatus.ACTIVE), Transition.SUSPEND, "dues unpaid", AT)
    assert suspended.reason == "dues unpaid"
    assert suspended.decided_at is None  # the approval time stays what it was
    assert transition(suspended, Transition.REINSTATE, "", AT).reason == ""


def test_reject_and_suspend_need_a_reason_and_end_does_not() -> None:
    for step in (Transition.REJECT, Transition.SUSPEND):
        with pytest.raises(InvalidArgumentError) as error:
            TransitionCommand("mem_1", step, "").check()
        assert _fields(error) == {"reason"}
    TransitionCommand("mem_1", Transition.END, "").check()
    TransitionCommand("mem_1", Transition.APPROVE).check()


def test_a_list_names_a_chamber_or_an_enterprise() -> None:
    with pytest.raises(InvalidArgumentError) as error:
        ListMemberships("", "", ()).check()
    assert _fields(error) == {"chamber_id"}
    ListMemberships("", _code(), (MembershipStatus.ACTIVE,)).check()


# --- the map ----------------------------------------------------------------------------------------


def test_haversine_distance_matches_known_figures() -> None:
    # One degree of latitude is about 111.2 km; one of longitude at 60° N half of that at the equator.
    assert haversine_m(GeoPoint(0, 0), GeoPoint(1, 0)) == pytest.approx(111_195, rel=1e-4)
    equator = haversine_m(GeoPoint(0, 0), GeoPoint(0, 1))
    assert haversine_m(GeoPoint(60, 0), GeoPoint(60, 1)) == pytest.approx(equator / 2, rel=2e-3)
    assert haversine_m(GeoPoint(28.6, 121.4), GeoPoint(28.6, 121.4)) == 0


def test_a_box_contains_its_edges_and_may_cross_the_antimeridian() -> None:
    box = BoundingBox(GeoPoint(28.0, 121.0), GeoPoint(29.0, 122.0))
    assert box.contains(GeoPoint(28.0, 121.0))
    assert box.contains(GeoPoint(29.0, 122.0))
    assert not box.contains(GeoPoint(29.01, 121.5))
    fiji = BoundingBox(GeoPoint(-20.0, 177.0), GeoPoint(-15.0, -178.0))
    assert fiji.contains(GeoPoint(-17.0, 179.5))
    assert fiji.contains(GeoPoint(-17.0, -179.0))
    assert not fiji.contains(GeoPoint(-17.0, 170.0))


def test_a_map_query_checks_its_area() -> None:
    def query(
        box: BoundingBox | None, radius: Radius | None, sector: str = "", known: bool = False
    ) -> MapQuery:
        return MapQuery(box, radius, sector, known, "")

    query(None, None).check()
    query(None, Radius(GeoPoint(28.6, 121.4), 5000)).check()
    with pytest.raises(InvalidArgumentError) as error:
        query(BoundingBox(GeoPoint(29, 121), GeoPoint(28, 122)), None).check()
    assert _fields(error) == {"box.south_west.latitude"}
    with pytest.raises(InvalidArgumentError) as error:
        query(BoundingBox(GeoPoint(-91, 121), GeoPoint(28, 181)), None).check()
    assert _fields(error) == {"box.south_west.latitude", "box.north_east.longitude"}
    for meters in (0.5, 200_001.0):
        with pytest.raises(InvalidArgumentError) as error:
            query(None, Radius(GeoPoint(28.6, 121.4), meters)).check()
        assert _fields(error) == {"radius.meters"}
    with pytest.raises(InvalidArgumentError) as error:
        query(BoundingBox(GeoPoint(28, 121), GeoPoint(29, 122)), Radius(GeoPoint(28.6, 121.4), 10)).check()
    assert _fields(error) == {"radius"}
    with pytest.raises(InvalidArgumentError) as error:
        query(None, None, "SHIPBUILDING", False).check()
    assert _fields(error) == {"sector"}


def test_a_radius_prefilter_band_never_cuts_a_member_inside_the_circle() -> None:
    radius = Radius(GeoPoint(28.6, 121.4), 10_000)
    due_north = GeoPoint(28.6 + radius.latitude_span, 121.4)
    assert haversine_m(radius.center, due_north) == pytest.approx(10_000, rel=1e-9)
