"""The KitchenService servicer, one mixin per family (grpc_api.py combines them and holds the POLICY).

Each mixin's methods build a command from the request (via mapping), call a use case and map the result:
no SQL, no Kafka, no repository imports. ``_init_<family>(ctx)`` builds the family's use cases once.
"""

from __future__ import annotations

from services.kitchen.domain.access import Visibility
from services.platform.security import Access, Role, current_access

__all__ = ["current_visibility", "visibility_of"]

_EVERYWHERE = {
    Role.FOOD_INSPECTOR.value,
    Role.DISTRICT_OPERATOR.value,
    Role.SERVICE.value,
    Role.PUBLIC.value,
}


def visibility_of(access: Access) -> Visibility:
    """Which kitchens the call may see, from the roles that let it through (domain/access.py)."""
    if access.roles & _EVERYWHERE:
        return Visibility.of(everything=True)
    caller = access.caller
    kitchens = caller.scope_ids("kitchen") if Role.KITCHEN_MANAGER.value in access.roles else frozenset()
    sites = caller.scope_ids("site") if Role.DUTY_ROOM.value in access.roles else frozenset()
    return Visibility(False, kitchens, sites)


def current_visibility() -> Visibility:
    return visibility_of(current_access())
