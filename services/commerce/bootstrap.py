"""The commerce service's composition root: the only place that opens the pool, the producer, the
industry client and the background tasks, and wires the use cases to them."""

from __future__ import annotations

from pathlib import Path

from cityhub.commerce.v1 import commerce_pb2_grpc
from cityhub.industry.v1 import industry_pb2_grpc

from services.commerce.adapters.industry_enterprises import IndustryEnterprises
from services.commerce.grpc_api import COMMERCE_SERVICE, POLICY, CommerceServicer
from services.commerce.repository import CommerceRepository
from services.commerce.settings import CommerceSettings
from services.commerce.usecases.common import Clock, CommerceConfig, CommerceContext, utc_now
from services.commerce.usecases.requests import OverdueSweeper
from services.platform.grpc_client import peer_client
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings
from services.platform.vault import Vault, load_person_key

__all__ = ["build", "config_of"]

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger()


def config_of(settings: CommerceSettings) -> CommerceConfig:
    return CommerceConfig(
        zone=settings.district_zone,
        code_validity_s=settings.commerce_code_validity_s,
        code_leeway_s=settings.commerce_code_leeway_s,
        key_retire_after_s=settings.commerce_key_retire_after_s,
    )


def build(
    settings: CommerceSettings,
    *,
    configure_logs: bool = True,
    security: SecuritySettings | None = None,
    clock: Clock = utc_now,
) -> ServiceRuntime:
    """``clock`` is for tests only (a replica whose clock runs behind issues codes that already expired)."""
    # Read before anything opens: a missing key stops start-up naming COMMERCE_SEAL_KEY.
    key = load_person_key(
        "commerce",
        settings.commerce_seal_key,
        settings.commerce_seal_key_file,
        dev_keys=settings.commerce_dev_keys,
        dev_dir=settings.commerce_dev_secrets_dir,
        setting="COMMERCE_SEAL_KEY",
    )
    spec = ServiceSpec(
        label="commerce",
        grpc_services=[COMMERCE_SERVICE],
        policy=POLICY,
        migrations=MIGRATIONS,
        topics=[settings.commerce_events_topic],
    )
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        industry = peer_client(settings, "industry", industry_pb2_grpc.IndustryServiceStub, security=security)
        runtime.add_closer(industry.close)
        ctx = CommerceContext(
            uow=runtime.unit_of_work(CommerceRepository),
            config=config_of(settings),
            vault=Vault(key, "commerce"),
            clock=clock,
            enterprises=IndustryEnterprises(industry),
        )
        servicer = CommerceServicer(ctx)
        runtime.add_servicer(
            COMMERCE_SERVICE,
            lambda server: commerce_pb2_grpc.add_CommerceServiceServicer_to_server(servicer, server),
        )
        sweeper = OverdueSweeper(ctx, interval_s=settings.commerce_overdue_sweep_interval_s)
        runtime.add_background("commerce-overdue-sweep", sweeper.run)
    except BaseException:
        runtime.close()
        raise
    log.info("commerce_built")
    return runtime
