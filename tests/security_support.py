"""Helpers for the security tests: throwaway keys, token issuers and self-signed certificates."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.platform.security.settings import SecuritySettings, ensure_dev_keys
from services.platform.security.tokens import TokenIssuer, TokenVerifier

__all__ = ["Keys", "TlsFiles", "make_keys", "make_tls_files"]


@dataclass(frozen=True)
class Keys:
    settings: SecuritySettings
    issuer: TokenIssuer
    verifier: TokenVerifier


def make_keys(directory: Path) -> Keys:
    """A key pair of its own under ``directory`` (via the same function `make run` uses)."""
    ensure_dev_keys(directory)
    settings = SecuritySettings(dev_keys=True, dev_secrets_dir=directory)
    return Keys(settings, TokenIssuer.from_settings(settings), TokenVerifier.from_settings(settings))


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    usage: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = issuer if issuer is not None else (name, key)
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA with a server certificate (localhost, 127.0.0.1) and a client certificate."""
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _certificate("cityhub test ca", ca_key, None, ca=True, usage=None)
    ca_issuer = (ca.subject, ca_key)
    server = _certificate("localhost", server_key, ca_issuer, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client = _certificate(
        "service:test", client_key, ca_issuer, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    files = TlsFiles(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
        directory / "client.pem",
        directory / "client-key.pem",
    )
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(files.server_key, server_key)
    _write_key(files.client_key, client_key)
    return files
