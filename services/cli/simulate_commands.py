"""`cityhub simulate`: play the district (or one scenario) against the running services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

__all__ = ["simulate"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--seed", type=int, default=None, help="Same seed, same district and story [SIMULATOR_SEED, 14]"
)
@click.option(
    "--speed", default=None, help="Simulated seconds per second, or 'max' [SIMULATOR_SPEED, 1 = real time]"
)
@click.option("--scale", type=float, default=None, help="District size factor [SIMULATOR_SCALE, 1.0]")
@click.option("--duration", default=None, help="Simulated length: 600, 30m, 8h, 2d [SIMULATOR_DURATION, 24h]")
@click.option(
    "--scenario",
    type=click.Choice(["district", "reference-incident"]),
    default=None,
    help="The whole district, or only the reference incident [SIMULATOR_SCENARIO, district]",
)
@click.option(
    "--start",
    default=None,
    help="Simulated start, ISO 8601 with zone [default: now; at higher speeds so the run ends now]",
)
@click.option(
    "--targets",
    default=None,
    help="service=host:port,... (default: the ports of deploy/local/processes.toml) [SIMULATOR_TARGETS]",
)
@click.option("--workers", type=int, default=None, help="Requests in flight at once [SIMULATOR_WORKERS, 6]")
def simulate(**options: Any) -> None:
    """Play the district against the services' public gRPC APIs (a service token signed locally)."""
    from pydantic import ValidationError

    from services.platform.logs import configure_logging
    from services.platform.settings import describe_validation_error
    from services.simulator.runner import run
    from services.simulator.settings import SimulatorSettings

    given = {k: v for k, v in options.items() if v is not None}
    if "start" in given:
        try:
            given["start"] = datetime.fromisoformat(given["start"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--start") from None
    try:
        settings = SimulatorSettings(**given)
        settings.target_map()
    except ValidationError as exc:
        raise click.ClickException(describe_validation_error(SimulatorSettings, exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging("simulator", level=settings.log_level, fmt=settings.log_format)
    report = run(settings, handle_signals=True)
    summary = report.summary()
    click.echo(
        "simulated: "
        + ", ".join(f"{name} {count}" for name, count in summary.items())
        + ("" if not report.failures else f"; first failure: {report.failures[0]}"),
        err=True,
    )
    if report.count("failed") and not report.count("ok"):
        raise SystemExit(1)
