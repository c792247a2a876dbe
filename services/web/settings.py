"""Settings of the web frontend, validated once at start-up (environment names are the field names
upper-cased). The JWT verification keys come from the platform's SecuritySettings (``CITYHUB_…``)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.platform.security.settings import SecurityConfigError, SecuritySettings
from services.platform.settings import known_time_zone

__all__ = ["WebSettings", "session_secret"]

_ADDRESS = Annotated[str, Field(min_length=1)]


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "web"
    hub_grpc_address: _ADDRESS = "127.0.0.1:50066"
    # The kitchen's public five-promises profile is not exposed by the hub; read it from kitchen itself.
    kitchen_grpc_address: _ADDRESS | None = None
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    # The district's local time: the dashboard's days and the times shown (as the hub's DISTRICT_TIME_ZONE).
    district_time_zone: str = "Asia/Shanghai"
    log_level: str = "info"
    log_format: str = "auto"
    # Signs the session cookie. Inline or as a file (a mounted Kubernetes Secret); with CITYHUB_DEV_KEYS a
    # local one is generated once under .local/secrets/.
    web_session_secret: SecretStr | None = None
    web_session_secret_file: Path | None = None
    # A login link is refused once this old (its token's iat), and at most once in any case.
    web_login_link_max_age_s: Annotated[float, Field(gt=0, le=86400)] = 900.0
    # Deadline of every unary hub call a page makes; past it the page answers 503.
    web_hub_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    # How far around an entity the town view draws its neighbours.
    web_town_radius_m: Annotated[float, Field(gt=0, le=50_000)] = 5000.0
    # Days of history in the dashboard's charts (one GetDashboard per day).
    web_chart_days: Annotated[int, Field(ge=2, le=62)] = 14
    # Mark the cookie Secure (behind TLS). Off locally, where the page is plain http on 127.0.0.1.
    web_cookie_secure: bool = False

    @field_validator("district_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_time_zone(value)


def session_secret(settings: WebSettings, security: SecuritySettings) -> str:
    """The cookie-signing secret: configured, or the local development one (created once, owner-only)."""
    if settings.web_session_secret is not None and settings.web_session_secret.get_secret_value():
        return settings.web_session_secret.get_secret_value()
    if settings.web_session_secret_file is not None:
        try:
            return settings.web_session_secret_file.read_text().strip()
        except OSError as exc:
            raise SecurityConfigError(f"WEB_SESSION_SECRET_FILE: cannot read it: {exc.strerror}") from None
    if not security.dev_keys:
        raise SecurityConfigError(
            "WEB_SESSION_SECRET (or WEB_SESSION_SECRET_FILE) is required "
            "(set CITYHUB_DEV_KEYS=true to use a generated local one for development)"
        )
    directory = security.dev_secrets_dir
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "web-session-secret"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
