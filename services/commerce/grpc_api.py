"""The CommerceService servicer (the family mixins under api/ combined) and its POLICY table.

Access (domain/access.py): ``chamber_staff`` (scoped ``chamber:<id>``) run their chamber; federation staff
(``district_operator``) see and run everything; ``enterprise_user`` (scoped ``enterprise:<credit code>``)
sees its own memberships, codes, posts and requests and acts for itself; ``public`` may only fetch the
verification keys and verify a code; ``service`` is a peer or the simulator. Where a request names the
chamber or the enterprise the policy checks the scope before the use case runs (PERMISSION_DENIED); a single
read outside the caller's view answers NOT_FOUND, and lists are filtered.
"""

from __future__ import annotations

from cityhub.commerce.v1 import commerce_pb2_grpc
from google.protobuf.message import Message

from services.commerce.api.activities import ActivitiesApi
from services.commerce.api.codes import CodesApi
from services.commerce.api.excellence import ExcellenceApi
from services.commerce.api.federations import FederationsApi
from services.commerce.api.matching import MatchingApi
from services.commerce.api.memberships import MembershipsApi
from services.commerce.api.requests import RequestsApi
from services.commerce.api.training import TrainingApi
from services.commerce.usecases.common import CommerceContext
from services.platform.security import PolicyTable, Role, RpcPolicy, Scope, scope_from

__all__ = ["COMMERCE_SERVICE", "POLICY", "CommerceServicer"]

COMMERCE_SERVICE = "cityhub.commerce.v1.CommerceService"

_DO = Role.DISTRICT_OPERATOR
_CS = Role.CHAMBER_STAFF
_EU = Role.ENTERPRISE_USER
_SVC = Role.SERVICE
_PUB = Role.PUBLIC
_CHAMBER = scope_from("chamber", "chamber_id")
# Federation-wide work: the federation's staff and provisioning services.
_FEDERATION = {_DO, _SVC}
# A chamber's own work (its staff, scoped; federation staff everywhere).
_RUN = {_CS, _DO, _SVC}
# Reads open to members too (the use case shows an enterprise only its own).
_READ = {_CS, _DO, _SVC, _EU}
# A member acting for itself, or its chamber (or the federation) acting for it.
_ACT = {_EU, _CS, _DO, _SVC}


def _chamber_or_enterprise(request: Message) -> tuple[Scope, ...]:
    """A request naming a chamber and/or an enterprise falls into either's scope."""
    scopes = []
    chamber_id = str(getattr(request, "chamber_id", ""))
    credit_code = str(getattr(request, "credit_code", ""))
    if chamber_id:
        scopes.append(Scope("chamber", chamber_id))
    if credit_code:
        scopes.append(Scope("enterprise", credit_code))
    return tuple(scopes)


POLICY: PolicyTable = {
    "CreateFederation": RpcPolicy(roles=_FEDERATION),
    "ListFederations": RpcPolicy(roles=_READ),
    "CreateChamber": RpcPolicy(roles=_FEDERATION),
    "GetChamber": RpcPolicy(roles=_READ),
    "ListChambers": RpcPolicy(roles=_READ),
    "AddChamberStaff": RpcPolicy(roles=_RUN, scope=_CHAMBER),
    "ListChamberStaff": RpcPolicy(roles=_RUN, scope=_CHAMBER),
    # An enterprise applies for itself; chamber staff may file it on the enterprise's behalf.
    "ApplyForMembership": RpcPolicy(roles=_ACT, scope=_chamber_or_enterprise),
    "ApproveMembership": RpcPolicy(roles=_RUN),
    "RejectMembership": RpcPolicy(roles=_RUN),
    "SuspendMembership": RpcPolicy(roles=_RUN),
    "ReinstateMembership": RpcPolicy(roles=_RUN),
    # A member may leave; its chamber may end it.
    "EndMembership": RpcPolicy(roles={*_RUN, _EU}),
    "GetMembership": RpcPolicy(roles=_READ),
    "ListMemberships": RpcPolicy(roles=_READ, scope=_chamber_or_enterprise),
    "IssueMemberCode": RpcPolicy(roles=_READ),
    # Any office verifies: the keys and the online check are open to every role, the public included.
    "GetVerificationKeys": RpcPolicy(roles={*_READ, _PUB}),
    "RotateFederationKey": RpcPolicy(roles=_FEDERATION),
    "VerifyMemberCode": RpcPolicy(roles={*_READ, _PUB}),
    "SearchMemberMap": RpcPolicy(roles=_RUN),
    "CreateActivity": RpcPolicy(roles=_RUN, scope=_CHAMBER),
    "GetActivity": RpcPolicy(roles=_READ),
    "ListActivities": RpcPolicy(roles=_READ),
    "SignUpForActivity": RpcPolicy(roles=_ACT),
    "CancelSignUp": RpcPolicy(roles=_ACT),
    "CheckInToActivity": RpcPolicy(roles=_RUN),
    "ListSignUps": RpcPolicy(roles=_RUN),
    "CreatePost": RpcPolicy(roles=_ACT),
    "ListPosts": RpcPolicy(roles=_READ),
    "FindMatches": RpcPolicy(roles=_READ),
    "ExpressInterest": RpcPolicy(roles=_ACT),
    "AcceptMatch": RpcPolicy(roles=_ACT),
    "ListMatches": RpcPolicy(roles=_READ),
    "SubmitServiceRequest": RpcPolicy(roles=_ACT),
    "AssignServiceRequest": RpcPolicy(roles=_RUN),
    "ResolveServiceRequest": RpcPolicy(roles=_RUN),
    "RateServiceRequest": RpcPolicy(roles={_EU, _SVC}),
    "ListServiceRequests": RpcPolicy(roles=_READ, scope=_chamber_or_enterprise),
    "CreateCourse": RpcPolicy(roles=_RUN, scope=_CHAMBER),
    "ListCourses": RpcPolicy(roles=_READ),
    "EnrolInCourse": RpcPolicy(roles=_ACT),
    "CompleteCourse": RpcPolicy(roles=_RUN),
    "RecordAward": RpcPolicy(roles=_RUN),
    "ListLedger": RpcPolicy(roles=_READ),
    "GetRankings": RpcPolicy(roles=_READ),
    "PublishRanking": RpcPolicy(roles=_RUN),
    "GetShowcase": RpcPolicy(roles=_RUN),
}


# The generated base class comes last: a method a mixin defines wins over its UNIMPLEMENTED default.
class CommerceServicer(
    FederationsApi,
    MembershipsApi,
    CodesApi,
    ActivitiesApi,
    MatchingApi,
    RequestsApi,
    TrainingApi,
    ExcellenceApi,
    commerce_pb2_grpc.CommerceServiceServicer,
):
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx
        self._init_federations(ctx)
        self._init_memberships(ctx)
        self._init_codes(ctx)
        self._init_activities(ctx)
        self._init_matching(ctx)
        self._init_requests(ctx)
        self._init_training(ctx)
        self._init_excellence(ctx)
