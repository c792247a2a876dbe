"""Readiness checks for the health service: a service is SERVING only while PostgreSQL and Kafka answer."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import psycopg
from kafka import KafkaAdminClient
from psycopg_pool import ConnectionPool

from services.platform.logs import get_logger

__all__ = ["KafkaCheck", "PostgresCheck"]

log = get_logger()


class PostgresCheck:
    """``SELECT 1`` through the service's own pool, so a pool that cannot connect reads as not ready."""

    name = "postgres"

    def __init__(
        self, pool: ConnectionPool | None = None, dsn: str | None = None, timeout_s: float = 2.0
    ) -> None:
        if pool is None and dsn is None:
            raise ValueError("PostgresCheck needs a pool or a dsn")
        self._pool = pool
        self._dsn = dsn
        self._timeout = timeout_s

    def __call__(self) -> bool:
        try:
            if self._pool is not None:
                with self._pool.connection(timeout=self._timeout) as conn:
                    conn.execute("SELECT 1")
            else:
                assert self._dsn is not None
                with psycopg.connect(self._dsn, connect_timeout=max(1, int(self._timeout))) as conn:
                    conn.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.debug("readiness_postgres_failed", error=str(exc))
            return False
        return True


class KafkaCheck:
    """A cluster metadata request through one long-lived admin client (re-made after a failure)."""

    name = "kafka"

    def __init__(self, bootstrap: Sequence[str] | str, timeout_ms: int = 2000) -> None:
        self._bootstrap = [bootstrap] if isinstance(bootstrap, str) else list(bootstrap)
        self._timeout_ms = timeout_ms
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            try:
                if self._admin is None:
                    self._admin = KafkaAdminClient(
                        bootstrap_servers=self._bootstrap,
                        client_id="cityhub-readiness",
                        request_timeout_ms=self._timeout_ms,
                        bootstrap_timeout_ms=self._timeout_ms,
                    )
                cluster = self._admin.describe_cluster()
                return bool(cluster.get("brokers"))
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                log.debug("readiness_kafka_failed", error=str(exc))
                self.close()
                return False

    def close(self) -> None:
        if self._admin is not None:
            # Closing a broken client may fail too; there is nothing more to do about it.
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
