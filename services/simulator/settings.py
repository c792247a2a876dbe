"""The simulator's settings (environment ``SIMULATOR_*``; `cityhub simulate` options override them)."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.simulator.plan import MIN_DURATION, SCENARIOS

__all__ = ["PROCESSES_FILE", "SimulatorSettings", "default_targets", "parse_duration", "parse_speed"]

PROCESSES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "local" / "processes.toml"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``8h``, ``2d`` → a duration."""
    match = _DURATION.match(value.strip().lower())
    if match is None:
        raise ValueError(f"duration {value!r} must look like 600, 30m, 8h or 2d")
    duration = timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    if duration < MIN_DURATION:
        raise ValueError(f"duration {value!r} is shorter than {MIN_DURATION}")
    return duration


def parse_speed(value: str) -> float | None:
    """Simulated seconds per wall second; ``max`` (None): as fast as the services take it."""
    text = value.strip().lower()
    if text == "max":
        return None
    speed = float(text.rstrip("x"))
    if speed <= 0:
        raise ValueError("speed must be positive or 'max'")
    return speed


def default_targets(path: Path = PROCESSES_FILE) -> dict[str, str]:
    """Each service's address as `make run` starts it (deploy/local/processes.toml)."""
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    return {
        str(p["name"]): f"127.0.0.1:{int(p['grpc_port'])}"
        for p in data.get("process", [])
        if p.get("kind", "grpc") == "grpc" and "grpc_port" in p
    }


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIMULATOR_", case_sensitive=False, extra="ignore")

    seed: int = 14
    # "1" real time, "60" a simulated hour a minute, "max" as fast as the services take it.
    speed: str = "1"
    scale: Annotated[float, Field(gt=0, le=10)] = 1.0
    # Simulated length of the run.
    duration: str = "24h"
    scenario: str = "district"
    # The simulated start (ISO 8601 with zone). Unset: now at real time; at higher speeds the run is
    # placed to end now, since the services refuse event times more than 5 minutes ahead.
    start: datetime | None = None
    # service=host:port pairs, comma-separated; unset services use deploy/local/processes.toml.
    targets: str = ""
    workers: Annotated[int, Field(ge=1, le=64)] = 6
    log_level: str = "info"
    log_format: str = "auto"

    @field_validator("speed")
    @classmethod
    def _speed(cls, value: str) -> str:
        parse_speed(value)
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("scenario")
    @classmethod
    def _scenario(cls, value: str) -> str:
        if value not in SCENARIOS:
            raise ValueError(f"must be one of {', '.join(SCENARIOS)}")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2026-12-01T08:00:00+08:00")
        return value

    def target_map(self) -> dict[str, str]:
        found = default_targets()
        for pair in filter(None, (p.strip() for p in self.targets.split(","))):
            name, _, address = pair.partition("=")
            if not address:
                raise ValueError(f"target {pair!r} must look like safety=127.0.0.1:50061")
            found[name.strip()] = address.strip()
        return found
