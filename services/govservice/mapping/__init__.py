"""The govservice service's proto <-> domain translation: the only modules that build or read *_pb2
messages (responses and events). One module per family; the enum maps every family shares live here."""

from __future__ import annotations

from cityhub.govservice.v1 import govservice_pb2

from services.govservice.domain.model import (
    ApplicantKind,
    ApplicationStatus,
    AuthorityLevel,
    Direction,
    Verification,
)
from services.platform.protoconv import EnumMap

__all__ = ["APPLICANT_KIND", "APPLICATION_STATUS", "AUTHORITY_LEVEL", "DIRECTION", "VERIFICATION"]

AUTHORITY_LEVEL = EnumMap(AuthorityLevel, govservice_pb2.AuthorityLevel, "AUTHORITY_LEVEL")
APPLICANT_KIND = EnumMap(ApplicantKind, govservice_pb2.ApplicantKind, "APPLICANT_KIND")
DIRECTION = EnumMap(Direction, govservice_pb2.Direction, "DIRECTION")
VERIFICATION = EnumMap(Verification, govservice_pb2.Verification, "VERIFICATION")
APPLICATION_STATUS = EnumMap(ApplicationStatus, govservice_pb2.ApplicationStatus, "APPLICATION_STATUS")
