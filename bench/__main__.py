"""``python -m bench [telemetry|watch|hub|soak] [options]``: run one benchmark, or (no name) every benchmark
with its defaults, as `make bench` does. The soak (30 minutes) runs only when named: `make soak`."""

from __future__ import annotations

import argparse
import sys

from bench import hub, soak, telemetry, watch

BENCHMARKS = {"telemetry": telemetry, "watch": watch, "hub": hub}
# Run only when named: too long for a bare `make bench`.
ON_DEMAND = {"soak": soak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="benchmark")
    named = {**BENCHMARKS, **ON_DEMAND}
    for name, module in named.items():
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or name).splitlines()[0]))
    args = parser.parse_args(argv)
    if args.benchmark is not None:
        return int(named[args.benchmark].main(args))
    # `make bench`: every benchmark with its defaults, each writing its own result file.
    status = 0
    for name, module in BENCHMARKS.items():
        status |= int(module.main(parser.parse_args([name])))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
