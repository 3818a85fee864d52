"""The ``jaxprune`` command line: ``demo``, ``prune`` and ``report``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxprune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train, prune and fine-tune a small CNN on digits")
    demo.add_argument("--quick", action="store_true", help="a fast, smaller run")
    demo.add_argument("--out", default="jaxprune-demo", help="output folder")
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import _demo

        _demo.run(args.out, quick=args.quick, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
