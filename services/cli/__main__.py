"""The `cityhub` command: local infrastructure, topics, events, dead letters, tokens and the audit log."""

from __future__ import annotations

import click

from services.cli.audit_commands import audit
from services.cli.db_commands import db
from services.cli.events_commands import events
from services.cli.hub_commands import hub
from services.cli.infra_commands import infra
from services.cli.kafka_commands import dlq, topics
from services.cli.simulate_commands import simulate
from services.cli.token_commands import token
from services.cli.web_commands import web
from services.platform.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level", default="warning", show_default=True, envvar="LOG_LEVEL", help="Log level for progress"
)
def cli(log_level: str) -> None:
    """CityHub operator and developer tool."""
    configure_logging("cli", level=log_level, fmt="console", to_stderr=True)


@cli.command()
def run() -> None:
    """Start Kafka, PostgreSQL and every service; stay in the foreground until Ctrl-C or `cityhub stop`."""
    from services.cli.run import run_stack

    run_stack()


@cli.command()
def stop() -> None:
    """Stop what `cityhub run` started."""
    from services.cli.run import stop_stack

    stop_stack()


for group in (infra, topics, events, dlq, token, audit, hub, db, web, simulate):
    cli.add_command(group)


def main() -> None:
    cli(prog_name="cityhub")


if __name__ == "__main__":
    main()
