"""The HubService servicer, one mixin per family (grpc_api.py combines them and holds the POLICY).

``_init_<family>(ctx)`` builds the family's use cases once; methods are thin (mapping, use case, mapping).
"""

from __future__ import annotations

from services.platform.security import Access, Role, current_access

__all__ = ["current_scopes", "scopes_of"]

_EVERYWHERE = {Role.DISTRICT_OPERATOR.value, Role.SERVICE.value}
# The scoped roles and the kind of scope each holds (services/platform/security/roles.py).
_SCOPED = {
    Role.DUTY_ROOM.value: "site",
    Role.KITCHEN_MANAGER.value: "kitchen",
    Role.CHAMBER_STAFF.value: "chamber",
    Role.GOV_CLERK.value: "region",
    Role.ENTERPRISE_USER.value: "enterprise",
}


def scopes_of(access: Access) -> dict[str, frozenset[str]] | None:
    """The caller's scopes by kind ("site", "kitchen", ...), or None when it sees everything."""
    if access.roles & _EVERYWHERE:
        return None
    found: dict[str, frozenset[str]] = {}
    for role, kind in _SCOPED.items():
        if role in access.roles:
            found[kind] = found.get(kind, frozenset()) | access.caller.scope_ids(kind)
    return found


def current_scopes() -> dict[str, frozenset[str]] | None:
    """The current call's scopes by kind (None: it sees everything)."""
    return scopes_of(current_access())
