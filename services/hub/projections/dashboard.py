"""The dashboard projection: each event the dashboard counts becomes one fact (metric, business key) on
the district's local date of its ce_time, with the event's own town or the entity whose town applies;
industry's hourly summaries become one row per device and hour. Only the event and rows earlier events
of the same key made are used (never the clock), so a replay makes the same rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from cityhub.commerce.v1 import events_pb2 as commerce_events
from cityhub.govservice.v1 import events_pb2 as govservice_events
from cityhub.industry.v1 import events_pb2 as industry_events
from cityhub.kitchen.v1 import events_pb2 as kitchen_events
from cityhub.safety.v1 import events_pb2 as safety_events
from google.protobuf.message import Message

from services.hub.domain.dashboard import Fact, Metric, local_day
from services.hub.repository.store import ProjectionStore
from services.hub.usecases.common import HubContext
from services.platform.kafka import EventEnvelope

__all__ = ["projector"]

_ENTERPRISE, _SITE, _KITCHEN, _APPLICATION = "ENTERPRISE", "SITE", "KITCHEN", "APPLICATION"

Step = Callable[[ProjectionStore, EventEnvelope, Any], None]


def projector(ctx: HubContext) -> Callable[[ProjectionStore, EventEnvelope, Message], None]:
    zone = ctx.config.zone

    def fact(
        envelope: EventEnvelope, metric: Metric, key: str, *, town: str = "", ref: tuple[str, str]
    ) -> Fact:
        return Fact(
            metric=metric,
            key=key,
            day=local_day(envelope.time, zone),
            town=town,
            ref_kind=ref[0] if ref[1] else "",
            ref_id=ref[1],
            at=envelope.time,
            event_id=envelope.id,
        )

    def enterprise_onboarded(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        repo.record_fact(fact(env, Metric.ENTERPRISES, m.credit_code, ref=(_ENTERPRISE, m.credit_code)))

    def device_registered(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        repo.record_fact(fact(env, Metric.DEVICES_CONNECTED, m.device_id, ref=(_ENTERPRISE, m.credit_code)))

    def utilisation_rolled_up(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        # The hour the figures describe decides the day (a summary of 23:00 is published after midnight).
        hour = m.hour_started_at.ToDatetime(tzinfo=UTC) if m.HasField("hour_started_at") else env.time
        repo.record_device_hour(
            device_id=m.device_id,
            hour_started_at=hour,
            day=local_day(hour, zone),
            credit_code=m.credit_code,
            availability=m.figures.availability,
            oee=m.figures.oee,
            at=env.time,
            event_id=env.id,
        )

    def alert_raised(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        repo.record_fact(fact(env, Metric.WARNINGS_RAISED, m.alert_id, ref=(_SITE, m.site_id)))

    def alert_resolved(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        # Safety sets joint_response only for an alert resolved (not a false alarm) with two kinds of units.
        if m.joint_response:
            repo.record_fact(fact(env, Metric.JOINT_RESPONSES, m.alert_id, ref=(_SITE, m.site_id)))

    def kitchen_registered(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        repo.record_fact(
            fact(env, Metric.KITCHENS_EQUIPPED, m.kitchen_id, town=m.town, ref=(_KITCHEN, m.kitchen_id))
        )

    def morning_check_failed(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        key = m.check_id or env.id
        repo.record_fact(fact(env, Metric.MORNING_CHECKS_FAILED, key, ref=(_KITCHEN, m.kitchen_id)))

    def cold_chain_alert(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        key = m.alert_id or env.id
        repo.record_fact(fact(env, Metric.COLD_CHAIN_ALERTS, key, ref=(_KITCHEN, m.kitchen_id)))

    def membership_approved(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        repo.record_fact(
            fact(env, Metric.MEMBERS_JOINED, m.membership_id, town=m.town, ref=(_ENTERPRISE, m.credit_code))
        )

    def membership_ended(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        # A member leaves the town it joined in: both events are keyed by the chamber, so the approval
        # (same partition) is already there.
        joined = repo.dashboard_fact(Metric.MEMBERS_JOINED, m.membership_id)
        town = joined.town if joined is not None else ""
        repo.record_fact(
            fact(env, Metric.MEMBERS_LEFT, m.membership_id, town=town, ref=(_ENTERPRISE, m.credit_code))
        )

    def application_filed(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        repo.record_fact(fact(env, Metric.APPLICATIONS_FILED, m.application_no, ref=_applicant(m)))

    def application_completed(repo: ProjectionStore, env: EventEnvelope, m: Any) -> None:
        # Counted where it was filed (every event of an application is keyed by its number: same partition).
        filed = repo.dashboard_fact(Metric.APPLICATIONS_FILED, m.application_no)
        ref = (filed.ref_kind, filed.ref_id) if filed is not None else (_APPLICATION, m.application_no)
        repo.record_fact(fact(env, Metric.APPLICATIONS_COMPLETED, m.application_no, ref=ref))
        if m.on_time:
            repo.record_fact(fact(env, Metric.APPLICATIONS_ON_TIME, m.application_no, ref=ref))

    steps: dict[str, Step] = {
        _name(industry_events.EnterpriseOnboarded): enterprise_onboarded,
        _name(industry_events.DeviceRegistered): device_registered,
        _name(industry_events.UtilisationRolledUp): utilisation_rolled_up,
        _name(safety_events.AlertRaised): alert_raised,
        _name(safety_events.AlertResolved): alert_resolved,
        _name(kitchen_events.KitchenRegistered): kitchen_registered,
        _name(kitchen_events.MorningCheckFailed): morning_check_failed,
        _name(kitchen_events.ColdChainAlertRaised): cold_chain_alert,
        _name(commerce_events.MembershipApproved): membership_approved,
        _name(commerce_events.MembershipEnded): membership_ended,
        _name(govservice_events.ApplicationFiled): application_filed,
        _name(govservice_events.ApplicationCompleted): application_completed,
    }

    def project(repo: ProjectionStore, envelope: EventEnvelope, message: Message) -> None:
        step = steps.get(envelope.type)
        if step is not None:
            step(repo, envelope, message)

    return project


def _name(message_class: Any) -> str:
    return str(message_class.DESCRIPTOR.full_name)


def _applicant(message: Any) -> tuple[str, str]:
    """An enterprise applicant's town is its enterprise's; a person's application has only its own."""
    if message.credit_code:
        return (_ENTERPRISE, message.credit_code)
    return (_APPLICATION, message.application_no)
