"""A process started without a required setting stops at once and says which one (no sockets opened)."""

from __future__ import annotations

import os
import subprocess
import sys


def _start_relay(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start the standalone relay process, which must stop at its settings and say why."""
    return subprocess.run(
        [sys.executable, "-m", "services.platform.relay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_required_setting_stops_start_up_naming_it() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}}
    env.update(SERVICE_NAME="relay", RELAY_SCHEMA="safety", DATABASE_URL="postgresql://u@127.0.0.1:1/db")
    result = _start_relay(env)
    assert result.returncode == 1
    assert "KAFKA_BOOTSTRAP_SERVERS: is required but not set" in result.stderr
    # Nothing else was wrong, so nothing else is named.
    assert "DATABASE_URL" not in result.stderr


def test_malformed_setting_stops_start_up_naming_it() -> None:
    env = dict(os.environ)
    env.update(
        SERVICE_NAME="relay",
        RELAY_SCHEMA="safety",
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        DATABASE_URL="not a url",
    )
    result = _start_relay(env)
    assert result.returncode == 1
    assert "DATABASE_URL:" in result.stderr
