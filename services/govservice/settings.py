"""Settings of the govservice service: the platform's, the peer-call settings (it calls commerce), and the
domain's knobs, each named ``govservice_<knob>`` (environment ``GOVSERVICE_<KNOB>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator

from services.platform.grpc_client import PeerAddress, PeerSettings
from services.platform.security.settings import DEV_SECRETS_DIR
from services.platform.vault import checked_person_key

__all__ = ["GovServiceSettings"]

_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class GovServiceSettings(PeerSettings):
    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "govservice"

    govservice_events_topic: Annotated[str, Field(min_length=1, pattern=_TOPIC)] = (
        "cityhub.govservice.events.v1"
    )

    # The commerce service: an enterprise applicant is looked up there (COMMERCE_GRPC_ADDRESS).
    commerce_grpc_address: PeerAddress = None

    # The key sealing applicants' identities and the regions' signing keys at rest, and keying applicant
    # tokens: base64 of 32 random bytes, inline or as a mounted Secret file.
    govservice_person_key: SecretStr | None = None
    govservice_person_key_file: Path | None = None
    # Local development only: generate one under .local/secrets/ when none is set.
    govservice_dev_keys: bool = Field(
        default=False, validation_alias=AliasChoices("govservice_dev_keys", "cityhub_dev_keys")
    )
    govservice_dev_secrets_dir: Path = DEV_SECRETS_DIR

    # Regions, items and partnerships to load (idempotently) at start: a TOML file an operator extends.
    # Unset: load nothing (an empty catalogue, filled over the RPCs).
    govservice_seed_file: Path | None = None

    # The calendar deadlines are counted in (the `holidays` library's country code): public holidays are
    # skipped and adjusted working weekends (调休) count.
    govservice_holiday_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "CN"
    # How often the service looks for applications past their deadline.
    govservice_overdue_sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 60.0

    # Tracking: wrong (number, suffix) pairs one caller may try before it is slowed down, and the window
    # they are counted in; each further wrong try doubles the wait, up to the maximum.
    govservice_track_free_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    govservice_track_window_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    govservice_track_max_wait_s: Annotated[float, Field(gt=0, le=86400)] = 900.0

    _key_is_32_bytes = field_validator("govservice_person_key")(checked_person_key)
