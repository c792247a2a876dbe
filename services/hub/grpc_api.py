"""The HubService servicer (the family mixins under api/ combined) and its POLICY table.

Access: ``district_operator`` (and ``service``) see every entity and inbox item, without sensitive
fields; ``duty_room``, ``kitchen_manager``, ``chamber_staff``, ``gov_clerk`` and ``enterprise_user`` see
the entities and items in their scopes (a site, a kitchen, a chamber, a region, an enterprise — and what is
linked to them, as the entities family decides); the live detail of a 360 view is masked by the domains
and again here for the caller, with the same sensitive-field rules. The dashboard is the programme
office's.
"""

from __future__ import annotations

from cityhub.hub.v1 import hub_pb2_grpc

from services.hub.api.dashboard import DashboardApi
from services.hub.api.entities import EntitiesApi
from services.hub.api.inbox import InboxApi
from services.hub.api.sign_in import SignInApi
from services.hub.usecases.common import HubContext
from services.platform.security import ALL_ROLES, PolicyTable, Role, RpcPolicy, subject_from

__all__ = ["HUB_SERVICE", "POLICY", "HubServicer"]

HUB_SERVICE = "cityhub.hub.v1.HubService"

_ALL = {
    Role.DISTRICT_OPERATOR,
    Role.SERVICE,
    Role.DUTY_ROOM,
    Role.KITCHEN_MANAGER,
    Role.CHAMBER_STAFF,
    Role.GOV_CLERK,
    Role.ENTERPRISE_USER,
}
# Acting on the inbox: the command centre and the scoped duty rooms, kitchen managers, chamber staff and
# clerks for their own items.
_ACT = {
    Role.DISTRICT_OPERATOR,
    Role.SERVICE,
    Role.DUTY_ROOM,
    Role.KITCHEN_MANAGER,
    Role.CHAMBER_STAFF,
    Role.GOV_CLERK,
}

POLICY: PolicyTable = {
    "SearchEntities": RpcPolicy(roles=_ALL),
    "ListEntitiesNear": RpcPolicy(roles=_ALL),
    # The live detail carries the domains' own messages: the audit names the entity.
    "GetEntity360": RpcPolicy(roles=_ALL, subject=subject_from("ref.id")),
    "GetTimeline": RpcPolicy(roles=_ALL),
    "ListInboxItems": RpcPolicy(roles=_ALL),
    "GetInboxItem": RpcPolicy(roles=_ALL),
    "AcknowledgeInboxItem": RpcPolicy(roles=_ACT),
    "ResolveInboxItem": RpcPolicy(roles=_ACT),
    "WatchInbox": RpcPolicy(roles=_ALL),
    "ListIncidents": RpcPolicy(roles=_ALL),
    "GetDashboard": RpcPolicy(roles={Role.DISTRICT_OPERATOR, Role.SERVICE}),
    # Whoever a login link was made for (the web's public profile page signs in as `public` too).
    "RedeemLoginLink": RpcPolicy(roles=ALL_ROLES),
}


# The generated base class comes last: a method a mixin defines wins over its UNIMPLEMENTED default.
class HubServicer(EntitiesApi, InboxApi, DashboardApi, SignInApi, hub_pb2_grpc.HubServiceServicer):
    def __init__(self, ctx: HubContext) -> None:
        self._ctx = ctx
        self._init_entities(ctx)
        self._init_inbox(ctx)
        self._init_dashboard(ctx)
        self._init_sign_in(ctx)
