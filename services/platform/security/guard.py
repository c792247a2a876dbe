"""The security guard every service installs in its gRPC server.

Before the handler: authenticate the bearer token (UNAUTHENTICATED), apply the RPC's policy
(PERMISSION_DENIED with the reason), and if the response can carry sensitive fields the caller is cleared
for, insist on a stated purpose (PERMISSION_DENIED: reading without a reason is not permitted, and nothing
has run yet). After the handler: mask what the caller is not cleared for, and append an audit row for
whatever sensitive value is shown. If that row cannot be written the response is not sent: no unaudited
look at sensitive data.

Refusals are logged (the server's ``rpc_refused`` line, with the caller bound) but not written to the
audit log: a flood of refused calls must not be able to slow the chain that real reads append to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from google.protobuf import descriptor_pool
from google.protobuf.message import Message

from services.platform.errors import PermissionDeniedError
from services.platform.grpc_server import CallInfo, current_call
from services.platform.logs import bind_context, get_logger
from services.platform.security.audit import AuditEntry, AuditLog
from services.platform.security.masking import SensitivePlan, cleared_categories, mask, plan_for
from services.platform.security.policy import (
    Access,
    PolicyTable,
    RpcPolicy,
    check_policy_complete,
    decide,
)
from services.platform.security.redaction import install_redaction, redact_text, register_sensitive_keys
from services.platform.security.tokens import Caller, TokenVerifier

__all__ = [
    "MASKED_FIELDS_TRAILER",
    "PURPOSE_METADATA",
    "SecurityGuard",
    "current_access",
    "current_caller",
    "purpose_of",
]

PURPOSE_METADATA = "x-purpose"
MASKED_FIELDS_TRAILER = "x-masked-fields"
_ACCESS = "security.access"
_CLEARED = "security.cleared"
_MAX_PURPOSE = 500
log = get_logger()


@dataclass(frozen=True, slots=True)
class _Method:
    policy: RpcPolicy
    plan: SensitivePlan


def purpose_of(call: CallInfo) -> str:
    """The stated purpose: ``x-purpose`` metadata, percent-decoded (gRPC metadata is ASCII, purposes are
    often Chinese), without control characters, at most 500 characters."""
    raw = unquote(call.purpose, errors="replace")
    return " ".join("".join(ch if ch.isprintable() else " " for ch in raw).split())[:_MAX_PURPOSE]


def current_access() -> Access:
    """The policy decision for the call being handled (use cases filter lists with ``allows``)."""
    access = current_call().extras.get(_ACCESS)
    if isinstance(access, Access):
        return access
    raise RuntimeError("current_access() used in a call the security guard did not admit")


def current_caller() -> Caller:
    return current_access().caller


def _sensitive_names(plan: SensitivePlan, seen: set[int]) -> Iterable[str]:
    if id(plan) in seen:
        return
    seen.add(id(plan))
    for name, *_ in plan.direct:
        yield name
    for _, _, child in plan.nested:
        yield from _sensitive_names(child, seen)


class SecurityGuard:
    """Authentication, policy, masking and audit around every call (a :class:`Guard`)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        policies: Mapping[str, PolicyTable],
        *,
        audit: AuditLog | None = None,
    ) -> None:
        self._verifier = verifier
        self._audit = audit
        self._methods: dict[str, _Method] = {}
        problems: list[str] = []
        pool = descriptor_pool.Default()
        names: set[str] = set()
        for service_name, table in policies.items():
            try:
                service = pool.FindServiceByName(service_name)
            except KeyError:
                problems.append(f"{service_name}: no such service (is its _pb2 module imported?)")
                continue
            problems.extend(check_policy_complete(table, service))
            for method in service.methods:
                if method.name in table:
                    plan = plan_for(method.output_type)
                    self._methods[f"/{service_name}/{method.name}"] = _Method(table[method.name], plan)
                    names.update(_sensitive_names(plan, set()))
        if problems:
            # A service with a hole in its policy must not start: the hole would be an open door.
            raise ValueError("incomplete security policy:\n  " + "\n  ".join(problems))
        register_sensitive_keys(names)
        install_redaction()

    def use_audit_log(self, audit: AuditLog) -> None:
        """Attach the audit log once the service's pool exists (the runtime opens it after the guard)."""
        self._audit = audit

    def before(self, call: CallInfo, request: Message) -> None:
        caller = self._verifier.verify_authorization(call.metadata.get("authorization"))
        call.caller = caller
        bind_context(caller=caller.sub)
        method = self._methods.get(call.method)
        if method is None:
            raise PermissionDeniedError(f"no policy covers {call.method}")
        access = decide(method.policy, caller, request, rpc=call.method)
        call.extras[_ACCESS] = access
        if not method.plan:
            return
        cleared = cleared_categories(access.roles)
        call.extras[_CLEARED] = cleared
        if cleared & method.plan.categories and not purpose_of(call):
            raise PermissionDeniedError(
                f"reading {', '.join(sorted(cleared & method.plan.categories))} data needs a stated purpose: "
                f"send it as {PURPOSE_METADATA} metadata"
            )

    def after(self, call: CallInfo, request: Message, response: Message) -> Message:
        method = self._methods.get(call.method)
        if method is None or not method.plan:
            return response
        cleared: frozenset[str] = call.extras.get(_CLEARED, frozenset())
        result = mask(response, cleared)
        if result.masked:
            self._add_masked_trailer(call, result.masked)
        if not result.shown:
            return result.message
        purpose = purpose_of(call)
        if not purpose:
            # Reached only when the sensitive value came inside a google.protobuf.Any, which the
            # before-check cannot see statically.
            raise PermissionDeniedError(f"this response shows sensitive data: send a {PURPOSE_METADATA}")
        if self._audit is None:
            raise RuntimeError("sensitive data would be shown but no audit log is attached")
        access: Access = call.extras[_ACCESS]
        subject = redact_text(method.policy.subject(request)) if method.policy.subject else ""
        row = self._audit.append(
            AuditEntry(
                actor=access.caller.sub,
                actor_roles=tuple(sorted(access.caller.roles)),
                action="read",
                rpc=call.method,
                subject=subject,
                fields=result.shown,
                purpose=purpose,
                outcome="shown",
                request_id=call.request_id,
                trace_id=call.trace.trace_id,
                details={
                    "effective_roles": sorted(access.roles),
                    "categories": sorted(result.shown_categories),
                    "masked": list(result.masked),
                    "token_id": access.caller.token_id,
                },
            )
        )
        log.info("sensitive_fields_shown", audit_id=row.id, subject=subject, fields=list(result.shown))
        return result.message

    @staticmethod
    def _add_masked_trailer(call: CallInfo, masked: tuple[str, ...]) -> None:
        # A stream masks message by message; the trailer lists the union once.
        existing = next((v for k, v in call.trailing_metadata if k == MASKED_FIELDS_TRAILER), "")
        union = sorted({*filter(None, existing.split(",")), *masked})
        call.trailing_metadata[:] = [(k, v) for k, v in call.trailing_metadata if k != MASKED_FIELDS_TRAILER]
        call.trailing_metadata.append((MASKED_FIELDS_TRAILER, ",".join(union)))
