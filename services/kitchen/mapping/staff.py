"""Proto <-> domain for staff and morning checks: commands, responses and events. Events carry the staff
token and coarse bar reasons only: never a name, identity number, certificate, temperature or symptom."""

from __future__ import annotations

from datetime import datetime

from cityhub.kitchen.v1 import events_pb2, kitchen_pb2

from services.kitchen.domain.staff import (
    AddStaff,
    BarReason,
    CertificateStatus,
    CheckOutcome,
    CheckRecord,
    ListMorningChecks,
    MorningCheck,
    RecordMorningCheck,
    RecordReplacement,
    StaffMember,
    StaffRecord,
    StaffRole,
    Symptom,
)
from services.platform.protoconv import EnumMap, datetime_of, optional_timestamp, to_timestamp

__all__ = [
    "BAR_REASON",
    "CERTIFICATE_STATUS",
    "CHECK_OUTCOME",
    "STAFF_ROLE",
    "SYMPTOM",
    "add_staff",
    "check_pb",
    "list_morning_checks",
    "morning_check_failed",
    "record_morning_check",
    "record_replacement",
    "staff_added",
    "staff_pb",
]

STAFF_ROLE = EnumMap(StaffRole, kitchen_pb2.StaffRole, "STAFF_ROLE")
CERTIFICATE_STATUS = EnumMap(CertificateStatus, kitchen_pb2.CertificateStatus, "CERTIFICATE_STATUS")
SYMPTOM = EnumMap(Symptom, kitchen_pb2.Symptom, "SYMPTOM")
BAR_REASON = EnumMap(BarReason, kitchen_pb2.BarReason, "BAR_REASON")
CHECK_OUTCOME = EnumMap(CheckOutcome, kitchen_pb2.CheckOutcome, "CHECK_OUTCOME")


def add_staff(request: kitchen_pb2.AddStaffRequest) -> AddStaff:
    return AddStaff(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        name=request.name,
        identity_number=request.identity_number,
        role=STAFF_ROLE.from_proto(request.role),
        certificate_number=request.health_certificate_number,
        certificate_expiry=request.health_certificate_expiry,
        face_template_ref=request.face_template_ref,
        shifts=tuple(request.shifts),
    )


def staff_pb(staff: StaffMember) -> kitchen_pb2.StaffMember:
    return kitchen_pb2.StaffMember(
        staff_id=staff.staff_id,
        kitchen_id=staff.kitchen_id,
        staff_token=staff.staff_token,
        name=staff.name,
        identity_number=staff.identity_number,
        role=STAFF_ROLE.to_proto(staff.role),
        health_certificate_number=staff.certificate_number,
        health_certificate_expiry=staff.certificate_expiry.isoformat() if staff.certificate_expiry else "",
        certificate_status=CERTIFICATE_STATUS.to_proto(staff.certificate_status),
        face_template_ref=staff.face_template_ref,
        shifts=list(staff.shifts),
        added_at=to_timestamp(staff.added_at),
    )


def staff_added(staff: StaffRecord) -> events_pb2.StaffAdded:
    return events_pb2.StaffAdded(
        kitchen_id=staff.kitchen_id,
        staff_id=staff.staff_id,
        staff_token=staff.staff_token,
        role=STAFF_ROLE.to_proto(staff.role),
        added_at=to_timestamp(staff.added_at),
    )


def record_morning_check(request: kitchen_pb2.RecordMorningCheckRequest) -> RecordMorningCheck:
    return RecordMorningCheck(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        staff_id=request.staff_id,
        shift_date=request.shift_date,
        shift=request.shift,
        checked_at=datetime_of(request, "checked_at"),
        face_match_score=request.face_match_score,
        temperature_c=request.temperature_c,
        symptoms=tuple(SYMPTOM.from_proto(s) for s in request.symptoms),
    )


def record_replacement(request: kitchen_pb2.RecordReplacementRequest) -> RecordReplacement:
    return RecordReplacement(
        request_id=request.request_id,
        kitchen_id=request.kitchen_id,
        check_id=request.check_id,
        replacement_staff_id=request.replacement_staff_id,
    )


def list_morning_checks(request: kitchen_pb2.ListMorningChecksRequest) -> ListMorningChecks:
    return ListMorningChecks(
        kitchen_id=request.kitchen_id, shift_date=request.shift_date, shift=request.shift
    )


def check_pb(check: MorningCheck) -> kitchen_pb2.MorningCheck:
    record = check.record
    return kitchen_pb2.MorningCheck(
        check_id=record.check_id,
        kitchen_id=record.kitchen_id,
        staff_id=record.staff_id,
        staff_token=record.staff_token,
        shift_date=record.shift_date.isoformat(),
        shift=record.shift,
        checked_at=optional_timestamp(record.checked_at),
        face_match_score=record.face_match_score,
        temperature_c=check.temperature_c,
        symptoms=[SYMPTOM.to_proto(s) for s in check.symptoms],
        outcome=CHECK_OUTCOME.to_proto(record.outcome),
        bar_reasons=[BAR_REASON.to_proto(r) for r in record.bar_reasons],
        replaced_by_staff_id=record.replaced_by_staff_id or "",
    )


def morning_check_failed(check: CheckRecord, alert_id: str, at: datetime) -> events_pb2.MorningCheckFailed:
    return events_pb2.MorningCheckFailed(
        kitchen_id=check.kitchen_id,
        check_id=check.check_id,
        staff_token=check.staff_token,
        shift_date=check.shift_date.isoformat(),
        shift=check.shift,
        bar_reasons=[BAR_REASON.to_proto(r) for r in check.bar_reasons],
        alert_id=alert_id,
        at=to_timestamp(at),
    )
