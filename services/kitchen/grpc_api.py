"""The KitchenService servicer (the family mixins under api/ combined) and its POLICY table.

Access (domain/access.py): ``kitchen_manager`` (scoped ``kitchen:<id>``) runs its own kitchen;
``food_inspector`` sees and inspects every kitchen; ``district_operator`` reads everything (health data
masked: it holds no health clearance); the school's ``duty_room`` (scoped ``site:<id>``) reads its school's
kitchen, public profile and alerts; ``public`` reads kitchens, meals, ratings and public profiles and rates
meals; ``service`` is a gateway or a peer (check-in terminals, equipment gateways, the AI camera platform,
the simulator, the hub). Where a request names the kitchen the policy checks the manager's scope before
the use case runs (PERMISSION_DENIED); a single read of a kitchen outside the caller's view answers
NOT_FOUND, and lists are filtered.
"""

from __future__ import annotations

from cityhub.kitchen.v1 import kitchen_pb2_grpc

from services.kitchen.api.equipment import EquipmentApi
from services.kitchen.api.inspections import InspectionsApi
from services.kitchen.api.kitchens import KitchensApi
from services.kitchen.api.profile import ProfileApi
from services.kitchen.api.ratings import RatingsApi
from services.kitchen.api.staff import StaffApi
from services.kitchen.api.trace import TraceApi
from services.kitchen.api.violations import ViolationsApi
from services.kitchen.usecases.common import KitchenContext
from services.platform.security import PolicyTable, Role, RpcPolicy, scope_from, subject_from

__all__ = ["KITCHEN_SERVICE", "POLICY", "KitchenServicer"]

KITCHEN_SERVICE = "cityhub.kitchen.v1.KitchenService"

_KM = Role.KITCHEN_MANAGER
_FI = Role.FOOD_INSPECTOR
_DO = Role.DISTRICT_OPERATOR
_SVC = Role.SERVICE
_DR = Role.DUTY_ROOM
_PUB = Role.PUBLIC
_KITCHEN = scope_from("kitchen", "kitchen_id")
# The kitchen's own manager (scoped) and gateways acting for it.
_RUN = {_KM, _SVC}
# Everyone who reads a kitchen's working data (staff, checks, equipment, deliveries...).
_READ = {_KM, _FI, _DO, _SVC}

POLICY: PolicyTable = {
    # Market supervision registers the district's school kitchens (or a provisioning service does).
    "RegisterKitchen": RpcPolicy(roles={_FI, _SVC}),
    "GetKitchen": RpcPolicy(roles={*_READ, _DR, _PUB}),
    "ListKitchens": RpcPolicy(roles={*_READ, _DR, _PUB}),
    "AddStaff": RpcPolicy(roles=_RUN, scope=_KITCHEN, subject=subject_from("kitchen_id")),
    "ListStaff": RpcPolicy(roles=_READ, scope=_KITCHEN, subject=subject_from("kitchen_id")),
    # Check-in terminals report as `service`; a manager may key a check in by hand.
    "RecordMorningCheck": RpcPolicy(roles=_RUN, scope=_KITCHEN, subject=subject_from("staff_id")),
    "RecordReplacement": RpcPolicy(roles={_KM}, scope=_KITCHEN, subject=subject_from("check_id")),
    "ListMorningChecks": RpcPolicy(roles=_READ, scope=_KITCHEN, subject=subject_from("kitchen_id")),
    "RegisterEquipment": RpcPolicy(roles=_RUN, scope=_KITCHEN),
    "ListEquipment": RpcPolicy(roles=_READ, scope=_KITCHEN),
    # A batch may span kitchens (one gateway per school group): each reading is checked against its unit's
    # kitchen by the use case, and a reading for a kitchen the caller may not write is rejected alone.
    "IngestReadings": RpcPolicy(roles=_RUN),
    "ListEquipmentDays": RpcPolicy(roles=_READ, scope=_KITCHEN),
    "ListKitchenAlerts": RpcPolicy(roles={*_READ, _DR}),
    # The AI camera platform reports as `service`.
    "ReportCapture": RpcPolicy(roles=_RUN, scope=_KITCHEN),
    "RectifyViolation": RpcPolicy(roles=_RUN),
    "VerifyViolation": RpcPolicy(roles={_FI}),
    "ReopenViolation": RpcPolicy(roles={_FI}),
    "GetViolation": RpcPolicy(roles=_READ),
    "ListViolations": RpcPolicy(roles=_READ, scope=_KITCHEN),
    "ReceiveDelivery": RpcPolicy(roles=_RUN, scope=_KITCHEN),
    "ListDeliveries": RpcPolicy(roles=_READ, scope=_KITCHEN),
    "RecordMeal": RpcPolicy(roles=_RUN, scope=_KITCHEN),
    # Menus are public: parents see what their children ate (and rate it).
    "GetMeal": RpcPolicy(roles={*_READ, _PUB}),
    "ListMeals": RpcPolicy(roles={*_READ, _PUB}, scope=_KITCHEN),
    # A recall crosses kitchens: for inspectors and the district, not for one kitchen's manager.
    "TraceLot": RpcPolicy(roles={_FI, _DO, _SVC}),
    "TraceMeal": RpcPolicy(roles=_READ),
    "RateMeal": RpcPolicy(roles={_PUB, _SVC}),
    "ListRatings": RpcPolicy(roles={*_READ, _PUB}, scope=_KITCHEN),
    "RecordInspection": RpcPolicy(roles={_FI}),
    "ListInspections": RpcPolicy(roles=_READ, scope=_KITCHEN),
    "GetPublicProfile": RpcPolicy(roles={*_READ, _DR, _PUB}),
    "GetKitchenStatistics": RpcPolicy(roles=_READ),
}


# Where a response carries staff identity or health data, `subject` names whom the audit row is about.


# The generated base class comes last: a method a mixin defines wins over its UNIMPLEMENTED default.
class KitchenServicer(
    KitchensApi,
    StaffApi,
    EquipmentApi,
    ViolationsApi,
    TraceApi,
    RatingsApi,
    InspectionsApi,
    ProfileApi,
    kitchen_pb2_grpc.KitchenServiceServicer,
):
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx
        self._init_kitchens(ctx)
        self._init_staff(ctx)
        self._init_equipment(ctx)
        self._init_violations(ctx)
        self._init_trace(ctx)
        self._init_ratings(ctx)
        self._init_inspections(ctx)
        self._init_profile(ctx)
