"""A service whose database or broker cannot be reached stops at once, naming the setting, and leaves
nothing open behind it (no pool, no worker threads, no producer)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from services.platform import runtime as runtime_module
from services.platform.probe import POLICY, PROBE_SERVICE
from services.platform.runtime import ServiceRuntime, ServiceSpec, StartupError
from services.platform.settings import ServiceSettings
from tests.security_support import make_keys
from tests.support import unique_name, wait_until

pytestmark = pytest.mark.integration

UNREACHABLE_DB = "postgresql://x@127.0.0.1:1/x"
UNREACHABLE_BROKER = "127.0.0.1:1"
SPEC = ServiceSpec(label="startup_test", grpc_services=[PROBE_SERVICE], policy=POLICY)


def _settings(database_url: str, kafka: str, **extra: Any) -> ServiceSettings:
    return ServiceSettings(
        service_name=unique_name("t_start"),
        kafka_bootstrap_servers=kafka,
        database_url=database_url,  # type: ignore[arg-type]  # pydantic parses the str
        db_connect_timeout_s=2,
        kafka_connect_timeout_s=2.0,
        **extra,
    )


def _threads() -> set[str]:
    # grpc.aio starts one completion-queue poller per process on its first use and never stops it: it
    # belongs to the process, not to a server, so it is not something a failed start left behind.
    return {t.name for t in threading.enumerate() if not t.name.endswith("(_poll_wrapper)")}


@pytest.fixture
def baseline() -> set[str]:
    return _threads()


def _no_new_threads(before: set[str]) -> None:
    # Worker threads end shortly after close() returns; wait a little rather than race them.
    wait_until(
        lambda: not (_threads() - before) or None,
        timeout_s=10,
        what=f"threads left by the failed start: {sorted(_threads() - before)}",
    )


class _PoolSpy:
    """Records every pool set_up_database opens, to check it was closed afterwards."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pools: list[Any] = []
        real = runtime_module.set_up_database  # type: ignore[attr-defined]  # patched where used

        def spying(*args: Any, **kwargs: Any) -> Any:
            pool = real(*args, **kwargs)
            self.pools.append(pool)
            return pool

        monkeypatch.setattr(runtime_module, "set_up_database", spying)


def test_unreachable_database_names_database_url_fast_and_leaves_nothing_open(
    baseline: set[str], tmp_path: Any
) -> None:
    keys = make_keys(tmp_path)
    settings = _settings(UNREACHABLE_DB, UNREACHABLE_BROKER)
    started = time.monotonic()
    with pytest.raises(StartupError) as caught:
        ServiceRuntime(settings, SPEC, security=keys.settings, configure_logs=False)
    elapsed = time.monotonic() - started
    assert caught.value.setting == "DATABASE_URL"
    text = str(caught.value)
    assert text.startswith("DATABASE_URL: cannot connect to 127.0.0.1:1")
    assert "_consumer_stop" not in text
    assert elapsed < 15, f"start-up took {elapsed:.1f}s to give up"
    _no_new_threads(baseline)


def test_unreachable_broker_names_kafka_bootstrap_servers_and_closes_the_pool(
    database_url: str, baseline: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _PoolSpy(monkeypatch)
    settings = _settings(database_url, UNREACHABLE_BROKER)
    started = time.monotonic()
    with pytest.raises(StartupError) as caught:
        ServiceRuntime(settings, SPEC, guards=[], configure_logs=False)
    elapsed = time.monotonic() - started
    assert caught.value.setting == "KAFKA_BOOTSTRAP_SERVERS"
    assert str(caught.value).startswith("KAFKA_BOOTSTRAP_SERVERS: cannot connect to 127.0.0.1:1")
    assert elapsed < 20, f"start-up took {elapsed:.1f}s to give up"
    # The database was reached and its pool opened before the broker failed: it must be closed again.
    assert len(spy.pools) == 1
    assert spy.pools[0].closed
    _no_new_threads(baseline)


def test_a_taken_grpc_port_names_grpc_port_and_closes_everything(
    database_url: str, kafka_bootstrap: str, baseline: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _PoolSpy(monkeypatch)
    first = ServiceRuntime(_settings(database_url, kafka_bootstrap), SPEC, guards=[], configure_logs=False)
    try:
        first.start()
        taken = first.server.port
        with pytest.raises(StartupError) as caught:
            ServiceRuntime(
                _settings(database_url, kafka_bootstrap, grpc_port=taken),
                SPEC,
                guards=[],
                configure_logs=False,
            )
        assert caught.value.setting == "GRPC_PORT"
        assert spy.pools[1].closed
    finally:
        first.close()
    assert spy.pools[0].closed
    _no_new_threads(baseline)


def test_close_after_a_failed_start_is_harmless(tmp_path: Any) -> None:
    keys = make_keys(tmp_path)
    runtime = ServiceRuntime.__new__(ServiceRuntime)
    with pytest.raises(StartupError):
        runtime.__init__(  # type: ignore[misc]
            _settings(UNREACHABLE_DB, UNREACHABLE_BROKER), SPEC, security=keys.settings, configure_logs=False
        )
    runtime.close()  # a second close (the first ran inside __init__) must not raise
    with pytest.raises(RuntimeError, match="did not start"):
        _ = runtime.server
