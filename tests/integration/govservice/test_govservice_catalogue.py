"""The catalogue over real gRPC and PostgreSQL: the seven places, the items and the partnerships loaded from
the seed file at start (the real bootstrap path, twice: nothing changes the second time), the RPCs that
extend them, and bad input refused naming the field with nothing stored."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import grpc
import pytest
from cityhub.govservice.v1 import govservice_pb2 as pb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.govservice.bootstrap import build
from services.govservice.usecases.catalogue import SeedError
from services.platform.security import SecuritySettings
from tests.integration.govservice.conftest import govservice_settings
from tests.integration.govservice.govservice_support import GovService, clerk, rid
from tests.support import violations

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "deploy" / "local" / "govservice-seed.toml"
SEED_DATA = tomllib.loads(SEED.read_text(encoding="utf-8"))
SEVEN = {r["division_code"] for r in SEED_DATA["regions"]}


def _load_seed_at_start(govservice: GovService, security: SecuritySettings, seed_file: Path) -> None:
    """Build (not start) a second runtime on the module service's schema with GOVSERVICE_SEED_FILE set:
    bootstrap loads the file exactly as `make run` does."""
    settings = govservice_settings(
        govservice.kafka_bootstrap,
        govservice.database_url,
        govservice.commerce.runtime.address,
        service_name=govservice.settings.service_name,
        govservice_events_topic=govservice.settings.govservice_events_topic,
        govservice_person_key=govservice.settings.govservice_person_key,
        govservice_seed_file=seed_file,
    )
    runtime = build(settings, configure_logs=False, security=security)
    runtime.close()


@pytest.fixture(scope="module")
def seeded(govservice: GovService, govservice_security: SecuritySettings) -> dict[str, Any]:
    """The seed loaded at start twice; what the catalogue looked like after the first and second load."""
    _load_seed_at_start(govservice, govservice_security, SEED)
    first = _snapshot(govservice)
    _load_seed_at_start(govservice, govservice_security, SEED)
    second = _snapshot(govservice)
    return {"first": first, "second": second}


def _all_pages(govservice: GovService, rpc: str, request: Any, field: str) -> list[Any]:
    found: list[Any] = []
    token = ""
    while True:
        request.page.page_token = token
        answer = govservice.call(rpc, request)
        found.extend(getattr(answer, field))
        token = answer.page.next_page_token
        if not token:
            return found


def _snapshot(govservice: GovService) -> dict[str, Any]:
    return {
        "regions": _all_pages(govservice, "ListRegions", pb.ListRegionsRequest(), "regions"),
        "items": _all_pages(govservice, "ListItems", pb.ListItemsRequest(), "items"),
        "partnerships": _all_pages(
            govservice, "ListPartnerships", pb.ListPartnershipsRequest(), "partnerships"
        ),
        "keys": list(govservice.call("GetRegionKeys", pb.GetRegionKeysRequest()).keys),
    }


def _code(error: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return error.value.code()


def test_the_seven_places_items_and_partnerships_are_loaded_from_the_seed_file(
    seeded: dict[str, Any],
) -> None:
    first = seeded["first"]
    regions = {r.division_code: r for r in first["regions"]}
    assert set(regions) == SEVEN
    assert [r.division_code for r in first["regions"]] == sorted(SEVEN)
    assert regions["331004"].home
    assert regions["331004"].province == "Zhejiang"
    assert [c for c, r in regions.items() if r.home] == ["331004"]
    assert regions["522632"].name == "Rongjiang County"
    assert regions["522632"].province == "Guizhou"
    assert all(r.key_id.startswith("r_") for r in regions.values())

    items = {i.code: i for i in first["items"]}
    assert set(items) == {i["code"] for i in SEED_DATA["items"]}
    transfer = items["social_insurance_transfer"]
    assert transfer.promised_working_days == 15
    assert transfer.authority_level == pb.AUTHORITY_LEVEL_COUNTY
    assert list(transfer.applicant_kinds) == [pb.APPLICANT_KIND_PERSON]
    assert [m.code for m in transfer.materials] == [m["code"] for m in SEED_DATA["items"][0]["materials"]]
    assert list(items["business_licence_change"].applicant_kinds) == [pb.APPLICANT_KIND_ENTERPRISE]

    partnerships = {(p.region_a, p.region_b): p for p in first["partnerships"]}
    assert set(partnerships) == {("331004", code) for code in SEVEN - {"331004"}}
    for entry in SEED_DATA["partnerships"]:
        stored = partnerships[(entry["region_a"], entry["region_b"])]
        assert stored.start_date == entry["start_date"]
        assert [(i.item_code, pb.Direction.Name(i.direction)) for i in stored.items] == [
            (i["item_code"], f"DIRECTION_{i['direction']}") for i in entry["items"]
        ]
    yiwu = {i.item_code for i in partnerships[("331004", "330782")].items}
    assert "business_licence_change" in yiwu
    assert "business_licence_change" not in {i.item_code for i in partnerships[("331004", "522632")].items}


def test_loading_the_seed_again_changes_nothing(seeded: dict[str, Any]) -> None:
    assert seeded["second"] == seeded["first"]


def test_get_region_keys_returns_one_verifiable_key_per_region(seeded: dict[str, Any]) -> None:
    keys = seeded["first"]["keys"]
    assert sorted(k.division_code for k in keys) == sorted(SEVEN)
    by_region = {k.division_code: k for k in keys}
    for region in seeded["first"]["regions"]:
        key = by_region[region.division_code]
        assert key.key_id == region.key_id
        assert key.algorithm == "EdDSA"
        assert isinstance(load_pem_public_key(key.public_key_pem.encode()), Ed25519PublicKey)
        assert "PRIVATE" not in key.public_key_pem


def test_clerks_may_read_the_catalogue_but_not_change_it(
    govservice: GovService, seeded: dict[str, Any]
) -> None:
    del seeded
    answer = govservice.call(
        "ListPartnerships", pb.ListPartnershipsRequest(division_code="522632"), **clerk("522632")
    )
    assert [(p.region_a, p.region_b) for p in answer.partnerships] == [("331004", "522632")]
    with pytest.raises(grpc.RpcError) as refused:
        govservice.call(
            "RegisterRegion",
            pb.RegisterRegionRequest(
                request_id=rid(), division_code="520000", name="Guizhou", province="Guizhou"
            ),
            **clerk("522632"),
        )
    assert _code(refused) == grpc.StatusCode.PERMISSION_DENIED


def test_a_malformed_seed_file_stops_start_up_naming_the_file_and_the_entry(
    govservice: GovService, govservice_security: SecuritySettings, seeded: dict[str, Any], tmp_path: Path
) -> None:
    del seeded
    bad = tmp_path / "seed.toml"
    bad.write_text(
        SEED.read_text(encoding="utf-8")
        + '\n[[partnerships]]\nregion_a = "331004"\nregion_b = "530000"\nstart_date = "2026-01-01"\n'
        + 'items = [{ item_code = "residence_permit", direction = "BOTH" }]\n',
        encoding="utf-8",
    )
    with pytest.raises(SeedError) as stopped:
        _load_seed_at_start(govservice, govservice_security, bad)
    text = str(stopped.value)
    assert str(bad) in text
    assert "partnerships[6] (331004-530000)" in text
    assert "partnership.region_b" in text
    assert "530000" not in {r.division_code for r in _snapshot(govservice)["regions"]}


def test_a_partner_place_an_item_and_a_partnership_added_over_the_rpcs(
    govservice: GovService, seeded: dict[str, Any]
) -> None:
    del seeded
    request = pb.RegisterRegionRequest(
        request_id=rid(), division_code="520000", name="Guizhou Province", province="Guizhou"
    )
    region = govservice.call("RegisterRegion", request).region
    assert region.division_code == "520000"
    assert not region.home
    assert region.key_id
    # The same request again is a replay: the same region, no second key.
    assert govservice.call("RegisterRegion", request).region == region
    # The same code with another body updates the name and keeps the key (an upsert, like items).
    renamed = govservice.call(
        "RegisterRegion",
        pb.RegisterRegionRequest(
            request_id=rid(), division_code="520000", name="Guizhou", province="Guizhou"
        ),
    ).region
    assert renamed.name == "Guizhou"
    assert renamed.key_id == region.key_id
    assert renamed.registered_at == region.registered_at
    keys = govservice.call("GetRegionKeys", pb.GetRegionKeysRequest()).keys
    assert [k.key_id for k in keys if k.division_code == "520000"] == [region.key_id]

    item = pb.Item(
        code="pension_certification",
        name="养老金资格认证 Pension eligibility certification",
        materials=[pb.Material(code="id_card_copy", name="Copy of the resident identity card")],
        authority_level=pb.AUTHORITY_LEVEL_CITY,
        promised_working_days=3,
        applicant_kinds=[pb.APPLICANT_KIND_PERSON],
    )
    defined = govservice.call("DefineItem", pb.DefineItemRequest(request_id=rid(), item=item)).item
    assert defined.code == "pension_certification"
    assert defined.promised_working_days == 3
    item.promised_working_days = 4
    redefined = govservice.call("DefineItem", pb.DefineItemRequest(request_id=rid(), item=item)).item
    assert redefined.promised_working_days == 4

    partnership = pb.Partnership(
        region_a="520000",
        region_b="331004",
        items=[pb.PartnershipItem(item_code="pension_certification", direction=pb.DIRECTION_A_TO_B)],
        start_date="2026-06-01",
    )
    stored = govservice.call(
        "SetPartnership", pb.SetPartnershipRequest(request_id=rid(), partnership=partnership)
    ).partnership
    assert (stored.region_a, stored.region_b, stored.start_date) == ("520000", "331004", "2026-06-01")
    # Named the other way round, it replaces the same partnership (one per pair of regions).
    flipped = pb.Partnership(
        region_a="331004",
        region_b="520000",
        items=[pb.PartnershipItem(item_code="pension_certification", direction=pb.DIRECTION_BOTH)],
        start_date="2026-07-01",
    )
    govservice.call("SetPartnership", pb.SetPartnershipRequest(request_id=rid(), partnership=flipped))
    listed = govservice.call(
        "ListPartnerships", pb.ListPartnershipsRequest(division_code="520000")
    ).partnerships
    assert [(p.region_a, p.region_b, p.start_date) for p in listed] == [("331004", "520000", "2026-07-01")]

    with pytest.raises(grpc.RpcError) as second_home:
        govservice.call(
            "RegisterRegion",
            pb.RegisterRegionRequest(
                request_id=rid(), division_code="330700", name="Jinhua", province="Zhejiang", home=True
            ),
        )
    assert _code(second_home) == grpc.StatusCode.FAILED_PRECONDITION
    regions = {r.division_code for r in _snapshot(govservice)["regions"]}
    assert "330700" not in regions


def _refused(govservice: GovService, rpc: str, request: Any) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as refused:
        govservice.call(rpc, request)
    assert _code(refused) == grpc.StatusCode.INVALID_ARGUMENT
    return violations(refused.value)


def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    govservice: GovService, seeded: dict[str, Any]
) -> None:
    del seeded
    before = _snapshot(govservice)

    bad_code = _refused(
        govservice,
        "RegisterRegion",
        pb.RegisterRegionRequest(request_id=rid(), division_code="52263", name="Nowhere", province="Guizhou"),
    )
    assert "division_code" in bad_code

    unknown_region = _refused(
        govservice,
        "SetPartnership",
        pb.SetPartnershipRequest(
            request_id=rid(),
            partnership=pb.Partnership(
                region_a="331004",
                region_b="530000",
                items=[pb.PartnershipItem(item_code="residence_permit", direction=pb.DIRECTION_BOTH)],
                start_date="2026-01-01",
            ),
        ),
    )
    assert set(unknown_region) == {"partnership.region_b"}

    unknown_item = _refused(
        govservice,
        "SetPartnership",
        pb.SetPartnershipRequest(
            request_id=rid(),
            partnership=pb.Partnership(
                region_a="331004",
                region_b="522632",
                items=[
                    pb.PartnershipItem(item_code="residence_permit", direction=pb.DIRECTION_BOTH),
                    pb.PartnershipItem(item_code="driving_licence_renewal", direction=pb.DIRECTION_BOTH),
                ],
                start_date="2026-01-01",
            ),
        ),
    )
    assert set(unknown_item) == {"partnership.items[1].item_code"}

    shapeless = _refused(
        govservice,
        "SetPartnership",
        pb.SetPartnershipRequest(
            request_id=rid(),
            partnership=pb.Partnership(
                region_a="331004",
                region_b="331004",
                items=[pb.PartnershipItem(item_code="residence_permit")],
                start_date="2026-13-01",
            ),
        ),
    )
    assert {"partnership.region_b", "partnership.items[0].direction", "partnership.start_date"} <= set(
        shapeless
    )

    bad_item = _refused(
        govservice,
        "DefineItem",
        pb.DefineItemRequest(
            request_id=rid(),
            item=pb.Item(
                code="Bad-Code",
                name="x",
                materials=[pb.Material(code="a_b", name="A"), pb.Material(code="a_b", name="B")],
                promised_working_days=0,
            ),
        ),
    )
    assert {
        "item.code",
        "item.materials[1].code",
        "item.authority_level",
        "item.promised_working_days",
        "item.applicant_kinds",
    } <= set(bad_item)

    assert "division_code" in _refused(
        govservice, "ListPartnerships", pb.ListPartnershipsRequest(division_code="12")
    )
    assert _snapshot(govservice)["partnerships"] == before["partnerships"]
    assert _snapshot(govservice)["items"] == before["items"]
    assert _snapshot(govservice)["regions"] == before["regions"]
