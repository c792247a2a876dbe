"""The kitchen service's composition root: the only place that opens the pool, the producer, the safety
client, the readings consumer and the background tasks, and wires the use cases to them."""

from __future__ import annotations

from pathlib import Path

from cityhub.kitchen.v1 import kitchen_pb2, kitchen_pb2_grpc
from cityhub.safety.v1 import safety_pb2_grpc

from services.kitchen.adapters.safety_sites import SafetySites
from services.kitchen.consumers import readings_batch_handler, readings_handler
from services.kitchen.grpc_api import KITCHEN_SERVICE, POLICY, KitchenServicer
from services.kitchen.repository import KitchenRepository
from services.kitchen.settings import KitchenSettings
from services.kitchen.usecases.checks import CheckSweeper
from services.kitchen.usecases.common import Clock, KitchenConfig, KitchenContext, utc_now
from services.kitchen.usecases.monitor import EquipmentMonitor
from services.platform.grpc_client import peer_client
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings
from services.platform.validation import InputRules
from services.platform.vault import Vault, load_person_key

__all__ = ["READINGS_CONSUMER", "build", "config_of"]

MIGRATIONS = Path(__file__).parent / "migrations"
# The platform names the consumer group "<service name>.<this>".
READINGS_CONSUMER = "equipment-rules"
EQUIPMENT_READING = kitchen_pb2.EquipmentReading.DESCRIPTOR.full_name
log = get_logger()


def config_of(settings: KitchenSettings) -> KitchenConfig:
    return KitchenConfig(
        zone=settings.district_zone,
        fever_threshold_c=settings.kitchen_fever_threshold_c,
        face_match_threshold=settings.kitchen_face_match_threshold,
        readings_max_per_request=settings.kitchen_readings_max_per_request,
        readings_max_future_s=settings.kitchen_readings_max_future_s,
        readings_max_age_s=settings.kitchen_readings_max_age_s,
        readings_ack_timeout_s=settings.kitchen_readings_ack_timeout_s,
        violation_join_window_s=settings.kitchen_violation_join_window_s,
        sample_min_grams=settings.kitchen_sample_min_grams,
        sample_keep_hours=settings.kitchen_sample_keep_hours,
    )


def build(
    settings: KitchenSettings,
    *,
    configure_logs: bool = True,
    security: SecuritySettings | None = None,
    clock: Clock = utc_now,
) -> ServiceRuntime:
    """``clock`` is for tests only: a story tied to the local time of day (shifts, sweeps) is played at a
    chosen hour, whatever hour the test runs at."""
    # Read before anything opens: a missing key stops start-up naming KITCHEN_PERSON_KEY.
    key = load_person_key(
        "kitchen",
        settings.kitchen_person_key,
        settings.kitchen_person_key_file,
        dev_keys=settings.kitchen_dev_keys,
        dev_dir=settings.kitchen_dev_secrets_dir,
    )
    vault = Vault(key, "kitchen", id_prefix="s_")
    spec = ServiceSpec(
        label="kitchen",
        grpc_services=[KITCHEN_SERVICE],
        policy=POLICY,
        migrations=MIGRATIONS,
        topics=[settings.kitchen_events_topic, settings.kitchen_readings_topic],
        # Readings (up to thousands a request) are screened one by one into per-reading rejections by the
        # ingest's own rules; the platform's generic walk would turn one bad reading into a refused batch.
        input_rules=InputRules(screened=frozenset({EQUIPMENT_READING})),
    )
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        safety = peer_client(settings, "safety", safety_pb2_grpc.SafetyServiceStub, security=security)
        runtime.add_closer(safety.close)
        readings_topic = settings.kitchen_readings_topic
        partitions = len(runtime.producer.partitions_for(readings_topic))  # type: ignore[attr-defined]
        ctx = KitchenContext(
            # Request fingerprints are keyed: AddStaff holds an identity number, RateMeal a rater id.
            uow=runtime.unit_of_work(KitchenRepository, fingerprint=vault.mac),
            config=config_of(settings),
            vault=vault,
            sites=SafetySites(safety),
            producer=runtime.producer,
            readings_topic=readings_topic,
            readings_partitions=partitions,
            source=runtime.outbox.source,
            kafka_breaker=runtime.breaker("Kafka"),
            outbox=runtime.outbox,
            clock=clock,
        )
        servicer = KitchenServicer(ctx)
        runtime.add_servicer(
            KITCHEN_SERVICE,
            lambda server: kitchen_pb2_grpc.add_KitchenServiceServicer_to_server(servicer, server),
        )
        if settings.kitchen_readings_consumer_enabled:
            runtime.add_consumer(
                READINGS_CONSUMER,
                [readings_topic],
                readings_handler(ctx),
                batch_handler=readings_batch_handler(ctx),
            )
        sweeper = CheckSweeper(ctx, interval_s=settings.kitchen_check_sweep_interval_s)
        runtime.add_background("kitchen-check-sweep", sweeper.run)
        monitor = EquipmentMonitor(ctx, interval_s=settings.kitchen_monitor_interval_s)
        runtime.add_background("kitchen-equipment-monitor", monitor.run)
    except BaseException:
        runtime.close()
        raise
    log.info("kitchen_built", readings_partitions=partitions)
    return runtime
