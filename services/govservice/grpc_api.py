"""The CrossRegionService servicer (the family mixins under api/ combined) and its POLICY table.

Access (domain/access.py): ``gov_clerk`` (scoped ``region:<code>``, nesting like the codes) files at its
region's windows and acts on applications at its region's steps, seeing the applicant's details for them
(identity clearance: a stated purpose, every read audited); a clerk of a region that is not the one whose
turn it is gets PERMISSION_DENIED, one of a region the application does not concern NOT_FOUND.
``district_operator`` (the programme office) keeps the catalogue and reads applications and statistics
without personal data; ``service`` is a peer or the simulator; ``public`` may only track.
"""

from __future__ import annotations

from cityhub.govservice.v1 import govservice_pb2_grpc

from services.govservice.api.applications import ApplicationsApi
from services.govservice.api.catalogue import CatalogueApi
from services.govservice.api.tracking import TrackingApi
from services.govservice.api.trail import TrailApi
from services.govservice.usecases.common import GovServiceContext
from services.platform.security import PolicyTable, Role, RpcPolicy, subject_from

__all__ = ["GOVSERVICE_SERVICE", "POLICY", "GovServiceServicer"]

GOVSERVICE_SERVICE = "cityhub.govservice.v1.CrossRegionService"

_GC = Role.GOV_CLERK
_DO = Role.DISTRICT_OPERATOR
_SVC = Role.SERVICE
_PUB = Role.PUBLIC
# The programme office keeps the catalogue (or a provisioning service does).
_OFFICE = {_DO, _SVC}
_READ = {_GC, _DO, _SVC}
# A step of an application: only a clerk of the region whose turn it is (checked by the use case).
_STEP = RpcPolicy(roles={_GC}, subject=subject_from("application_no"))

POLICY: PolicyTable = {
    "RegisterRegion": RpcPolicy(roles=_OFFICE),
    "ListRegions": RpcPolicy(roles=_READ),
    "GetRegionKeys": RpcPolicy(roles=_READ),
    "DefineItem": RpcPolicy(roles=_OFFICE),
    "ListItems": RpcPolicy(roles=_READ),
    "SetPartnership": RpcPolicy(roles=_OFFICE),
    "ListPartnerships": RpcPolicy(roles=_READ),
    # Filed at a window: a clerk of the filing region (or the simulator playing one as a service).
    "FileApplication": RpcPolicy(roles={_GC, _SVC}, subject=subject_from("filing_region")),
    "ReceiveApplication": _STEP,
    "ForwardApplication": _STEP,
    "AcceptApplication": _STEP,
    "RequestSupplement": _STEP,
    "SubmitSupplement": _STEP,
    "CompleteApplication": _STEP,
    "RejectApplication": _STEP,
    "GetApplication": RpcPolicy(roles=_READ, subject=subject_from("application_no")),
    "ListApplications": RpcPolicy(roles=_READ, subject=subject_from("division_code")),
    "VerifyTrail": RpcPolicy(roles=_READ),
    # Applicants track with the public role; nothing personal is in the answer.
    "TrackApplication": RpcPolicy(roles={*_READ, _PUB}),
    "GetStatistics": RpcPolicy(roles=_READ),
    "GetPeopleServed": RpcPolicy(roles=_OFFICE),
}


# The generated base class comes last: a method a mixin defines wins over its UNIMPLEMENTED default.
class GovServiceServicer(
    CatalogueApi,
    ApplicationsApi,
    TrailApi,
    TrackingApi,
    govservice_pb2_grpc.CrossRegionServiceServicer,
):
    def __init__(self, ctx: GovServiceContext) -> None:
        self._ctx = ctx
        self._init_catalogue(ctx)
        self._init_applications(ctx)
        self._init_trail(ctx)
        self._init_tracking(ctx)
