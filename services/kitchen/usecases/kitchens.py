"""Kitchens: registration for a school or kindergarten site (checked with the safety service), get, list.

The safety service is asked before any transaction opens: a peer call never holds a database
connection, so an outage of safety (answered UNAVAILABLE after the client's retry budget) leaves the
pool untouched and nothing stored."""

from __future__ import annotations

from datetime import datetime

from services.kitchen.domain.access import Visibility
from services.kitchen.domain.kitchens import SCHOOL_SITE_KINDS, RegisterKitchen
from services.kitchen.domain.model import GeoPoint, Kitchen, KitchenOperator
from services.kitchen.mapping.kitchens import kitchen_registered
from services.kitchen.usecases.common import KitchenContext, new_id, require_kitchen
from services.platform.errors import FailedPreconditionError, InvalidArgumentError, shown
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["KitchenRegistry"]

log = get_logger()
_OPERATION = "register_kitchen"


class KitchenRegistry:
    def __init__(self, ctx: KitchenContext) -> None:
        self._ctx = ctx

    def register(self, command: RegisterKitchen) -> Kitchen:
        command.check()
        assert command.operator_kind is not None, "checked"
        # Outside any transaction (see the module text); raises UnavailableError when safety is down.
        site = self._ctx.sites.get_site(command.site_id)
        if site is None:
            raise FailedPreconditionError(f"site_id: no site {shown(command.site_id)} in the safety service")
        if site.kind not in SCHOOL_SITE_KINDS:
            raise FailedPreconditionError(
                f"site_id: site {shown(command.site_id)} is a {site.kind.lower()},"
                " not a school or kindergarten"
            )
        location = command.location
        if location is None and site.latitude is not None and site.longitude is not None:
            location = GeoPoint(site.latitude, site.longitude)
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim(_OPERATION, command.request_id, command)
            if replay is not None:
                found = tx.repo.get_kitchen(str(replay["kitchen_id"]))
                assert found is not None, "a remembered kitchen is never deleted"
                return found
            kitchen = Kitchen(
                kitchen_id=new_id("kit"),
                site_id=site.site_id,
                name=command.name,
                operator=KitchenOperator(
                    command.operator_kind, command.operator_name, command.operator_credit_code
                ),
                meals_per_day=command.meals_per_day,
                location=location,
                town=site.town,
                division_code=site.division_code,
                shifts=command.shifts,
                commitment=command.commitment,
                registered_at=self._ctx.clock(),
            )
            tx.repo.add_kitchen(kitchen)
            tx.publish(
                key=kitchen.kitchen_id, subject=kitchen.kitchen_id, message=kitchen_registered(kitchen)
            )
            tx.remember(_OPERATION, command.request_id, {"kitchen_id": kitchen.kitchen_id})
        log.info("kitchen_registered", kitchen_id=kitchen.kitchen_id, site_id=kitchen.site_id)
        return kitchen

    def get(self, kitchen_id: str, visibility: Visibility) -> Kitchen:
        if not kitchen_id:
            raise InvalidArgumentError.of("kitchen_id", "is required")
        with self._ctx.uow.transaction() as tx:
            return require_kitchen(tx, kitchen_id, visibility)

    def list(
        self, visibility: Visibility, *, site_id: str, town: str, page_size: int, page_token: str
    ) -> tuple[list[Kitchen], str]:
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        if visibility.sees_nothing:
            return [], ""
        with self._ctx.uow.transaction() as tx:
            found = tx.repo.list_kitchens(
                visibility, site_id=site_id, town=town, after=after, limit=page.size + 1
            )
        return paginate(found, page, lambda k: (k.registered_at, k.kitchen_id))
