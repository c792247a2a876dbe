"""Service requests: submission (with the type's deadline), assignment to chamber staff, resolution, the
member's rating (excellence points), and the overdue sweep bootstrap runs in the background."""

from __future__ import annotations

import threading
from datetime import datetime

from services.commerce.domain import requests as rules
from services.commerce.domain.access import Visibility
from services.commerce.domain.model import MembershipStatus, PointSource
from services.commerce.domain.requests import ServiceRequest, ServiceRequestStatus
from services.commerce.mapping.requests import (
    service_request_opened,
    service_request_overdue,
    service_request_resolved,
)
from services.commerce.usecases.common import CommerceContext, CommerceTx, new_id, require_membership
from services.platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from services.platform.logs import get_logger
from services.platform.paging import decode_cursor, page_of, paginate

__all__ = ["OverdueSweeper", "ServiceRequests"]

log = get_logger()
# Requests flagged per transaction: a backlog (after an outage) is worked off in bounded batches.
_SWEEP_BATCH = 200


class ServiceRequests:
    def __init__(self, ctx: CommerceContext) -> None:
        self._ctx = ctx

    def submit(self, command: rules.SubmitServiceRequest, visibility: Visibility) -> ServiceRequest:
        command.check()
        assert command.type is not None, "checked"
        with self._ctx.uow.transaction() as tx:
            replay = tx.claim("submit_service_request", command.request_id, command)
            if replay is not None:
                return _stored(tx, replay["service_request_id"])
            member = require_membership(tx, command.membership_id, visibility)
            if member.status is not MembershipStatus.ACTIVE:
                raise FailedPreconditionError(
                    f"membership_id: membership {member.membership_id} is {member.status.value}, not ACTIVE"
                )
            now = self._ctx.clock()
            request = ServiceRequest(
                service_request_id=new_id("sr"),
                chamber_id=member.chamber_id,
                membership_id=member.membership_id,
                credit_code=member.credit_code,
                type=command.type,
                subject=command.subject,
                description=command.description,
                status=ServiceRequestStatus.SUBMITTED,
                assigned_to="",
                submitted_at=now,
                due_at=rules.due_at(now, command.type, self._ctx.config.service_days),
                overdue=False,
                resolved_at=None,
                resolution="",
                satisfaction=0,
            )
            tx.repo.add_service_request(request)
            tx.publish(
                key=request.chamber_id,
                subject=request.service_request_id,
                message=service_request_opened(request),
            )
            tx.remember(
                "submit_service_request",
                command.request_id,
                {"service_request_id": request.service_request_id},
            )
        log.info(
            "service_request_opened",
            service_request_id=request.service_request_id,
            chamber_id=request.chamber_id,
            type=request.type.value,
        )
        return request

    def assign(self, command: rules.AssignServiceRequest, visibility: Visibility) -> ServiceRequest:
        command.check()
        with self._ctx.uow.transaction() as tx:
            request = _run_by_staff(tx, command.service_request_id, visibility)
            if not tx.repo.is_chamber_staff(request.chamber_id, command.staff_id):
                raise InvalidArgumentError.of("staff_id", "is not a staff member of the request's chamber")
            changed = rules.assigned(request, command.staff_id)
            tx.repo.save_service_request(changed)
        log.info("service_request_assigned", service_request_id=changed.service_request_id)
        return changed

    def resolve(self, command: rules.ResolveServiceRequest, visibility: Visibility) -> ServiceRequest:
        command.check()
        with self._ctx.uow.transaction() as tx:
            request = _run_by_staff(tx, command.service_request_id, visibility)
            changed = rules.resolved(request, command.resolution, self._ctx.clock())
            tx.repo.save_service_request(changed)
            on_time = rules.on_time(changed)
            tx.publish(
                key=changed.chamber_id,
                subject=changed.service_request_id,
                message=service_request_resolved(changed, on_time),
            )
        log.info("service_request_resolved", service_request_id=changed.service_request_id, on_time=on_time)
        return changed

    def rate(self, command: rules.RateServiceRequest, visibility: Visibility) -> ServiceRequest:
        command.check()
        with self._ctx.uow.transaction() as tx:
            request = tx.repo.get_service_request(command.service_request_id, for_update=True)
            if request is None or not visibility.sees_member(request.chamber_id, request.credit_code):
                raise NotFoundError(f"no service request {command.service_request_id!r}")
            changed = rules.rated(request, command.satisfaction)
            tx.repo.save_service_request(changed)
            # Points per satisfaction point given (docs/services/commerce.md, "Excellence").
            tx.repo.add_points(
                entry_id=new_id("pts"),
                membership_id=changed.membership_id,
                chamber_id=changed.chamber_id,
                source=PointSource.SERVICE_RATING,
                source_id=changed.service_request_id,
                points=command.satisfaction * self._ctx.config.points[PointSource.SERVICE_RATING],
                note=f"service request {changed.service_request_id} rated {command.satisfaction}",
                earned_at=self._ctx.clock(),
            )
        log.info("service_request_rated", service_request_id=changed.service_request_id)
        return changed

    def list(
        self, query: rules.ListServiceRequests, visibility: Visibility, page_size: int, page_token: str
    ) -> tuple[list[ServiceRequest], str]:
        query.check()
        page = page_of(page_size, page_token)
        after = decode_cursor(page.token, datetime, str)
        with self._ctx.uow.transaction() as tx:
            found = tx.repo.list_service_requests(
                visibility,
                chamber_id=query.chamber_id,
                credit_code=query.credit_code,
                overdue_only=query.overdue_only,
                after=(after[0], after[1]) if after else None,
                limit=page.size + 1,
            )
        return paginate(found, page, lambda r: (r.submitted_at, r.service_request_id))


class OverdueSweeper:
    """Flags requests past their deadline and announces each once (ServiceRequestOverdue, which the hub puts
    in its inbox). Several replicas may sweep at once: the flag is flipped by one conditional UPDATE and
    only the rows a replica flipped itself are announced, in the same transaction (the outbox)."""

    def __init__(self, ctx: CommerceContext, *, interval_s: float) -> None:
        self._ctx = ctx
        self._interval = interval_s

    def tick(self) -> int:
        """One batch; how many requests this replica flagged."""
        with self._ctx.uow.transaction() as tx:
            now = self._ctx.clock()
            flagged = tx.repo.flag_overdue(now, _SWEEP_BATCH)
            for request in flagged:
                tx.publish(
                    key=request.chamber_id,
                    subject=request.service_request_id,
                    message=service_request_overdue(request, now),
                )
        for request in flagged:
            log.info(
                "service_request_overdue",
                service_request_id=request.service_request_id,
                chamber_id=request.chamber_id,
            )
        return len(flagged)

    def run(self, stop: threading.Event) -> None:
        log.info("overdue_sweep_started", interval_s=self._interval)
        while not stop.is_set():
            try:
                while self.tick() >= _SWEEP_BATCH and not stop.is_set():
                    pass
            except Exception as error:  # noqa: BLE001 - the next round retries; the thread must live on
                log.warning("overdue_sweep_failed", error=str(error), error_type=type(error).__name__)
            stop.wait(self._interval)
        log.info("overdue_sweep_stopped")


def _stored(tx: CommerceTx, service_request_id: str) -> ServiceRequest:
    found = tx.repo.get_service_request(service_request_id)
    assert found is not None, "a remembered service request is never deleted"
    return found


def _run_by_staff(tx: CommerceTx, service_request_id: str, visibility: Visibility) -> ServiceRequest:
    """The request, locked, when the caller runs its chamber; NOT_FOUND otherwise."""
    request = tx.repo.get_service_request(service_request_id, for_update=True)
    if request is None or not visibility.sees_chamber(request.chamber_id):
        raise NotFoundError(f"no service request {service_request_id!r}")
    return request
