"""The CrossRegionService servicer, one mixin per family (grpc_api.py combines them and holds the POLICY).

Each mixin's methods build a command from the request (via mapping), call a use case and map the result:
no SQL, no Kafka, no repository imports. ``_init_<family>(ctx)`` builds the family's use cases once.
"""

from __future__ import annotations

from services.govservice.domain.access import Visibility
from services.platform.security import Access, Role, current_access

__all__ = ["current_visibility", "visibility_of"]

_EVERYWHERE = {Role.DISTRICT_OPERATOR.value, Role.SERVICE.value}


def visibility_of(access: Access) -> Visibility:
    """Which regions the call acts for (domain/access.py): clerks their region scopes, nested."""
    if access.roles & _EVERYWHERE:
        return Visibility.of(everything=True)
    regions = access.caller.scope_ids("region") if Role.GOV_CLERK.value in access.roles else frozenset()
    return Visibility(False, regions)


def current_visibility() -> Visibility:
    return visibility_of(current_access())
