"""The ``jaxprune`` command line: ``demo``, ``prune``, ``report`` and ``bench``.

``jaxprune prune IN OUT --method M --amount A`` prunes a checkpoint and writes the pruned
weights (exact zeros) to OUT, atomically, in the format OUT names; IN is never modified.
``jaxprune report CKPT`` prints per-leaf shapes and sparsity. ``jaxprune bench`` runs the
benchmark suite against torch.nn.utils.prune (``--quick`` in under a minute). Errors print one
line and exit with a non-zero status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

METHODS = ("random_unstructured", "l1_unstructured", "random_structured", "ln_structured")


def _amount(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid amount {text!r}: an int or a float") from None


def _norm(text: str) -> float | str:
    if text == "fro":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid norm {text!r}: a number or 'fro'") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxprune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train, prune and fine-tune a small CNN on digits")
    demo.add_argument("--quick", action="store_true", help="a fast, smaller run")
    demo.add_argument("--out", default="jaxprune-demo", help="output folder")
    demo.add_argument("--seed", type=int, default=0)

    prune = sub.add_parser("prune", help="prune a checkpoint")
    prune.add_argument("input", metavar="IN", help=".npz, .safetensors, .pt/.pth or orbax dir")
    prune.add_argument("output", metavar="OUT", help="where to write the pruned weights")
    prune.add_argument("--method", required=True, choices=METHODS)
    prune.add_argument("--amount", required=True, type=_amount, help="int count or float fraction")
    prune.add_argument(
        "--dim",
        type=int,
        default=-1,
        help="channel axis for structured methods (torch files: 0 = outputs)",
    )
    prune.add_argument("--n", type=_norm, default=2.0, help="norm for ln_structured")
    prune.add_argument("--where", default=None, help="regular expression on leaf paths")
    prune.add_argument("--seed", type=int, default=0, help="seed of the key (random methods)")
    prune.add_argument(
        "--global",
        dest="global_",
        action="store_true",
        help="one selection over all selected leaves (unstructured methods)",
    )

    report = sub.add_parser("report", help="per-leaf shapes and sparsity of a checkpoint")
    report.add_argument("checkpoint", metavar="CKPT")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")

    bench = sub.add_parser("bench", help="the benchmark suite against torch.nn.utils.prune")
    bench.add_argument("--quick", action="store_true", help="small shapes, under a minute")
    bench.add_argument("--json", metavar="PATH", default=None, help="write every figure here")
    bench.add_argument("--plot", metavar="PATH", default=None, help="W8 scaling plot (PNG)")
    bench.add_argument("--markdown", metavar="PATH", default=None, help="the table as markdown")
    bench.add_argument(
        "--only", default=None, help="comma-separated workloads to run, e.g. W2,W4 (default all)"
    )
    bench.add_argument("--reps", type=int, default=None, help="repetitions per measurement")
    return parser


def _bench(args) -> None:
    from . import _bench

    only = _bench.WORKLOADS
    if args.only:
        only = tuple(w.strip().upper() for w in args.only.split(","))
        unknown = [w for w in only if w not in _bench.WORKLOADS]
        if unknown:
            raise ValueError(f"--only: unknown workloads {unknown}; choose from W1-W8")
    if args.reps is not None and args.reps < 1:
        raise ValueError(f"--reps must be at least 1, got {args.reps}")
    _bench.run(
        quick=args.quick,
        only=only,
        reps=args.reps,
        json_path=args.json,
        plot_path=args.plot,
        markdown_path=args.markdown,
    )


def _prune(args) -> None:
    import jax

    from . import _global, _io, _tree

    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise _io.CheckpointError("OUT must differ from IN: the input is never overwritten")
    _io.format_of(args.output, must_exist=False)
    params = _io.load(args.input)
    key = jax.random.key(args.seed)
    random = args.method.startswith("random")
    if args.global_:
        if args.method not in ("l1_unstructured", "random_unstructured"):
            raise ValueError(f"--global needs an unstructured method, not {args.method}")
        masks = _global.global_unstructured(
            params,
            args.amount,
            method="random" if random else "l1",
            key=key if random else None,
            where=args.where,
        )
    else:
        kwargs = {"amount": args.amount}
        if args.method.endswith("structured") and "unstructured" not in args.method:
            kwargs["dim"] = args.dim
        if args.method == "ln_structured":
            kwargs["n"] = args.n
        masks = _tree.prune(
            params, args.method, key=key if random else None, where=args.where, **kwargs
        )
    _io.save(_tree.apply_masks(params, masks), args.output)
    print(f"wrote {args.output} (sparsity {_tree.sparsity(params, masks):.4f})")


def _report(args) -> None:
    from . import _io, _report

    rows = _report.report(_io.load(args.checkpoint))
    if args.json:
        print(json.dumps([row._asdict() for row in rows], indent=2))
        return
    print(_report.format_report(rows))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from . import _demo

        _demo.run(args.out, quick=args.quick, seed=args.seed)
        return 0
    from . import _io

    commands = {"prune": _prune, "report": _report, "bench": _bench}
    try:
        commands[args.command](args)
    except (_io.CheckpointError, TypeError, ValueError, IndexError) as e:
        print(f"jaxprune {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
