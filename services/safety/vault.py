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

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.platform.logs import get_logger
from services.safety.domain.commands import normalise_plate
from services.safety.settings import SafetySettings, decode_person_key

__all__ = ["PersonKeyError", "PersonVault", "ensure_dev_person_key", "load_person_key"]

_VERSION = 1
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4
DEV_KEY_FILE = "safety-person-key"
log = get_logger()


class PersonKeyError(SystemExit):
    """The person key is missing or unusable; the text names the setting. Stops the process."""


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class PersonVault:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the person key must be 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"cityhub/safety/person-seal/v1"))
        self._mac_key = _derive(master_key, b"cityhub/safety/person-token/v1")
        self._vehicle_key = _derive(master_key, b"cityhub/safety/vehicle-token/v1")
        # Stored with each sealed value, so a value sealed under another key is recognised as such.
        self.key_id = hashlib.sha256(_derive(master_key, b"cityhub/safety/key-id/v1")).digest()[
            :_KEY_ID_BYTES
        ]

    def token_for(self, identity_number: str) -> str:
        digest = hmac.new(self._mac_key, identity_number.strip().upper().encode(), hashlib.sha256)
        return "p_" + digest.hexdigest()[:32]

    def vehicle_token_for(self, plate: str) -> str:
        """The token of a plate, however it was spelt (see :func:`normalise_plate`)."""
        digest = hmac.new(self._vehicle_key, normalise_plate(plate).encode(), hashlib.sha256)
        return "v_" + digest.hexdigest()[:32]

    def mac(self, data: bytes) -> str:
        """A keyed digest (request fingerprints that may cover identity numbers)."""
        return hmac.new(self._mac_key, b"fingerprint|" + data, hashlib.sha256).hexdigest()

    def seal(self, purpose: str, owner: str, value: dict[str, Any]) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plaintext = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plaintext, f"{purpose}|{owner}".encode())
        return bytes([_VERSION]) + self.key_id + nonce + sealed

    def open(self, purpose: str, owner: str, blob: bytes) -> dict[str, Any]:
        blob = bytes(blob)
        if len(blob) < 1 + _KEY_ID_BYTES + _NONCE_BYTES + 16 or blob[0] != _VERSION:
            raise ValueError("not a sealed value of a known version")
        if blob[1 : 1 + _KEY_ID_BYTES] != self.key_id:
            raise ValueError("sealed under another person key (was SAFETY_PERSON_KEY changed?)")
        start = 1 + _KEY_ID_BYTES
        nonce, sealed = blob[start : start + _NONCE_BYTES], blob[start + _NONCE_BYTES :]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, f"{purpose}|{owner}".encode())
        except InvalidTag:
            raise ValueError("sealed value does not belong to this record or was altered") from None
        value = json.loads(plaintext)
        if not isinstance(value, dict):
            raise TypeError("sealed value is not a record")
        return value


def ensure_dev_person_key(directory: Path) -> bytes:
    """Create (once) and return the local development person key, shared by every local process."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / DEV_KEY_FILE
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            log.warning("safety_dev_person_key_created", path=str(path))
        return decode_person_key(path.read_text())


def load_person_key(settings: SafetySettings) -> bytes:
    """The configured key, or the local dev key when allowed; PersonKeyError naming the setting otherwise."""
    if settings.safety_person_key is not None:
        return decode_person_key(settings.safety_person_key.get_secret_value())
    if settings.safety_person_key_file is not None:
        try:
            text = settings.safety_person_key_file.read_text()
        except OSError as exc:
            raise PersonKeyError(
                f"SAFETY_PERSON_KEY_FILE: cannot read {settings.safety_person_key_file}: {exc.strerror}"
            ) from None
        try:
            return decode_person_key(text)
        except ValueError as exc:
            raise PersonKeyError(f"SAFETY_PERSON_KEY_FILE: {exc}") from None
    if settings.safety_dev_keys:
        return ensure_dev_person_key(settings.safety_dev_secrets_dir)
    raise PersonKeyError(
        "SAFETY_PERSON_KEY (or SAFETY_PERSON_KEY_FILE) is required but not set "
        "(set CITYHUB_DEV_KEYS=true to use a generated local key for development)"
    )
