"""``python -m services.safety``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

from services.platform.settings import load_settings
from services.safety.bootstrap import build
from services.safety.settings import SafetySettings


def main() -> None:
    build(load_settings(SafetySettings)).serve_forever()


if __name__ == "__main__":
    main()
