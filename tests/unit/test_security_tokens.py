"""Bearer tokens: what verifies, and each way a token is refused (all answered as UNAUTHENTICATED)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from services.platform.errors import UnauthenticatedError
from services.platform.security.settings import (
    KeyMaterial,
    SecurityConfigError,
    SecuritySettings,
    ensure_dev_keys,
    load_key_material,
)
from services.platform.security.tokens import (
    Caller,
    TokenError,
    TokenIssuer,
    TokenVerifier,
    bearer_token,
    key_id,
)
from tests.security_support import make_keys


@pytest.fixture
def keys(tmp_path: Path) -> tuple[bytes, bytes]:
    return ensure_dev_keys(tmp_path / "keys")


def _verifier(public: bytes, **kwargs: Any) -> TokenVerifier:
    return TokenVerifier(
        KeyMaterial("ES256", (public,), None), issuer="cityhub", audience="cityhub", **kwargs
    )


def _issuer(private: bytes, **kwargs: Any) -> TokenIssuer:
    return TokenIssuer(KeyMaterial("ES256", (), private), issuer="cityhub", audience="cityhub", **kwargs)


def _sign(private: bytes, public: bytes, claims: dict[str, Any], **header: Any) -> str:
    now = int(time.time())
    body = {
        "iss": "cityhub",
        "aud": "cityhub",
        "sub": "u1",
        "roles": ["police"],
        "iat": now,
        "exp": now + 600,
    }
    body.update(claims)
    return jwt.encode(body, private, algorithm="ES256", headers={"kid": key_id(public), **header})


def test_a_valid_token_names_the_caller(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    token = _issuer(private).issue(
        sub="officer-7", roles=["duty_room"], scopes=["site:S-001", "region:331004"]
    )
    caller = _verifier(public).verify_authorization(f"Bearer {token}")
    assert caller.sub == "officer-7"
    assert caller.roles == frozenset({"duty_room"})
    assert caller.has_scope("site", "S-001")
    assert not caller.has_scope("site", "S-002")
    assert caller.scope_ids("site") == frozenset({"S-001"})
    assert caller.token_id


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "malformed authorization"),
        ("Bearer", "malformed authorization"),
        ("Bearer not-a-jwt", "token malformed"),
        ("Bearer a.b.c", "token malformed"),
        ("Bearer " + "x" * 9000, "too large"),
    ],
)
def test_missing_or_malformed_tokens_are_refused(
    keys: tuple[bytes, bytes], authorization: str | None, reason: str
) -> None:
    with pytest.raises(UnauthenticatedError, match=reason):
        _verifier(keys[1]).verify_authorization(authorization)


def test_an_expired_token_is_refused(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    token = _issuer(private).issue(sub="u1", roles=["police"], ttl_s=60, issued_at=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        _verifier(public).verify(token)


def test_a_cached_token_still_expires(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    now = [time.time()]
    verifier = _verifier(public, clock=lambda: now[0], leeway_s=0)
    token = _issuer(private).issue(sub="u1", roles=["police"], ttl_s=60)
    assert verifier.verify(token).sub == "u1"
    now[0] += 120
    with pytest.raises(TokenError, match="expired"):
        verifier.verify(token)


def test_a_token_from_another_key_is_refused(keys: tuple[bytes, bytes], tmp_path: Path) -> None:
    other_private, _ = ensure_dev_keys(tmp_path / "attacker")
    token = _issuer(other_private).issue(sub="u1", roles=["police"])
    with pytest.raises(TokenError, match="unknown key"):
        _verifier(keys[1]).verify(token)


def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    other_private, _ = ensure_dev_keys(tmp_path / "attacker")
    forged = _sign(other_private, keys[1], {"roles": ["police"]})
    with pytest.raises(TokenError, match="signature"):
        _verifier(keys[1]).verify(forged)


def test_changing_the_claims_of_a_signed_token_breaks_it(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    header, payload, signature = _issuer(private).issue(sub="u1", roles=["public"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["police"]
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        _verifier(public).verify(f"{header}.{tampered}.{signature}")


def test_algorithm_confusion_is_refused(keys: tuple[bytes, bytes]) -> None:
    _, public = keys
    now = int(time.time())
    claims = {
        "iss": "cityhub",
        "aud": "cityhub",
        "sub": "u1",
        "roles": ["police"],
        "iat": now,
        "exp": now + 60,
    }
    unsigned = jwt.encode(claims, key=None, algorithm="none")  # type: ignore[arg-type]
    # HS256 keyed with the public key, which every service holds: the classic confusion attack.
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": key_id(public)}).encode()).rstrip(
        b"="
    )
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    import hashlib
    import hmac

    mac = hmac.new(public, header + b"." + body, hashlib.sha256).digest()
    hs256 = b".".join([header, body, base64.urlsafe_b64encode(mac).rstrip(b"=")]).decode()
    for token in (unsigned, hs256):
        with pytest.raises(TokenError, match="algorithm"):
            _verifier(public).verify(token)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "evil"}, "issuer"),
        ({"sub": ""}, "sub"),
        ({"roles": []}, "roles"),
        ({"roles": "police"}, "roles"),
        ({"scopes": ["site"]}, "scope"),
        ({"scopes": ["planet:earth"]}, "scope"),
        ({"scopes": ["region:33"]}, "region"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "not yet valid"),
        ({"exp": int(time.time()) + 30 * 86400}, "lifetime"),
    ],
)
def test_tokens_with_bad_claims_are_refused(
    keys: tuple[bytes, bytes], claims: dict[str, Any], reason: str
) -> None:
    private, public = keys
    with pytest.raises(TokenError, match=reason):
        _verifier(public).verify(_sign(private, public, claims))


def test_a_token_missing_a_required_claim_is_refused(keys: tuple[bytes, bytes]) -> None:
    private, public = keys
    token = jwt.encode(
        {"iss": "cityhub", "aud": "cityhub", "sub": "u1", "roles": ["police"]}, private, "ES256"
    )
    with pytest.raises(TokenError, match="missing claim"):
        _verifier(public).verify(token)


def test_keys_can_be_rotated(keys: tuple[bytes, bytes], tmp_path: Path) -> None:
    old_private, old_public = keys
    new_private, new_public = ensure_dev_keys(tmp_path / "new")
    verifier = TokenVerifier(
        KeyMaterial("ES256", (old_public, new_public), None), issuer="cityhub", audience="cityhub"
    )
    for private in (old_private, new_private):
        assert verifier.verify(_issuer(private).issue(sub="u1", roles=["police"])).sub == "u1"


def test_eddsa_keys_work_too(tmp_path: Path) -> None:
    settings = SecuritySettings(dev_keys=True, dev_secrets_dir=tmp_path, jwt_algorithm="EdDSA")
    token = TokenIssuer.from_settings(settings).issue(sub="u1", roles=["auditor"])
    assert TokenVerifier.from_settings(settings).verify(token).roles == {"auditor"}


def test_a_key_of_the_wrong_type_for_the_algorithm_is_a_config_error(tmp_path: Path) -> None:
    _, ed_public = ensure_dev_keys(tmp_path, "EdDSA")
    with pytest.raises(SecurityConfigError, match="not a key for ES256"):
        TokenVerifier(KeyMaterial("ES256", (ed_public,), None), issuer="i", audience="a")


def test_the_issuer_refuses_what_it_must_not_sign(keys: tuple[bytes, bytes]) -> None:
    issuer = _issuer(keys[0], max_lifetime_s=3600)
    with pytest.raises(ValueError, match="unknown role"):
        issuer.issue(sub="u1", roles=["root"])
    with pytest.raises(ValueError, match="scope"):
        issuer.issue(sub="u1", roles=["police"], scopes=["site"])
    with pytest.raises(ValueError, match="ttl"):
        issuer.issue(sub="u1", roles=["police"], ttl_s=7200)
    with pytest.raises(ValueError, match="role"):
        issuer.issue(sub="u1", roles=[])


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("  Bearer   abc  ") == "abc"


def test_region_scopes_cover_the_regions_inside_them() -> None:
    province = Caller("u", frozenset({"gov_clerk"}), frozenset({"region:330000"}))
    city = Caller("u", frozenset({"gov_clerk"}), frozenset({"region:331000"}))
    district = Caller("u", frozenset({"gov_clerk"}), frozenset({"region:331004"}))
    assert province.has_scope("region", "331004")
    assert city.has_scope("region", "331004")
    assert district.has_scope("region", "331004")
    assert not district.has_scope("region", "331003")
    assert not city.has_scope("region", "330782")  # Yiwu is in Zhejiang but not in Taizhou
    assert not province.has_scope("region", "310000")


def test_services_need_a_public_key_unless_dev_keys_are_on(tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match="CITYHUB_JWT_PUBLIC_KEY"):
        load_key_material(SecuritySettings(dev_secrets_dir=tmp_path))
    assert not list(tmp_path.iterdir())  # nothing was generated behind the operator's back


def test_dev_keys_are_created_once_and_private_to_their_owner(tmp_path: Path) -> None:
    first = ensure_dev_keys(tmp_path)
    assert ensure_dev_keys(tmp_path) == first
    private_file = next(tmp_path.glob("*private.pem"))
    assert private_file.stat().st_mode & 0o077 == 0


def test_keys_from_settings_files_and_inline_pem(tmp_path: Path) -> None:
    private, public = ensure_dev_keys(tmp_path / "k")
    (tmp_path / "pub.pem").write_bytes(public)
    from_file = SecuritySettings(jwt_public_key_file=tmp_path / "pub.pem")
    inline = SecuritySettings(
        jwt_public_key=SecretStr(public.decode()), jwt_private_key=SecretStr(private.decode())
    )
    token = TokenIssuer.from_settings(inline).issue(sub="u1", roles=["police"])
    assert TokenVerifier.from_settings(from_file).verify(token).sub == "u1"
    with pytest.raises(SecurityConfigError, match="PRIVATE_KEY"):
        TokenIssuer.from_settings(from_file)


def test_make_keys_helper_round_trips(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    assert keys.verifier.verify(keys.issuer.issue(sub="s", roles=["service"])).sub == "s"
