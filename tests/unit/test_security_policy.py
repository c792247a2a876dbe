"""Per-RPC policy: decisions, and the rule that every RPC of every service has an entry."""

from __future__ import annotations

import pytest
from cityhub.testing.v1 import testing_pb2
from google.protobuf.descriptor import ServiceDescriptor

from services.commerce.grpc_api import COMMERCE_SERVICE
from services.commerce.grpc_api import POLICY as COMMERCE_POLICY
from services.govservice.grpc_api import GOVSERVICE_SERVICE
from services.govservice.grpc_api import POLICY as GOVSERVICE_POLICY
from services.hub.grpc_api import HUB_SERVICE
from services.hub.grpc_api import POLICY as HUB_POLICY
from services.industry.grpc_api import INDUSTRY_SERVICE
from services.industry.grpc_api import POLICY as INDUSTRY_POLICY
from services.kitchen.grpc_api import KITCHEN_SERVICE
from services.kitchen.grpc_api import POLICY as KITCHEN_POLICY
from services.platform.errors import PermissionDeniedError
from services.platform.probe import POLICY as PROBE_POLICY
from services.platform.probe import PROBE_SERVICE
from services.platform.security.contracts import services
from services.platform.security.policy import (
    PolicyTable,
    RpcPolicy,
    Scope,
    check_policy_complete,
    decide,
    scope_from,
    subject_from,
)
from services.platform.security.roles import Role
from services.platform.security.tokens import Caller
from services.safety.grpc_api import POLICY as SAFETY_POLICY
from services.safety.grpc_api import SAFETY_SERVICE

# Each service's table, as its bootstrap passes it to ServiceSpec(policy=...).
SERVICE_POLICIES: dict[str, PolicyTable] = {
    PROBE_SERVICE: PROBE_POLICY,
    SAFETY_SERVICE: SAFETY_POLICY,
    INDUSTRY_SERVICE: INDUSTRY_POLICY,
    KITCHEN_SERVICE: KITCHEN_POLICY,
    COMMERCE_SERVICE: COMMERCE_POLICY,
    GOVSERVICE_SERVICE: GOVSERVICE_POLICY,
    HUB_SERVICE: HUB_POLICY,
}
PROBE: ServiceDescriptor = testing_pb2.DESCRIPTOR.services_by_name["ProbeService"]
PERSON_POLICY = PROBE_POLICY["GetPersonRecord"]


def _caller(*roles: str, scopes: tuple[str, ...] = ()) -> Caller:
    return Caller("u1", frozenset(roles), frozenset(scopes))


def _request(site: str = "S-001") -> testing_pb2.GetPersonRecordRequest:
    return testing_pb2.GetPersonRecordRequest(person_token="P-1", site_id=site)


def test_every_rpc_of_every_service_has_a_policy_entry() -> None:
    """Walks every generated contract: a service missing from SERVICE_POLICIES, or an RPC without an entry
    in its table, fails here by name (the runtime refuses to start with an incomplete table, too)."""
    found = services()
    assert any(s.full_name == "cityhub.testing.v1.ProbeService" for s in found)
    problems = [f"{s.full_name}: no policy table wired" for s in found if s.full_name not in SERVICE_POLICIES]
    for service in found:
        if service.full_name in SERVICE_POLICIES:
            problems.extend(check_policy_complete(SERVICE_POLICIES[service.full_name], service))
    assert not problems, "RPCs without a complete policy:\n" + "\n".join(problems)


def test_completeness_check_names_missing_misspelt_and_unaudited_entries() -> None:
    table = {
        "Echo": RpcPolicy(roles={Role.PUBLIC}),
        "GetPersonRecrod": RpcPolicy(roles={Role.POLICE}),
    }
    problems = check_policy_complete(table, PROBE)
    assert any("GetPersonRecord: no policy entry" in p for p in problems)
    assert any("GetPersonRecrod: policy entry for an RPC that does not exist" in p for p in problems)
    unaudited = {"Echo": RpcPolicy(roles={Role.PUBLIC}), "GetPersonRecord": RpcPolicy(roles={Role.POLICE})}
    assert any("audit subject" in p for p in check_policy_complete(unaudited, PROBE))


def test_completeness_check_names_scope_fields_the_request_lacks() -> None:
    table = {
        "Echo": RpcPolicy(roles={Role.PUBLIC}, scope=scope_from("site", "site_id")),
        "GetPersonRecord": RpcPolicy(roles={Role.POLICE}, subject=subject_from("person")),
    }
    problems = check_policy_complete(table, PROBE)
    assert any("'site_id' not found in cityhub.testing.v1.EchoRequest" in p for p in problems)
    assert any("'person' not found" in p for p in problems)


def test_policies_refuse_unknown_roles_and_empty_role_sets() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        RpcPolicy(roles={"root"})
    with pytest.raises(ValueError, match="at least one role"):
        RpcPolicy(roles=set())
    with pytest.raises(ValueError, match="scope kind"):
        scope_from("planet", "site_id")


def test_a_role_not_in_the_policy_is_denied_with_a_reason() -> None:
    with pytest.raises(PermissionDeniedError, match="needs one of the roles") as caught:
        decide(PERSON_POLICY, _caller(Role.FOOD_INSPECTOR), _request(), rpc="GetPersonRecord")
    assert "police" in caught.value.message


def test_a_scoped_role_needs_the_scope_the_request_falls_into() -> None:
    duty_room = _caller(Role.DUTY_ROOM, scopes=("site:S-001",))
    access = decide(PERSON_POLICY, duty_room, _request("S-001"))
    assert access.roles == {"duty_room"}
    assert not access.unrestricted
    with pytest.raises(PermissionDeniedError, match=r"no scope covering site:S-002"):
        decide(PERSON_POLICY, duty_room, _request("S-002"))
    with pytest.raises(PermissionDeniedError, match="no scope"):
        decide(PERSON_POLICY, duty_room, _request(""))


def test_a_scope_of_another_kind_does_not_count() -> None:
    # A kitchen manager holding kitchen:S-001 is not the duty room of site S-001.
    manager = _caller(Role.KITCHEN_MANAGER, scopes=("kitchen:S-001",))
    with pytest.raises(PermissionDeniedError):
        decide(PERSON_POLICY, manager, _request("S-001"))


def test_district_wide_roles_pass_any_scope() -> None:
    access = decide(PERSON_POLICY, _caller(Role.POLICE), _request("anywhere"))
    assert access.unrestricted
    assert access.allows("site", "S-999")


def test_only_the_roles_that_let_the_call_through_count() -> None:
    # Duty room of S-001 and district operator: at S-002 only the operator role applies, so clearance
    # must be judged as an operator's (the guard reads access.roles).
    both = _caller(Role.DUTY_ROOM, Role.DISTRICT_OPERATOR, scopes=("site:S-001",))
    at_home = decide(PERSON_POLICY, both, _request("S-001"))
    elsewhere = decide(PERSON_POLICY, both, _request("S-002"))
    assert at_home.roles == {"duty_room", "district_operator"}
    assert elsewhere.roles == {"district_operator"}


def test_policies_without_a_scope_rule_leave_filtering_to_the_use_case() -> None:
    listing = RpcPolicy(roles={Role.DUTY_ROOM})
    access = decide(listing, _caller(Role.DUTY_ROOM, scopes=("site:S-001",)), _request())
    assert not access.unrestricted
    assert access.allows("site", "S-001")
    assert not access.allows("site", "S-002")
    assert not access.allows("kitchen", "S-001")


def test_any_of_several_scopes_will_do() -> None:
    policy = RpcPolicy(
        roles={Role.DUTY_ROOM, Role.KITCHEN_MANAGER},
        scope=lambda _request: [Scope("kitchen", "K-1"), Scope("site", "S-001")],
    )
    assert decide(policy, _caller(Role.KITCHEN_MANAGER, scopes=("kitchen:K-1",)), _request()).roles == {
        "kitchen_manager"
    }
    assert decide(policy, _caller(Role.DUTY_ROOM, scopes=("site:S-001",)), _request()).roles == {"duty_room"}


def test_region_scopes_follow_the_division_hierarchy() -> None:
    policy = RpcPolicy(roles={Role.GOV_CLERK}, scope=scope_from("region", "site_id"))
    clerk = _caller(Role.GOV_CLERK, scopes=("region:331000",))
    assert decide(policy, clerk, _request("331004")).roles == {"gov_clerk"}
    with pytest.raises(PermissionDeniedError):
        decide(policy, clerk, _request("330782"))
