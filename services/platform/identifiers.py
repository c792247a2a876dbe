"""Identifiers the district already uses, validated with their check characters. Pure functions, no I/O.

- Resident identity number (GB 11643-1999): 17 digits + an ISO 7064 MOD 11-2 check character.
- Unified social credit code (GB 32100-2015): 18 characters with a MOD 31 check character.
- Administrative division code (GB/T 2260): six digits.

Digits are ASCII digits only (``str.isdigit`` and ``\\d`` accept Arabic-Indic and full-width digits),
and a value is matched whole (``$`` would let a trailing line break through).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "credit_code_check_char",
    "identity_check_char",
    "invalid_credit_code",
    "invalid_division_code",
    "invalid_identity_number",
]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_DIVISION = re.compile(r"[1-9][0-9]{5}")
_SIX_DIGITS = re.compile(r"[0-9]{6}")
# The latest calendar date anywhere on earth now (UTC+14): a birth date after it has not happened yet.
_AHEAD_OF_UTC = timedelta(hours=14)


def identity_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def _today() -> date:
    return (datetime.now(UTC) + _AHEAD_OF_UTC).date()


def _birth_date_problem(digits: str, today: date) -> str | None:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return "has an impossible birth date"
    if born.year < 1900:
        return "has an impossible birth date"
    if born > today:
        return "has a birth date in the future"
    return None


def invalid_identity_number(value: str, *, today: date | None = None) -> str | None:
    """Why ``value`` is not a valid resident identity number, or None if it is one. Its birth date must
    have happened (``today`` defaults to the latest date anywhere now)."""
    if not _ID_SHAPE.fullmatch(value):
        return "must be 17 digits followed by a digit or X"
    if invalid_division_code(value[:6]) is not None:
        return "does not start with a division code"
    problem = _birth_date_problem(value[6:14], today or _today())
    if problem is not None:
        return problem
    if identity_check_char(value[:17]) != value[17]:
        return "has a wrong check digit"
    return None


def credit_code_check_char(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def invalid_credit_code(value: str) -> str | None:
    """Why ``value`` is not a valid unified social credit code, or None if it is one."""
    if len(value) != 18 or any(c not in _USCC_VALUE for c in value):
        return f"must be 18 characters from {_USCC_ALPHABET}"
    if not _SIX_DIGITS.fullmatch(value[2:8]):
        return "characters 3-8 must be a division code"
    if credit_code_check_char(value[:17]) != value[17]:
        return "has a wrong check character"
    return None


def invalid_division_code(value: str) -> str | None:
    """Why ``value`` is not a GB/T 2260 six-digit division code, or None if it is one."""
    if not _DIVISION.fullmatch(value):
        return "must be a six-digit GB/T 2260 division code"
    return None
