"""Settings of the safety service (environment variables, validated at start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator

from services.platform.security.settings import DEV_SECRETS_DIR
from services.platform.settings import ServiceSettings
from services.platform.vault import checked_person_key

__all__ = ["SafetySettings"]


class SafetySettings(ServiceSettings):
    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "safety"
    # Where the service's facts go (tests point it at a topic of their own). The district's time zone
    # (statistics days and months) is the platform's DISTRICT_TIME_ZONE.
    safety_events_topic: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9._-]{1,249}$")] = (
        "cityhub.safety.events.v1"
    )

    # The key protecting persons of concern: base64 of 32 random bytes (``openssl rand -base64 32``).
    # From it the service derives the AES-GCM key that encrypts identity numbers, names, flags and
    # purchases, and the HMAC key that makes person tokens. Losing it loses the records; changing it
    # changes every token. Inline or as a mounted Secret file.
    safety_person_key: SecretStr | None = None
    safety_person_key_file: Path | None = None
    # Local development only: with no key configured, generate one under .local/secrets/ (shared by
    # local processes). Off by default so a production pod without its Secret refuses to start. The
    # platform's CITYHUB_DEV_KEYS switches it on too, so one flag makes a local stack.
    safety_dev_keys: bool = Field(
        default=False, validation_alias=AliasChoices("safety_dev_keys", "cityhub_dev_keys")
    )
    safety_dev_secrets_dir: Path = DEV_SECRETS_DIR

    # Detections at one site within this many seconds are assessed together.
    safety_risk_window_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    # Detections of a kind an open alert already has, within this many seconds of its detections,
    # update that alert instead of opening another.
    safety_alert_dedup_window_s: Annotated[float, Field(gt=0, le=86400)] = 900.0
    # Alert changes a slow watcher may fall behind by before it is re-sent the open alerts instead.
    safety_watch_queue_size: Annotated[int, Field(ge=10, le=100_000)] = 1000

    _key_is_32_bytes = field_validator("safety_person_key")(checked_person_key)
