"""The IndustryService servicer (proto <-> domain, nothing else) and its POLICY table.

Access (see services/industry/domain/access.py): ``industry_operator``, ``district_operator`` and
``service`` act district-wide, except that an ``industry_operator`` holding ``park:<id>`` scopes is park
staff and sees only those parks; ``enterprise_user`` sees only its ``enterprise:<credit code>`` scopes.
Where a create names the enterprise the policy checks the scope before the use case runs (PERMISSION_DENIED);
a single read of an entity outside the caller's scope answers NOT_FOUND, as if it did not exist (the use
case checks by the entity's enterprise and park); lists are filtered to what the caller may see.
"""

from __future__ import annotations

import grpc
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc

from services.industry import mapping
from services.industry.domain.access import Visibility
from services.industry.domain.utilisation import relative_change
from services.industry.usecases.orders import Orders
from services.industry.usecases.registry import Registry
from services.industry.usecases.telemetry import TelemetryIngest
from services.industry.usecases.utilisation import UtilisationQueries
from services.platform.security import Access, PolicyTable, Role, RpcPolicy, current_access, scope_from

__all__ = ["INDUSTRY_SERVICE", "POLICY", "IndustryServicer", "visibility_of"]

INDUSTRY_SERVICE = "cityhub.industry.v1.IndustryService"

_DISTRICT_WIDE = {Role.DISTRICT_OPERATOR.value, Role.SERVICE.value}
_READERS = {Role.INDUSTRY_OPERATOR, Role.DISTRICT_OPERATOR, Role.SERVICE, Role.ENTERPRISE_USER}
_WRITERS = {Role.INDUSTRY_OPERATOR, Role.SERVICE, Role.ENTERPRISE_USER}
_ENTERPRISE = scope_from("enterprise", "credit_code")

POLICY: PolicyTable = {
    # Parks are the bureau's to register; park staff and enterprises see the ones they belong to.
    "RegisterPark": RpcPolicy(roles={Role.INDUSTRY_OPERATOR, Role.SERVICE}),
    "ListParks": RpcPolicy(roles=_READERS),
    # Enterprise users may onboard their own enterprise (the credit code must be in their scopes).
    "OnboardEnterprise": RpcPolicy(roles=_WRITERS, scope=_ENTERPRISE),
    "GetEnterprise": RpcPolicy(roles=_READERS),
    "ListEnterprises": RpcPolicy(roles=_READERS),
    "RegisterDevice": RpcPolicy(roles=_WRITERS, scope=_ENTERPRISE),
    "ListDevices": RpcPolicy(roles=_READERS),
    # Collection gateways report as `service`; an enterprise's own gateway as its enterprise user (each
    # sample is then checked against the device's enterprise).
    "IngestTelemetry": RpcPolicy(roles=_WRITERS),
    "GetUtilisation": RpcPolicy(roles=_READERS),
    "CompareUtilisation": RpcPolicy(roles=_READERS),
    "ListDeviceAlerts": RpcPolicy(roles=_READERS),
    "CreateOrder": RpcPolicy(roles=_WRITERS, scope=_ENTERPRISE),
    "AdvanceOrder": RpcPolicy(roles=_WRITERS),
    "GetOrder": RpcPolicy(roles=_READERS),
    "ListOrders": RpcPolicy(roles=_READERS),
    "GetDeliveryCycleStats": RpcPolicy(roles=_READERS),
    "CompareDeliveryCycle": RpcPolicy(roles=_READERS),
    # Park-level figures are for the bureau and the parks, not for single enterprises.
    "ListDigitalWorkshops": RpcPolicy(roles={Role.INDUSTRY_OPERATOR, Role.DISTRICT_OPERATOR, Role.SERVICE}),
}


def visibility_of(access: Access) -> Visibility:
    """What the call may see, from the roles that let it through (see the module docstring)."""
    caller = access.caller
    roles = access.roles
    if roles & _DISTRICT_WIDE:
        return Visibility.of(everything=True)
    parks: frozenset[str] = frozenset()
    everything = False
    if Role.INDUSTRY_OPERATOR.value in roles:
        parks = caller.scope_ids("park")
        everything = not parks
    enterprises = caller.scope_ids("enterprise") if Role.ENTERPRISE_USER.value in roles else frozenset()
    return Visibility(everything, parks, enterprises)


def _visibility() -> Visibility:
    return visibility_of(current_access())


# Method names and signatures are fixed by the generated servicer base class.
class IndustryServicer(industry_pb2_grpc.IndustryServiceServicer):
    def __init__(
        self,
        registry: Registry,
        ingest: TelemetryIngest,
        utilisation: UtilisationQueries,
        orders: Orders,
        digital_workshop_share: float,
    ) -> None:
        self._registry = registry
        self._ingest = ingest
        self._utilisation = utilisation
        self._orders = orders
        self._share = digital_workshop_share

    def RegisterPark(  # noqa: N802
        self,
        request: industry_pb2.RegisterParkRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.RegisterParkResponse:
        park = self._registry.register_park(mapping.register_park(request), _visibility())
        return industry_pb2.RegisterParkResponse(park=mapping.park_pb(park))

    def ListParks(  # noqa: N802
        self,
        request: industry_pb2.ListParksRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListParksResponse:
        parks, token = self._registry.list_parks(
            _visibility(), request.page.page_size, request.page.page_token
        )
        return industry_pb2.ListParksResponse(
            parks=[mapping.park_pb(p) for p in parks], page=mapping.page(token)
        )

    def OnboardEnterprise(  # noqa: N802
        self,
        request: industry_pb2.OnboardEnterpriseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.OnboardEnterpriseResponse:
        enterprise = self._registry.onboard_enterprise(mapping.onboard_enterprise(request), _visibility())
        return industry_pb2.OnboardEnterpriseResponse(enterprise=mapping.enterprise_pb(enterprise))

    def GetEnterprise(  # noqa: N802
        self,
        request: industry_pb2.GetEnterpriseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetEnterpriseResponse:
        enterprise = self._registry.get_enterprise(request.credit_code, _visibility())
        return industry_pb2.GetEnterpriseResponse(enterprise=mapping.enterprise_pb(enterprise))

    def ListEnterprises(  # noqa: N802
        self,
        request: industry_pb2.ListEnterprisesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListEnterprisesResponse:
        found, token = self._registry.list_enterprises(
            _visibility(), request.park_id, request.page.page_size, request.page.page_token
        )
        return industry_pb2.ListEnterprisesResponse(
            enterprises=[mapping.enterprise_pb(e) for e in found], page=mapping.page(token)
        )

    def RegisterDevice(  # noqa: N802
        self,
        request: industry_pb2.RegisterDeviceRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.RegisterDeviceResponse:
        device = self._registry.register_device(mapping.register_device(request), _visibility())
        return industry_pb2.RegisterDeviceResponse(device=mapping.device_pb(device))

    def ListDevices(  # noqa: N802
        self,
        request: industry_pb2.ListDevicesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListDevicesResponse:
        rows, token = self._registry.list_devices(
            mapping.list_devices(request), _visibility(), request.page.page_size, request.page.page_token
        )
        return industry_pb2.ListDevicesResponse(
            devices=[mapping.device_pb(row.device, row) for row in rows], page=mapping.page(token)
        )

    def IngestTelemetry(  # noqa: N802
        self,
        request: industry_pb2.IngestTelemetryRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.IngestTelemetryResponse:
        result = self._ingest.ingest(
            request.request_id,
            request.samples,
            _visibility(),
            all_or_nothing=request.all_or_nothing,
            digest=mapping.ingest_digest(request) if request.request_id else "",
        )
        return mapping.ingest_response(result.accepted_count, result.rejections, result.duplicate_count)

    def GetUtilisation(  # noqa: N802
        self,
        request: industry_pb2.GetUtilisationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetUtilisationResponse:
        total, buckets = self._utilisation.get(mapping.utilisation_query(request), _visibility())
        return industry_pb2.GetUtilisationResponse(
            total=mapping.figures_pb(total),
            buckets=[mapping.bucket_pb(first, last, totals) for first, last, totals in buckets],
        )

    def CompareUtilisation(  # noqa: N802
        self,
        request: industry_pb2.CompareUtilisationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.CompareUtilisationResponse:
        base, later, change = self._utilisation.compare(mapping.compare_utilisation(request), _visibility())
        return industry_pb2.CompareUtilisationResponse(
            base=mapping.figures_pb(base), compare=mapping.figures_pb(later), change=mapping.change_pb(change)
        )

    def ListDeviceAlerts(  # noqa: N802
        self,
        request: industry_pb2.ListDeviceAlertsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListDeviceAlertsResponse:
        rows, token = self._utilisation.alerts(
            _visibility(),
            credit_code=request.credit_code,
            park_id=request.park_id,
            device_id=request.device_id,
            open_only=request.open_only,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return industry_pb2.ListDeviceAlertsResponse(
            alerts=[mapping.alert_pb(r) for r in rows], page=mapping.page(token)
        )

    def CreateOrder(  # noqa: N802
        self,
        request: industry_pb2.CreateOrderRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.CreateOrderResponse:
        view = self._orders.create(mapping.create_order(request), _visibility())
        return industry_pb2.CreateOrderResponse(order=mapping.order_pb(view))

    def AdvanceOrder(  # noqa: N802
        self,
        request: industry_pb2.AdvanceOrderRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.AdvanceOrderResponse:
        view = self._orders.advance(mapping.advance_order(request), _visibility())
        return industry_pb2.AdvanceOrderResponse(order=mapping.order_pb(view))

    def GetOrder(  # noqa: N802
        self,
        request: industry_pb2.GetOrderRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetOrderResponse:
        return industry_pb2.GetOrderResponse(
            order=mapping.order_pb(self._orders.get(request.order_id, _visibility()))
        )

    def ListOrders(  # noqa: N802
        self,
        request: industry_pb2.ListOrdersRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListOrdersResponse:
        views, token = self._orders.list(
            _visibility(),
            request.credit_code,
            request.late_only,
            request.page.page_size,
            request.page.page_token,
        )
        return industry_pb2.ListOrdersResponse(
            orders=[mapping.order_pb(v) for v in views], page=mapping.page(token)
        )

    def GetDeliveryCycleStats(  # noqa: N802
        self,
        request: industry_pb2.GetDeliveryCycleStatsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetDeliveryCycleStatsResponse:
        stats = self._orders.cycle_stats(mapping.cycle_stats_query(request), _visibility())
        return industry_pb2.GetDeliveryCycleStatsResponse(stats=mapping.stats_pb(stats))

    def CompareDeliveryCycle(  # noqa: N802
        self,
        request: industry_pb2.CompareDeliveryCycleRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.CompareDeliveryCycleResponse:
        base, later = self._orders.compare_cycles(mapping.compare_cycles(request), _visibility())
        return industry_pb2.CompareDeliveryCycleResponse(
            base=mapping.stats_pb(base),
            compare=mapping.stats_pb(later),
            mean_days_change=later.mean_days - base.mean_days,
            mean_days_relative_change=relative_change(base.mean_days, later.mean_days),
        )

    def ListDigitalWorkshops(  # noqa: N802
        self,
        request: industry_pb2.ListDigitalWorkshopsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListDigitalWorkshopsResponse:
        rated = self._registry.digital_workshops(mapping.digital_workshops_query(request), _visibility())
        return industry_pb2.ListDigitalWorkshopsResponse(
            workshops=[mapping.workshop_pb(coverage, digital) for coverage, digital in rated],
            digital_count=sum(1 for _c, digital in rated if digital),
            threshold_share=self._share,
        )
