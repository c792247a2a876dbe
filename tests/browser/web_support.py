"""The web one-screen served in-process by uvicorn on a free 127.0.0.1 port (a thread, stopped by the
fixture that starts it), and Debian's chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from pydantic import SecretStr

from services.platform.security import SecuritySettings
from services.web.app import create_app
from services.web.settings import WebSettings
from tests.support import free_port, wait_until

__all__ = ["CHROMIUM", "chromium_args", "serve_web"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium_args() -> list[str]:
    # Chromium's sandbox needs user namespaces it cannot have as root (CI runs as root): only then off.
    return ["--no-sandbox"] if os.geteuid() == 0 else []


@contextmanager
def serve_web(security: SecuritySettings, **values: Any) -> Iterator[str]:
    """Serve the web with ``values`` as settings; yields its base URL."""
    port = free_port()
    settings = WebSettings(
        http_port=port,
        web_session_secret=SecretStr("browser-test-session-secret"),
        log_level="warning",
        **values,
    )
    config = uvicorn.Config(
        create_app(settings, security), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-under-test", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout_s=15, what="the web to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
