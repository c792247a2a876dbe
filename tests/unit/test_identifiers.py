"""Check characters of the identifiers the district uses (generated numbers, never real people's)."""

from __future__ import annotations

import pytest

from services.platform.errors import InvalidArgumentError, Violations
from services.platform.identifiers import (
    credit_code_check_char,
    identity_check_char,
    invalid_credit_code,
    invalid_division_code,
    invalid_identity_number,
)


def make_identity(region: str = "331004", born: str = "19850317", seq: str = "123") -> str:
    first17 = region + born + seq
    return first17 + identity_check_char(first17)


def make_credit_code(body: str = "91331004MA2AB1234") -> str:
    return body + credit_code_check_char(body)


def test_published_sample_identity_number_verifies() -> None:
    # The worked example of GB 11643-1999 (a specimen, not a person).
    assert invalid_identity_number("11010519491231002X") is None


def test_generated_identity_number_verifies_and_a_changed_digit_does_not() -> None:
    good = make_identity()
    assert invalid_identity_number(good) is None
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    assert invalid_identity_number(wrong) == "has a wrong check digit"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("33100419850317123", "must be 17 digits followed by a digit or X"),
        ("3310041985031712AX", "must be 17 digits followed by a digit or X"),
        ("031004198503171230", "does not start with a division code"),
    ],
)
def test_malformed_identity_numbers(value: str, problem: str) -> None:
    assert invalid_identity_number(value) == problem


def test_impossible_birth_date() -> None:
    first17 = "33100419850231123"
    assert invalid_identity_number(first17 + identity_check_char(first17)) == "has an impossible birth date"


def test_published_sample_credit_code_verifies() -> None:
    # A code as printed on a business licence (GB 32100 worked example).
    assert invalid_credit_code("91350100M000100Y43") is None


def test_generated_credit_code_and_a_wrong_check_character() -> None:
    good = make_credit_code()
    assert invalid_credit_code(good) is None
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    assert invalid_credit_code(wrong) == "has a wrong check character"
    assert invalid_credit_code("91331004MA2AB1234I") is not None  # I is not in the alphabet


def test_division_codes() -> None:
    assert invalid_division_code("331004") is None
    assert invalid_division_code("33100") is not None
    assert invalid_division_code("031004") is not None


def test_violations_name_every_bad_field() -> None:
    violations = Violations()
    violations.add_if(invalid_identity_number("123"), "person.identity_number")
    violations.add_if(None, "person.name")
    violations.add("detections[1].confidence", "must be between 0 and 1")
    with pytest.raises(InvalidArgumentError) as caught:
        violations.check()
    assert [v.field for v in caught.value.violations] == [
        "person.identity_number",
        "detections[1].confidence",
    ]
