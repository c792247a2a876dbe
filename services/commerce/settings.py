"""Settings of the commerce service: the platform's, the peer-call settings (it calls industry), and the
domain's knobs, each named ``commerce_<knob>`` (environment ``COMMERCE_<KNOB>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator

from services.platform.grpc_client import PeerAddress, PeerSettings
from services.platform.security.settings import DEV_SECRETS_DIR
from services.platform.vault import checked_person_key

__all__ = ["CommerceSettings"]

_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class CommerceSettings(PeerSettings):
    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "commerce"

    commerce_events_topic: Annotated[str, Field(min_length=1, pattern=_TOPIC)] = "cityhub.commerce.events.v1"

    # The industry service: a joining enterprise is looked up there (INDUSTRY_GRPC_ADDRESS).
    industry_grpc_address: PeerAddress = None

    # The key sealing the federations' code-signing private keys at rest: base64 of 32 random bytes,
    # inline or as a mounted Secret file (COMMERCE_SEAL_KEY / COMMERCE_SEAL_KEY_FILE).
    commerce_seal_key: SecretStr | None = None
    commerce_seal_key_file: Path | None = None
    # Local development only: generate one under .local/secrets/ when none is set.
    commerce_dev_keys: bool = Field(
        default=False, validation_alias=AliasChoices("commerce_dev_keys", "cityhub_dev_keys")
    )
    commerce_dev_secrets_dir: Path = DEV_SECRETS_DIR

    # --- one code ----------------------------------------------------------------------------------
    # How long an issued member code verifies: short, so a screenshot soon stops working.
    commerce_code_validity_s: Annotated[int, Field(ge=30, le=86400)] = 300
    # Clock skew tolerated between the issuing server and an offline verifier.
    commerce_code_leeway_s: Annotated[int, Field(ge=0, le=600)] = 30
    # After a rotation, the old key keeps verifying codes for this long (codes issued just before it).
    commerce_key_retire_after_s: Annotated[int, Field(ge=0, le=30 * 86400)] = 86400

    # --- service requests --------------------------------------------------------------------------
    # How often the service looks for requests past their deadline.
    commerce_overdue_sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    _key_is_32_bytes = field_validator("commerce_seal_key")(checked_person_key)
