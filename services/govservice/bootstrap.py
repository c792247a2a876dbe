"""The govservice service's composition root: the only place that opens the pool, the producer, the
commerce client and the background tasks, loads the seed file, and wires the use cases to them."""

from __future__ import annotations

from pathlib import Path

from cityhub.commerce.v1 import commerce_pb2_grpc
from cityhub.govservice.v1 import govservice_pb2_grpc

from services.govservice.adapters.calendar import HolidayCalendar
from services.govservice.adapters.commerce_members import CommerceMembers
from services.govservice.grpc_api import GOVSERVICE_SERVICE, POLICY, GovServiceServicer
from services.govservice.repository import GovServiceRepository
from services.govservice.settings import GovServiceSettings
from services.govservice.usecases.catalogue import load_seed
from services.govservice.usecases.common import Clock, GovServiceConfig, GovServiceContext, utc_now
from services.govservice.usecases.overdue import OverdueSweeper
from services.platform.grpc_client import peer_client
from services.platform.logs import get_logger
from services.platform.runtime import ServiceRuntime, ServiceSpec
from services.platform.security import SecuritySettings
from services.platform.vault import Vault, load_person_key

__all__ = ["build", "config_of"]

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger()


def config_of(settings: GovServiceSettings) -> GovServiceConfig:
    return GovServiceConfig(
        zone=settings.district_zone,
        track_free_failures=settings.govservice_track_free_failures,
        track_window_s=settings.govservice_track_window_s,
        track_max_wait_s=settings.govservice_track_max_wait_s,
    )


def build(
    settings: GovServiceSettings,
    *,
    configure_logs: bool = True,
    security: SecuritySettings | None = None,
    clock: Clock = utc_now,
) -> ServiceRuntime:
    # Read before anything opens: a missing key stops start-up naming GOVSERVICE_PERSON_KEY.
    key = load_person_key(
        "govservice",
        settings.govservice_person_key,
        settings.govservice_person_key_file,
        dev_keys=settings.govservice_dev_keys,
        dev_dir=settings.govservice_dev_secrets_dir,
    )
    spec = ServiceSpec(
        label="govservice",
        grpc_services=[GOVSERVICE_SERVICE],
        policy=POLICY,
        migrations=MIGRATIONS,
        topics=[settings.govservice_events_topic],
    )
    runtime = ServiceRuntime(settings, spec, security=security, configure_logs=configure_logs)
    try:
        commerce = peer_client(settings, "commerce", commerce_pb2_grpc.CommerceServiceStub, security=security)
        runtime.add_closer(commerce.close)
        vault = Vault(key, "govservice", id_prefix="a_")
        ctx = GovServiceContext(
            # Request fingerprints are keyed: FileApplication holds an identity number.
            uow=runtime.unit_of_work(GovServiceRepository, fingerprint=vault.mac),
            config=config_of(settings),
            vault=vault,
            members=CommerceMembers(commerce),
            calendar=HolidayCalendar(settings.govservice_holiday_country),
            clock=clock,
        )
        if settings.govservice_seed_file is not None:
            load_seed(ctx, settings.govservice_seed_file)
        servicer = GovServiceServicer(ctx)
        runtime.add_servicer(
            GOVSERVICE_SERVICE,
            lambda server: govservice_pb2_grpc.add_CrossRegionServiceServicer_to_server(servicer, server),
        )
        sweeper = OverdueSweeper(ctx, interval_s=settings.govservice_overdue_sweep_interval_s)
        runtime.add_background("govservice-overdue-sweep", sweeper.run)
    except BaseException:
        runtime.close()
        raise
    log.info("govservice_built")
    return runtime
