"""CommerceService methods of learning and training: courses, enrolment, completion."""

from __future__ import annotations

import grpc
from cityhub.commerce.v1 import commerce_pb2
from cityhub.common.v1 import common_pb2

from services.commerce.api import current_visibility
from services.commerce.mapping import training as convert
from services.commerce.usecases.common import CommerceContext
from services.commerce.usecases.training import Training

__all__ = ["TrainingApi"]


class TrainingApi:
    _training: Training

    def _init_training(self, ctx: CommerceContext) -> None:
        self._training = Training(ctx)

    def CreateCourse(  # noqa: N802
        self,
        request: commerce_pb2.CreateCourseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CreateCourseResponse:
        course = self._training.create_course(convert.create_course(request), current_visibility())
        return commerce_pb2.CreateCourseResponse(course=convert.course_pb(course))

    def ListCourses(  # noqa: N802
        self,
        request: commerce_pb2.ListCoursesRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.ListCoursesResponse:
        courses, token = self._training.list_courses(
            request.chamber_id, current_visibility(), request.page.page_size, request.page.page_token
        )
        return commerce_pb2.ListCoursesResponse(
            courses=[convert.course_pb(c) for c in courses],
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )

    def EnrolInCourse(  # noqa: N802
        self,
        request: commerce_pb2.EnrolInCourseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.EnrolInCourseResponse:
        enrolment = self._training.enrol(convert.enrol_in_course(request), current_visibility())
        return commerce_pb2.EnrolInCourseResponse(enrolment=convert.enrolment_pb(enrolment))

    def CompleteCourse(  # noqa: N802
        self,
        request: commerce_pb2.CompleteCourseRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> commerce_pb2.CompleteCourseResponse:
        enrolment = self._training.complete(request.enrolment_id, current_visibility())
        return commerce_pb2.CompleteCourseResponse(enrolment=convert.enrolment_pb(enrolment))
