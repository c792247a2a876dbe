"""Signing in through a one-time link, and the CSRF token of a session.

A login link carries a bearer token the platform's issuer signed (``cityhub web login-link``). The web
checks it exactly as every service does (the platform's TokenVerifier: signature, issuer, audience,
expiry), refuses it once older than the link's maximum age, has the hub record the first use of its
``jti`` (a link used before is refused, whichever web replica saw it first, before or after a restart), and
keeps it in the session as the person's bearer for every hub call: the web holds no signing key and so can
never widen what a person may do — the hub decides, as over gRPC.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.platform.security.tokens import Caller, TokenError, TokenVerifier

__all__ = ["LinkRefusedError", "Login", "LoginLinks", "csrf_matches", "new_csrf_token"]


class LinkRefusedError(Exception):
    """The link cannot sign anyone in; the text says why (shown to the person)."""


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    caller: Caller


class LoginLinks:
    """Checks a login link's token before the hub is asked to record its first use (``RedeemLoginLink``):
    the hub's database is what every web replica and restart shares, so "once" holds across them. No I/O
    here; a link refused by this check costs the hub nothing."""

    def __init__(
        self, verifier: TokenVerifier, *, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._verifier = verifier
        self._max_age_s = max_age_s
        self._clock = clock

    def check(self, token: str) -> Login:
        try:
            caller = self._verifier.verify(token)
        except TokenError as exc:
            raise LinkRefusedError(f"this login link is not valid ({exc})") from None
        if not caller.token_id:
            raise LinkRefusedError("this login link carries no id and cannot be used once only")
        if self._clock() - caller.issued_at > self._max_age_s:
            raise LinkRefusedError("this login link has expired: ask for a new one")
        return Login(token, caller)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    """The synchronizer-token check: the form's token equals the one kept in the signed session."""
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(expected.encode(), given.encode())
    )
