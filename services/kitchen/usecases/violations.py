"""AI captures and violations: a capture opens a violation (alert + ViolationOpened) or joins the open one
of the same kind at the same camera; the manager rectifies it, an inspector verifies or reopens it."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.message import Message

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.model import AlertKind, Severity
from services.kitchen.domain.violations import (
    CAMERA_KIND,
    JOINABLE,
    Capture,
    ListViolationsQuery,
    RectifyViolation,
    ReopenViolation,
    ReportCapture,
    VerifyViolation,
    Violation,
    ViolationStatus,
    ViolationStep,
    next_status,
)
from services.kitchen.mapping import violations as mapping
from services.kitchen.usecases.common import (
    KitchenContext,
    KitchenTx,
    new_id,
    raise_alert,
    require_kitchen,
)
from services.platform.errors import InvalidArgumentError, NotFoundError, shown
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["ViolationBook"]

log = get_logger()
_REPORT = "report_capture"


class ViolationBook:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx
        self._uow = ctx.uow
        self._clock = ctx.clock
        self._window = timedelta(seconds=ctx.config.violation_join_window_s)

    # --- captures -------------------------------------------------------------------------------------

    def report(self, command: ReportCapture, visibility: Visibility, by: str) -> tuple[Violation, bool]:
        """The violation the capture opened or joined, and whether it joined."""
        now = self._clock()
        command.check(now)
        assert command.kind is not None, "checked"
        assert command.captured_at is not None, "checked"
        with self._uow.transaction() as tx:
            replay = tx.claim(_REPORT, command.request_id, command)
            if replay is not None:
                return self._stored(tx, replay["violation_id"]), bool(replay["joined"])
            require_kitchen(tx, command.kitchen_id, visibility)
            if tx.repo.equipment_kind(command.kitchen_id, command.camera_id) != CAMERA_KIND:
                raise InvalidArgumentError.of("camera_id", "is not a camera registered in this kitchen")
            tx.repo.lock_camera_captures(command.camera_id)
            capture = Capture(
                new_id("cap"),
                command.camera_id,
                command.kind,
                command.captured_at,
                command.snapshot_ref,
                command.confidence,
            )
            open_one = tx.repo.joinable_violation(
                command.camera_id, command.kind, JOINABLE, command.captured_at, self._window
            )
            joined = open_one is not None
            if open_one is None:
                violation_id = self._open(tx, command, capture, now, by)
            else:
                violation_id = open_one.violation_id
            tx.repo.add_capture(violation_id, capture)
            tx.remember(_REPORT, command.request_id, {"violation_id": violation_id, "joined": joined})
            violation = self._stored(tx, violation_id)
        log.info(
            "violation_capture_reported",
            kitchen_id=violation.kitchen_id,
            violation_id=violation.violation_id,
            kind=violation.kind.value,
            joined=joined,
        )
        return violation, joined

    def _open(self, tx: KitchenTx, command: ReportCapture, capture: Capture, now: datetime, by: str) -> str:
        assert command.kind is not None, "checked"
        violation_id = new_id("vio")
        alert = raise_alert(
            tx,
            kitchen_id=command.kitchen_id,
            kind=AlertKind.VIOLATION,
            severity=Severity.MEDIUM,
            subject_id=violation_id,
            message=f"camera {command.camera_id} captured a {command.kind.value} violation",
            at=now,
        )
        violation = Violation(
            violation_id=violation_id,
            kitchen_id=command.kitchen_id,
            camera_id=command.camera_id,
            kind=command.kind,
            status=ViolationStatus.OPEN,
            # The violation happened when the camera saw it; time to rectify counts from then.
            opened_at=capture.captured_at,
            last_capture_at=capture.captured_at,
            first_rectified_at=None,
            alert_id=alert.alert_id,
            history=(ViolationStep(ViolationStatus.OPEN, capture.captured_at, by, "", ""),),
        )
        tx.repo.add_violation(violation)
        tx.publish(
            key=violation.kitchen_id, subject=violation_id, message=mapping.violation_opened(violation)
        )
        return violation_id

    # --- the lifecycle --------------------------------------------------------------------------------

    def rectify(self, command: RectifyViolation, visibility: Visibility, by: str) -> Violation:
        command.check()
        return self._step(
            command.violation_id,
            ViolationStatus.RECTIFIED,
            visibility,
            by,
            note=command.action,
            photo_ref=command.photo_ref,
        )

    def verify(self, command: VerifyViolation, visibility: Visibility, by: str) -> Violation:
        command.check()
        return self._step(
            command.violation_id, ViolationStatus.VERIFIED, visibility, by, note=command.note, photo_ref=""
        )

    def reopen(self, command: ReopenViolation, visibility: Visibility, by: str) -> Violation:
        command.check()
        return self._step(
            command.violation_id, ViolationStatus.REOPENED, visibility, by, note=command.reason, photo_ref=""
        )

    def _step(
        self,
        violation_id: str,
        target: ViolationStatus,
        visibility: Visibility,
        by: str,
        *,
        note: str,
        photo_ref: str,
    ) -> Violation:
        now = self._clock()
        with self._uow.transaction() as tx:
            # Locked: two managers rectifying at once get one RECTIFIED and one FAILED_PRECONDITION.
            current = self._visible(tx, violation_id, visibility, for_update=True)
            next_status(current.status, target)
            step = ViolationStep(target, now, by, note, photo_ref)
            moved = current.stepped(step)
            tx.repo.add_violation_step(violation_id, step)
            tx.repo.set_violation_status(violation_id, moved.status, moved.first_rectified_at)
            event: Message
            if target == ViolationStatus.RECTIFIED:
                event = mapping.violation_rectified(moved, step)
            elif target == ViolationStatus.VERIFIED:
                event = mapping.violation_verified(moved, step)
                # Verified closes the matter: the manager's alert about it is no longer open.
                if moved.alert_id:
                    tx.repo.clear_alert(moved.alert_id, now)
            else:
                event = mapping.violation_reopened(moved, step)
            tx.publish(key=moved.kitchen_id, subject=violation_id, message=event)
        log.info("violation_stepped", violation_id=violation_id, status=target.value)
        return moved

    # --- reads ----------------------------------------------------------------------------------------

    def get(self, violation_id: str, visibility: Visibility) -> Violation:
        with self._uow.transaction() as tx:
            return self._visible(tx, violation_id, visibility)

    def list(
        self, query: ListViolationsQuery, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Violation], str]:
        query.check()
        page = page_of(page_size, page_token)
        before = decode_cursor(page.token, datetime, str)
        with self._uow.transaction() as tx:
            require_kitchen(tx, query.kitchen_id, visibility)
            found = tx.repo.list_violations(
                query.kitchen_id,
                statuses=query.status_filter,
                kind=query.kind,
                start=query.start,
                end=query.end,
                before=before,
                limit=page.size + 1,
            )
        return paginate(found, page, lambda v: (v.opened_at, v.violation_id))

    @staticmethod
    def _visible(
        tx: KitchenTx, violation_id: str, visibility: Visibility, *, for_update: bool = False
    ) -> Violation:
        """The violation, or NOT_FOUND when it does not exist or its kitchen is outside the caller's view
        (a manager cannot tell another kitchen's violations from missing ones)."""
        violation = tx.repo.get_violation(violation_id, for_update=for_update) if violation_id else None
        if violation is None:
            raise NotFoundError(f"no violation {shown(violation_id)}")
        kitchen = tx.repo.get_kitchen(violation.kitchen_id)
        if kitchen is None or not visibility.sees(kitchen.kitchen_id, kitchen.site_id):
            raise NotFoundError(f"no violation {shown(violation_id)}")
        return violation

    @staticmethod
    def _stored(tx: KitchenTx, violation_id: str) -> Violation:
        violation = tx.repo.get_violation(violation_id)
        assert violation is not None, "a stored violation is never deleted"
        return violation
