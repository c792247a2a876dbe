"""The member code (一码服务): a compact JWS (a JWT) any office verifies offline with the published keys.

A code is ``base64url(header).base64url(claims).base64url(signature)``, signed ES256 with the federation's
current key through PyJWT (the library the platform's tokens use). The header names the key (``kid``); the
claims are kept short so the QR stays small::

    {"c": chamber_id, "m": membership_id, "e": credit_code, "nbf": issued, "exp": issued + validity}

:func:`verify` is the offline verifier: pure (no I/O, the clock is an argument), it takes ANY string and
answers exactly one :class:`CodeVerdict`, never an exception: a scanner reads whatever is put in front of
it. The online check (:func:`online_verdict`) adds the membership's current status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.commerce.domain.model import MembershipStatus

__all__ = [
    "ALGORITHMS",
    "MAX_CODE_CHARS",
    "CodeClaims",
    "CodeVerdict",
    "IssuedCode",
    "OnlineVerification",
    "PublishedKey",
    "SealedKey",
    "Verification",
    "key_id_of",
    "online_verdict",
    "sign_code",
    "verify",
]

# Far above any code this service issues (~350 characters); anything longer is refused unread.
MAX_CODE_CHARS = 4096
# The algorithms a published key may carry; the verifier pins the key's own, never the header's.
ALGORITHMS = frozenset({"ES256"})
# Three non-empty base64url segments, ASCII only: everything else is not a compact JWS at all.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", re.ASCII)
_MAX_CLAIM_CHARS = 128


class CodeVerdict(StrEnum):
    VALID = "VALID"
    # Outside its validity window (a screenshot of an old code, or one not valid yet).
    EXPIRED = "EXPIRED"
    # The membership is suspended (online only).
    SUSPENDED = "SUSPENDED"
    # The membership ended or was rejected (online), or the key the code was signed with retired.
    REVOKED = "REVOKED"
    # Not a code, malformed, a signature that does not verify, or an algorithm other than the key's.
    FORGED = "FORGED"
    # Signed with a key id this service never published.
    UNKNOWN_KEY = "UNKNOWN_KEY"


@dataclass(frozen=True, slots=True)
class CodeClaims:
    """What a code says (only trusted once its signature verified)."""

    chamber_id: str
    membership_id: str
    credit_code: str
    not_before: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """A public verification key, as GetVerificationKeys publishes it."""

    key_id: str
    federation_id: str
    algorithm: str
    public_key_pem: str
    created_at: datetime
    # None while the key may still sign; after this moment its codes are REVOKED.
    retires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A federation's current signing key with its private half still sealed (the vault opens it)."""

    key: PublishedKey
    sealed_private: bytes


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A freshly issued member code: its text, its QR rendering, and what it says."""

    text: str
    qr_png: bytes
    key_id: str
    membership_id: str
    chamber_id: str
    credit_code: str
    not_before: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OnlineVerification:
    """The online answer; the member fields are filled whenever the signature verified."""

    verdict: CodeVerdict
    membership_id: str = ""
    chamber_id: str = ""
    credit_code: str = ""
    enterprise_name: str = ""


@dataclass(frozen=True, slots=True)
class Verification:
    verdict: CodeVerdict
    # Set whenever the signature verified (whatever the verdict after that).
    claims: CodeClaims | None = None
    key_id: str = ""


def sign_code(claims: CodeClaims, key_id: str, private_key_pem: str) -> str:
    """The code text for ``claims``, signed ES256 with the private key named ``key_id``."""
    payload = {
        "c": claims.chamber_id,
        "m": claims.membership_id,
        "e": claims.credit_code,
        "nbf": int(claims.not_before.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    # No "typ": every byte makes the QR denser, and the verifier does not need it.
    return jwt.encode(payload, private_key_pem, algorithm="ES256", headers={"kid": key_id, "typ": None})


def key_id_of(text: object) -> str | None:
    """The ``kid`` a code's header names (unverified), or None when the text is not a compact JWS with one.
    The online check loads only that key."""
    try:
        return _kid(text)
    except Exception:  # noqa: BLE001 - any input gets an answer; a bug here can only make a code FORGED
        return None


def verify(
    text: object, keys_by_kid: Mapping[str, PublishedKey], now: datetime, leeway_s: int = 0
) -> Verification:
    """Exactly one verdict for ANY input: FORGED, UNKNOWN_KEY, REVOKED (retired key), EXPIRED or VALID.

    Order: the shape and header (FORGED), the key id (UNKNOWN_KEY), the signature with the key's own
    algorithm (FORGED), the key's retirement (REVOKED), the validity window widened by ``leeway_s`` for
    clock skew between issuer and verifier (EXPIRED)."""
    try:
        return _verify(text, keys_by_kid, now, leeway_s)
    except Exception:  # noqa: BLE001 - a verifier's contract is a verdict for any input, never an exception
        return Verification(CodeVerdict.FORGED)


def online_verdict(offline: CodeVerdict, status: MembershipStatus | None) -> CodeVerdict:
    """The online answer: the offline verdict unless it is VALID; then the membership's current status
    decides (missing, ended or rejected: REVOKED; suspended: SUSPENDED)."""
    if offline is not CodeVerdict.VALID:
        return offline
    if status is MembershipStatus.ACTIVE:
        return CodeVerdict.VALID
    if status is MembershipStatus.SUSPENDED:
        return CodeVerdict.SUSPENDED
    return CodeVerdict.REVOKED


def _kid(text: object) -> str | None:
    if not isinstance(text, str) or len(text) > MAX_CODE_CHARS or not _COMPACT.fullmatch(text):
        return None
    header = jwt.get_unverified_header(text)
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_CLAIM_CHARS:
        return None
    return kid


def _verify(  # noqa: PLR0911 - one verdict per step, in the documented order
    text: object, keys_by_kid: Mapping[str, PublishedKey], now: datetime, leeway_s: int
) -> Verification:
    forged = Verification(CodeVerdict.FORGED)
    kid = _kid(text)
    if kid is None:
        return forged
    assert isinstance(text, str)  # _kid accepted it
    key = keys_by_kid.get(kid)
    if key is None:
        return Verification(CodeVerdict.UNKNOWN_KEY, key_id=kid)
    if key.algorithm not in ALGORITHMS:
        return forged
    # The key's algorithm, never the header's: "none", HS256 with the public key as secret, ... fail here.
    decoded = jwt.PyJWS().decode_complete(
        text, key=_public_key(key.public_key_pem), algorithms=[key.algorithm]
    )
    claims = _claims(json.loads(decoded["payload"]))
    if claims is None:
        return forged
    if key.retires_at is not None and now >= key.retires_at:
        return Verification(CodeVerdict.REVOKED, claims, kid)
    stamp = now.timestamp()
    if stamp > claims.expires_at.timestamp() + leeway_s or stamp < claims.not_before.timestamp() - leeway_s:
        return Verification(CodeVerdict.EXPIRED, claims, kid)
    return Verification(CodeVerdict.VALID, claims, kid)


@lru_cache(maxsize=256)
def _public_key(pem: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TypeError("an ES256 key is an EC P-256 public key")
    return key


def _claims(payload: Any) -> CodeClaims | None:
    """The claims of a verified payload, or None when they are not the shape this service issues."""
    if not isinstance(payload, dict):
        return None
    texts = [payload.get(name) for name in ("c", "m", "e")]
    times = [payload.get(name) for name in ("nbf", "exp")]
    if not all(isinstance(t, str) and 0 < len(t) <= _MAX_CLAIM_CHARS for t in texts):
        return None
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in times):
        return None
    chamber_id, membership_id, credit_code = (str(t) for t in texts)
    not_before, expires_at = (datetime.fromtimestamp(int(t), UTC) for t in times)  # type: ignore[arg-type]
    if expires_at <= not_before:
        return None
    return CodeClaims(chamber_id, membership_id, credit_code, not_before, expires_at)
