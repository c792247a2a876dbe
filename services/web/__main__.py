"""python -m services.web: the one-screen web frontend, served by uvicorn."""

from __future__ import annotations

import uvicorn

from services.platform.logs import configure_logging, get_logger
from services.platform.security.settings import load_security_settings
from services.platform.settings import load_settings
from services.web.app import create_app
from services.web.settings import WebSettings


def main() -> None:
    settings = load_settings(WebSettings)
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings, load_security_settings())
    get_logger().info("web_listening", url=f"http://{settings.http_host}:{settings.http_port}/")
    # uvicorn's own logging off: the app logs one structlog line per request itself (never the query
    # string, where a login link's token travels).
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
