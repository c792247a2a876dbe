"""Fixtures of the browser tests: the five domains and the hub (tests/integration/hub/e2e_support.py), the
web in front of the hub and kitchen, and a headless chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from services.platform.security import SecuritySettings, load_security_settings
from tests.browser.web_support import CHROMIUM, chromium_args, serve_web
from tests.integration.hub.e2e_support import World, start_world


@pytest.fixture(scope="module")
def web_security(tmp_path_factory: pytest.TempPathFactory) -> SecuritySettings:
    return load_security_settings(dev_keys=True, dev_secrets_dir=tmp_path_factory.mktemp("web-keys"))


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, database_url: str, web_security: SecuritySettings) -> Iterator[World]:
    with start_world(kafka_bootstrap, database_url, web_security) as started:
        yield started


@pytest.fixture(scope="module")
def web_url(world: World, web_security: SecuritySettings) -> Iterator[str]:
    with serve_web(
        web_security,
        hub_grpc_address=world.hub.runtime.address,
        kitchen_grpc_address=world["kitchen"].runtime.address,
    ) as url:
        yield url


# Module scope, not session: Playwright's sync API keeps an asyncio loop running on the main thread while it
# is open, and every later test that calls asyncio.run() would then fail ("cannot be called from a running
# event loop"). Closing it with this module ends that loop before the next module runs.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
    try:
        yield browser
    finally:
        browser.close()
