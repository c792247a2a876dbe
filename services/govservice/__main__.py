"""``python -m services.govservice``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

from services.govservice.bootstrap import build
from services.govservice.settings import GovServiceSettings
from services.platform.settings import load_settings


def main() -> None:
    build(load_settings(GovServiceSettings)).serve_forever()


if __name__ == "__main__":
    main()
