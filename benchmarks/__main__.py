"""``python -m benchmarks``: the benchmark suite, jaxprune and torch_compat against
torch.nn.utils.prune (``make bench`` runs it with the recorded outputs)."""

from __future__ import annotations

import argparse
import sys

from .suite import WORKLOADS, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="The benchmark suite against torch.nn.utils.prune.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small shapes, under a minute")
    parser.add_argument("--json", metavar="PATH", default=None, help="write every figure here")
    parser.add_argument("--plot", metavar="PATH", default=None, help="W8 scaling plot (PNG)")
    parser.add_argument("--markdown", metavar="PATH", default=None, help="the table as markdown")
    parser.add_argument(
        "--only", default=None, help="comma-separated workloads to run, e.g. W2,W4 (all if unset)"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions per measurement")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    only = WORKLOADS
    if args.only:
        only = tuple(w.strip().upper() for w in args.only.split(","))
        unknown = [w for w in only if w not in WORKLOADS]
        if unknown:
            parser.error(f"--only: unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.reps is not None and args.reps < 1:
        parser.error(f"--reps must be at least 1, got {args.reps}")
    run(
        quick=args.quick,
        only=only,
        reps=args.reps,
        json_path=args.json,
        plot_path=args.plot,
        markdown_path=args.markdown,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
