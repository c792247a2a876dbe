"""Proto translation of the trail family: a stored step as the Step message, a verdict as VerifyTrail's
answer."""

from __future__ import annotations

from cityhub.govservice.v1 import govservice_pb2

from services.govservice.domain.model import ApplicationStatus
from services.govservice.domain.trail import ChainVerdict, StepRecord
from services.govservice.mapping import APPLICATION_STATUS
from services.platform.protoconv import to_timestamp

__all__ = ["step_pb", "verify_trail_response"]


def step_pb(step: StepRecord) -> govservice_pb2.Step:
    # A status text that names no status (a tampered row) is shown as unspecified, not refused.
    status = (
        APPLICATION_STATUS.to_proto(step.status)
        if isinstance(step.status, ApplicationStatus)
        else govservice_pb2.APPLICATION_STATUS_UNSPECIFIED
    )
    return govservice_pb2.Step(
        sequence=step.sequence,
        status=status,
        region=step.region,
        actor=step.actor,
        at=to_timestamp(step.at),
        note=step.note,
        previous_hash=step.previous_hash,
        hash=step.hash,
        signature=step.signature,
        key_id=step.key_id,
    )


def verify_trail_response(verdict: ChainVerdict) -> govservice_pb2.VerifyTrailResponse:
    return govservice_pb2.VerifyTrailResponse(
        intact=verdict.intact,
        steps=verdict.steps,
        first_broken=verdict.first_broken,
        problem=verdict.problem,
    )
