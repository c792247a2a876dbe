"""The safety service's composition root: the only place that opens the pool, the producer, the
outbox relay, the alert feed's listener and the gRPC server, and wires the unit of work and the use cases
to them."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from cityhub.safety.v1 import safety_pb2_grpc

from services.platform.db import dedicated_connection
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings
from services.safety.alert_feed import AlertFeed, alert_channel
from services.safety.grpc_api import POLICY, SAFETY_SERVICE, SafetyServicer
from services.safety.repository import SafetyRepository
from services.safety.settings import SafetySettings
from services.safety.usecases import (
    AlertUseCases,
    DetectionUseCases,
    InspectionUseCases,
    PersonUseCases,
    SafetyUseCases,
    SiteUseCases,
    StatisticsUseCases,
    VehicleUseCases,
)
from services.safety.usecases.alerts import read_changed_alerts
from services.safety.usecases.common import SafetyConfig, SafetyUnitOfWork
from services.safety.vault import PersonVault, load_person_key

__all__ = ["MIGRATIONS", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger()


def build(
    settings: SafetySettings,
    *,
    configure_logs: bool = True,
    security: SecuritySettings | None = None,
) -> ServiceRuntime:
    # Keys first: a service without its person key or JWT key must not touch the database at all.
    vault = PersonVault(load_person_key(settings))
    spec = ServiceSpec(
        label="safety",
        grpc_services=[SAFETY_SERVICE],
        policy=POLICY,
        migrations=MIGRATIONS,
        topics=[settings.safety_events_topic],
    )
    # The runtime brings the platform's security: bearer tokens, this service's POLICY, masking, audit.
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        schema = settings.service_name
        pool = runtime.pool
        # Request fingerprints are keyed (vault.mac): a RecordPerson command holds an identity number, and
        # a plain hash of one could be reversed by trying every plausible number.
        uow: SafetyUnitOfWork = runtime.unit_of_work(SafetyRepository, fingerprint=vault.mac)
        # One change feed per process: it reads each changed alert once for every watcher.
        feed = AlertFeed(
            lambda: dedicated_connection(pool),
            alert_channel(schema),
            load=partial(read_changed_alerts, uow),
            queue_size=settings.safety_watch_queue_size,
        )
        # Open watch streams end as soon as the server begins to stop, instead of holding it for the grace.
        runtime.server.on_stop(feed.close)
        config = SafetyConfig(
            risk_window=timedelta(seconds=settings.safety_risk_window_s),
            dedup_window=timedelta(seconds=settings.safety_alert_dedup_window_s),
            time_zone=settings.district_time_zone,
            alert_channel=alert_channel(schema),
        )
        use_cases = SafetyUseCases(
            sites=SiteUseCases(uow),
            persons=PersonUseCases(uow, vault),
            vehicles=VehicleUseCases(uow, vault),
            detections=DetectionUseCases(uow, vault, config),
            alerts=AlertUseCases(uow, config, feed=feed),
            inspections=InspectionUseCases(uow),
            statistics=StatisticsUseCases(uow, time_zone=settings.district_time_zone),
        )
        servicer = SafetyServicer(use_cases)
        runtime.add_servicer(
            SAFETY_SERVICE,
            lambda server: safety_pb2_grpc.add_SafetyServiceServicer_to_server(servicer, server),
        )
    except BaseException:
        runtime.close()
        raise
    log.info("safety_built", topic=settings.safety_events_topic, schema=schema)
    return runtime
