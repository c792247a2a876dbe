"""`cityhub hub rebuild`: the hub's views replayed from every topic it consumes into a fresh schema,
compared with the live ones row for row, then swapped in atomically (services/hub/rebuild.py).

Settings come from the environment exactly as the hub's (HubSettings: SERVICE_NAME, the HUB_*_TOPIC
names, DISTRICT_TIME_ZONE...); DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS default to the local stack as
`cityhub infra env` resolves them. DATABASE_URL's user provisions the fresh schema and makes the swap, as
it provisions the hub's schema at start-up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from services.cli.defaults import resolved_addresses

if TYPE_CHECKING:
    from services.hub.settings import HubSettings

__all__ = ["hub", "hub_settings_from_environment"]


@click.group()
def hub() -> None:
    """The data hub: rebuild its views by replay."""


def hub_settings_from_environment() -> HubSettings:
    from services.hub.settings import HubSettings
    from services.platform.settings import SettingsError, load_settings

    overrides: dict[str, Any] = {}
    if not os.environ.get("DATABASE_URL"):
        overrides["database_url"] = resolved_addresses().database_url
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        overrides["kafka_bootstrap_servers"] = resolved_addresses().kafka_bootstrap
    try:
        return load_settings(HubSettings, **overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


@hub.command()
@click.option(
    "--compare-only", is_flag=True, help="Replay and compare, then drop the rebuild; exit 1 if it differs"
)
@click.option("--yes", is_flag=True, help="Swap without asking")
@click.option(
    "--batch-size",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Events per transaction",
)
@click.option("--no-progress", is_flag=True, help="No progress bar")
@click.option(
    "--wait-for-stop",
    "wait_for_stop",
    type=click.FloatRange(1, 86_400),
    default=None,
    metavar="SECONDS",
    help="Replay while the hub runs, then wait this long for it to be stopped and catch up with what"
    " arrived meanwhile: the hub is down for the tail, the comparison and the swap only",
)
def rebuild(
    compare_only: bool, yes: bool, batch_size: int, no_progress: bool, wait_for_stop: float | None
) -> None:
    """Replay every topic the hub consumes into a fresh schema, compare it with the live views row for row
    (printing the differences), then swap it in atomically while the hub is stopped.

    Stop the hub first, or pass --wait-for-stop and stop it when asked (after the replay).

    Exit 0 when the rebuild equals the live views (--compare-only) or once swapped; 1 when they differ
    (--compare-only), or the swap is refused (the hub is running) or declined.
    """
    from services.hub import rebuild as machinery

    settings = hub_settings_from_environment()

    def confirm(question: str) -> bool:
        return yes or click.confirm(question, default=False, err=True)

    try:
        code = machinery.rebuild(
            settings,
            compare_only=compare_only,
            confirm=confirm,
            progress=not no_progress,
            echo=click.echo,
            batch_size=batch_size,
            wait_for_stop_s=wait_for_stop,
        )
    except machinery.RebuildError as error:
        raise click.ClickException(str(error)) from error
    raise SystemExit(code)
