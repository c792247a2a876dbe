"""One-time operator login links (``cityhub web login-link``): a bearer token signed like ``cityhub token
issue`` signs one, carried in the link; the web accepts each link once and only while it is young."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlencode

from services.platform.security.roles import Role
from services.platform.security.settings import SecuritySettings, load_security_settings
from services.platform.security.tokens import TokenIssuer

__all__ = ["DEFAULT_SESSION_TTL_S", "login_link"]

# The session lasts as long as the token: a duty shift.
DEFAULT_SESSION_TTL_S = 8 * 3600


def login_link(
    base_url: str,
    *,
    role: str = Role.DISTRICT_OPERATOR.value,
    scopes: Iterable[str] = (),
    sub: str | None = None,
    ttl_s: int = DEFAULT_SESSION_TTL_S,
    security: SecuritySettings | None = None,
) -> str:
    """A one-time login URL for the web at ``base_url``. Signs with CITYHUB_JWT_PRIVATE_KEY(_FILE), or the
    local development key under .local/secrets/ when none is configured."""
    settings = security or load_security_settings()
    if settings.jwt_private_key is None and settings.jwt_private_key_file is None and not settings.dev_keys:
        settings = settings.model_copy(update={"dev_keys": True})
    issuer = TokenIssuer.from_settings(settings)
    token = issuer.issue(
        sub=sub or f"web-{role}-{secrets.token_hex(3)}", roles=(role,), scopes=tuple(scopes), ttl_s=ttl_s
    )
    return f"{base_url.rstrip('/')}/login?{urlencode({'token': token})}"
