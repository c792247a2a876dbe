"""``python -m bench [telemetry] [options]``: run a benchmark (the default and only one: telemetry)."""

from __future__ import annotations

import argparse
import sys

from bench import telemetry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="benchmark")
    telemetry.add_arguments(sub.add_parser("telemetry", help=telemetry.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    if args.benchmark is None:
        # `make bench`: every benchmark with its defaults.
        args = parser.parse_args(["telemetry", *(argv or [])])
    return telemetry.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
