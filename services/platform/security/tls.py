"""TLS for gRPC servers and clients, from :class:`SecuritySettings`.

TLS is on when certificates are configured and off otherwise (``make run`` on loopback). Mutual TLS is on
when the server is given a CA for client certificates: clients without a certificate signed by it cannot
even open a connection, before any token is looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from services.platform.security.settings import SecurityConfigError, SecuritySettings

__all__ = ["channel_credentials", "channel_options", "server_credentials"]


def _read(path: Path | None, env_name: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{env_name}: cannot read {path}: {exc.strerror}") from None


def server_credentials(settings: SecuritySettings) -> grpc.ServerCredentials | None:
    """Server credentials, or None for plaintext when no certificate is configured."""
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise SecurityConfigError("CITYHUB_TLS_CERT_FILE and CITYHUB_TLS_KEY_FILE must be set together")
    if not settings.server_tls_enabled:
        if settings.tls_client_ca_file is not None:
            raise SecurityConfigError(
                "CITYHUB_TLS_CLIENT_CA_FILE needs CITYHUB_TLS_CERT_FILE and CITYHUB_TLS_KEY_FILE"
            )
        return None
    chain = _read(settings.tls_cert_file, "CITYHUB_TLS_CERT_FILE")
    key = _read(settings.tls_key_file, "CITYHUB_TLS_KEY_FILE")
    assert chain is not None
    assert key is not None
    client_ca = _read(settings.tls_client_ca_file, "CITYHUB_TLS_CLIENT_CA_FILE")
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def channel_credentials(settings: SecuritySettings) -> grpc.ChannelCredentials | None:
    """Client credentials, or None for plaintext. Presents a client certificate when one is configured
    (the process's own server certificate doubles as its client certificate unless a separate one is set)."""
    if not settings.client_tls_enabled:
        return None
    roots = _read(settings.tls_ca_file, "CITYHUB_TLS_CA_FILE")
    cert_file = settings.tls_client_cert_file or settings.tls_cert_file
    key_file = settings.tls_client_key_file or settings.tls_key_file
    chain = _read(cert_file, "CITYHUB_TLS_CLIENT_CERT_FILE")
    key = _read(key_file, "CITYHUB_TLS_CLIENT_KEY_FILE")
    if (chain is None) != (key is None):
        raise SecurityConfigError("a client certificate needs both its certificate and its key file")
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain)


def channel_options(settings: SecuritySettings) -> list[tuple[str, Any]]:
    if settings.client_tls_enabled and settings.tls_server_name:
        return [("grpc.ssl_target_name_override", settings.tls_server_name)]
    return []
