"""The industry service's composition root: the only place that opens the pool, the producer, the
consumers, the background health thread and the gRPC server, and wires the use cases to them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cityhub.industry.v1 import industry_pb2_grpc, telemetry_pb2

from services.industry.adapters.device_directory import DeviceDirectory
from services.industry.adapters.recent_starts import RecentStarts
from services.industry.adapters.telemetry_wire import device_partitioner
from services.industry.consumers import telemetry_batch_handler, telemetry_handler
from services.industry.domain.telemetry import SampleLimits
from services.industry.grpc_api import INDUSTRY_SERVICE, POLICY, IndustryServicer
from services.industry.repository import IndustryRepository
from services.industry.settings import IndustrySettings
from services.industry.usecases.common import IndustryConfig, IndustryStore
from services.industry.usecases.health import HealthMonitor
from services.industry.usecases.orders import Orders
from services.industry.usecases.registry import Registry
from services.industry.usecases.telemetry import TelemetryIngest, TelemetryRollup
from services.industry.usecases.utilisation import UtilisationQueries
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings
from services.platform.uow import UnitOfWork
from services.platform.validation import InputRules

__all__ = ["ROLLUP_CONSUMER", "build", "config_of", "sample_limits"]

TELEMETRY_SAMPLE = telemetry_pb2.TelemetrySample.DESCRIPTOR.full_name
MIGRATIONS = Path(__file__).parent / "migrations"
# The platform names the consumer group "<service name>.<this>"; processed_events rows carry this name.
ROLLUP_CONSUMER = "telemetry-rollup"
log = get_logger()


def config_of(settings: IndustrySettings) -> IndustryConfig:
    return IndustryConfig(
        zone=settings.district_zone,
        silence_after=timedelta(seconds=settings.industry_silence_alert_after_s),
        fault_after=timedelta(seconds=settings.industry_fault_alert_after_s),
        rollup_publish_delay=timedelta(seconds=settings.industry_rollup_publish_delay_s),
        digital_workshop_share=settings.industry_digital_workshop_share,
    )


def sample_limits(settings: IndustrySettings) -> SampleLimits:
    return SampleLimits(
        max_future_ms=int(settings.industry_telemetry_max_future_s * 1000),
        max_age_ms=int(settings.industry_telemetry_max_age_s * 1000),
        power_rated_multiple=settings.industry_power_rated_multiple,
        temperature_min_c=settings.industry_temperature_min_c,
        temperature_max_c=settings.industry_temperature_max_c,
        spindle_load_max_pct=settings.industry_spindle_load_max_pct,
        max_parts_per_sample=settings.industry_max_parts_per_sample,
    )


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
        topics=[settings.industry_events_topic, settings.industry_telemetry_topic],
        # Telemetry samples (up to 20,000 a request) are screened one by one into per-sample rejections
        # by the ingest's own rules; the platform's generic walk would only slow the hot path.
        input_rules=InputRules(screened=frozenset({TELEMETRY_SAMPLE})),
    )
    # The runtime brings the platform's security: bearer tokens, this service's POLICY, masking, audit.
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        telemetry_topic = settings.industry_telemetry_topic
        # The partition count is read once: every sample of a device goes to the partition a record keyed
        # by the device id would (adding partitions later moves devices, as it would for keyed records).
        partitions = len(runtime.producer.partitions_for(telemetry_topic))  # type: ignore[attr-defined]
        directory = DeviceDirectory(
            runtime.pool,
            bucket_of=device_partitioner(partitions),
            recheck_interval_s=settings.industry_device_recheck_interval_s,
        )
        directory.refresh()
        config = config_of(settings)
        uow: UnitOfWork[IndustryStore] = runtime.unit_of_work(IndustryRepository)
        ingest = TelemetryIngest(
            directory,
            runtime.producer,
            uow,
            topic=telemetry_topic,
            partitions=partitions,
            source=runtime.outbox.source,
            limits=sample_limits(settings),
            max_samples=settings.industry_telemetry_max_samples_per_request,
            ack_timeout_s=settings.industry_telemetry_ack_timeout_s,
            breaker=runtime.breaker("Kafka"),
            recent=RecentStarts(settings.industry_telemetry_recent_starts_per_device),
            record_per_sample=settings.industry_telemetry_record_per_sample,
        )
        servicer = IndustryServicer(
            Registry(uow, config, directory),
            ingest,
            UtilisationQueries(uow, config),
            Orders(uow, config),
            settings.industry_digital_workshop_share,
        )
        runtime.add_servicer(
            INDUSTRY_SERVICE,
            lambda server: industry_pb2_grpc.add_IndustryServiceServicer_to_server(servicer, server),
        )
        if settings.industry_rollup_consumer_enabled:
            rollup = TelemetryRollup(directory, runtime.outbox, fault_after=config.fault_after)
            runtime.add_consumer(
                ROLLUP_CONSUMER,
                [telemetry_topic],
                telemetry_handler(rollup),
                batch_handler=telemetry_batch_handler(rollup),
                max_poll_records=settings.industry_rollup_max_poll_records,
                # Records are tens of kB each: let one fetch bring a whole poll's worth.
                max_partition_fetch_bytes=16 << 20,
                fetch_max_bytes=64 << 20,
            )
        if settings.industry_health_monitor_enabled:
            monitor = HealthMonitor(
                uow, directory, config, interval_s=settings.industry_health_check_interval_s
            )
            runtime.add_background("industry-health", monitor.run)
    except BaseException:
        runtime.close()
        raise
    log.info("industry_built", telemetry_partitions=partitions, devices=len(directory.profiles))
    return runtime
