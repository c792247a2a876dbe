"""The SafetyService servicer (proto <-> domain, nothing else) and its POLICY table.

Access:

- ``duty_room`` (scoped ``site:<id>``) sees its own site's sites, sensors, alerts (with the risk level and
  reasons), inspections and statistics, acknowledges its alerts, presses its one-click alarm and reports
  its guards' progress; other sites' records do not exist for it.
- ``district_operator`` sees every site, registers sites and sensors, commands the response; it never
  sees who a person token stands for.
- ``police`` and ``safety_investigator`` see every site and are the only ones who may resolve a person
  token into an identity (``GetPerson``: purpose required, every read audited), or a vehicle token into
  its plate (``GetVehicleOfConcern``, ``ListVehiclesOfConcern``: the same).
- ``service`` is a sensing gateway or another CityHub service: it reports detections, alarm presses and
  unit progress and reads sites and alerts; it holds no clearance for person data.

Identity is deliberately absent from every RPC a duty room may call: alerts carry person *tokens* and
reasons (behaviour, zones and flag categories such as "psychiatric history"), which the issue grants the
duty room; the identity behind a token is for police and investigators. See docs/services/safety.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from cityhub.safety.v1 import safety_pb2, safety_pb2_grpc

from services.platform.security import PolicyTable, Role, RpcPolicy, current_access, scope_from, subject_from
from services.safety import mapping
from services.safety.domain.access import Viewer
from services.safety.usecases import SafetyUseCases

__all__ = ["POLICY", "SAFETY_SERVICE", "WATCH_LIVE_METADATA", "SafetyServicer", "viewer_of_current_call"]

SAFETY_SERVICE = "cityhub.safety.v1.SafetyService"
WATCH_LIVE_METADATA = "x-watch-live"

_SITE = scope_from("site", "site_id")
_SITE_READERS = {
    Role.DISTRICT_OPERATOR,
    Role.DUTY_ROOM,
    Role.POLICE,
    Role.SAFETY_INVESTIGATOR,
    Role.SERVICE,
}
_ALERT_READERS = _SITE_READERS
_COMMAND = {Role.DISTRICT_OPERATOR, Role.POLICE}
_PERSON_CLEARED = {Role.POLICE, Role.SAFETY_INVESTIGATOR}

POLICY: PolicyTable = {
    "RegisterSite": RpcPolicy(roles={Role.DISTRICT_OPERATOR, Role.SERVICE}),
    "GetSite": RpcPolicy(roles=_SITE_READERS, scope=_SITE),
    # Unscoped here: the use case lists a duty room's own sites only.
    "ListSites": RpcPolicy(roles=_SITE_READERS),
    "RegisterSensor": RpcPolicy(roles={Role.DISTRICT_OPERATOR, Role.SERVICE}),
    "ListSensors": RpcPolicy(roles=_SITE_READERS, scope=_SITE),
    # Persons of concern are police business; a records feed may write as a service, never read back.
    "RecordPerson": RpcPolicy(roles={*_PERSON_CLEARED, Role.SERVICE}),
    "FindPerson": RpcPolicy(roles=_PERSON_CLEARED),
    "GetPerson": RpcPolicy(roles=_PERSON_CLEARED, subject=subject_from("person_token")),
    "RecordHazardousPurchase": RpcPolicy(roles={*_PERSON_CLEARED, Role.SERVICE}),
    # A plate identifies its owner: vehicles of concern are handled like persons of concern.
    "RecordVehicleOfConcern": RpcPolicy(roles={*_PERSON_CLEARED, Role.SERVICE}),
    "GetVehicleOfConcern": RpcPolicy(roles=_PERSON_CLEARED, subject=subject_from("vehicle_token")),
    "ListVehiclesOfConcern": RpcPolicy(roles=_PERSON_CLEARED, subject=subject_from("person_token")),
    "RemoveVehicleOfConcern": RpcPolicy(roles=_PERSON_CLEARED),
    # Sensing gateways report as `service`; the command centre may enter detections by hand.
    "ReportDetections": RpcPolicy(roles={Role.SERVICE, Role.DISTRICT_OPERATOR}),
    "RaiseAlarm": RpcPolicy(roles={Role.DUTY_ROOM, Role.SERVICE, Role.DISTRICT_OPERATOR}, scope=_SITE),
    # Alert RPCs name the alert, not the site: the use case checks the alert's site against the caller.
    "GetAlert": RpcPolicy(roles=_ALERT_READERS),
    "ListAlerts": RpcPolicy(roles=_ALERT_READERS),
    "WatchAlerts": RpcPolicy(roles=_ALERT_READERS),
    # The hub acknowledges with its service token, after checking its own caller (one source of truth).
    "AcknowledgeAlert": RpcPolicy(roles={Role.DUTY_ROOM, Role.SERVICE, *_COMMAND}),
    "DispatchUnits": RpcPolicy(roles=_COMMAND),
    # Units report through their apps (`service`); a duty room reports its own guards.
    "UpdateUnitStatus": RpcPolicy(roles={Role.DUTY_ROOM, Role.SERVICE, *_COMMAND}),
    "ResolveAlert": RpcPolicy(roles=_COMMAND),
    "RecordInspection": RpcPolicy(roles={Role.DISTRICT_OPERATOR, Role.POLICE, Role.SERVICE}),
    "ListInspections": RpcPolicy(roles=_SITE_READERS, scope=_SITE),
    "GetStatistics": RpcPolicy(
        roles={Role.DISTRICT_OPERATOR, Role.DUTY_ROOM, Role.POLICE, Role.SAFETY_INVESTIGATOR}
    ),
}


def viewer_of_current_call() -> Viewer:
    """Which sites this call may see, from the roles that let it through."""
    access = current_access()
    sites = access.caller.scope_ids("site") if Role.DUTY_ROOM.value in access.roles else frozenset()
    return Viewer(actor=access.caller.sub, all_sites=access.unrestricted, site_ids=sites)


# Method names and signatures are fixed by the generated servicer base class; the context is unused
# because the platform interceptor handles metadata, errors and status. Each method: a command from the
# request (mapping), one use case, the response from mapping's messages.
class SafetyServicer(safety_pb2_grpc.SafetyServiceServicer):
    def __init__(self, use_cases: SafetyUseCases) -> None:
        self._sites = use_cases.sites
        self._persons = use_cases.persons
        self._vehicles = use_cases.vehicles
        self._detections = use_cases.detections
        self._alerts = use_cases.alerts
        self._inspections = use_cases.inspections
        self._statistics = use_cases.statistics

    # --- sites and sensors --------------------------------------------------------------------------

    def RegisterSite(  # noqa: N802
        self,
        request: safety_pb2.RegisterSiteRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RegisterSiteResponse:
        site = self._sites.register_site(mapping.register_site(request))
        return safety_pb2.RegisterSiteResponse(site=mapping.site_pb(site))

    def GetSite(  # noqa: N802
        self,
        request: safety_pb2.GetSiteRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.GetSiteResponse:
        site = self._sites.get_site(request.site_id, viewer_of_current_call())
        return safety_pb2.GetSiteResponse(site=mapping.site_pb(site))

    def ListSites(  # noqa: N802
        self,
        request: safety_pb2.ListSitesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ListSitesResponse:
        page = mapping.page(request.page)
        sites, token = self._sites.list_sites(
            viewer_of_current_call(),
            mapping.SITE_KIND.from_proto(request.kind),
            request.division_code,
            request.town,
            page,
        )
        return safety_pb2.ListSitesResponse(
            sites=[mapping.site_pb(s) for s in sites], page=mapping.page_response(token)
        )

    def RegisterSensor(  # noqa: N802
        self,
        request: safety_pb2.RegisterSensorRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RegisterSensorResponse:
        sensor = self._sites.register_sensor(mapping.register_sensor(request))
        return safety_pb2.RegisterSensorResponse(sensor=mapping.sensor_pb(sensor))

    def ListSensors(  # noqa: N802
        self,
        request: safety_pb2.ListSensorsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ListSensorsResponse:
        page = mapping.page(request.page)
        sensors, token = self._sites.list_sensors(
            request.site_id, mapping.SENSOR_KIND.from_proto(request.kind), page
        )
        return safety_pb2.ListSensorsResponse(
            sensors=[mapping.sensor_pb(s) for s in sensors], page=mapping.page_response(token)
        )

    # --- persons ------------------------------------------------------------------------------------

    def RecordPerson(  # noqa: N802
        self,
        request: safety_pb2.RecordPersonRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RecordPersonResponse:
        token, created = self._persons.record_person(mapping.record_person(request))
        return safety_pb2.RecordPersonResponse(person_token=token, created=created)

    def FindPerson(  # noqa: N802
        self,
        request: safety_pb2.FindPersonRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.FindPersonResponse:
        token = self._persons.find_person(request.identity_number)
        return safety_pb2.FindPersonResponse(found=token is not None, person_token=token or "")

    def GetPerson(  # noqa: N802
        self,
        request: safety_pb2.GetPersonRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.GetPersonResponse:
        person = self._persons.get_person(request.person_token)
        return safety_pb2.GetPersonResponse(person=mapping.person_pb(person))

    def RecordHazardousPurchase(  # noqa: N802
        self,
        request: safety_pb2.RecordHazardousPurchaseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RecordHazardousPurchaseResponse:
        purchase_id = self._persons.record_purchase(mapping.record_purchase(request))
        return safety_pb2.RecordHazardousPurchaseResponse(
            purchase_id=purchase_id, person_token=request.person_token
        )

    # --- vehicles of concern -------------------------------------------------------------------------

    def RecordVehicleOfConcern(  # noqa: N802
        self,
        request: safety_pb2.RecordVehicleOfConcernRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RecordVehicleOfConcernResponse:
        token, created = self._vehicles.record_vehicle(mapping.record_vehicle(request))
        return safety_pb2.RecordVehicleOfConcernResponse(vehicle_token=token, created=created)

    def GetVehicleOfConcern(  # noqa: N802
        self,
        request: safety_pb2.GetVehicleOfConcernRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.GetVehicleOfConcernResponse:
        vehicle = self._vehicles.get_vehicle(request.vehicle_token)
        return safety_pb2.GetVehicleOfConcernResponse(vehicle=mapping.vehicle_pb(vehicle))

    def ListVehiclesOfConcern(  # noqa: N802
        self,
        request: safety_pb2.ListVehiclesOfConcernRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ListVehiclesOfConcernResponse:
        page = mapping.page(request.page)
        vehicles, token = self._vehicles.list_vehicles(request.person_token, page)
        return safety_pb2.ListVehiclesOfConcernResponse(
            vehicles=[mapping.vehicle_pb(v) for v in vehicles], page=mapping.page_response(token)
        )

    def RemoveVehicleOfConcern(  # noqa: N802
        self,
        request: safety_pb2.RemoveVehicleOfConcernRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RemoveVehicleOfConcernResponse:
        token, person = self._vehicles.remove_vehicle(mapping.remove_vehicle(request))
        return safety_pb2.RemoveVehicleOfConcernResponse(vehicle_token=token, person_token=person)

    # --- detections and alarms ----------------------------------------------------------------------

    def ReportDetections(  # noqa: N802
        self,
        request: safety_pb2.ReportDetectionsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ReportDetectionsResponse:
        result = self._detections.report_detections(
            mapping.report_detections(request), viewer_of_current_call()
        )
        return safety_pb2.ReportDetectionsResponse(
            detection_ids=list(result.detection_ids),
            assessments=[mapping.assessment_pb(a) for a in result.assessments],
        )

    def RaiseAlarm(  # noqa: N802
        self,
        request: safety_pb2.RaiseAlarmRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RaiseAlarmResponse:
        alert, raised = self._alerts.raise_alarm(mapping.raise_alarm(request), viewer_of_current_call())
        return safety_pb2.RaiseAlarmResponse(alert=mapping.alert_pb(alert), alert_raised=raised)

    # --- alerts -------------------------------------------------------------------------------------

    def GetAlert(  # noqa: N802
        self,
        request: safety_pb2.GetAlertRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.GetAlertResponse:
        alert = self._alerts.get_alert(request.alert_id, viewer_of_current_call())
        return safety_pb2.GetAlertResponse(alert=mapping.alert_pb(alert))

    def ListAlerts(  # noqa: N802
        self,
        request: safety_pb2.ListAlertsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ListAlertsResponse:
        page = mapping.page(request.page)
        statuses = mapping.alert_statuses(request.statuses)
        raised_from, raised_until = mapping.raised_between(request)
        alerts, token = self._alerts.list_alerts(
            viewer_of_current_call(),
            request.site_id,
            statuses=statuses,
            raised_from=raised_from,
            raised_until=raised_until,
            page=page,
        )
        return safety_pb2.ListAlertsResponse(
            alerts=[mapping.alert_pb(a) for a in alerts], page=mapping.page_response(token)
        )

    async def WatchAlerts(  # noqa: N802
        self, request: safety_pb2.WatchAlertsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[safety_pb2.WatchAlertsResponse]:
        # An async generator: the platform serves it on the event loop, so a watcher holds no thread.
        async def live() -> None:
            # Response headers tell the client the watch is live: changes committed from now on reach it.
            await context.send_initial_metadata(((WATCH_LIVE_METADATA, "true"),))

        changes = self._alerts.watch_alerts(
            viewer_of_current_call(), request.site_id, include_open=request.include_open, on_live=live
        )
        async for change, alert in changes:
            yield safety_pb2.WatchAlertsResponse(
                change=mapping.ALERT_CHANGE.to_proto(change), alert=mapping.alert_pb(alert)
            )

    def AcknowledgeAlert(  # noqa: N802
        self,
        request: safety_pb2.AcknowledgeAlertRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.AcknowledgeAlertResponse:
        alert = self._alerts.acknowledge(mapping.acknowledge(request), viewer_of_current_call())
        return safety_pb2.AcknowledgeAlertResponse(alert=mapping.alert_pb(alert))

    def DispatchUnits(  # noqa: N802
        self,
        request: safety_pb2.DispatchUnitsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.DispatchUnitsResponse:
        alert, unit_ids = self._alerts.dispatch(mapping.dispatch(request), viewer_of_current_call())
        return safety_pb2.DispatchUnitsResponse(alert=mapping.alert_pb(alert), unit_ids=unit_ids)

    def UpdateUnitStatus(  # noqa: N802
        self,
        request: safety_pb2.UpdateUnitStatusRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.UpdateUnitStatusResponse:
        alert = self._alerts.update_unit(mapping.update_unit(request), viewer_of_current_call())
        return safety_pb2.UpdateUnitStatusResponse(alert=mapping.alert_pb(alert))

    def ResolveAlert(  # noqa: N802
        self,
        request: safety_pb2.ResolveAlertRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ResolveAlertResponse:
        alert = self._alerts.resolve(mapping.resolve(request), viewer_of_current_call())
        return safety_pb2.ResolveAlertResponse(alert=mapping.alert_pb(alert))

    # --- inspections and statistics -----------------------------------------------------------------

    def RecordInspection(  # noqa: N802
        self,
        request: safety_pb2.RecordInspectionRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.RecordInspectionResponse:
        inspection = self._inspections.record_inspection(mapping.record_inspection(request))
        return safety_pb2.RecordInspectionResponse(inspection=mapping.inspection_pb(inspection))

    def ListInspections(  # noqa: N802
        self,
        request: safety_pb2.ListInspectionsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.ListInspectionsResponse:
        page = mapping.page(request.page)
        found, token = self._inspections.list_inspections(request.site_id, page)
        return safety_pb2.ListInspectionsResponse(
            inspections=[mapping.inspection_pb(i) for i in found], page=mapping.page_response(token)
        )

    def GetStatistics(  # noqa: N802
        self,
        request: safety_pb2.GetStatisticsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> safety_pb2.GetStatisticsResponse:
        rows, overall = self._statistics.statistics(
            mapping.statistics_query(request), viewer_of_current_call()
        )
        return safety_pb2.GetStatisticsResponse(
            rows=[mapping.figures_pb(r) for r in rows], total=mapping.figures_pb(overall)
        )
