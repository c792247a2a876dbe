"""``python -m services.industry``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

import gc

from services.industry.bootstrap import build
from services.industry.settings import IndustrySettings
from services.platform.settings import load_settings


def tune_garbage_collector(young_threshold: int) -> None:
    """Everything allocated during start-up (modules, contracts, the device directory) lives as long as
    the process: freeze it so full collections stop scanning it, and collect the young generation less
    often, since the ingest path allocates a few short-lived objects per sample."""
    if not young_threshold:
        return
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)


def main() -> None:
    settings = load_settings(IndustrySettings)
    runtime = build(settings)
    tune_garbage_collector(settings.industry_gc_young_threshold)
    runtime.serve_forever()


if __name__ == "__main__":
    main()
