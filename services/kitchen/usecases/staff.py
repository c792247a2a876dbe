"""A kitchen's staff: adding a member (name, identity number and certificate number sealed under the
member's token; the certificate's expiry kept clear for the barring rule) and listing them."""

from __future__ import annotations

from datetime import date, datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.staff import AddStaff, StaffMember, StaffRecord, certificate_status, local_today
from services.kitchen.mapping.staff import staff_added
from services.kitchen.usecases.common import KitchenContext, new_id, require_kitchen
from services.platform.errors import AlreadyExistsError, InvalidArgumentError, Violations
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate
from services.platform.vault import Vault

__all__ = ["StaffRoster", "open_staff"]

log = get_logger()
_OPERATION = "add_staff"
# The vault purpose staff rows are sealed under (bound to the staff token).
SEALED_STAFF = "staff"


def open_staff(vault: Vault, record: StaffRecord, today: date) -> StaffMember:
    """The member with their sealed fields opened and the certificate's status on ``today``."""
    opened = vault.open(SEALED_STAFF, record.staff_token, record.sealed)
    return StaffMember(
        staff_id=record.staff_id,
        kitchen_id=record.kitchen_id,
        staff_token=record.staff_token,
        name=str(opened["name"]),
        identity_number=str(opened["identity_number"]),
        role=record.role,
        certificate_number=str(opened["certificate_number"]),
        certificate_expiry=record.certificate_expiry,
        certificate_status=certificate_status(record.certificate_expiry, today),
        face_template_ref=record.face_template_ref,
        shifts=record.shifts,
        added_at=record.added_at,
    )


class StaffRoster:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx

    def _today(self) -> date:
        return local_today(self._ctx.clock(), self._ctx.config.zone)

    def add(self, command: AddStaff, visibility: Visibility) -> StaffMember:
        command.check()
        assert command.role is not None, "checked"
        vault = self._ctx.vault
        identity = command.identity_number.upper()
        token = vault.token_for(identity)
        with self._ctx.uow.transaction() as tx:
            kitchen = require_kitchen(tx, command.kitchen_id, visibility)
            replay = tx.claim(_OPERATION, command.request_id, command)
            if replay is not None:
                found = tx.repo.get_staff(str(replay["staff_id"]))
                assert found is not None, "a remembered staff member is never deleted"
                return open_staff(vault, found, self._today())
            names = [s.name for s in kitchen.shifts]
            bad = Violations()
            for i, shift in enumerate(command.shifts):
                if shift not in names:
                    bad.add(f"shifts[{i}]", f"is not a shift of the kitchen ({', '.join(names)})")
            bad.check()
            now: datetime = self._ctx.clock()
            sealed = vault.seal(
                SEALED_STAFF,
                token,
                {
                    "name": command.name,
                    "identity_number": identity,
                    "certificate_number": command.certificate_number,
                },
            )
            record = StaffRecord(
                staff_id=new_id("stf"),
                kitchen_id=kitchen.kitchen_id,
                staff_token=token,
                role=command.role,
                sealed=sealed,
                certificate_expiry=command.expiry,
                face_template_ref=command.face_template_ref,
                shifts=command.shifts,
                added_at=now,
            )
            if not tx.repo.add_staff(record):
                raise AlreadyExistsError("identity_number: this person is already on the kitchen's staff")
            tx.publish(key=kitchen.kitchen_id, subject=record.staff_id, message=staff_added(record))
            tx.remember(_OPERATION, command.request_id, {"staff_id": record.staff_id})
        log.info("staff_added", kitchen_id=kitchen.kitchen_id, staff_id=record.staff_id, staff_token=token)
        return open_staff(vault, record, self._today())

    def list(
        self, kitchen_id: str, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[StaffMember], str]:
        if not kitchen_id:
            raise InvalidArgumentError.of("kitchen_id", "is required")
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            require_kitchen(tx, kitchen_id, visibility)
            rows = tx.repo.list_staff(kitchen_id, after=after, limit=page.size + 1)
        shown, token = paginate(rows, page, lambda s: (s.added_at, s.staff_id))
        today = self._today()
        return [open_staff(self._ctx.vault, row, today) for row in shown], token
