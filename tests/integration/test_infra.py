"""The local stack launcher against the stack the session runs on: both parts answer, `up` is idempotent,
and `env` prints exports that name the same endpoints."""

from __future__ import annotations

import shlex

import pytest
from click.testing import CliRunner

from services.cli.infra import InfraSettings, ensure_up, status
from services.cli.infra_commands import infra

pytestmark = pytest.mark.integration


def test_status_reports_both_parts_reachable_when_up(stack: object) -> None:
    report = status(InfraSettings())

    assert report.kafka.reachable, report.kafka.detail
    assert report.postgres.reachable, report.postgres.detail
    assert report.all_reachable


def test_up_again_reuses_the_running_stack(stack: object) -> None:
    settings = InfraSettings()

    endpoints = ensure_up(settings)

    assert not endpoints.started_kafka
    assert not endpoints.started_postgres
    assert endpoints.kafka_bootstrap == (settings.external_kafka or settings.local_kafka_bootstrap)


def test_env_prints_exports_for_the_running_stack(stack: object) -> None:
    settings = InfraSettings()

    result = CliRunner().invoke(infra, ["env"])

    assert result.exit_code == 0, result.output
    # stdout only: `output` interleaves stderr, where a background client of an earlier test may log.
    exports = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in result.stdout.splitlines()
    )
    assert exports["KAFKA_BOOTSTRAP_SERVERS"] == (settings.external_kafka or settings.local_kafka_bootstrap)
    assert exports["DATABASE_URL"] == (settings.external_database or settings.local_database_url)
