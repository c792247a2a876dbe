"""Federations, chambers and chamber staff over real gRPC, PostgreSQL and Kafka: the three levels by
division code with their parents, each federation's first signing key, chambers by kind, staff by subject,
every rejection named by its field, and the events read back."""

from __future__ import annotations

import secrets
from typing import Any

import grpc
import psycopg
import pytest
from cityhub.commerce.v1 import commerce_pb2, events_pb2
from cityhub.common.v1 import common_pb2

from tests.integration.commerce.commerce_support import Commerce, rid
from tests.support import violations, wait_until

P = commerce_pb2


def _fields(error: grpc.RpcError) -> set[str]:
    """The field paths an INVALID_ARGUMENT refusal names."""
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    return set(violations(error))


def _refused(commerce: Commerce, rpc: str, request: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        commerce.call(rpc, request, **kwargs)
    error = caught.value
    assert isinstance(error, grpc.RpcError)
    return error


def _sql(commerce: Commerce, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    schema = commerce.settings.service_name
    with psycopg.connect(commerce.database_url, options=f"-c search_path={schema}") as conn:
        return list(conn.execute(query, params).fetchall())


def _chain(commerce: Commerce) -> tuple[P.Federation, P.Federation, P.Federation]:
    """A made-up province 8X0000, a city 8XYY00 under it and a county 8XYYZZ under that."""
    province_code = f"8{secrets.randbelow(10)}0000"
    while _sql(commerce, "SELECT 1 FROM federations WHERE division_code = %s", (province_code,)):
        province_code = f"8{secrets.randbelow(10)}0000"
    city_code = f"{province_code[:2]}1000"
    county_code = f"{province_code[:2]}1004"

    def create(level: P.FederationLevel.ValueType, code: str, parent_id: str) -> P.Federation:
        request = P.CreateFederationRequest(
            request_id=rid(), name=f"Federation {code}", level=level, division_code=code, parent_id=parent_id
        )
        made: P.Federation = commerce.call("CreateFederation", request).federation
        return made

    province = create(P.FEDERATION_LEVEL_PROVINCE, province_code, "")
    city = create(P.FEDERATION_LEVEL_CITY, city_code, province.federation_id)
    county = create(P.FEDERATION_LEVEL_COUNTY, county_code, city.federation_id)
    return province, city, county


def test_three_levels_by_division_code_each_with_its_signing_key(commerce: Commerce) -> None:
    province, city, county = _chain(commerce)
    assert (province.level, city.level, county.level) == (
        P.FEDERATION_LEVEL_PROVINCE,
        P.FEDERATION_LEVEL_CITY,
        P.FEDERATION_LEVEL_COUNTY,
    )
    assert (province.parent_id, city.parent_id, county.parent_id) == (
        "",
        province.federation_id,
        city.federation_id,
    )
    ids = [province.federation_id, city.federation_id, county.federation_id]
    key_ids = {province.current_key_id, city.current_key_id, county.current_key_id}
    assert len(key_ids) == 3
    assert all(k.startswith("k_") for k in key_ids)
    keys = _sql(
        commerce,
        "SELECT key_id, federation_id, algorithm, public_key_pem, sealed_private, is_current"
        " FROM signing_keys WHERE federation_id = ANY(%s)",
        (ids,),
    )
    assert {(k[0], k[1]) for k in keys} == {
        (province.current_key_id, province.federation_id),
        (city.current_key_id, city.federation_id),
        (county.current_key_id, county.federation_id),
    }
    for _, _, algorithm, public_pem, sealed, is_current in keys:
        assert algorithm == "ES256"
        assert is_current
        assert public_pem.startswith("-----BEGIN PUBLIC KEY-----")
        assert b"PRIVATE KEY" not in bytes(sealed)  # sealed at rest, never in clear

    children = commerce.call("ListFederations", P.ListFederationsRequest(parent_id=city.federation_id))
    assert [f.federation_id for f in children.federations] == [county.federation_id]
    assert children.federations[0].current_key_id == county.current_key_id

    created = wait_until(
        lambda: (
            [m for _, m in commerce.events(set(ids)) if isinstance(m, events_pb2.FederationCreated)]
            if len(commerce.events(set(ids))) >= 3
            else None
        ),
        timeout_s=20,
        what="three FederationCreated events",
    )
    assert {(e.federation_id, e.division_code, e.parent_id) for e in created} == {
        (province.federation_id, province.division_code, ""),
        (city.federation_id, city.division_code, province.federation_id),
        (county.federation_id, county.division_code, city.federation_id),
    }


def test_a_replay_returns_the_first_federation_and_a_taken_code_is_already_exists(commerce: Commerce) -> None:
    code = f"7{secrets.randbelow(10)}0000"
    while _sql(commerce, "SELECT 1 FROM federations WHERE division_code = %s", (code,)):
        code = f"7{secrets.randbelow(10)}0000"
    request = P.CreateFederationRequest(
        request_id=rid(), name="Province", level=P.FEDERATION_LEVEL_PROVINCE, division_code=code
    )
    first = commerce.call("CreateFederation", request).federation
    assert commerce.call("CreateFederation", request).federation == first
    changed = P.CreateFederationRequest()
    changed.CopyFrom(request)
    changed.name = "Another name"
    assert _fields(_refused(commerce, "CreateFederation", changed)) == {"request_id"}
    again = P.CreateFederationRequest(
        request_id=rid(), name="Twin", level=P.FEDERATION_LEVEL_PROVINCE, division_code=code
    )
    assert _refused(commerce, "CreateFederation", again).code() is grpc.StatusCode.ALREADY_EXISTS
    assert _sql(commerce, "SELECT count(*) FROM federations WHERE division_code = %s", (code,)) == [(1,)]
    assert _sql(
        commerce, "SELECT count(*) FROM signing_keys WHERE federation_id = %s", (first.federation_id,)
    ) == [(1,)]


def test_a_federation_must_fit_its_level_and_its_parent(commerce: Commerce) -> None:
    province, city, _ = _chain(commerce)
    before = _sql(commerce, "SELECT count(*) FROM federations")

    def refused_fields(level: P.FederationLevel.ValueType, code: str, parent_id: str) -> set[str]:
        request = P.CreateFederationRequest(
            request_id=rid(), name="Federation", level=level, division_code=code, parent_id=parent_id
        )
        return _fields(_refused(commerce, "CreateFederation", request))

    prefix = province.division_code[:2]
    # A city code that is province-shaped, a county code ending 00, a code that is no division at all.
    assert refused_fields(P.FEDERATION_LEVEL_CITY, f"{prefix}0000", province.federation_id) == {
        "division_code"
    }
    assert refused_fields(P.FEDERATION_LEVEL_COUNTY, f"{prefix}2000", city.federation_id) == {"division_code"}
    assert refused_fields(P.FEDERATION_LEVEL_PROVINCE, "012345", "") == {"division_code"}
    assert refused_fields(P.FEDERATION_LEVEL_UNSPECIFIED, f"{prefix}0000", "") == {"level"}
    # Parents: missing, unknown, of the wrong level, or whose division does not contain the child.
    assert refused_fields(P.FEDERATION_LEVEL_CITY, f"{prefix}2000", "") == {"parent_id"}
    assert refused_fields(P.FEDERATION_LEVEL_CITY, f"{prefix}2000", "fed_nobody") == {"parent_id"}
    assert refused_fields(P.FEDERATION_LEVEL_COUNTY, f"{prefix}1005", province.federation_id) == {"parent_id"}
    assert refused_fields(P.FEDERATION_LEVEL_COUNTY, f"{prefix}2005", city.federation_id) == {"parent_id"}
    other = "11" if prefix != "11" else "12"
    assert refused_fields(P.FEDERATION_LEVEL_CITY, f"{other}2000", province.federation_id) == {"parent_id"}
    assert refused_fields(P.FEDERATION_LEVEL_PROVINCE, f"{other}0000", province.federation_id) == {
        "parent_id"
    }
    assert _sql(commerce, "SELECT count(*) FROM federations") == before


def test_chambers_by_kind_under_a_federation(commerce: Commerce) -> None:
    _, _, county = _chain(commerce)
    trade = commerce.call(
        "CreateChamber",
        P.CreateChamberRequest(
            request_id=rid(),
            federation_id=county.federation_id,
            name="Machinery chamber",
            kind=P.CHAMBER_KIND_TRADE,
            sector="MACHINERY",
            join_rule=P.JOIN_RULE_AUTO_APPROVE_KNOWN,
        ),
    ).chamber
    regional = commerce.call(
        "CreateChamber",
        P.CreateChamberRequest(
            request_id=rid(),
            federation_id=county.federation_id,
            name="Wenzhou chamber",
            kind=P.CHAMBER_KIND_REGIONAL,
            division_code="330300",
            join_rule=P.JOIN_RULE_STAFF_REVIEW,
        ),
    ).chamber
    assert (trade.kind, trade.sector, trade.join_rule) == (
        P.CHAMBER_KIND_TRADE,
        "MACHINERY",
        P.JOIN_RULE_AUTO_APPROVE_KNOWN,
    )
    assert (regional.kind, regional.division_code, regional.join_rule) == (
        P.CHAMBER_KIND_REGIONAL,
        "330300",
        P.JOIN_RULE_STAFF_REVIEW,
    )
    # Any member role sees the chamber directory (an enterprise finds the chamber it joins there).
    seen = commerce.call(
        "GetChamber",
        P.GetChamberRequest(chamber_id=regional.chamber_id),
        roles=("enterprise_user",),
        scopes=("enterprise:91331004MA2AB1CDEX",),
    ).chamber
    assert seen == regional
    missing = _refused(commerce, "GetChamber", P.GetChamberRequest(chamber_id="ch_nobody"))
    assert missing.code() is grpc.StatusCode.NOT_FOUND

    first = commerce.call(
        "ListChambers",
        P.ListChambersRequest(federation_id=county.federation_id, page=common_pb2.PageRequest(page_size=1)),
    )
    assert [c.chamber_id for c in first.chambers] == [trade.chamber_id]
    second = commerce.call(
        "ListChambers",
        P.ListChambersRequest(
            federation_id=county.federation_id,
            page=common_pb2.PageRequest(page_size=1, page_token=first.page.next_page_token),
        ),
    )
    assert [c.chamber_id for c in second.chambers] == [regional.chamber_id]
    assert second.page.next_page_token == ""

    subjects = {trade.chamber_id, regional.chamber_id}
    created = wait_until(
        lambda: found if len(found := commerce.events(subjects)) >= 2 else None,
        timeout_s=20,
        what="two ChamberCreated events",
    )
    chamber_events = [m for _, m in created if isinstance(m, events_pb2.ChamberCreated)]
    assert {(m.chamber_id, m.federation_id, m.kind) for m in chamber_events} == {
        (trade.chamber_id, county.federation_id, P.CHAMBER_KIND_TRADE),
        (regional.chamber_id, county.federation_id, P.CHAMBER_KIND_REGIONAL),
    }


def test_a_chamber_names_its_federation_kind_rule_and_sector_or_division(commerce: Commerce) -> None:
    _, _, county = _chain(commerce)
    before = _sql(commerce, "SELECT count(*) FROM chambers")

    def refused_fields(**fields: Any) -> set[str]:
        values: dict[str, Any] = {
            "request_id": rid(),
            "federation_id": county.federation_id,
            "name": "Chamber",
            "kind": P.CHAMBER_KIND_TRADE,
            "sector": "MACHINERY",
            "join_rule": P.JOIN_RULE_STAFF_REVIEW,
            **fields,
        }
        return _fields(_refused(commerce, "CreateChamber", P.CreateChamberRequest(**values)))

    assert refused_fields(federation_id="fed_nobody") == {"federation_id"}
    assert refused_fields(kind=P.CHAMBER_KIND_UNSPECIFIED, join_rule=P.JOIN_RULE_UNSPECIFIED) == {
        "kind",
        "join_rule",
    }
    assert refused_fields(sector="") == {"sector"}
    assert refused_fields(sector="SHIPBUILDING") == {"sector"}
    assert refused_fields(kind=P.CHAMBER_KIND_REGIONAL, sector="") == {"division_code"}
    assert refused_fields(kind=P.CHAMBER_KIND_REGIONAL, sector="", division_code="33030") == {"division_code"}
    assert _sql(commerce, "SELECT count(*) FROM chambers") == before


def test_chamber_staff_one_subject_each_within_their_chamber(commerce: Commerce) -> None:
    _, chamber = commerce.federation_and_chamber()
    _, other = commerce.federation_and_chamber()
    own = (f"chamber:{chamber.chamber_id}",)

    def add(subject: str, name: str, role: P.StaffRole.ValueType, **kwargs: Any) -> P.ChamberStaff:
        request = P.AddChamberStaffRequest(
            request_id=rid(), chamber_id=chamber.chamber_id, subject=subject, name=name, role=role
        )
        added: P.ChamberStaff = commerce.call("AddChamberStaff", request, **kwargs).staff
        return added

    head = add("user-head", "Wang Fang", P.STAFF_ROLE_SECRETARY_GENERAL)
    officer = add("user-officer", "Li Lei", P.STAFF_ROLE_OFFICER, roles=("chamber_staff",), scopes=own)
    assert (officer.chamber_id, officer.subject, officer.name, officer.role) == (
        chamber.chamber_id,
        "user-officer",
        "Li Lei",
        P.STAFF_ROLE_OFFICER,
    )
    twin = P.AddChamberStaffRequest(
        request_id=rid(),
        chamber_id=chamber.chamber_id,
        subject="user-head",
        name="Someone",
        role=P.STAFF_ROLE_OFFICER,
    )
    assert _refused(commerce, "AddChamberStaff", twin).code() is grpc.StatusCode.ALREADY_EXISTS
    bad = P.AddChamberStaffRequest(request_id=rid(), chamber_id=chamber.chamber_id)
    assert _fields(_refused(commerce, "AddChamberStaff", bad)) == {"subject", "name", "role"}

    listed = commerce.call(
        "ListChamberStaff",
        P.ListChamberStaffRequest(chamber_id=chamber.chamber_id),
        roles=("chamber_staff",),
        scopes=own,
    )
    assert [(s.staff_id, s.subject) for s in listed.staff] == [
        (head.staff_id, "user-head"),
        (officer.staff_id, "user-officer"),
    ]
    # Staff of another chamber may neither add to nor read this one.
    foreign = (f"chamber:{other.chamber_id}",)
    denied = _refused(
        commerce,
        "ListChamberStaff",
        P.ListChamberStaffRequest(chamber_id=chamber.chamber_id),
        roles=("chamber_staff",),
        scopes=foreign,
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    denied = _refused(
        commerce,
        "AddChamberStaff",
        P.AddChamberStaffRequest(
            request_id=rid(),
            chamber_id=chamber.chamber_id,
            subject="intruder",
            name="X",
            role=P.STAFF_ROLE_VOLUNTEER,
        ),
        roles=("chamber_staff",),
        scopes=foreign,
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    unknown = _refused(
        commerce,
        "AddChamberStaff",
        P.AddChamberStaffRequest(
            request_id=rid(), chamber_id="ch_nobody", subject="s", name="X", role=P.STAFF_ROLE_VOLUNTEER
        ),
    )
    assert unknown.code() is grpc.StatusCode.NOT_FOUND
