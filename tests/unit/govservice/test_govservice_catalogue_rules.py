"""The catalogue's pure rules: what a region, an item and a partnership must carry, which way a partnership
offers an item (the rule filing an application relies on), and the seed file read and checked before
anything is stored, a malformed one stopping start-up naming the file and the entry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.govservice.domain.catalogue import (
    DefineItem,
    ItemSpec,
    MaterialSpec,
    PartnershipItemSpec,
    RegisterRegion,
    SetPartnership,
)
from services.govservice.domain.model import (
    ApplicantKind,
    AuthorityLevel,
    Direction,
    Partnership,
    PartnershipItem,
)
from services.govservice.usecases.catalogue import SeedError, read_seed
from services.platform.errors import InvalidArgumentError
from services.platform.settings import SettingsError

SEED = Path(__file__).resolve().parents[3] / "deploy" / "local" / "govservice-seed.toml"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _fields(error: pytest.ExceptionInfo[InvalidArgumentError]) -> set[str]:
    return {v.field for v in error.value.violations}


# --- Partnership.offers ---------------------------------------------------------------------------------


def _partnership(*items: tuple[str, Direction]) -> Partnership:
    return Partnership(
        region_a="331004",
        region_b="522632",
        items=tuple(PartnershipItem(code, direction) for code, direction in items),
        start_date=date(2025, 3, 1),
        updated_at=NOW,
    )


def test_an_item_offered_both_ways_may_be_filed_in_either_region() -> None:
    p = _partnership(("social_insurance_transfer", Direction.BOTH))
    assert p.offers("social_insurance_transfer", "331004", "522632")
    assert p.offers("social_insurance_transfer", "522632", "331004")


def test_a_one_way_item_is_offered_only_in_its_direction() -> None:
    p = _partnership(("residence_permit", Direction.B_TO_A), ("provident_fund_withdrawal", Direction.A_TO_B))
    # B_TO_A: filed in the partner (region_b), handled in the district (region_a).
    assert p.offers("residence_permit", "522632", "331004")
    assert not p.offers("residence_permit", "331004", "522632")
    assert p.offers("provident_fund_withdrawal", "331004", "522632")
    assert not p.offers("provident_fund_withdrawal", "522632", "331004")


def test_an_item_the_partnership_does_not_cover_or_a_third_region_is_not_offered() -> None:
    p = _partnership(("social_insurance_transfer", Direction.BOTH))
    assert not p.offers("business_licence_change", "331004", "522632")
    assert not p.offers("social_insurance_transfer", "331004", "431229")
    assert not p.offers("social_insurance_transfer", "331004", "331004")


# --- commands -------------------------------------------------------------------------------------------


def test_a_region_needs_a_division_code_a_name_and_a_province() -> None:
    RegisterRegion("r-1", "522632", "Rongjiang County", "Guizhou", home=False).check()
    with pytest.raises(InvalidArgumentError) as refused:
        RegisterRegion("", "52263A", " ", "", home=False).check()
    assert _fields(refused) == {"request_id", "division_code", "name", "province"}


def _item(**overrides: object) -> ItemSpec:
    values: dict[str, object] = {
        "code": "social_insurance_transfer",
        "name": "社保关系转移",
        "materials": (MaterialSpec("id_card_copy", "Copy of the identity card"),),
        "authority_level": AuthorityLevel.COUNTY,
        "promised_working_days": 15,
        "applicant_kinds": (ApplicantKind.PERSON,),
    }
    values.update(overrides)
    return ItemSpec(**values)  # type: ignore[arg-type]


def test_a_well_formed_item_passes() -> None:
    DefineItem("r-1", _item()).check()
    DefineItem("r-1", _item(promised_working_days=365, applicant_kinds=tuple(ApplicantKind))).check()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": "Social"}, "item.code"),
        ({"code": "s"}, "item.code"),
        ({"code": "1abc"}, "item.code"),
        ({"code": "a" * 65}, "item.code"),
        ({"name": ""}, "item.name"),
        ({"materials": ()}, "item.materials"),
        ({"materials": (MaterialSpec("a_b", "A"), MaterialSpec("a_b", "B"))}, "item.materials[1].code"),
        ({"materials": (MaterialSpec("ok_code", ""),)}, "item.materials[0].name"),
        ({"authority_level": None}, "item.authority_level"),
        ({"promised_working_days": 0}, "item.promised_working_days"),
        ({"promised_working_days": 366}, "item.promised_working_days"),
        ({"applicant_kinds": ()}, "item.applicant_kinds"),
        ({"applicant_kinds": (None,)}, "item.applicant_kinds[0]"),
        ({"applicant_kinds": (ApplicantKind.PERSON, ApplicantKind.PERSON)}, "item.applicant_kinds[1]"),
    ],
)
def test_a_bad_item_is_refused_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        DefineItem("r-1", _item(**overrides)).check()
    assert _fields(refused) == {field}


def _set(**overrides: object) -> SetPartnership:
    values: dict[str, object] = {
        "request_id": "r-1",
        "region_a": "331004",
        "region_b": "522632",
        "items": (PartnershipItemSpec("social_insurance_transfer", Direction.BOTH),),
        "start_date": "2025-03-01",
    }
    values.update(overrides)
    return SetPartnership(**values)  # type: ignore[arg-type]


def test_a_well_formed_partnership_gives_its_start_date() -> None:
    assert _set().check() == date(2025, 3, 1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region_a": "33100"}, "partnership.region_a"),
        ({"region_b": ""}, "partnership.region_b"),
        ({"region_b": "331004"}, "partnership.region_b"),
        ({"items": ()}, "partnership.items"),
        ({"items": (PartnershipItemSpec("Bad", Direction.BOTH),)}, "partnership.items[0].item_code"),
        ({"items": (PartnershipItemSpec("residence_permit", None),)}, "partnership.items[0].direction"),
        (
            {
                "items": (
                    PartnershipItemSpec("residence_permit", Direction.BOTH),
                    PartnershipItemSpec("residence_permit", Direction.A_TO_B),
                )
            },
            "partnership.items[1].item_code",
        ),
        ({"start_date": ""}, "partnership.start_date"),
        ({"start_date": "2025-02-30"}, "partnership.start_date"),
        ({"start_date": "20250301"}, "partnership.start_date"),
    ],
)
def test_a_bad_partnership_is_refused_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        _set(**overrides).check()
    assert _fields(refused) == {field}


# --- the seed file --------------------------------------------------------------------------------------


def test_the_shipped_seed_file_holds_the_seven_places_the_items_and_the_partnerships() -> None:
    entries = [command for _, command in read_seed(SEED)]
    regions = [c for c in entries if isinstance(c, RegisterRegion)]
    items = [c for c in entries if isinstance(c, DefineItem)]
    partnerships = [c for c in entries if isinstance(c, SetPartnership)]
    assert {r.division_code for r in regions} == {
        "331004",
        "522632",
        "431229",
        "341621",
        "411426",
        "330782",
        "310000",
    }
    assert [r.division_code for r in regions if r.home] == ["331004"]
    assert {i.item.code: i.item.promised_working_days for i in items} == {
        "social_insurance_transfer": 15,
        "medical_insurance_filing": 5,
        "residence_permit": 10,
        "business_licence_change": 5,
        "provident_fund_withdrawal": 10,
    }
    licence = next(i.item for i in items if i.item.code == "business_licence_change")
    assert licence.applicant_kinds == (ApplicantKind.ENTERPRISE,)
    defined = {i.item.code for i in items}
    assert {(p.region_a, p.region_b) for p in partnerships} == {
        ("331004", r.division_code) for r in regions[1:]
    }
    for p in partnerships:
        assert {i.item_code for i in p.items} <= defined
        assert date(2025, 1, 1) <= p.check() <= date(2026, 12, 31)
        licence_offered = any(i.item_code == "business_licence_change" for i in p.items)
        assert licence_offered == (p.region_b in {"330782", "310000"})


def test_seed_request_ids_follow_the_content() -> None:
    first = [c.request_id for _, c in read_seed(SEED)]
    assert first == [c.request_id for _, c in read_seed(SEED)]
    assert first[1].startswith("seed-region-522632-")
    assert len(set(first)) == len(first)


def _seed(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "seed.toml"
    path.write_text(text, encoding="utf-8")
    return path


_REGION = (
    '[[regions]]\ndivision_code = "331004"\nname = "Luqiao District"\nprovince = "Zhejiang"\nhome = true\n'
)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[[regions]\n", "is not valid TOML"),
        ("[[places]]\nname = 'x'\n", "unknown section(s) places"),
        (_REGION.replace('"331004"', '"33100"'), "regions[0] (33100): division_code"),
        (_REGION.replace("home = true", "home = 'yes'"), "regions[0]: home must be a bool"),
        (_REGION + "colour = 'red'\n", "regions[0]: unknown key(s) colour"),
        (_REGION + _REGION.replace('"331004"', '"331003"'), "regions[1] (331003): a second home region"),
        (_REGION + _REGION.replace("home = true", "home = false"), "regions[1] (331004): repeats"),
        (
            (
                "[[items]]\ncode = 'x_y'\nname = 'X'\nauthority_level = 'TOWN'\npromised_working_days = 5\n"
                "applicant_kinds = ['PERSON']\nmaterials = [{ code = 'a_b', name = 'A' }]\n"
            ),
            "items[0]: authority_level: 'TOWN' is not one of COUNTY, CITY, PROVINCE",
        ),
        (
            (
                "[[items]]\ncode = 'x_y'\nname = 'X'\nauthority_level = 'CITY'\npromised_working_days = 0\n"
                "applicant_kinds = ['PERSON']\nmaterials = [{ code = 'a_b', name = 'A' }]\n"
            ),
            "items[0] (x_y): item.promised_working_days",
        ),
        (
            (
                "[[items]]\ncode = 'x_y'\nname = 'X'\nauthority_level = 'CITY'\npromised_working_days = 5\n"
                "applicant_kinds = ['PERSON']\nmaterials = [{ code = 'a_b' }]\n"
            ),
            "items[0]: materials[0].name must be a string",
        ),
        (
            (
                "[[partnerships]]\nregion_a = '331004'\nregion_b = '522632'\nstart_date = '2025-02-30'\n"
                "items = [{ item_code = 'x_y', direction = 'BOTH' }]\n"
            ),
            "partnerships[0] (331004-522632): partnership.start_date",
        ),
        (
            (
                "[[partnerships]]\nregion_a = '331004'\nregion_b = '522632'\nstart_date = 2025-03-01\n"
                "items = [{ item_code = 'x_y', direction = 'SIDEWAYS' }]\n"
            ),
            "partnerships[0]: items[0].direction: 'SIDEWAYS'",
        ),
    ],
)
def test_a_malformed_seed_file_is_refused_naming_the_file_and_the_entry(
    tmp_path: Path, text: str, named: str
) -> None:
    path = _seed(tmp_path, text)
    with pytest.raises(SeedError) as stopped:
        read_seed(path)
    message = str(stopped.value)
    assert message.startswith(f"GOVSERVICE_SEED_FILE {path}: ")
    assert named in message
    # A SettingsError: start-up stops with the message, like any other bad setting.
    assert isinstance(stopped.value, SettingsError)


def test_a_missing_seed_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="cannot be read"):
        read_seed(tmp_path / "absent.toml")


def test_a_bare_toml_date_is_taken_as_the_start_date(tmp_path: Path) -> None:
    path = _seed(
        tmp_path,
        "[[partnerships]]\nregion_a = '331004'\nregion_b = '522632'\nstart_date = 2025-03-01\n"
        "items = [{ item_code = 'x_y', direction = 'BOTH' }]\n",
    )
    [(_, command)] = read_seed(path)
    assert isinstance(command, SetPartnership)
    assert command.check() == date(2025, 3, 1)
