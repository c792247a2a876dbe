"""Federations (each with its first code-signing key), chambers and chamber staff."""

from __future__ import annotations

from datetime import datetime

from services.commerce.adapters.signing import ALGORITHM, new_signing_key
from services.commerce.domain.access import Visibility
from services.commerce.domain.federations import (
    AddChamberStaff,
    ChamberStaff,
    CreateChamber,
    CreateFederation,
    parent_problem,
)
from services.commerce.domain.model import Chamber, Federation
from services.commerce.mapping import federations as mapping
from services.commerce.usecases.common import CommerceContext, new_id, require_chamber
from services.platform.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["Federations"]

log = get_logger()


class Federations:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    # --- federations ---------------------------------------------------------------------------------

    def create_federation(self, command: CreateFederation) -> Federation:
        command.check()
        assert command.level is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("create_federation", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_federation(replay["federation_id"])
                assert found is not None, "a remembered federation is never deleted"
                return found
            if command.parent_id:
                parent = tx.repo.get_federation(command.parent_id)
                if parent is None:
                    raise InvalidArgumentError.of("parent_id", "is no federation")
                problem = parent_problem(
                    command.level, command.division_code, parent.level, parent.division_code
                )
                if problem is not None:
                    raise InvalidArgumentError.of("parent_id", problem)
            if tx.repo.federation_with_division(command.division_code) is not None:
                raise AlreadyExistsError(f"a federation with division code {command.division_code} exists")
            key = new_signing_key()
            federation = Federation(
                federation_id=new_id("fed"),
                name=command.name,
                level=command.level,
                division_code=command.division_code,
                parent_id=command.parent_id,
                current_key_id=key.key_id,
                created_at=self._ctx.clock(),
            )
            tx.repo.add_federation(federation)
            tx.repo.add_signing_key(
                key_id=key.key_id,
                federation_id=federation.federation_id,
                algorithm=ALGORITHM,
                public_key_pem=key.public_key_pem,
                # The private key never rests in clear: sealed to its key id by the service's vault.
                sealed_private=self._ctx.vault.seal("signing-key", key.key_id, {"pem": key.private_key_pem}),
                created_at=federation.created_at,
            )
            tx.publish(
                key=federation.federation_id,
                subject=federation.federation_id,
                message=mapping.federation_created(federation),
            )
            tx.remember("create_federation", command.request_id, {"federation_id": federation.federation_id})
        log.info(
            "federation_created",
            federation_id=federation.federation_id,
            level=federation.level.value,
            key_id=key.key_id,
        )
        return federation

    def list_federations(
        self, parent_id: str, page_size: int, page_token: str
    ) -> tuple[list[Federation], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            items = tx.repo.list_federations(
                parent_id, (after[0], after[1]) if after else None, page.size + 1
            )
        return paginate(items, page, lambda f: (f.created_at, f.federation_id))

    # --- chambers ------------------------------------------------------------------------------------

    def create_chamber(self, command: CreateChamber) -> Chamber:
        command.check()
        assert command.kind is not None, "checked"
        assert command.join_rule is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("create_chamber", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_chamber(replay["chamber_id"])
                assert found is not None, "a remembered chamber is never deleted"
                return found
            if tx.repo.get_federation(command.federation_id) is None:
                raise InvalidArgumentError.of("federation_id", "is no federation")
            chamber = Chamber(
                chamber_id=new_id("ch"),
                federation_id=command.federation_id,
                name=command.name,
                kind=command.kind,
                sector=command.sector,
                division_code=command.division_code,
                join_rule=command.join_rule,
                created_at=self._ctx.clock(),
            )
            tx.repo.add_chamber(chamber)
            tx.publish(
                key=chamber.chamber_id, subject=chamber.chamber_id, message=mapping.chamber_created(chamber)
            )
            tx.remember("create_chamber", command.request_id, {"chamber_id": chamber.chamber_id})
        log.info("chamber_created", chamber_id=chamber.chamber_id, federation_id=chamber.federation_id)
        return chamber

    def get_chamber(self, chamber_id: str) -> Chamber:
        # Chambers are the federation's public directory: an enterprise finds the one it joins here, so
        # any caller the policy lets through sees any chamber (their members and staff stay scoped).
        with self._ctx.uow.transaction() as tx:
            chamber = tx.repo.get_chamber(chamber_id) if chamber_id else None
        if chamber is None:
            raise NotFoundError(f"no chamber {chamber_id!r}")
        return chamber

    def list_chambers(self, federation_id: str, page_size: int, page_token: str) -> tuple[list[Chamber], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            items = tx.repo.list_chambers(
                federation_id, (after[0], after[1]) if after else None, page.size + 1
            )
        return paginate(items, page, lambda c: (c.created_at, c.chamber_id))

    # --- staff ---------------------------------------------------------------------------------------

    def add_staff(self, command: AddChamberStaff, visibility: Visibility) -> ChamberStaff:
        command.check()
        assert command.role is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("add_chamber_staff", command.request_id, command)
            if replay is not None:
                found = tx.repo.get_staff(replay["staff_id"])
                assert found is not None, "remembered staff are never deleted"
                return found
            require_chamber(tx, command.chamber_id, visibility)
            if tx.repo.get_staff_by_subject(command.chamber_id, command.subject) is not None:
                raise AlreadyExistsError("subject: already on this chamber's staff")
            staff = ChamberStaff(
                staff_id=new_id("stf"),
                chamber_id=command.chamber_id,
                subject=command.subject,
                name=command.name,
                role=command.role,
                added_at=self._ctx.clock(),
            )
            tx.repo.add_staff(staff)
            tx.remember("add_chamber_staff", command.request_id, {"staff_id": staff.staff_id})
        log.info("chamber_staff_added", chamber_id=staff.chamber_id, staff_id=staff.staff_id)
        return staff

    def list_staff(
        self, chamber_id: str, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[ChamberStaff], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            require_chamber(tx, chamber_id, visibility)
            items = tx.repo.list_staff(chamber_id, (after[0], after[1]) if after else None, page.size + 1)
        return paginate(items, page, lambda s: (s.added_at, s.staff_id))
