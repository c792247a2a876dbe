"""Code-signing keys: ES256 (ECDSA P-256), the algorithm the platform's tokens already use through PyJWT.

A key id is derived from the public key (``k_`` + 16 hex digits of its SHA-256), so the same key always has
the same id and an id is never reused for another key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["ALGORITHM", "NewKey", "new_signing_key"]

ALGORITHM = "ES256"


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: str
    public_key_pem: str
    private_key_pem: str


def new_signing_key() -> NewKey:
    private = ec.generate_private_key(ec.SECP256R1())
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return NewKey(
        "k_" + hashlib.sha256(public_der).hexdigest()[:16], public_pem.decode(), private_pem.decode()
    )
