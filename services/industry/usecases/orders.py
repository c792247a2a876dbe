"""The enterprise brain's orders: create (idempotent by request id), advance one stage at a time, read,
list, and delivery-cycle statistics."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime

from services.industry import mapping
from services.industry.domain import commands
from services.industry.domain.access import Visibility
from services.industry.domain.model import CycleStats, Order, OrderStage
from services.industry.domain.orders import OrderView, check_advance, view_of
from services.industry.usecases.common import (
    Clock,
    IndustryConfig,
    IndustryStore,
    hide_unless_visible,
    require_visible,
    utc_now,
)
from services.platform.errors import FailedPreconditionError, NotFoundError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate
from services.platform.uow import Transaction, UnitOfWork

__all__ = ["Orders"]

log = get_logger()


class Orders:
    def __init__(
        self, uow: UnitOfWork[IndustryStore], config: IndustryConfig, clock: Clock = utc_now
    ) -> None:
        self._uow = uow
        self._zone = config.zone
        self._clock = clock

    def view(self, order: Order, now: datetime | None = None) -> OrderView:
        return view_of(order, now or self._clock(), self._zone)

    def create(self, command: commands.CreateOrder, visibility: Visibility) -> OrderView:
        now = self._clock()
        command.check(now)
        with self._uow.transaction() as tx:
            replay = tx.claim("create_order", command.request_id, command)
            if replay is not None:
                existing = tx.repo.get_order(replay["order_id"])
                assert existing is not None, "a remembered order is never deleted"
                return self.view(existing, now)
            enterprise = tx.repo.get_enterprise(command.credit_code)
            if enterprise is None:
                raise FailedPreconditionError(
                    f"credit_code: no enterprise {command.credit_code} on the platform"
                )
            require_visible(visibility, enterprise.credit_code, enterprise.park_id)
            ordered_at = command.ordered_at or now
            order = Order(
                order_id=f"ord-{secrets.token_hex(8)}",
                credit_code=enterprise.credit_code,
                park_id=enterprise.park_id,
                customer=command.customer,
                product=command.product,
                customisation=command.customisation,
                promised_date=command.promised,
                stage=OrderStage.SALES,
                ordered_at=ordered_at,
                delivered_at=None,
                stage_times=((OrderStage.SALES, ordered_at),),
            )
            tx.repo.add_order(order)
            view = self.view(order, now)
            tx.publish(
                key=order.order_id,
                subject=order.order_id,
                message=mapping.order_stage_changed(view, None, ordered_at),
            )
            tx.remember("create_order", command.request_id, {"order_id": order.order_id})
        log.info("order_created", order_id=order.order_id, credit_code=order.credit_code)
        return view

    def advance(self, command: commands.AdvanceOrder, visibility: Visibility) -> OrderView:
        now = self._clock()
        command.check(now)
        assert command.stage is not None, "checked"
        at = command.occurred_at or now
        with self._uow.transaction() as tx:
            replay = tx.claim("advance_order", command.request_id, command)
            if replay is not None:
                # The move was made; the order as it is now (it may have moved on since).
                return self.view(self._visible(tx, replay["order_id"], visibility), now)
            order = self._visible(tx, command.order_id, visibility, for_update=True)
            target = check_advance(order.stage, command.stage)
            entered = order.stage_entered_at
            if at < entered:
                raise FailedPreconditionError(
                    f"occurred_at: is before the order entered its current stage ({entered.isoformat()})"
                )
            delivered = target == OrderStage.DELIVERY
            tx.repo.move_order(order.order_id, target, at, delivered=delivered)
            moved = replace(
                order,
                stage=target,
                delivered_at=at if delivered else order.delivered_at,
                stage_times=(*order.stage_times, (target, at)),
            )
            view = self.view(moved, now)
            tx.publish(
                key=order.order_id,
                subject=order.order_id,
                message=mapping.order_stage_changed(view, order.stage, at),
            )
            tx.remember("advance_order", command.request_id, {"order_id": order.order_id})
        log.info("order_advanced", order_id=order.order_id, stage=target.label)
        return view

    @staticmethod
    def _visible(
        tx: Transaction[IndustryStore], order_id: str, visibility: Visibility, *, for_update: bool = False
    ) -> Order:
        order = tx.repo.get_order(order_id, for_update=for_update)
        if order is None:
            raise NotFoundError(f"no order {order_id}")
        hide_unless_visible(visibility, order.credit_code, order.park_id, f"order {order_id}")
        return order

    def get(self, order_id: str, visibility: Visibility) -> OrderView:
        with self._uow.transaction() as tx:
            order = self._visible(tx, order_id, visibility)
        return self.view(order)

    def list(
        self, visibility: Visibility, credit_code: str, late_only: bool, page_size: int, page_token: str
    ) -> tuple[list[OrderView], str]:
        page = page_of(page_size, page_token)
        before = decode_cursor(page.token, datetime, str)
        now = self._clock()
        with self._uow.transaction() as tx:
            orders = tx.repo.list_orders(
                visibility,
                credit_code=credit_code,
                late_only=late_only,
                today=now.astimezone(self._zone).date(),
                time_zone=self._zone.key,
                before=(before[0], before[1]) if before else None,
                limit=page.size + 1,
            )
        shown, token = paginate(orders, page, lambda o: (o.ordered_at, o.order_id))
        return [self.view(order, now) for order in shown], token

    def cycle_stats(self, query: commands.CycleStatsQuery, visibility: Visibility) -> CycleStats:
        query.check()
        start, end = commands.bounds(query.period)
        with self._uow.transaction() as tx:
            self._check_enterprise(tx, query.credit_code, visibility)
            return tx.repo.delivery_cycle_stats(
                visibility, query.credit_code, start, end, time_zone=self._zone.key
            )

    def compare_cycles(
        self, query: commands.CompareCycles, visibility: Visibility
    ) -> tuple[CycleStats, CycleStats]:
        query.check()
        with self._uow.transaction() as tx:
            self._check_enterprise(tx, query.credit_code, visibility)
            before = tx.repo.delivery_cycle_stats(
                visibility, query.credit_code, *commands.bounds(query.base_period), time_zone=self._zone.key
            )
            after = tx.repo.delivery_cycle_stats(
                visibility,
                query.credit_code,
                *commands.bounds(query.compare_period),
                time_zone=self._zone.key,
            )
        return before, after

    @staticmethod
    def _check_enterprise(tx: Transaction[IndustryStore], credit_code: str, visibility: Visibility) -> None:
        """A filter naming an enterprise: it must exist, and be in the caller's scope (PERMISSION_DENIED)."""
        if not credit_code:
            return
        enterprise = tx.repo.get_enterprise(credit_code)
        if enterprise is None:
            raise NotFoundError(f"no enterprise {credit_code}")
        require_visible(visibility, enterprise.credit_code, enterprise.park_id)
