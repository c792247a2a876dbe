"""Bearer tokens: signed JWTs naming the caller, its roles and its scopes.

Asymmetric signatures (ES256 by default, EdDSA possible) let every service verify with a public key
while only the issuer can sign. The verifier pins the algorithm from its configuration, never from the
token header (no ``alg: none`` or HS256-with-the-public-key confusion), picks the key by ``kid`` so keys
can be rotated, caps token lifetime, and caches verified tokens so a client reusing one token does not
pay a signature check per call (expiry is still checked on every use).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from services.platform.errors import UnauthenticatedError
from services.platform.security.roles import ROLE_SCOPE_KIND, Role, parse_scope, region_covers
from services.platform.security.settings import (
    Algorithm,
    KeyMaterial,
    SecurityConfigError,
    SecuritySettings,
    load_key_material,
)

__all__ = [
    "MAX_TOKEN_BYTES",
    "Caller",
    "TokenError",
    "TokenIssuer",
    "TokenVerifier",
    "bearer_token",
    "key_id",
]

# Anything larger is not one of ours; refusing early keeps a hostile header from costing a decode.
MAX_TOKEN_BYTES = 8192
_CACHE_SIZE = 4096


class TokenError(UnauthenticatedError):
    """The token is missing, malformed, expired, forged or not meant for us; the message says which."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as proven by a verified token."""

    sub: str
    roles: frozenset[str]
    # ``kind:id`` strings, e.g. ``site:S-001``, ``region:331004``.
    scopes: frozenset[str] = frozenset()
    token_id: str = ""
    expires_at: float = 0.0
    issued_at: float = 0.0
    _by_kind: dict[str, frozenset[str]] = field(init=False, default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, set[str]] = {}
        for scope in self.scopes:
            kind, ident = parse_scope(scope)
            grouped.setdefault(kind, set()).add(ident)
        self._by_kind.update({kind: frozenset(ids) for kind, ids in grouped.items()})

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def scope_ids(self, kind: str) -> frozenset[str]:
        """The ids of every scope of ``kind`` the caller holds (for filtering lists in use cases)."""
        return self._by_kind.get(kind, frozenset())

    def has_scope(self, kind: str, ident: str) -> bool:
        if not ident:
            return False
        held = self._by_kind.get(kind, frozenset())
        if kind == "region":
            return any(region_covers(code, ident) for code in held)
        return ident in held

    @property
    def scoped_only(self) -> bool:
        """True when every role the caller holds is limited to its scopes."""
        return bool(self.roles) and all(role in ROLE_SCOPE_KIND for role in self.roles)


def key_id(public_pem: bytes) -> str:
    """A stable id for a public key: the start of the SHA-256 of its SubjectPublicKeyInfo."""
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def _check_key_type(key: object, algorithm: Algorithm, what: str) -> None:
    ok = (
        isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey)
        and isinstance(key.curve, ec.SECP256R1)
        if algorithm == "ES256"
        else isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey)
    )
    if not ok:
        raise SecurityConfigError(f"{what}: not a key for {algorithm}")


def bearer_token(authorization: str | None) -> str:
    """The token from an ``authorization: Bearer <token>`` value, or TokenError."""
    if not authorization:
        raise TokenError("missing bearer token (authorization metadata)")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenError("malformed authorization metadata: expected 'Bearer <token>'")
    return token


class TokenVerifier:
    """Verifies bearer tokens against the configured public keys; thread-safe."""

    def __init__(
        self,
        keys: KeyMaterial,
        *,
        issuer: str,
        audience: str,
        leeway_s: float = 30.0,
        max_lifetime_s: int = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._algorithm = keys.algorithm
        self._keys: dict[str, Any] = {}
        for pem in keys.public_pems:
            key = serialization.load_pem_public_key(pem)
            _check_key_type(key, keys.algorithm, "CITYHUB_JWT_PUBLIC_KEY")
            self._keys[key_id(pem)] = key
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._max_lifetime = max_lifetime_s
        self._clock = clock
        self._cache: OrderedDict[str, Caller] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> TokenVerifier:
        return cls(
            load_key_material(settings),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway_s=settings.jwt_leeway_s,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        )

    def verify_authorization(self, authorization: str | None) -> Caller:
        return self.verify(bearer_token(authorization))

    def verify(self, token: str) -> Caller:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenError("token malformed: too large")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None:
                self._cache.move_to_end(token)
        if cached is not None:
            if now > cached.expires_at + self._leeway:
                raise TokenError("token expired")
            return cached
        caller = self._decode(token, now)
        with self._lock:
            self._cache[token] = caller
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return caller

    def _decode(self, token: str, now: float) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenError("token malformed") from None
        if header.get("alg") != self._algorithm:
            raise TokenError(f"token malformed: algorithm must be {self._algorithm}")
        kid = header.get("kid")
        if kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        elif isinstance(kid, str) and kid in self._keys:
            key = self._keys[kid]
        else:
            raise TokenError("token signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token not yet valid") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not verify") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token from an unknown issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token malformed: missing claim {exc.claim}") from None
        except jwt.InvalidTokenError:
            raise TokenError("token malformed") from None
        return self._caller(claims, now)

    def _caller(self, claims: dict[str, Any], now: float) -> Caller:
        sub, roles, scopes = claims.get("sub"), claims.get("roles", []), claims.get("scopes", [])
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(sub, str) or not sub.strip():
            raise TokenError("token malformed: sub must be a non-empty string")
        if not _string_list(roles) or not roles:
            raise TokenError("token malformed: roles must be a non-empty list of strings")
        if not _string_list(scopes):
            raise TokenError("token malformed: scopes must be a list of strings")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise TokenError("token malformed: exp and iat must be numbers")
        # Checked against our own clock as well, so an injected clock (tests) and pyjwt's agree.
        if now > exp + self._leeway:
            raise TokenError("token expired")
        if iat > now + self._leeway:
            raise TokenError("token not yet valid")
        if exp - iat > self._max_lifetime:
            raise TokenError(f"token lifetime exceeds the {self._max_lifetime} s allowed")
        try:
            return Caller(
                sub=sub,
                roles=frozenset(roles),
                scopes=frozenset(scopes),
                token_id=str(claims.get("jti", "")),
                expires_at=float(exp),
                issued_at=float(iat),
            )
        except ValueError as exc:
            raise TokenError(f"token malformed: {exc}") from None


def _string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class TokenIssuer:
    """Signs tokens. Only the CLI, test fixtures and local dev signers hold a private key."""

    def __init__(
        self,
        keys: KeyMaterial,
        *,
        issuer: str,
        audience: str,
        max_lifetime_s: int = 7 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keys.private_pem is None:
            raise SecurityConfigError("CITYHUB_JWT_PRIVATE_KEY is required to issue tokens")
        self._private = serialization.load_pem_private_key(keys.private_pem, password=None)
        _check_key_type(self._private, keys.algorithm, "CITYHUB_JWT_PRIVATE_KEY")
        public_pem = self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._kid = key_id(public_pem)
        self._algorithm = keys.algorithm
        self._issuer = issuer
        self._audience = audience
        self._max_lifetime = max_lifetime_s
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> TokenIssuer:
        return cls(
            load_key_material(settings, need_private=True),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        )

    @property
    def key_id(self) -> str:
        return self._kid

    def issue(
        self,
        *,
        sub: str,
        roles: Iterable[str],
        scopes: Iterable[str] = (),
        ttl_s: float = 3600,
        issued_at: float | None = None,
    ) -> str:
        """A signed token; refuses unknown roles, malformed scopes and lifetimes beyond the cap."""
        token, _ = self.issue_with_claims(
            sub=sub, roles=roles, scopes=scopes, ttl_s=ttl_s, issued_at=issued_at
        )
        return token

    def issue_with_claims(
        self,
        *,
        sub: str,
        roles: Iterable[str],
        scopes: Iterable[str] = (),
        ttl_s: float = 3600,
        issued_at: float | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The token and the claims it carries (for recording the issue in the audit log)."""
        role_list = sorted(set(roles))
        scope_list = sorted(set(scopes))
        if not sub.strip():
            raise ValueError("sub must not be empty")
        if not role_list:
            raise ValueError("at least one role is required")
        known = {role.value for role in Role}
        unknown = [role for role in role_list if role not in known]
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; known: {sorted(known)}")
        for scope in scope_list:
            parse_scope(scope)
        if not 0 < ttl_s <= self._max_lifetime:
            raise ValueError(f"ttl must be between 1 s and {self._max_lifetime} s")
        now = self._clock() if issued_at is None else issued_at
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": sub,
            "roles": role_list,
            "scopes": scope_list,
            "iat": int(now),
            "exp": int(now + ttl_s),
            "jti": secrets.token_hex(12),
        }
        token = jwt.encode(claims, self._private, algorithm=self._algorithm, headers={"kid": self._kid})  # type: ignore[arg-type]
        return token, claims
