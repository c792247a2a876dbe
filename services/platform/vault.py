"""Protection of person data at rest, for any service that holds it: AES-256-GCM for what is stored,
HMAC-SHA256 for pseudonymous tokens and keyed request fingerprints.

Every key is derived (HKDF-SHA256) from one configured secret per service (``<DOMAIN>_PERSON_KEY``), with
the domain in the derivation info (``cityhub/<domain>/...``), so two services given the same secret by
mistake still make unrelated tokens. Every sealed value is bound to its owner and purpose through the
AEAD's associated data (``<purpose>|<owner>``): a sealed value copied onto another row fails to open
instead of showing the wrong person's data.

Tokens are ``<id_prefix>`` + the first 32 hex digits (128 bits) of HMAC(identity number): stable, so the same
person recorded twice has one token and a lookup by identity number needs no decryption; without the key
nobody can compute the token of a given identity number, so a token in an event reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
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
from pydantic import SecretStr

from services.platform.logs import get_logger

__all__ = [
    "PersonKeyError",
    "Vault",
    "checked_person_key",
    "decode_person_key",
    "ensure_dev_key",
    "load_person_key",
]

_VERSION = 1
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4
log = get_logger()


class PersonKeyError(SystemExit):
    """The person key is missing or unusable; the text names the setting. Stops the process."""


def decode_person_key(text: str) -> bytes:
    """The raw key from its base64 text; ValueError (without the value) when it is not 32 bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64 (e.g. from `openssl rand -base64 32`)") from None
    if len(raw) != 32:
        raise ValueError(f"must decode to 32 bytes, not {len(raw)}")
    return raw


def checked_person_key(value: SecretStr | None) -> SecretStr | None:
    """The settings validator of every ``<DOMAIN>_PERSON_KEY`` field: blank means unset; otherwise it must
    decode to 32 bytes, so a wrong key stops start-up naming the setting (never showing the value)."""
    if value is None or not value.get_secret_value().strip():
        return None
    decode_person_key(value.get_secret_value())
    return value


def derive_key(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class Vault:
    """Seals, tokens and keyed digests of one service (``domain``) under its person key."""

    def __init__(self, master_key: bytes, domain: str, *, id_prefix: str = "p_") -> None:
        if len(master_key) != 32:
            raise ValueError("the person key must be 32 bytes")
        self.domain = domain
        self._master = master_key
        self._id_prefix = id_prefix
        self._aead = AESGCM(self.derive("person-seal"))
        self._mac_key = self.derive("person-token")
        # Stored with each sealed value, so a value sealed under another key is recognised as such.
        self.key_id = hashlib.sha256(self.derive("key-id")).digest()[:_KEY_ID_BYTES]

    def derive(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (``cityhub/<domain>/<purpose>/v1``)."""
        return derive_key(self._master, f"cityhub/{self.domain}/{purpose}/v1".encode())

    def token_for(self, identity_number: str) -> str:
        digest = hmac.new(self._mac_key, identity_number.strip().upper().encode(), hashlib.sha256)
        return self._id_prefix + digest.hexdigest()[:32]

    def mac(self, data: bytes) -> str:
        """A keyed digest (request fingerprints that may cover identity numbers, rater ids)."""
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
            setting = f"{self.domain.upper()}_PERSON_KEY"
            raise ValueError(f"sealed under another person key (was {setting} changed?)")
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


def ensure_dev_key(directory: Path, filename: str) -> bytes:
    """Create (once) and return a local development key, shared by every local process."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / filename
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            log.warning("dev_person_key_created", file=filename, path=str(path))
        return decode_person_key(path.read_text())


def load_person_key(
    domain: str,
    inline: SecretStr | None,
    file: Path | None,
    *,
    dev_keys: bool,
    dev_dir: Path,
    setting: str = "",
) -> bytes:
    """The configured key of ``domain`` (inline or from a mounted Secret file), or the local dev key when
    allowed; PersonKeyError naming the setting (``<DOMAIN>_PERSON_KEY`` unless given) otherwise."""
    setting = setting or f"{domain.upper()}_PERSON_KEY"
    if inline is not None:
        return decode_person_key(inline.get_secret_value())
    if file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            raise PersonKeyError(f"{setting}_FILE: cannot read {file}: {exc.strerror}") from None
        try:
            return decode_person_key(text)
        except ValueError as exc:
            raise PersonKeyError(f"{setting}_FILE: {exc}") from None
    if dev_keys:
        return ensure_dev_key(dev_dir, setting.lower().replace("_", "-"))
    raise PersonKeyError(
        f"{setting} (or {setting}_FILE) is required but not set "
        "(set CITYHUB_DEV_KEYS=true to use a generated local key for development)"
    )
