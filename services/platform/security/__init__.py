"""Security for every CityHub service: who is calling (bearer JWTs), what they may call (a policy table
per service), what they may see (masking by the ``sensitive`` field option), a tamper-evident audit log of
every unmasked read, TLS, and redaction of secrets from log lines. See docs/security.md.

Typical wiring in a service's bootstrap::

    spec = ServiceSpec(label="safety", grpc_services=[SAFETY_SERVICE], policy=POLICY, ...)
    runtime = ServiceRuntime(settings, spec)   # builds the guard, TLS and the audit log from settings
"""

from services.platform.security.audit import AuditEntry, AuditLog, AuditRow, ChainReport
from services.platform.security.client import (
    FileTokenProvider,
    SigningTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    make_channel,
    service_token_provider,
)
from services.platform.security.guard import (
    MASKED_FIELDS_TRAILER,
    PURPOSE_METADATA,
    SecurityGuard,
    current_access,
    current_caller,
)
from services.platform.security.masking import CLEARANCE, cleared_categories, mask, plan_for
from services.platform.security.policy import (
    Access,
    PolicyTable,
    RpcPolicy,
    Scope,
    check_policy_complete,
    scope_from,
    subject_from,
)
from services.platform.security.redaction import install_redaction, redact_text
from services.platform.security.roles import ALL_ROLES, Role
from services.platform.security.settings import SecuritySettings, ensure_dev_keys, load_security_settings
from services.platform.security.tls import channel_credentials, server_credentials
from services.platform.security.tokens import Caller, TokenError, TokenIssuer, TokenVerifier

__all__ = [
    "ALL_ROLES",
    "CLEARANCE",
    "MASKED_FIELDS_TRAILER",
    "PURPOSE_METADATA",
    "Access",
    "AuditEntry",
    "AuditLog",
    "AuditRow",
    "Caller",
    "ChainReport",
    "FileTokenProvider",
    "PolicyTable",
    "Role",
    "RpcPolicy",
    "Scope",
    "SecurityGuard",
    "SecuritySettings",
    "SigningTokenProvider",
    "StaticTokenProvider",
    "TokenError",
    "TokenIssuer",
    "TokenProvider",
    "TokenVerifier",
    "channel_credentials",
    "check_policy_complete",
    "cleared_categories",
    "current_access",
    "current_caller",
    "ensure_dev_keys",
    "install_redaction",
    "load_security_settings",
    "make_channel",
    "mask",
    "plan_for",
    "redact_text",
    "scope_from",
    "server_credentials",
    "service_token_provider",
    "subject_from",
]
