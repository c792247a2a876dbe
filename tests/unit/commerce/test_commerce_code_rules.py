"""The member code's offline verifier: exactly one verdict for any string, never an exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from services.commerce.adapters.signing import NewKey, new_signing_key
from services.commerce.domain.codes import (
    CodeClaims,
    CodeVerdict,
    PublishedKey,
    key_id_of,
    online_verdict,
    sign_code,
    verify,
)
from services.commerce.domain.model import MembershipStatus

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
LEEWAY = 30
KEY = new_signing_key()
OTHER = new_signing_key()


def published(key: NewKey, retires_at: datetime | None = None, kid: str | None = None) -> PublishedKey:
    return PublishedKey(
        kid or key.key_id, "fed_1", "ES256", key.public_key_pem, NOW - timedelta(days=1), retires_at
    )


KEYS = {KEY.key_id: published(KEY)}


def claims(issued: datetime = NOW, validity_s: int = 300) -> CodeClaims:
    return CodeClaims(
        chamber_id="ch_1",
        membership_id="mem_1",
        credit_code="91331004MA2AB3CD4X",
        not_before=issued,
        expires_at=issued + timedelta(seconds=validity_s),
    )


def code(issued: datetime = NOW, key: NewKey = KEY, kid: str | None = None) -> str:
    return sign_code(claims(issued), kid or key.key_id, key.private_key_pem)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def flip(text: str, index: int) -> str:
    """``text`` with the character at ``index`` replaced by another base64url character."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def test_a_fresh_code_is_valid_and_names_its_member() -> None:
    result = verify(code(), KEYS, NOW + timedelta(seconds=10), LEEWAY)
    assert result.verdict is CodeVerdict.VALID
    assert result.claims == claims()
    assert result.key_id == KEY.key_id


def test_the_code_is_compact_and_carries_only_the_short_claims() -> None:
    text = code()
    header = jwt.get_unverified_header(text)
    payload = json.loads(base64.urlsafe_b64decode(text.split(".")[1] + "=="))
    assert header == {"alg": "ES256", "kid": KEY.key_id}
    assert set(payload) == {"c", "m", "e", "nbf", "exp"}
    assert payload["exp"] - payload["nbf"] == 300
    # Well inside the 500 characters the platform's input guard allows a text field.
    assert len(text) < 400


@pytest.mark.parametrize(
    ("offset_s", "verdict"),
    [
        (299, CodeVerdict.VALID),
        (300 + LEEWAY, CodeVerdict.VALID),
        (300 + LEEWAY + 1, CodeVerdict.EXPIRED),
        (3600, CodeVerdict.EXPIRED),
        (-LEEWAY, CodeVerdict.VALID),
        (-LEEWAY - 1, CodeVerdict.EXPIRED),
    ],
)
def test_the_validity_window_is_widened_by_the_leeway_only(offset_s: int, verdict: CodeVerdict) -> None:
    result = verify(code(), KEYS, NOW + timedelta(seconds=offset_s), LEEWAY)
    assert result.verdict is verdict
    # An expired code still verified: the verifier may say whose it was.
    assert result.claims == claims()


def test_one_character_flipped_in_the_signature_is_forged() -> None:
    text = code()
    signature_start = text.rindex(".") + 1
    for index in (signature_start, signature_start + 20, len(text) - 10):
        assert verify(flip(text, index), KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_one_character_flipped_in_the_payload_is_forged() -> None:
    text = code()
    start, end = text.index(".") + 1, text.rindex(".")
    for index in (start, (start + end) // 2, end - 5):
        result = verify(flip(text, index), KEYS, NOW, LEEWAY)
        assert result.verdict is CodeVerdict.FORGED
        assert result.claims is None


def test_a_payload_swapped_for_another_members_is_forged() -> None:
    header, _, signature = code().split(".")
    other = {"c": "ch_1", "m": "mem_2", "e": "91331004MA2AB3CD4X", "nbf": 1, "exp": 2**40}
    forged = ".".join([header, b64(json.dumps(other).encode()), signature])
    assert verify(forged, KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_an_unknown_key_id_is_unknown_key() -> None:
    text = code(key=OTHER)
    result = verify(text, KEYS, NOW, LEEWAY)
    assert result.verdict is CodeVerdict.UNKNOWN_KEY
    assert result.claims is None


def test_a_code_signed_with_another_key_under_a_published_key_id_is_forged() -> None:
    assert verify(code(key=OTHER, kid=KEY.key_id), KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_the_none_algorithm_is_forged() -> None:
    payload = {"c": "ch_1", "m": "mem_1", "e": "x", "nbf": int(NOW.timestamp()), "exp": 2**40}
    header = {"alg": "none", "kid": KEY.key_id}
    for signature in ("", "AAAA"):
        text = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{signature}"
        assert verify(text, KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_hs256_with_the_public_key_as_secret_is_forged() -> None:
    payload = {"c": "ch_1", "m": "mem_1", "e": "x", "nbf": int(NOW.timestamp()), "exp": 2**40}
    header = {"alg": "HS256", "kid": KEY.key_id}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    mac = hmac.new(KEY.public_key_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert verify(f"{signing_input}.{b64(mac)}", KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_a_key_published_with_an_algorithm_the_verifier_does_not_know_verifies_nothing() -> None:
    keys = {KEY.key_id: PublishedKey(KEY.key_id, "fed_1", "HS256", KEY.public_key_pem, NOW)}
    assert verify(code(), keys, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_a_retired_key_revokes_its_codes_and_verifies_them_until_then() -> None:
    retiring = {KEY.key_id: published(KEY, retires_at=NOW + timedelta(minutes=1))}
    assert verify(code(), retiring, NOW, LEEWAY).verdict is CodeVerdict.VALID
    result = verify(code(), retiring, NOW + timedelta(minutes=1), LEEWAY)
    assert result.verdict is CodeVerdict.REVOKED
    assert result.claims is not None


def test_a_signed_payload_of_the_wrong_shape_is_forged() -> None:
    def signed(payload: dict[str, Any]) -> str:
        return jwt.encode(payload, KEY.private_key_pem, algorithm="ES256", headers={"kid": KEY.key_id})

    exp = int(NOW.timestamp()) + 60
    nbf = int(NOW.timestamp())
    bad = [
        {"c": "ch_1", "m": "mem_1", "nbf": nbf, "exp": exp},
        {"c": "ch_1", "m": "mem_1", "e": "", "nbf": nbf, "exp": exp},
        {"c": 1, "m": "mem_1", "e": "x", "nbf": nbf, "exp": exp},
        {"c": "ch_1", "m": "mem_1", "e": "x", "nbf": "now", "exp": exp},
        {"c": "ch_1", "m": "mem_1", "e": "x", "nbf": nbf, "exp": True},
        {"c": "ch_1", "m": "mem_1", "e": "x", "nbf": exp, "exp": nbf},
        {"c": "ch_1", "m": "mem_1", "e": "x", "nbf": nbf, "exp": 10**30},
    ]
    for payload in bad:
        assert verify(signed(payload), KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED, payload


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "a.b",
        "a.b.c",
        "...",
        "a..c",
        "a.b.c.d",
        "x" * 10_000,
        "é.ü.ß",
        "码.码.码",
        "eyJhbGciOiJFUzI1NiJ9.e30.",
        "eyJhbGciOiJFUzI1NiJ9.e30.AAAA",
        # A header without a kid, and one whose kid is not text.
        b64(b'{"alg":"ES256"}') + ".e30.AAAA",
        b64(b'{"alg":"ES256","kid":7}') + ".e30.AAAA",
        b64(b'{"alg":"ES256","kid":""}') + ".e30.AAAA",
        # Not JSON, JSON but not an object, and a nesting deep enough to hurt a recursive parser.
        b64(b"\xff\xfe") + ".e30.AAAA",
        b64(b"[1,2]") + ".e30.AAAA",
        b64(b"[" * 2000) + ".e30.AAAA",
        "\x00\x01\x02",
        " " + "a.b.c",
    ],
)
def test_any_string_gets_one_verdict_and_never_raises(text: str) -> None:
    result = verify(text, KEYS, NOW, LEEWAY)
    assert result.verdict is CodeVerdict.FORGED
    assert result.claims is None


def test_a_valid_code_with_garbage_around_it_is_forged() -> None:
    text = code()
    for variant in (text + ".", text + " ", " " + text, text + "\n", text.replace(".", "..", 1)):
        assert verify(variant, KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_objects_that_are_not_strings_are_forged() -> None:
    for value in (None, 12, b"a.b.c", ["a"]):
        assert verify(value, KEYS, NOW, LEEWAY).verdict is CodeVerdict.FORGED
        assert key_id_of(value) is None


def test_a_corrupt_published_key_makes_the_code_forged_not_an_error() -> None:
    broken = {KEY.key_id: PublishedKey(KEY.key_id, "fed_1", "ES256", "not a pem", NOW)}
    assert verify(code(), broken, NOW, LEEWAY).verdict is CodeVerdict.FORGED


def test_key_id_of_reads_the_header_only() -> None:
    assert key_id_of(code()) == KEY.key_id
    assert key_id_of("garbage") is None
    assert key_id_of("x" * 5000) is None


@pytest.mark.parametrize(
    ("offline", "status", "online"),
    [
        (CodeVerdict.VALID, MembershipStatus.ACTIVE, CodeVerdict.VALID),
        (CodeVerdict.VALID, MembershipStatus.SUSPENDED, CodeVerdict.SUSPENDED),
        (CodeVerdict.VALID, MembershipStatus.ENDED, CodeVerdict.REVOKED),
        (CodeVerdict.VALID, MembershipStatus.REJECTED, CodeVerdict.REVOKED),
        (CodeVerdict.VALID, MembershipStatus.PENDING, CodeVerdict.REVOKED),
        (CodeVerdict.VALID, None, CodeVerdict.REVOKED),
        (CodeVerdict.EXPIRED, MembershipStatus.ACTIVE, CodeVerdict.EXPIRED),
        (CodeVerdict.EXPIRED, MembershipStatus.SUSPENDED, CodeVerdict.EXPIRED),
        (CodeVerdict.FORGED, None, CodeVerdict.FORGED),
        (CodeVerdict.UNKNOWN_KEY, None, CodeVerdict.UNKNOWN_KEY),
        (CodeVerdict.REVOKED, MembershipStatus.ACTIVE, CodeVerdict.REVOKED),
    ],
)
def test_online_the_membership_status_decides_a_valid_code(
    offline: CodeVerdict, status: MembershipStatus | None, online: CodeVerdict
) -> None:
    assert online_verdict(offline, status) is online
