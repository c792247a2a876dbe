"""Proto <-> domain for inspections: the RecordInspection command, responses and the event."""

from __future__ import annotations

from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.kitchen.domain.kitchens import Inspection, InspectionResult, RecordInspection
from services.platform.protoconv import EnumMap, datetime_of, to_timestamp

__all__ = ["INSPECTION_RESULT", "inspection_pb", "inspection_recorded", "record_inspection"]

INSPECTION_RESULT = EnumMap(InspectionResult, kitchen_pb2.InspectionResult, "INSPECTION_RESULT")


def record_inspection(request: kitchen_pb2.RecordInspectionRequest) -> RecordInspection:
    return RecordInspection(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        inspected_at=datetime_of(request, "inspected_at"),
        inspector=request.inspector,
        findings=tuple(request.findings),
        result=INSPECTION_RESULT.from_proto(request.result),
    )


def inspection_pb(inspection: Inspection) -> kitchen_pb2.Inspection:
    return kitchen_pb2.Inspection(
        inspection_id=inspection.inspection_id,
        kitchen_id=inspection.kitchen_id,
        inspected_at=to_timestamp(inspection.inspected_at),
        inspector=inspection.inspector,
        findings=list(inspection.findings),
        result=INSPECTION_RESULT.to_proto(inspection.result),
    )


def inspection_recorded(inspection: Inspection) -> events_pb2.InspectionRecorded:
    return events_pb2.InspectionRecorded(
        kitchen_id=inspection.kitchen_id,
        inspection_id=inspection.inspection_id,
        result=INSPECTION_RESULT.to_proto(inspection.result),
        findings=len(inspection.findings),
        inspected_at=to_timestamp(inspection.inspected_at),
    )
