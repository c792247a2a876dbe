"""The IndustryService servicer (proto <-> domain, nothing else) and its POLICY table.

Access (see services/industry/domain/access.py): ``industry_operator``, ``district_operator`` and
``service`` act district-wide, except that an ``industry_operator`` holding ``park:<id>`` scopes is park
staff and sees only those parks; ``enterprise_user`` sees only its ``enterprise:<credit code>`` scopes.
Where a request names the enterprise directly the policy checks the scope before the handler runs;
elsewhere the use case filters or checks by the entity's enterprise and park.
"""

from __future__ import annotations

import grpc
from cityhub.common.v1 import common_pb2
from cityhub.industry.v1 import industry_pb2, industry_pb2_grpc

from services.industry import handlers
from services.industry.domain.access import Visibility
from services.industry.domain.orders import OrderSpec
from services.industry.domain.registry import Device, DeviceSpec, Enterprise, EnterpriseSpec, Park, ParkSpec
from services.industry.domain.utilisation import Change, relative_change
from services.industry.domain.workshops import WorkshopCoverage
from services.industry.handlers import figures_message, timestamp
from services.industry.repository import AlertRow, CycleStats, DeviceRow, Subject
from services.platform.protoconv import datetime_of, time_range
from services.platform.security import Access, PolicyTable, Role, RpcPolicy, current_access, scope_from

__all__ = ["INDUSTRY_SERVICE", "POLICY", "IndustryServicer", "visibility_of"]

INDUSTRY_SERVICE = "cityhub.industry.v1.IndustryService"

_DISTRICT_WIDE = {Role.DISTRICT_OPERATOR.value, Role.SERVICE.value}
_READERS = {Role.INDUSTRY_OPERATOR, Role.DISTRICT_OPERATOR, Role.SERVICE, Role.ENTERPRISE_USER}
_WRITERS = {Role.INDUSTRY_OPERATOR, Role.SERVICE, Role.ENTERPRISE_USER}
_ENTERPRISE = scope_from("enterprise", "enterprise_id")

POLICY: PolicyTable = {
    # Parks are the bureau's to register; park staff and enterprises see the ones they belong to.
    "RegisterPark": RpcPolicy(roles={Role.INDUSTRY_OPERATOR, Role.SERVICE}),
    "ListParks": RpcPolicy(roles=_READERS),
    # Enterprise users may onboard their own enterprise (the credit code must be in their scopes).
    "OnboardEnterprise": RpcPolicy(roles=_WRITERS, scope=scope_from("enterprise", "credit_code")),
    "GetEnterprise": RpcPolicy(roles=_READERS, scope=scope_from("enterprise", "credit_code")),
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


def _page(next_token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=next_token, total_size=-1)


def _park(park: Park) -> industry_pb2.Park:
    return industry_pb2.Park(
        park_id=park.park_id,
        name=park.name,
        division_code=park.division_code,
        address=park.address,
        registered_at=timestamp(park.registered_at),
    )


def _enterprise(enterprise: Enterprise) -> industry_pb2.Enterprise:
    return industry_pb2.Enterprise(
        credit_code=enterprise.credit_code,
        name=enterprise.name,
        sector=enterprise.sector,  # type: ignore[arg-type]
        park_id=enterprise.park_id or "",
        address=enterprise.address,
        onboarded_at=timestamp(enterprise.onboarded_at),
    )


def _device(device: Device, row: DeviceRow | None = None, reporting: bool = False) -> industry_pb2.Device:
    message = industry_pb2.Device(
        device_id=device.device_id,
        serial_number=device.serial_number,
        enterprise_id=device.enterprise_id,
        park_id=device.park_id or "",
        workshop=device.workshop,
        machine_type=device.machine_type,  # type: ignore[arg-type]
        rated_power_kw=device.rated_power_kw,
        ideal_cycle_seconds=device.ideal_cycle_seconds,
        sample_interval_ms=device.sample_interval_ms,
        registered_at=timestamp(device.registered_at),
        reporting=reporting,
    )
    if row is not None:
        message.state = row.state  # type: ignore[assignment]
        if row.last_sample_at is not None:
            message.last_sample_time.CopyFrom(timestamp(row.last_sample_at))
    return message


def _subject(subject: industry_pb2.UtilisationSubject) -> Subject:
    which = subject.WhichOneof("subject")
    if which == "device_id":
        return Subject(device_id=subject.device_id)
    if which == "workshop":
        return Subject(enterprise_id=subject.workshop.enterprise_id, workshop=subject.workshop.workshop)
    if which == "enterprise_id":
        return Subject(enterprise_id=subject.enterprise_id)
    if which == "park_id":
        return Subject(park_id=subject.park_id)
    return Subject()


def _change(change: Change) -> industry_pb2.UtilisationChange:
    return industry_pb2.UtilisationChange(
        availability=change.availability,
        performance=change.performance,
        quality=change.quality,
        oee=change.oee,
        running_seconds=change.running,
        good_count=change.good_count,
    )


def _alert(row: AlertRow) -> industry_pb2.DeviceAlert:
    message = industry_pb2.DeviceAlert(
        alert_id=row.alert_id,
        device_id=row.device_id,
        enterprise_id=row.enterprise_id,
        park_id=row.park_id or "",
        kind=row.kind,  # type: ignore[arg-type]
        severity=row.severity,  # type: ignore[arg-type]
        raised_at=timestamp(row.raised_at),
    )
    if row.cleared_at is not None:
        message.cleared_at.CopyFrom(timestamp(row.cleared_at))
    return message


def _order(view: handlers.OrderView) -> industry_pb2.Order:
    row = view.row
    return industry_pb2.Order(
        order_id=row.order_id,
        enterprise_id=row.enterprise_id,
        customer=row.customer,
        product=row.product,
        customisation=row.customisation,
        promised_date=row.promised_date.isoformat(),
        stage=row.stage,  # type: ignore[arg-type]
        ordered_at=timestamp(row.ordered_at),
        stage_times=[
            industry_pb2.StageTime(stage=stage, entered_at=timestamp(at))  # type: ignore[arg-type]
            for stage, at in row.stage_times
        ],
        late=view.late,
        delivery_cycle_days=view.delivery_cycle_days,
    )


def _stats(stats: CycleStats) -> industry_pb2.DeliveryCycleStats:
    return industry_pb2.DeliveryCycleStats(
        delivered_count=stats.delivered_count,
        mean_days=stats.mean_days,
        p50_days=stats.p50_days,
        p90_days=stats.p90_days,
        p95_days=stats.p95_days,
        min_days=stats.min_days,
        max_days=stats.max_days,
        late_count=stats.late_count,
    )


def _workshop(coverage: WorkshopCoverage, digital: bool) -> industry_pb2.DigitalWorkshop:
    return industry_pb2.DigitalWorkshop(
        workshop=industry_pb2.WorkshopRef(enterprise_id=coverage.enterprise_id, workshop=coverage.workshop),
        park_id=coverage.park_id or "",
        device_count=coverage.device_count,
        reporting_count=coverage.reporting_count,
        reporting_share=coverage.share,
        digital=digital,
    )


_GRANULARITY = {industry_pb2.GRANULARITY_HOUR: "hour", industry_pb2.GRANULARITY_DAY: "day"}


# Method names and signatures are fixed by the generated servicer base class.
class IndustryServicer(industry_pb2_grpc.IndustryServiceServicer):
    def __init__(
        self,
        registry: handlers.Registry,
        ingest: handlers.TelemetryIngest,
        utilisation: handlers.UtilisationQueries,
        orders: handlers.Orders,
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
        spec = ParkSpec(request.name, request.division_code, request.address)
        park = self._registry.register_park(request.request_id, spec, _visibility())
        return industry_pb2.RegisterParkResponse(park=_park(park))

    def ListParks(  # noqa: N802
        self,
        request: industry_pb2.ListParksRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListParksResponse:
        parks, token = self._registry.list_parks(
            _visibility(), request.page.page_size, request.page.page_token
        )
        return industry_pb2.ListParksResponse(parks=[_park(p) for p in parks], page=_page(token))

    def OnboardEnterprise(  # noqa: N802
        self,
        request: industry_pb2.OnboardEnterpriseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.OnboardEnterpriseResponse:
        spec = EnterpriseSpec(
            request.credit_code, request.name, request.sector, request.park_id or None, request.address
        )
        enterprise = self._registry.onboard_enterprise(request.request_id, spec, _visibility())
        return industry_pb2.OnboardEnterpriseResponse(enterprise=_enterprise(enterprise))

    def GetEnterprise(  # noqa: N802
        self,
        request: industry_pb2.GetEnterpriseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetEnterpriseResponse:
        enterprise = self._registry.get_enterprise(request.credit_code, _visibility())
        return industry_pb2.GetEnterpriseResponse(enterprise=_enterprise(enterprise))

    def ListEnterprises(  # noqa: N802
        self,
        request: industry_pb2.ListEnterprisesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListEnterprisesResponse:
        found, token = self._registry.list_enterprises(
            _visibility(), request.park_id, request.page.page_size, request.page.page_token
        )
        return industry_pb2.ListEnterprisesResponse(
            enterprises=[_enterprise(e) for e in found], page=_page(token)
        )

    def RegisterDevice(  # noqa: N802
        self,
        request: industry_pb2.RegisterDeviceRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.RegisterDeviceResponse:
        spec = DeviceSpec(
            request.serial_number,
            request.enterprise_id,
            request.workshop,
            request.machine_type,
            request.rated_power_kw,
            request.ideal_cycle_seconds,
            request.sample_interval_ms,
        )
        device = self._registry.register_device(request.request_id, spec, _visibility())
        return industry_pb2.RegisterDeviceResponse(device=_device(device))

    def ListDevices(  # noqa: N802
        self,
        request: industry_pb2.ListDevicesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListDevicesResponse:
        rows, token = self._registry.list_devices(
            _visibility(),
            enterprise_id=request.enterprise_id,
            workshop=request.workshop,
            park_id=request.park_id,
            size=request.page.page_size,
            token=request.page.page_token,
        )
        return industry_pb2.ListDevicesResponse(
            devices=[_device(row.device, row, reporting) for row, reporting in rows], page=_page(token)
        )

    def IngestTelemetry(  # noqa: N802
        self,
        request: industry_pb2.IngestTelemetryRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.IngestTelemetryResponse:
        result = self._ingest.ingest(
            request.request_id, request.samples, _visibility(), all_or_nothing=request.all_or_nothing
        )
        return industry_pb2.IngestTelemetryResponse(
            accepted_count=result.accepted_count,
            rejected_count=len(result.rejections),
            rejections=[
                industry_pb2.RejectedSample(
                    index=r.index,
                    device_id=r.device_id,
                    reason=r.reason.value,  # type: ignore[arg-type]
                    field=r.field,
                    description=r.description,
                )
                for r in result.rejections
            ],
        )

    def GetUtilisation(  # noqa: N802
        self,
        request: industry_pb2.GetUtilisationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetUtilisationResponse:
        start, end = time_range(request.period)
        total, buckets = self._utilisation.get(
            _subject(request.subject),
            start,
            end,
            granularity=_GRANULARITY.get(request.granularity, ""),
            time_zone=request.time_zone,
            visibility=_visibility(),
        )
        return industry_pb2.GetUtilisationResponse(
            total=figures_message(total),
            buckets=[
                industry_pb2.UtilisationBucket(
                    start_time=timestamp(first), end_time=timestamp(last), figures=figures_message(totals)
                )
                for first, last, totals in buckets
            ],
        )

    def CompareUtilisation(  # noqa: N802
        self,
        request: industry_pb2.CompareUtilisationRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.CompareUtilisationResponse:
        base, later, change = self._utilisation.compare(
            _subject(request.subject),
            time_range(request.base_period),
            time_range(request.compare_period),
            _visibility(),
        )
        return industry_pb2.CompareUtilisationResponse(
            base=figures_message(base), compare=figures_message(later), change=_change(change)
        )

    def ListDeviceAlerts(  # noqa: N802
        self,
        request: industry_pb2.ListDeviceAlertsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListDeviceAlertsResponse:
        rows, token = self._utilisation.alerts(
            _visibility(),
            enterprise_id=request.enterprise_id,
            park_id=request.park_id,
            device_id=request.device_id,
            open_only=request.open_only,
            size=request.page.page_size,
            token=request.page.page_token,
        )
        return industry_pb2.ListDeviceAlertsResponse(alerts=[_alert(r) for r in rows], page=_page(token))

    def CreateOrder(  # noqa: N802
        self,
        request: industry_pb2.CreateOrderRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.CreateOrderResponse:
        spec = OrderSpec(
            request.enterprise_id,
            request.customer,
            request.product,
            request.customisation,
            request.promised_date,
            datetime_of(request, "ordered_at"),
        )
        view = self._orders.create(request.request_id, spec, _visibility())
        return industry_pb2.CreateOrderResponse(order=_order(view))

    def AdvanceOrder(  # noqa: N802
        self,
        request: industry_pb2.AdvanceOrderRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.AdvanceOrderResponse:
        view = self._orders.advance(
            request.order_id,
            request.stage,
            datetime_of(request, "occurred_at"),
            _visibility(),
        )
        return industry_pb2.AdvanceOrderResponse(order=_order(view))

    def GetOrder(  # noqa: N802
        self,
        request: industry_pb2.GetOrderRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetOrderResponse:
        return industry_pb2.GetOrderResponse(order=_order(self._orders.get(request.order_id, _visibility())))

    def ListOrders(  # noqa: N802
        self,
        request: industry_pb2.ListOrdersRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListOrdersResponse:
        views, token = self._orders.list(
            _visibility(),
            request.enterprise_id,
            request.late_only,
            request.page.page_size,
            request.page.page_token,
        )
        return industry_pb2.ListOrdersResponse(orders=[_order(v) for v in views], page=_page(token))

    def GetDeliveryCycleStats(  # noqa: N802
        self,
        request: industry_pb2.GetDeliveryCycleStatsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.GetDeliveryCycleStatsResponse:
        start, end = time_range(request.period)
        stats = self._orders.cycle_stats(request.enterprise_id, start, end, _visibility())
        return industry_pb2.GetDeliveryCycleStatsResponse(stats=_stats(stats))

    def CompareDeliveryCycle(  # noqa: N802
        self,
        request: industry_pb2.CompareDeliveryCycleRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.CompareDeliveryCycleResponse:
        base, later = self._orders.compare_cycles(
            request.enterprise_id,
            time_range(request.base_period),
            time_range(request.compare_period),
            _visibility(),
        )
        change = later.mean_days - base.mean_days
        return industry_pb2.CompareDeliveryCycleResponse(
            base=_stats(base),
            compare=_stats(later),
            mean_days_change=change,
            mean_days_relative_change=relative_change(base.mean_days, later.mean_days),
        )

    def ListDigitalWorkshops(  # noqa: N802
        self,
        request: industry_pb2.ListDigitalWorkshopsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> industry_pb2.ListDigitalWorkshopsResponse:
        rated = self._registry.digital_workshops(request.park_id, request.digital_only, _visibility())
        return industry_pb2.ListDigitalWorkshopsResponse(
            workshops=[_workshop(coverage, digital) for coverage, digital in rated],
            digital_count=sum(1 for _c, digital in rated if digital),
            threshold_share=self._share,
        )
