"""``python -m services.kitchen``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

from services.kitchen.bootstrap import build
from services.kitchen.settings import KitchenSettings
from services.platform.settings import load_settings


def main() -> None:
    build(load_settings(KitchenSettings)).serve_forever()


if __name__ == "__main__":
    main()
