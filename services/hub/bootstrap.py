"""The hub's composition root: the only place that opens the pool, the producer, the domains' peer
clients, the projection consumer and the escalation task, and wires the use cases to them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from cityhub.commerce.v1 import commerce_pb2_grpc
from cityhub.govservice.v1 import govservice_pb2_grpc
from cityhub.hub.v1 import hub_pb2_grpc
from cityhub.industry.v1 import industry_pb2_grpc
from cityhub.kitchen.v1 import kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2_grpc

from services.hub.consumers import projection_batch_handler, projection_handler
from services.hub.grpc_api import HUB_SERVICE, POLICY, HubServicer
from services.hub.repository import HubRepository
from services.hub.settings import HubSettings
from services.hub.usecases.common import Clock, HubConfig, HubContext, utc_now
from services.hub.usecases.escalation import Escalator
from services.platform.db import dedicated_connection
from services.platform.grpc_client import PeerClient, peer_client
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings

__all__ = ["PROJECTION_CONSUMER", "build", "config_of"]

MIGRATIONS = Path(__file__).parent / "migrations"
# The platform names the consumer group "<service name>.<this>"; a rebuild uses a group of its own.
PROJECTION_CONSUMER = "projections"
_STUBS: dict[str, Any] = {
    "safety": safety_pb2_grpc.SafetyServiceStub,
    "industry": industry_pb2_grpc.IndustryServiceStub,
    "kitchen": kitchen_pb2_grpc.KitchenServiceStub,
    "commerce": commerce_pb2_grpc.CommerceServiceStub,
    "govservice": govservice_pb2_grpc.CrossRegionServiceStub,
}
log = get_logger()


def config_of(settings: HubSettings) -> HubConfig:
    return HubConfig(
        zone=settings.district_zone,
        detail_timeout=timedelta(seconds=settings.hub_detail_timeout_s),
        dedup_window=timedelta(seconds=settings.hub_dedup_window_s),
        escalate_after={
            "CRITICAL": timedelta(seconds=settings.hub_escalate_critical_s),
            "HIGH": timedelta(seconds=settings.hub_escalate_high_s),
            "MEDIUM": timedelta(seconds=settings.hub_escalate_medium_s),
            "LOW": timedelta(seconds=settings.hub_escalate_low_s),
            "INFO": timedelta(seconds=settings.hub_escalate_low_s),
        },
        reminder_interval=timedelta(seconds=settings.hub_reminder_interval_s),
        correlation_window=timedelta(seconds=settings.hub_correlation_window_s),
        correlation_distance_m=settings.hub_correlation_distance_m,
        watch_queue_size=settings.hub_watch_queue_size,
    )


def build(
    settings: HubSettings,
    *,
    configure_logs: bool = True,
    security: SecuritySettings | None = None,
    clock: Clock = utc_now,
) -> ServiceRuntime:
    spec = ServiceSpec(
        label="hub",
        grpc_services=[HUB_SERVICE],
        policy=POLICY,
        migrations=MIGRATIONS,
        topics=[settings.hub_events_topic],
        # The domains' topics are theirs: consumed here, created by them (or here if the hub starts first).
        extra_topics=settings.domain_topics,
    )
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        peers: dict[str, PeerClient[Any]] = {}
        for domain, stub in _STUBS.items():
            if getattr(settings, f"{domain}_grpc_address"):
                peers[domain] = peer_client(
                    settings, domain, stub, security=security, timeout_s=settings.hub_detail_timeout_s
                )
                runtime.add_closer(peers[domain].close)
        ctx = HubContext(
            uow=runtime.unit_of_work(HubRepository),
            config=config_of(settings),
            peers=peers,
            outbox=runtime.outbox,
            events_topic=settings.hub_events_topic,
            clock=clock,
            listen=lambda: dedicated_connection(runtime.pool),
            on_stop=runtime.server.on_stop,
        )
        servicer = HubServicer(ctx)
        runtime.add_servicer(
            HUB_SERVICE, lambda server: hub_pb2_grpc.add_HubServiceServicer_to_server(servicer, server)
        )
        runtime.add_consumer(
            PROJECTION_CONSUMER,
            [*settings.domain_topics, settings.hub_events_topic],
            projection_handler(ctx),
            batch_handler=projection_batch_handler(ctx),
            max_poll_records=settings.hub_max_poll_records,
            fetch_min_bytes=settings.hub_fetch_min_bytes,
            fetch_max_wait_ms=settings.hub_fetch_max_wait_ms,
        )
        escalator = Escalator(ctx, interval_s=settings.hub_escalation_check_interval_s)
        runtime.add_background("hub-escalation", escalator.run)
    except BaseException:
        runtime.close()
        raise
    log.info("hub_built", peers=sorted(peers))
    return runtime
