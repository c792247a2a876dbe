"""Signing in through a one-time link, and the CSRF token of a session.

A login link carries a bearer token the platform's issuer signed (``cityhub web login-link``). The web
checks it exactly as every service does (the platform's TokenVerifier: signature, issuer, audience,
expiry), refuses it once older than the link's maximum age or when its ``jti`` has been used before, and
keeps it in the session as the person's bearer for every hub call: the web holds no signing key and so can
never widen what a person may do — the hub decides, as over gRPC.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.platform.security.tokens import Caller, TokenError, TokenVerifier

__all__ = ["LinkRefusedError", "LoginLinks", "csrf_matches", "new_csrf_token"]


class LinkRefusedError(Exception):
    """The link cannot sign anyone in; the text says why (shown to the person)."""


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    caller: Caller


class LoginLinks:
    """Redeems one-time login links. Used ids are remembered in this process for as long as a link could
    still be accepted (its maximum age), so the memory stays bounded."""

    def __init__(
        self, verifier: TokenVerifier, *, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._verifier = verifier
        self._max_age_s = max_age_s
        self._clock = clock
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def redeem(self, token: str) -> Login:
        try:
            caller = self._verifier.verify(token)
        except TokenError as exc:
            raise LinkRefusedError(f"this login link is not valid ({exc})") from None
        now = self._clock()
        if not caller.token_id:
            raise LinkRefusedError("this login link carries no id and cannot be used once only")
        if now - caller.issued_at > self._max_age_s:
            raise LinkRefusedError("this login link has expired: ask for a new one")
        with self._lock:
            self._forget_before(now - self._max_age_s)
            if caller.token_id in self._used:
                raise LinkRefusedError("this login link has already been used: ask for a new one")
            self._used[caller.token_id] = caller.issued_at
        return Login(token, caller)

    def _forget_before(self, oldest: float) -> None:
        # A link issued before ``oldest`` is refused for its age anyway; its id need not be kept.
        for jti in [j for j, issued in self._used.items() if issued < oldest]:
            del self._used[jti]


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
