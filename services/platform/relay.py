"""The outbox relay as its own process: ``python -m services.platform.relay``.

Services normally relay their outbox from a background thread (:func:`outbox.start_relay_thread`);
running it apart lets it be scaled, restarted or killed on its own (the crash tests SIGKILL it). Any
number may run against one schema: they take turns batch by batch under an advisory lock.

Settings come from the environment like every service's: SERVICE_NAME, KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL (the admin DSN, as for the services), RELAY_SCHEMA, OUTBOX_BATCH_SIZE, OUTBOX_POLL_INTERVAL_S,
OUTBOX_RETENTION_S, optionally RELAY_DB_ROLE / RELAY_DB_PASSWORD.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType
from typing import Annotated

from pydantic import Field, SecretStr

from services.platform.db import set_up_database
from services.platform.kafka import make_producer
from services.platform.logs import configure_logging, get_logger
from services.platform.metrics import serve_metrics
from services.platform.outbox import OutboxRelay
from services.platform.settings import ServiceSettings, load_settings

__all__ = ["RelaySettings", "main"]

log = get_logger()


class RelaySettings(ServiceSettings):
    """Which schema's outbox to relay, and how to reach it."""

    relay_schema: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
    relay_db_role: str | None = None
    relay_db_password: SecretStr | None = None
    outbox_retention_s: Annotated[float, Field(gt=0)] = 7 * 24 * 3600.0


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # configured by environment only, like every other CityHub process
    settings = load_settings(RelaySettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    stop = threading.Event()

    def _request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("outbox_relay_signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)

    password = settings.relay_db_password.get_secret_value() if settings.relay_db_password else None
    # Provisioning and migrating are idempotent: the relay may start before its service has run once.
    pool = set_up_database(
        settings.dsn, settings.relay_schema, role=settings.relay_db_role, password=password, max_size=2
    )
    producer = make_producer(settings)
    try:
        port = serve_metrics(settings.metrics_port)
        log.info("outbox_relay_metrics", port=port, schema=settings.relay_schema)
        relay = OutboxRelay(
            pool,
            producer,
            settings.service_name,
            settings.outbox_batch_size,
            settings.outbox_poll_interval_s,
            retention=timedelta(seconds=settings.outbox_retention_s),
        )
        relay.run(stop)
    finally:
        producer.close(timeout=10)
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
