"""One simulator run: settings → the plan → the executor, with the service token signed locally."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime

import structlog

from services.platform.security.settings import load_security_settings
from services.platform.security.tokens import TokenIssuer
from services.simulator.executor import Executor, Report
from services.simulator.plan import plan
from services.simulator.settings import SimulatorSettings, parse_duration, parse_speed

__all__ = ["resolve_start", "run", "signing_issuer"]

log = structlog.get_logger("simulator")


def resolve_start(settings: SimulatorSettings, now: datetime | None = None) -> datetime:
    """The simulated start: as given, else now (to the second) at real time, else so the run ends now."""
    if settings.start is not None:
        return settings.start.astimezone(UTC)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    speed = parse_speed(settings.speed)
    if speed is not None and speed <= 1:
        return now
    return now - parse_duration(settings.duration)


def signing_issuer() -> TokenIssuer:
    """Sign with the configured private key, or locally with the development key pair (as `cityhub token
    issue` does)."""
    security = load_security_settings()
    if security.jwt_private_key is None and security.jwt_private_key_file is None:
        security = security.model_copy(update={"dev_keys": True})
    return TokenIssuer.from_settings(security)


def run(
    settings: SimulatorSettings,
    *,
    issuer: TokenIssuer | None = None,
    targets: dict[str, str] | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = False,
) -> Report:
    start = resolve_start(settings)
    duration = parse_duration(settings.duration)
    executor = Executor(
        targets if targets is not None else settings.target_map(),
        issuer or signing_issuer(),
        speed=parse_speed(settings.speed),
        workers=settings.workers,
    )
    if stop is not None:
        executor.stop_event = stop
    if handle_signals:

        def _stop(_signum: int, _frame: object) -> None:
            executor.stop_event.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    log.info(
        "simulator_started",
        seed=settings.seed,
        scale=settings.scale,
        speed=settings.speed,
        scenario=settings.scenario,
        start=start.isoformat(),
        end=(start + duration).isoformat(),
    )
    actions = plan(settings.seed, settings.scale, start, duration, scenario=settings.scenario)
    return executor.run(actions, start)
