"""Protection of person data: AES-256-GCM for what is stored, HMAC-SHA256 for tokens.

Both keys are derived (HKDF-SHA256) from the one configured secret, ``SAFETY_PERSON_KEY``, so operations
handle one Secret. Every sealed value is bound to its owner and purpose through the AEAD's associated
data (``<purpose>|<token>``): a sealed profile copied onto another person's row, or a purchase onto a
profile, fails to open instead of showing the wrong data.

Tokens are ``p_`` + the first 32 hex digits (128 bits) of HMAC(identity number): stable, so recording a
person twice finds the same record, and a lookup by identity number needs no decryption; without the key
nobody can compute the token of a given identity number, so a token in an event reveals nothing.

Vehicles of concern work the same way with their own derived key: ``v_`` + 128 bits of HMAC(normalised
plate). A plate read by a camera is matched against the record by its token alone, and a detection keeps
the token, never the plate.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from services.platform.vault import PersonKeyError, Vault, ensure_dev_key
from services.platform.vault import load_person_key as load_domain_key
from services.safety.domain.commands import normalise_plate
from services.safety.settings import SafetySettings

__all__ = ["PersonKeyError", "PersonVault", "ensure_dev_person_key", "load_person_key"]

DEV_KEY_FILE = "safety-person-key"


class PersonVault(Vault):
    """The platform's vault under the safety domain's derivations, plus vehicle tokens."""

    def __init__(self, master_key: bytes) -> None:
        super().__init__(master_key, "safety", id_prefix="p_")
        self._vehicle_key = self.derive("vehicle-token")

    def vehicle_token_for(self, plate: str) -> str:
        """The token of a plate, however it was spelt (see :func:`normalise_plate`)."""
        digest = hmac.new(self._vehicle_key, normalise_plate(plate).encode(), hashlib.sha256)
        return "v_" + digest.hexdigest()[:32]


def ensure_dev_person_key(directory: Path) -> bytes:
    """Create (once) and return the local development person key, shared by every local process."""
    return ensure_dev_key(directory, DEV_KEY_FILE)


def load_person_key(settings: SafetySettings) -> bytes:
    """The configured key, or the local dev key when allowed; PersonKeyError naming the setting otherwise."""
    return load_domain_key(
        "safety",
        settings.safety_person_key,
        settings.safety_person_key_file,
        dev_keys=settings.safety_dev_keys,
        dev_dir=settings.safety_dev_secrets_dir,
    )
