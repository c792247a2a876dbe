"""Settings of the kitchen service: the platform's, the peer-call settings (it calls safety), and the
domain's knobs, each named ``kitchen_<knob>`` (environment ``KITCHEN_<KNOB>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator

from services.platform.grpc_client import PeerAddress, PeerSettings
from services.platform.security.settings import DEV_SECRETS_DIR
from services.platform.vault import checked_person_key

__all__ = ["KitchenSettings"]

_TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class KitchenSettings(PeerSettings):
    service_name: Annotated[str, Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")] = "kitchen"

    # --- topics ------------------------------------------------------------------------------------
    kitchen_events_topic: Annotated[str, Field(min_length=1, pattern=_TOPIC)] = "cityhub.kitchen.events.v1"
    kitchen_readings_topic: Annotated[str, Field(min_length=1, pattern=_TOPIC)] = (
        "cityhub.kitchen.readings.v1"
    )

    # --- peers -------------------------------------------------------------------------------------
    # The safety service: a kitchen's site is checked there at registration (SAFETY_GRPC_ADDRESS).
    safety_grpc_address: PeerAddress = None

    # --- the key protecting staff identities and health data ---------------------------------------
    # base64 of 32 random bytes (``openssl rand -base64 32``), inline or as a mounted Secret file. From it
    # the service derives the AES-GCM key sealing staff names, identity numbers, certificate numbers,
    # temperatures and symptoms, and the HMAC keys of staff tokens and rater digests.
    kitchen_person_key: SecretStr | None = None
    kitchen_person_key_file: Path | None = None
    # Local development only (as for safety): generate a key under .local/secrets/ when none is set.
    kitchen_dev_keys: bool = Field(
        default=False, validation_alias=AliasChoices("kitchen_dev_keys", "cityhub_dev_keys")
    )
    kitchen_dev_secrets_dir: Path = DEV_SECRETS_DIR

    # --- morning checks ----------------------------------------------------------------------------
    # At or above this forehead temperature a staff member is barred from the shift.
    kitchen_fever_threshold_c: Annotated[float, Field(ge=36, le=40)] = 37.3
    # Below this face match score the person at the screen may not be the staff member: barred.
    kitchen_face_match_threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    # How often the service looks for shifts that started with rostered staff unchecked (NO_CHECK bars).
    kitchen_check_sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # --- equipment and readings --------------------------------------------------------------------
    kitchen_readings_max_per_request: Annotated[int, Field(ge=1, le=100_000)] = 5_000
    # Readings further ahead of the server's clock than this, or older than the max age, are refused.
    kitchen_readings_max_future_s: Annotated[float, Field(ge=0, le=3600)] = 300.0
    kitchen_readings_max_age_s: Annotated[float, Field(gt=0, le=90 * 86400)] = 2 * 86400.0
    # The longest the ingest RPC waits for Kafka's acknowledgement before answering UNAVAILABLE.
    kitchen_readings_ack_timeout_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    # Run the readings consumer (cold chain, cycles, UV minutes) in this process.
    kitchen_readings_consumer_enabled: bool = True
    # How often the equipment monitor looks for silent units and finished UV days.
    kitchen_monitor_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # --- AI captures -------------------------------------------------------------------------------
    # A capture of the same kind at the same camera within this many seconds joins the open violation.
    kitchen_violation_join_window_s: Annotated[float, Field(gt=0, le=86400)] = 600.0

    # --- traceability ------------------------------------------------------------------------------
    # Retained samples (留样): at least this many grams of each dish, kept this many hours.
    kitchen_sample_min_grams: Annotated[float, Field(gt=0, le=10_000)] = 125.0
    kitchen_sample_keep_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 48

    _key_is_32_bytes = field_validator("kitchen_person_key")(checked_person_key)
