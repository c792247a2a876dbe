"""Security settings: signing keys, TLS material and service tokens, from the environment.

Every value can be given inline (``CITYHUB_JWT_PUBLIC_KEY`` holding PEM text) or as a file path
(``CITYHUB_JWT_PUBLIC_KEY_FILE``), because Kubernetes hands Secrets to a pod either way: as environment
variables or as mounted files. Services need only the public key; only the token issuer (the CLI, a
dev/test signer, or an external identity provider) holds the private key.

For local use (``make run``, the tests) ``CITYHUB_DEV_KEYS=true`` lets a process generate a key pair once
under ``.local/secrets/`` (gitignored) and share it with every other local process. It is off by default
so that a production service with a missing key refuses to start instead of trusting a key it made up.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.platform.logs import get_logger

__all__ = [
    "DEV_SECRETS_DIR",
    "KeyMaterial",
    "SecurityConfigError",
    "SecuritySettings",
    "ensure_dev_keys",
    "load_security_settings",
]

REPO_ROOT = Path(__file__).resolve().parents[3]
DEV_SECRETS_DIR = REPO_ROOT / ".local" / "secrets"
Algorithm = Literal["ES256", "EdDSA"]
log = get_logger()


class SecurityConfigError(SystemExit):
    """Security material is missing or unusable; the text names the setting. Stops the process."""


class SecuritySettings(BaseSettings):
    """Keys, TLS files and service credentials. Environment names are the field names upper-cased with
    the ``CITYHUB_`` prefix, e.g. ``CITYHUB_JWT_PUBLIC_KEY_FILE``."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_", case_sensitive=False, extra="ignore")

    # --- bearer tokens -------------------------------------------------------------------------------
    jwt_algorithm: Algorithm = "ES256"
    # PEM text; may hold several public keys (one per PEM block) so a key can be rotated without downtime.
    jwt_public_key: SecretStr | None = None
    jwt_public_key_file: Path | None = None
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    jwt_issuer: Annotated[str, Field(min_length=1)] = "cityhub"
    jwt_audience: Annotated[str, Field(min_length=1)] = "cityhub"
    # Clock skew tolerated between the issuer and the services.
    jwt_leeway_s: Annotated[float, Field(ge=0, le=300)] = 30.0
    # Tokens living longer than this are refused even if signed: a leaked token must expire.
    jwt_max_lifetime_s: Annotated[int, Field(ge=60, le=90 * 86400)] = 7 * 86400
    dev_keys: bool = False
    dev_secrets_dir: Path = DEV_SECRETS_DIR

    # --- this process's own identity when it calls other services -----------------------------------
    service_token: SecretStr | None = None
    # Re-read when the file changes: a rotated Kubernetes Secret reaches a running pod this way.
    service_token_file: Path | None = None
    service_token_ttl_s: Annotated[int, Field(ge=60, le=86400)] = 3600

    # --- transport ----------------------------------------------------------------------------------
    # Server side: this process's certificate chain and key. Setting both turns TLS on.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Server side: CA bundle for client certificates. Setting it makes TLS mutual (clients must present one).
    tls_client_ca_file: Path | None = None
    # Client side: CA bundle to trust for servers. Setting it (or the cert files) turns client TLS on.
    tls_ca_file: Path | None = None
    # Client side: the certificate presented to servers that ask for one; defaults to the server's own.
    tls_client_cert_file: Path | None = None
    tls_client_key_file: Path | None = None
    # Client side: the name to expect in server certificates when the target address is not that name.
    tls_server_name: str | None = None
    # Without TLS, bearer tokens are only sent to loopback targets unless this is set (e.g. behind a
    # service mesh that encrypts pod-to-pod traffic itself).
    grpc_allow_plaintext: bool = False

    @property
    def server_tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def client_tls_enabled(self) -> bool:
        return self.tls_ca_file is not None or self.server_tls_enabled


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """PEM text of the verifying keys and, where this process may issue tokens, the signing key."""

    algorithm: Algorithm
    public_pems: tuple[bytes, ...]
    private_pem: bytes | None


def load_security_settings(**overrides: object) -> SecuritySettings:
    from pydantic import ValidationError

    from services.platform.settings import describe_validation_error

    try:
        return SecuritySettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SecurityConfigError(describe_validation_error(SecuritySettings, error)) from None


def _inline_or_file(inline: SecretStr | None, path: Path | None, env_name: str) -> bytes | None:
    if inline is not None and inline.get_secret_value().strip():
        return inline.get_secret_value().encode()
    if path is not None:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SecurityConfigError(f"{env_name}_FILE: cannot read {path}: {exc.strerror}") from None
    return None


def split_pem_blocks(data: bytes) -> tuple[bytes, ...]:
    """Split concatenated PEM blocks (a key-rotation bundle) into single blocks."""
    blocks: list[bytes] = []
    current: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN "):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith(b"-----END "):
                blocks.append(b"".join(current))
                current = []
    return tuple(blocks)


def load_key_material(settings: SecuritySettings, *, need_private: bool = False) -> KeyMaterial:
    """The configured keys, or the local dev pair when ``dev_keys`` is on and nothing is configured."""
    public = _inline_or_file(settings.jwt_public_key, settings.jwt_public_key_file, "CITYHUB_JWT_PUBLIC_KEY")
    private = _inline_or_file(
        settings.jwt_private_key, settings.jwt_private_key_file, "CITYHUB_JWT_PRIVATE_KEY"
    )
    if public is None and private is None and settings.dev_keys:
        private, public = ensure_dev_keys(settings.dev_secrets_dir, settings.jwt_algorithm)
    if public is None and private is not None:
        # An issuer configured with only its private key can still verify what it issues.
        public = public_pem_of(private)
    if public is None:
        raise SecurityConfigError(
            "CITYHUB_JWT_PUBLIC_KEY (or CITYHUB_JWT_PUBLIC_KEY_FILE) is required but not set "
            "(set CITYHUB_DEV_KEYS=true to use a generated local key pair for development)"
        )
    if need_private and private is None:
        raise SecurityConfigError(
            "CITYHUB_JWT_PRIVATE_KEY (or CITYHUB_JWT_PRIVATE_KEY_FILE) is required to issue tokens"
        )
    blocks = split_pem_blocks(public)
    if not blocks:
        raise SecurityConfigError("CITYHUB_JWT_PUBLIC_KEY: no PEM block found")
    return KeyMaterial(settings.jwt_algorithm, blocks, private)


def public_pem_of(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_private_pem(algorithm: Algorithm) -> bytes:
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_dev_keys(directory: Path = DEV_SECRETS_DIR, algorithm: Algorithm = "ES256") -> tuple[bytes, bytes]:
    """Create (once) and return the local development key pair ``(private_pem, public_pem)``.

    Several processes started by ``make run`` call this at the same moment; an exclusive file lock makes
    the first one create the pair and the rest read it. The private key file is readable by its owner only.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    suffix = "es256" if algorithm == "ES256" else "eddsa"
    private_path = directory / f"jwt-{suffix}-private.pem"
    public_path = directory / f"jwt-{suffix}-public.pem"
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not private_path.exists():
            private_pem = generate_private_pem(algorithm)
            descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(private_pem)
            public_path.write_bytes(public_pem_of(private_pem))
            log.info("dev_keys_created", directory=str(directory), algorithm=algorithm)
        private_pem = private_path.read_bytes()
        if not public_path.exists():
            public_path.write_bytes(public_pem_of(private_pem))
        return private_pem, public_path.read_bytes()
