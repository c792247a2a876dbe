"""CommerceService methods of the activities family: activities, sign-ups with a waitlist, check-in by the
member code."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import activities as mapping
from services.commerce.usecases.activities import Activities
from services.commerce.usecases.common import CommerceContext

__all__ = ["ActivitiesApi"]


class ActivitiesApi:
    _activities: Activities

    def _init_activities(self, ctx: CommerceContext) -> None:
        self._activities = Activities(ctx)

    def CreateActivity(  # noqa: N802
        self,
        request: commerce_pb2.CreateActivityRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CreateActivityResponse:
        view = self._activities.create_activity(mapping.create_activity(request), current_visibility())
        return commerce_pb2.CreateActivityResponse(activity=mapping.activity_pb(view))

    def GetActivity(  # noqa: N802
        self,
        request: commerce_pb2.GetActivityRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.GetActivityResponse:
        view = self._activities.get_activity(request.activity_id, current_visibility())
        return commerce_pb2.GetActivityResponse(activity=mapping.activity_pb(view))

    def ListActivities(  # noqa: N802
        self,
        request: commerce_pb2.ListActivitiesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListActivitiesResponse:
        items, token = self._activities.list_activities(
            request.chamber_id, current_visibility(), request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListActivitiesResponse(
            activities=[mapping.activity_pb(v) for v in items], page=mapping.page_response(token)
        )

    def SignUpForActivity(  # noqa: N802
        self,
        request: commerce_pb2.SignUpForActivityRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.SignUpForActivityResponse:
        sign_up = self._activities.sign_up(mapping.sign_up_for_activity(request), current_visibility())
        return commerce_pb2.SignUpForActivityResponse(sign_up=mapping.sign_up_pb(sign_up))

    def CancelSignUp(  # noqa: N802
        self,
        request: commerce_pb2.CancelSignUpRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CancelSignUpResponse:
        cancelled, promoted = self._activities.cancel(request.sign_up_id, current_visibility())
        return commerce_pb2.CancelSignUpResponse(
            sign_up=mapping.sign_up_pb(cancelled), promoted=mapping.sign_up_pb(promoted) if promoted else None
        )

    def CheckInToActivity(  # noqa: N802
        self,
        request: commerce_pb2.CheckInToActivityRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CheckInToActivityResponse:
        sign_up = self._activities.check_in(mapping.check_in(request), current_visibility())
        return commerce_pb2.CheckInToActivityResponse(sign_up=mapping.sign_up_pb(sign_up))

    def ListSignUps(  # noqa: N802
        self,
        request: commerce_pb2.ListSignUpsRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListSignUpsResponse:
        items, token = self._activities.list_sign_ups(
            request.activity_id, current_visibility(), request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListSignUpsResponse(
            sign_ups=[mapping.sign_up_pb(s) for s in items], page=mapping.page_response(token)
        )
