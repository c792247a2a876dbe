"""Region signing keys: Ed25519 (small keys and signatures, deterministic, no parameters to get wrong).

A key id is derived from the public key (``r_`` + 16 hex digits of its SHA-256)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["ALGORITHM", "NewKey", "new_signing_key"]

ALGORITHM = "EdDSA"


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    public_key_pem: str
    private_key_pem: str


def new_signing_key() -> NewKey:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    public_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_id = "r_" + hashlib.sha256(public_der).hexdigest()[:16]
    return NewKey(key_id, public_pem.decode(), private_pem.decode())
