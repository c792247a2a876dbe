"""``python -m services.commerce``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

from services.commerce.bootstrap import build
from services.commerce.settings import CommerceSettings
from services.platform.settings import load_settings


def main() -> None:
    build(load_settings(CommerceSettings)).serve_forever()


if __name__ == "__main__":
    main()
