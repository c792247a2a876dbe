"""``python -m services.hub``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

from services.hub.bootstrap import build
from services.hub.settings import HubSettings
from services.platform.settings import load_settings


def main() -> None:
    build(load_settings(HubSettings)).serve_forever()


if __name__ == "__main__":
    main()
