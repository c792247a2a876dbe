"""One-click join (一键入会) and the membership lifecycle.

The enterprise is looked up in the industry service before any transaction opens (a peer call never holds
a database connection). A replay of an application already stored skips the lookup and answers the stored
membership. Industry unreachable is no failure: the application is kept as PENDING with lookup
UNAVAILABLE for staff to review.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from services.commerce.domain.access import Visibility
from services.commerce.domain.memberships import (
    ApplyForMembership,
    ListMemberships,
    Transition,
    TransitionCommand,
    decide,
    transition,
)
from services.commerce.domain.model import EnterpriseLookup, Membership, MembershipStatus
from services.commerce.mapping import memberships as mapping
from services.commerce.usecases.common import (
    CommerceContext,
    CommerceTx,
    EnterpriseInfo,
    new_id,
    require_membership,
)
from services.platform.errors import InvalidArgumentError, NotFoundError, UnavailableError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["Memberships"]

log = get_logger()
_APPLY = "apply_for_membership"
# Steps only the chamber's staff (or federation staff) take; END the member may take too.
_STAFF_STEPS = frozenset({Transition.APPROVE, Transition.REJECT, Transition.SUSPEND, Transition.REINSTATE})


def _refuse_unless_joinable(tx: CommerceTx, command: ApplyForMembership) -> None:
    """The checks that need stored state but are still bad input (the issue lists both)."""
    if tx.repo.get_chamber(command.chamber_id) is None:
        raise InvalidArgumentError.of("chamber_id", "is no chamber")
    if tx.repo.live_membership(command.chamber_id, command.credit_code) is not None:
        raise InvalidArgumentError.of(
            "credit_code", "already has a pending, active or suspended membership of this chamber"
        )


class Memberships:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    def apply(self, command: ApplyForMembership) -> Membership:
        command.check()
        with self._ctx.uow.transaction() as tx:
            seen = tx.repo.request_seen(_APPLY, command.request_id)
            if not seen:
                _refuse_unless_joinable(tx, command)
        info: EnterpriseInfo | None = None
        lookup = EnterpriseLookup.UNAVAILABLE
        if not seen:
            lookup, info = self._look_up(command.credit_code)
            if lookup is EnterpriseLookup.NOT_FOUND and not command.enterprise_name:
                raise InvalidArgumentError.of(
                    "enterprise_name", "is required: industry does not know this credit code"
                )
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim(_APPLY, command.request_id, command)
            if replay is not None:
                found = tx.repo.get_membership(replay["membership_id"])
                assert found is not None, "a remembered membership is never deleted"
                return found
            if seen:
                # The id was logged a moment ago but holds no membership now (cannot happen while the
                # request log keeps every id): store nothing unlooked-up; a retry looks industry up.
                raise UnavailableError(
                    "the request log changed during this request; retry with its request_id"
                )
            # Checked again: a concurrent application may have landed during the lookup.
            _refuse_unless_joinable(tx, command)
            chamber = tx.repo.get_chamber(command.chamber_id)
            assert chamber is not None, "checked"
            now = self._ctx.clock()
            status = decide(chamber.join_rule, lookup)
            membership = Membership(
                membership_id=new_id("mem"),
                chamber_id=chamber.chamber_id,
                credit_code=command.credit_code,
                enterprise_name=info.name if info else command.enterprise_name,
                park_id=info.park_id if info else "",
                sector=info.sector if info else "",
                location=command.location,
                town=command.town,
                lookup=lookup,
                status=status,
                reason="",
                applied_at=now,
                decided_at=now if status is MembershipStatus.ACTIVE else None,
                auto_approved=status is MembershipStatus.ACTIVE,
            )
            tx.repo.add_membership(membership)
            self._publish(tx, membership, mapping.membership_applied(membership))
            if membership.auto_approved:
                self._publish(tx, membership, mapping.membership_event(membership, Transition.APPROVE, now))
            tx.remember(_APPLY, command.request_id, {"membership_id": membership.membership_id})
        log.info(
            "membership_applied",
            membership_id=membership.membership_id,
            chamber_id=membership.chamber_id,
            lookup=lookup.value,
            status=status.value,
        )
        return membership

    def _look_up(self, credit_code: str) -> tuple[EnterpriseLookup, EnterpriseInfo | None]:
        try:
            info = self._ctx.enterprises.get_enterprise(credit_code)
        except UnavailableError:
            # Never lost, never failed: staff review the application once industry answers again.
            log.warning("industry_unavailable_for_join", credit_code=credit_code)
            return EnterpriseLookup.UNAVAILABLE, None
        if info is None:
            return EnterpriseLookup.NOT_FOUND, None
        return EnterpriseLookup.FOUND, info

    @staticmethod
    def _publish(tx: CommerceTx, membership: Membership, message: Message) -> None:
        # Membership events are keyed by chamber (one chamber's story stays in order), subject the member.
        tx.publish(key=membership.chamber_id, subject=membership.membership_id, message=message)

    def step(self, command: TransitionCommand, visibility: Visibility) -> Membership:
        command.check()
        with self._ctx.uow.transaction() as tx:
            current = require_membership(tx, command.membership_id, visibility, for_update=True)
            if command.step in _STAFF_STEPS and not visibility.sees_chamber(current.chamber_id):
                # The enterprise itself sees its membership but does not run the chamber.
                raise NotFoundError(f"no membership {command.membership_id!r}")
            now = self._ctx.clock()
            updated = transition(current, command.step, command.reason, now)
            tx.repo.update_membership_status(updated)
            self._publish(tx, updated, mapping.membership_event(updated, command.step, now))
        log.info(
            "membership_changed",
            membership_id=updated.membership_id,
            step=command.step.value,
            status=updated.status.value,
        )
        return updated

    def get(self, membership_id: str, visibility: Visibility) -> Membership:
        with self._ctx.uow.transaction() as tx:
            return require_membership(tx, membership_id, visibility)

    def list(
        self, query: ListMemberships, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[Membership], str]:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            items = tx.repo.list_memberships(
                chamber_id=query.chamber_id,
                credit_code=query.credit_code,
                statuses=query.statuses,
                visibility=visibility,
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
            )
        return paginate(items, page, lambda m: (m.applied_at, m.membership_id))
