"""KitchenService methods of the staff family: AddStaff, ListStaff, RecordMorningCheck,
RecordReplacement, ListMorningChecks. Responses carry identity and health fields; the platform masks
them per caller and audits what it shows."""

from __future__ import annotations

import grpc
from cityhub.kitchen.v1 import kitchen_pb2

from services.kitchen.api import current_visibility
from services.kitchen.mapping import staff as mapping
from services.kitchen.mapping.kitchens import page_pb
from services.kitchen.usecases.checks import MorningChecks
from services.kitchen.usecases.common import KitchenContext
from services.kitchen.usecases.staff import StaffRoster

__all__ = ["StaffApi"]


class StaffApi:
    _staff_roster: StaffRoster
    _morning_checks: MorningChecks

    def _init_staff(self, ctx: KitchenContext) -> None:
        self._staff_roster = StaffRoster(ctx)
        self._morning_checks = MorningChecks(ctx)

    def AddStaff(  # noqa: N802
        self,
        request: kitchen_pb2.AddStaffRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.AddStaffResponse:
        staff = self._staff_roster.add(mapping.add_staff(request), current_visibility())
        return kitchen_pb2.AddStaffResponse(staff=mapping.staff_pb(staff))

    def ListStaff(  # noqa: N802
        self,
        request: kitchen_pb2.ListStaffRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListStaffResponse:
        staff, token = self._staff_roster.list(
            request.kitchen_id, current_visibility(), request.page.page_size, request.page.page_token
        )
        return kitchen_pb2.ListStaffResponse(staff=[mapping.staff_pb(s) for s in staff], page=page_pb(token))

    def RecordMorningCheck(  # noqa: N802
        self,
        request: kitchen_pb2.RecordMorningCheckRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RecordMorningCheckResponse:
        check = self._morning_checks.record(mapping.record_morning_check(request), current_visibility())
        return kitchen_pb2.RecordMorningCheckResponse(check=mapping.check_pb(check))

    def RecordReplacement(  # noqa: N802
        self,
        request: kitchen_pb2.RecordReplacementRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.RecordReplacementResponse:
        check = self._morning_checks.replace(mapping.record_replacement(request), current_visibility())
        return kitchen_pb2.RecordReplacementResponse(check=mapping.check_pb(check))

    def ListMorningChecks(  # noqa: N802
        self,
        request: kitchen_pb2.ListMorningChecksRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> kitchen_pb2.ListMorningChecksResponse:
        checks, token = self._morning_checks.list(
            mapping.list_morning_checks(request),
            current_visibility(),
            request.page.page_size,
            request.page.page_token,
        )
        return kitchen_pb2.ListMorningChecksResponse(
            checks=[mapping.check_pb(c) for c in checks], page=page_pb(token)
        )
