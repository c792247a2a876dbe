"""ProbeService: a tiny diagnostic service the platform's own tests (and operators) call.

``Echo`` exercises the bootstrap: metadata, request ids, trace context and the mapping of domain errors
to status codes. ``GetPersonRecord`` returns a made-up person whose fields carry every sensitivity
category (nested and repeated), so the security layer can be tested end to end without a domain service.
``Hold`` (a unary call that keeps its worker busy) and ``Ticks`` (an endless stream) let the server's
admission limits and its unstarvable health be tested.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from cityhub.testing.v1 import testing_pb2, testing_pb2_grpc

from services.platform.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from services.platform.grpc_server import current_call
from services.platform.identifiers import identity_check_char
from services.platform.security.policy import PolicyTable, RpcPolicy, scope_from, subject_from
from services.platform.security.roles import ALL_ROLES, Role

__all__ = ["POLICY", "PROBE_SERVICE", "ProbeServicer", "made_up_identity_number"]

PROBE_SERVICE = "cityhub.testing.v1.ProbeService"

POLICY: PolicyTable = {
    # Anyone authenticated may check that the service answers.
    "Echo": RpcPolicy(roles=ALL_ROLES),
    "Hold": RpcPolicy(roles=ALL_ROLES),
    "Ticks": RpcPolicy(roles=ALL_ROLES),
    # Shaped like a real person lookup: district-wide investigators, the duty room of the site concerned,
    # and district operators and services, who receive it masked.
    "GetPersonRecord": RpcPolicy(
        roles={
            Role.POLICE,
            Role.SAFETY_INVESTIGATOR,
            Role.DUTY_ROOM,
            Role.DISTRICT_OPERATOR,
            Role.KITCHEN_MANAGER,
            Role.SERVICE,
        },
        scope=scope_from("site", "site_id"),
        subject=subject_from("person_token"),
    ),
}


def made_up_identity_number(seed: str) -> str:
    """A well-formed (valid check character) but invented identity number: tests never use real ones."""
    sequence = sum(seed.encode()) % 1000
    first17 = f"33100419800101{sequence:03d}"
    return first17 + identity_check_char(first17)


# Method names and signatures are fixed by the generated servicer base class.
class ProbeServicer(testing_pb2_grpc.ProbeServiceServicer):
    def Echo(  # noqa: N802
        self,
        request: testing_pb2.EchoRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> testing_pb2.EchoResponse:
        call = current_call()
        match request.fail_with:
            case "invalid":
                raise InvalidArgumentError.of("text", "the probe was asked to reject this text")
            case "not_found":
                raise NotFoundError("the probe was asked to find nothing")
            case "already_exists":
                raise AlreadyExistsError("the probe was asked to report a duplicate")
            case "failed_precondition":
                raise FailedPreconditionError("the probe was asked to refuse the transition")
            case "internal":
                raise RuntimeError("the probe was asked to fail internally")
        return testing_pb2.EchoResponse(
            text=request.text, request_id=call.request_id, trace_id=call.trace.trace_id
        )

    def Hold(  # noqa: N802
        self,
        request: testing_pb2.HoldRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> testing_pb2.HoldResponse:
        if not 0 <= request.hold_ms <= 60_000:
            raise InvalidArgumentError.of("hold_ms", "must be between 0 and 60000")
        time.sleep(request.hold_ms / 1000)
        return testing_pb2.HoldResponse(thread_name=threading.current_thread().name)

    async def Ticks(  # noqa: N802
        self,
        request: testing_pb2.TicksRequest,
        context: grpc.aio.ServicerContext[Any, Any],  # noqa: ARG002
    ) -> AsyncIterator[testing_pb2.TicksResponse]:
        if not 1 <= request.interval_ms <= 60_000:
            raise InvalidArgumentError.of("interval_ms", "must be between 1 and 60000")
        for sequence in itertools.count():
            yield testing_pb2.TicksResponse(sequence=sequence)
            await asyncio.sleep(request.interval_ms / 1000)

    def GetPersonRecord(  # noqa: N802
        self,
        request: testing_pb2.GetPersonRecordRequest,
        context: grpc.ServicerContext,  # noqa: ARG002
    ) -> testing_pb2.GetPersonRecordResponse:
        if not request.person_token:
            raise InvalidArgumentError.of("person_token", "is required")
        token = request.person_token
        return testing_pb2.GetPersonRecordResponse(
            record=testing_pb2.PersonRecord(
                person_token=token,
                identity_number=made_up_identity_number(token),
                aliases=["Wang Ermazi"],
                health=testing_pb2.HealthSummary(
                    psychiatric_history=True, body_temperature_c=37.9, updated_by="clinic-7"
                ),
                fuel_purchases=[testing_pb2.FuelPurchase(station_id="ST-0042", litres=5.0, loose=True)],
                contacts=[
                    testing_pb2.Contact(relation="sibling", phone="13800000017"),
                    testing_pb2.Contact(relation="employer", phone="057680000001"),
                ],
                danger_level="high",
            )
        )
