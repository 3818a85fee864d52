"""The ``jaxprune`` command line: ``prune`` and ``report``.

``jaxprune prune IN OUT --method M --amount A`` prunes a checkpoint and writes the pruned
weights (exact zeros) to OUT, atomically, in the format OUT names; IN is never modified.
``jaxprune report CKPT`` prints per-leaf shapes and sparsity. Errors print one line and exit
with a non-zero status. (The demo and the benchmark suite live in the repository, outside the
package: ``make demo``, ``make bench``.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import _registry, _tree  # noqa: F401  (_tree registers the built-in methods)


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
    prune = sub.add_parser("prune", help="prune a checkpoint")
    prune.add_argument("input", metavar="IN", help=".npz, .safetensors, .pt/.pth or orbax dir")
    prune.add_argument("output", metavar="OUT", help="where to write the pruned weights")
    prune.add_argument("--method", required=True, choices=_registry.names(selects=True))
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

    return parser


def _prune(args) -> None:
    import jax

    from . import _global, _io

    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise _io.CheckpointError("OUT must differ from IN: the input is never overwritten")
    _io.format_of(args.output, must_exist=False)
    method = _registry.get(args.method)
    params = _io.load(args.input)
    key = jax.random.key(args.seed) if method.random else None
    if args.global_:
        if not method.global_ok:
            raise ValueError(f"--global needs an unstructured method, not {args.method}")
        masks = _global.global_unstructured(
            params, args.amount, method=method.name, key=key, where=args.where
        )
    else:
        kwargs = {"amount": args.amount}
        if method.structured:
            kwargs["dim"] = args.dim
        if "n" in method.options:
            kwargs["n"] = args.n
        masks = _tree.prune(params, method, key=key, where=args.where, **kwargs)
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
    from . import _io

    commands = {"prune": _prune, "report": _report}
    try:
        commands[args.command](args)
    except (_io.CheckpointError, TypeError, ValueError, IndexError) as e:
        print(f"jaxprune {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
