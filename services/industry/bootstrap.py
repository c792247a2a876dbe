"""The industry service's composition root: the only place that opens the pool, the producer, the
consumers, the background health thread and the gRPC server, and wires the use cases to them."""

from __future__ import annotations

from pathlib import Path

from cityhub.industry.v1 import industry_pb2_grpc

from services.industry.consumers import telemetry_batch_handler, telemetry_handler
from services.industry.grpc_api import INDUSTRY_SERVICE, POLICY, IndustryServicer
from services.industry.handlers import (
    HealthMonitor,
    Orders,
    Registry,
    TelemetryIngest,
    TelemetryRollup,
    UtilisationQueries,
    device_partitioner,
)
from services.industry.repository import DeviceDirectory
from services.industry.settings import IndustrySettings
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings

__all__ = ["ROLLUP_CONSUMER", "build"]

MIGRATIONS = Path(__file__).parent / "migrations"
# The platform names the consumer group "<service name>.<this>"; processed_events rows carry this name.
ROLLUP_CONSUMER = "telemetry-rollup"
log = get_logger()


def build(
    settings: IndustrySettings,
    *,
    configure_logs: bool = True,
    security: SecuritySettings | None = None,
) -> ServiceRuntime:
    spec = ServiceSpec(
        label="industry",
        grpc_services=[INDUSTRY_SERVICE],
        policy=POLICY,
        migrations=MIGRATIONS,
        topics=[settings.events_topic, settings.telemetry_topic],
    )
    # The runtime brings the platform's security: bearer tokens, this service's POLICY, masking, audit.
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        # The partition count is read once: every sample of a device goes to the partition a record keyed
        # by the device id would (adding partitions later moves devices, as it would for keyed records).
        partitions = len(runtime.producer.partitions_for(settings.telemetry_topic))  # type: ignore[attr-defined]
        directory = DeviceDirectory(
            runtime.pool,
            bucket_of=device_partitioner(partitions),
            recheck_interval_s=settings.device_recheck_interval_s,
        )
        directory.refresh()
        registry = Registry(runtime.pool, runtime.outbox, directory, settings)
        ingest = TelemetryIngest(
            directory,
            runtime.producer,
            topic=settings.telemetry_topic,
            partitions=partitions,
            source=runtime.outbox.source,
            settings=settings,
        )
        servicer = IndustryServicer(
            registry,
            ingest,
            UtilisationQueries(runtime.pool, settings),
            Orders(runtime.pool, runtime.outbox, settings),
            settings.digital_workshop_share,
        )
        runtime.add_servicer(
            INDUSTRY_SERVICE,
            lambda server: industry_pb2_grpc.add_IndustryServiceServicer_to_server(servicer, server),
        )
        if settings.rollup_consumer_enabled:
            rollup = TelemetryRollup(directory, runtime.outbox, settings)
            runtime.add_consumer(
                ROLLUP_CONSUMER,
                [settings.telemetry_topic],
                telemetry_handler(rollup),
                batch_handler=telemetry_batch_handler(rollup),
                max_poll_records=settings.rollup_max_poll_records,
                # Records are tens of kB each: let one fetch bring a whole poll's worth.
                max_partition_fetch_bytes=16 << 20,
                fetch_max_bytes=64 << 20,
            )
        if settings.health_monitor_enabled:
            monitor = HealthMonitor(runtime.pool, runtime.outbox, directory, settings)
            runtime.add_background("industry-health", monitor.run)
    except BaseException:
        runtime.close()
        raise
    log.info("industry_built", telemetry_partitions=partitions, devices=len(directory.profiles))
    return runtime
