"""Morning checks (晨检): recording a check (passed, or barred with the coarse reasons), a manager's
replacement for a barred member, the list of a day's checks, and the NO_CHECK sweep.

A barred check raises an alert to the kitchen's manager and publishes MorningCheckFailed, in the same
transaction as the check: the alert names the staff token and the coarse reasons only. The temperature
and symptoms are sealed under the check's id and opened only for the response (the platform masks them
for callers not cleared for health data).

The sweep (:class:`CheckSweeper`, every ``interval_s``) bars every rostered member without a check for a
shift of today (local) that has started. Several replicas may sweep at once: the row is inserted with
``ON CONFLICT DO NOTHING`` on (staff, date, shift), and only the replica whose insert made the row raises
the alert, so a member is barred and alerted exactly once. A check recorded while the sweep bars the same
member meets the same key and is answered FAILED_PRECONDITION.

A check may be recorded for any shift of the kitchen, not only those the member is rostered on: a
replacement must pass the check of the shift they cover. A check recorded at or after the shift's start
is stored barred (NO_CHECK), so a late check is on record rather than refused."""

from __future__ import annotations

import threading
from datetime import date, datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.model import AlertKind, Kitchen, Severity
from services.kitchen.domain.staff import (
    BarReason,
    CheckOutcome,
    CheckRecord,
    ListMorningChecks,
    MorningCheck,
    RecordMorningCheck,
    RecordReplacement,
    Symptom,
    bar_reasons,
    local_today,
    shift_start,
)
from services.kitchen.mapping.staff import morning_check_failed
from services.kitchen.usecases.common import KitchenContext, KitchenTx, new_id, raise_alert, require_kitchen
from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, shown
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate
from services.platform.periodic import repeat
from services.platform.vault import Vault

__all__ = ["CheckSweeper", "MorningChecks", "open_check"]

log = get_logger()
_RECORD = "record_morning_check"
_REPLACE = "record_replacement"
# The vault purpose a check's temperature and symptoms are sealed under (bound to the check id).
SEALED_CHECK = "morning_check"
# Rows the sweep bars in one transaction; a full batch makes it go round again at once.
SWEEP_BATCH = 200


def open_check(vault: Vault, record: CheckRecord) -> MorningCheck:
    """The check with its temperature and symptoms opened (none for a NO_CHECK bar)."""
    if record.sealed is None:
        return MorningCheck(record, 0.0, ())
    opened = vault.open(SEALED_CHECK, record.check_id, record.sealed)
    return MorningCheck(record, float(opened["temperature_c"]), tuple(Symptom(s) for s in opened["symptoms"]))


def _bar(tx: KitchenTx, record: CheckRecord, at: datetime) -> str:
    """Alert the manager and publish MorningCheckFailed for a barred check: token and reasons only."""
    reasons = ", ".join(r.value for r in record.bar_reasons)
    alert = raise_alert(
        tx,
        kitchen_id=record.kitchen_id,
        kind=AlertKind.MORNING_CHECK_BARRED,
        severity=Severity.MEDIUM,
        subject_id=record.check_id,
        message=(
            f"staff {record.staff_token} is barred from shift {record.shift} on "
            f"{record.shift_date.isoformat()} ({reasons})"
        ),
        at=at,
    )
    tx.publish(
        key=record.kitchen_id,
        subject=record.check_id,
        message=morning_check_failed(record, alert.alert_id, at),
    )
    return alert.alert_id


def _one_check_only(existing: CheckRecord) -> FailedPreconditionError:
    return FailedPreconditionError(
        f"shift: staff {existing.staff_id} already has a {existing.outcome.value.lower()} check for shift "
        f"{shown(existing.shift)} on {existing.shift_date.isoformat()} (one check per staff member per shift)"
    )


def _shift_names(kitchen: Kitchen) -> str:
    return ", ".join(s.name for s in kitchen.shifts)


class MorningChecks:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx

    def record(self, command: RecordMorningCheck, visibility: Visibility) -> MorningCheck:
        ctx = self._ctx
        now = ctx.clock()
        command.check(now, local_today(now, ctx.config.zone))
        assert command.checked_at is not None, "checked"
        with ctx.uow.transaction() as tx:
            kitchen = require_kitchen(tx, command.kitchen_id, visibility)
            replay = tx.claim(_RECORD, command.request_id, command)
            if replay is not None:
                found = tx.repo.get_check(str(replay["check_id"]))
                assert found is not None, "a remembered check is never deleted"
                return open_check(ctx.vault, found)
            shift = kitchen.shift(command.shift)
            if shift is None:
                raise InvalidArgumentError.of(
                    "shift", f"is not a shift of the kitchen ({_shift_names(kitchen)})"
                )
            staff = tx.repo.get_staff(command.staff_id)
            if staff is None or staff.kitchen_id != kitchen.kitchen_id:
                raise FailedPreconditionError(
                    f"staff_id: no staff member {shown(command.staff_id)} in kitchen {kitchen.kitchen_id}"
                )
            day = command.day
            existing = tx.repo.check_of(staff.staff_id, day, shift.name)
            if existing is not None:
                raise _one_check_only(existing)
            starts = shift_start(day, shift, ctx.config.zone)
            reasons = bar_reasons(
                temperature_c=command.temperature_c,
                symptoms=command.declared,
                certificate_expiry=staff.certificate_expiry,
                shift_date=day,
                face_match_score=command.face_match_score,
                checked_at=command.checked_at,
                starts_at=starts,
                fever_threshold_c=ctx.config.fever_threshold_c,
                face_match_threshold=ctx.config.face_match_threshold,
            )
            check_id = new_id("chk")
            symptoms = sorted(command.declared, key=list(Symptom).index)
            record = CheckRecord(
                check_id=check_id,
                kitchen_id=kitchen.kitchen_id,
                staff_id=staff.staff_id,
                staff_token=staff.staff_token,
                shift_date=day,
                shift=shift.name,
                shift_start=starts,
                checked_at=command.checked_at,
                face_match_score=command.face_match_score,
                sealed=ctx.vault.seal(
                    SEALED_CHECK,
                    check_id,
                    {"temperature_c": command.temperature_c, "symptoms": [s.value for s in symptoms]},
                ),
                outcome=CheckOutcome.BARRED if reasons else CheckOutcome.PASSED,
                bar_reasons=reasons,
                replaced_by_staff_id=None,
                recorded_at=now,
            )
            if not tx.repo.add_check(record):
                # The sweep (or a concurrent terminal) made this staff-shift's row first.
                raced = tx.repo.check_of(staff.staff_id, day, shift.name)
                assert raced is not None, "the conflicting row is committed"
                raise _one_check_only(raced)
            if reasons:
                _bar(tx, record, now)
            tx.remember(_RECORD, command.request_id, {"check_id": check_id})
        log.info(
            "morning_check_recorded",
            kitchen_id=record.kitchen_id,
            check_id=check_id,
            staff_token=record.staff_token,
            outcome=record.outcome.value,
            bar_reasons=[r.value for r in reasons],
        )
        return MorningCheck(record, command.temperature_c, tuple(symptoms))

    def replace(self, command: RecordReplacement, visibility: Visibility) -> MorningCheck:
        command.check()
        ctx = self._ctx
        with ctx.uow.transaction() as tx:
            kitchen = require_kitchen(tx, command.kitchen_id, visibility)
            check = tx.repo.get_check(command.check_id)
            if check is None or check.kitchen_id != kitchen.kitchen_id:
                raise NotFoundError(
                    f"no morning check {shown(command.check_id)} in kitchen {kitchen.kitchen_id}"
                )
            replay = tx.claim(_REPLACE, command.request_id, command)
            if replay is not None:
                return open_check(ctx.vault, check)
            if check.outcome is not CheckOutcome.BARRED:
                raise FailedPreconditionError(
                    "check_id: the check passed; a replacement is recorded for a barred staff member only"
                )
            if check.replaced_by_staff_id and check.replaced_by_staff_id != command.replacement_staff_id:
                raise FailedPreconditionError(
                    f"check_id: staff {check.replaced_by_staff_id} is already recorded as the replacement"
                )
            replacement = tx.repo.get_staff(command.replacement_staff_id)
            if replacement is None or replacement.kitchen_id != kitchen.kitchen_id:
                raise FailedPreconditionError(
                    f"replacement_staff_id: no staff member {shown(command.replacement_staff_id)} in kitchen "
                    f"{kitchen.kitchen_id}"
                )
            passed = tx.repo.check_of(replacement.staff_id, check.shift_date, check.shift)
            if passed is None or passed.outcome is not CheckOutcome.PASSED:
                raise FailedPreconditionError(
                    f"replacement_staff_id: staff {replacement.staff_id} has no passed check for shift "
                    f"{check.shift} on {check.shift_date.isoformat()}"
                )
            tx.repo.set_replacement(check.check_id, replacement.staff_id)
            tx.remember(_REPLACE, command.request_id, {"check_id": check.check_id})
            updated = tx.repo.get_check(check.check_id)
            assert updated is not None, "just updated"
        log.info(
            "replacement_recorded",
            kitchen_id=kitchen.kitchen_id,
            check_id=check.check_id,
            replacement_staff_id=replacement.staff_id,
        )
        return open_check(ctx.vault, updated)

    def list(
        self, query: ListMorningChecks, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[MorningCheck], str]:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, str, str)
        with self._ctx.uow.transaction() as tx:
            kitchen = require_kitchen(tx, query.kitchen_id, visibility)
            if query.shift and kitchen.shift(query.shift) is None:
                raise InvalidArgumentError.of(
                    "shift", f"is not a shift of the kitchen ({_shift_names(kitchen)})"
                )
            rows = tx.repo.list_checks(
                kitchen.kitchen_id, query.day, query.shift, after=after, limit=page.size + 1
            )
        shown_rows, token = paginate(rows, page, lambda c: (c.shift, c.check_id))
        return [open_check(self._ctx.vault, row) for row in shown_rows], token


class CheckSweeper:
    """Bars (NO_CHECK) rostered staff without a check once their shift of today has started."""

    def __init__(self, ctx: KitchenContext, *, interval_s: float) -> None:
        self._ctx = ctx
        self._interval = interval_s

    def tick(self) -> int:
        """One batch: how many members it found due (a full batch means there may be more)."""
        ctx = self._ctx
        now = ctx.clock()
        day: date = local_today(now, ctx.config.zone)
        barred = 0
        with ctx.uow.transaction() as tx:
            due = tx.repo.due_checks(day, ctx.config.zone.key, now, SWEEP_BATCH)
            for item in due:
                record = CheckRecord(
                    check_id=new_id("chk"),
                    kitchen_id=item.kitchen_id,
                    staff_id=item.staff_id,
                    staff_token=item.staff_token,
                    shift_date=day,
                    shift=item.shift.name,
                    shift_start=shift_start(day, item.shift, ctx.config.zone),
                    checked_at=None,
                    face_match_score=0.0,
                    sealed=None,
                    outcome=CheckOutcome.BARRED,
                    bar_reasons=(BarReason.NO_CHECK,),
                    replaced_by_staff_id=None,
                    recorded_at=now,
                )
                # Another replica (or a terminal) got there first: its row stands, and so does its alert.
                if tx.repo.add_check(record):
                    _bar(tx, record, now)
                    barred += 1
        if barred:
            log.info("check_sweep_barred", barred=barred, day=day.isoformat())
        return len(due)

    def run(self, stop: threading.Event) -> None:
        repeat(stop, self._interval, lambda: self.tick() >= SWEEP_BATCH, task="kitchen-check-sweep")
