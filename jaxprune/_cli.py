"""The jaxprune command line: prune and report checkpoints.

jaxprune prune IN OUT --method M --amount A prunes a checkpoint and writes the pruned
weights (exact zeros) to OUT, atomically, in the format OUT names; IN is never modified, and
nothing but OUT (or this command's own earlier output at OUT) is ever replaced.
jaxprune report CKPT prints per-leaf shapes, sparsity and all-zero channels. Errors print
one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import _registry, _tree  # noqa: F401  (_tree registers the built-in methods)

#: The output-channel axis of each format's layout, the default --dim of structured methods:
#: torch's (out, in, ...) for torch files and for .safetensors (the format of PyTorch models
#: on the Hub), Flax's (..., in, out) for .npz and orbax checkpoints.
OUTPUT_AXIS = {"torch": 0, "safetensors": 0, "npz": -1, "orbax": -1}
#: The input-channel axis of each layout, the default --dim of N:M methods (groups of m
#: consecutive inputs of one output, as sparse tensor cores take them).
INPUT_AXIS = {"torch": 1, "safetensors": 1, "npz": -2, "orbax": -2}


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


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: an integer") from None
    if not -(2**63) <= seed < 2**63:
        raise argparse.ArgumentTypeError(f"invalid seed {text}: it must fit in 64 bits (signed)")
    return seed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxprune",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prune = sub.add_parser(
        "prune",
        help="prune a checkpoint",
        description="Prune the weights of a checkpoint and write them to OUT.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    prune.add_argument("input", metavar="IN", help=".npz, .safetensors, .pt/.pth or orbax dir")
    prune.add_argument(
        "output",
        metavar="OUT",
        help="where to write the pruned weights (its suffix names the format; an existing "
        "directory is replaced only if this command wrote it)",
    )
    methods = _registry.names(selects=True)
    methods += [n for n in _registry.names(selects=False) if _registry.get(n).grouped]
    prune.add_argument("--method", required=True, choices=sorted(methods))
    prune.add_argument(
        "--amount", type=_amount, default=None, help="int count or float fraction (not N:M)"
    )
    prune.add_argument(
        "--dim",
        type=int,
        default=None,
        help="channel axis of structured methods; by default the output channels of the "
        "file's layout: 0 for torch files and .safetensors (out, in, ...), -1 for .npz and "
        "orbax checkpoints (Flax's ..., in, out); N:M methods group the input axis: 1 for "
        "torch's layout, -2 for Flax's",
    )
    prune.add_argument(
        "--n",
        type=_norm,
        default=None,
        help="the norm of ln_structured (default 2) and block_structured (default 1); N:M: "
        "the entries kept of every --m (required)",
    )
    prune.add_argument("--m", type=int, default=None, help="N:M methods: the group size")
    prune.add_argument(
        "--block-shape",
        type=int,
        nargs=2,
        metavar=("ROWS", "COLS"),
        default=None,
        help="block methods: a block of the file's layout, ROWS of the output axis by COLS of "
        "the input axis for torch files and .safetensors (out, in), ROWS of the input axis by "
        "COLS of the output axis for .npz and orbax (in, out); conv weights are pruned in "
        "such blocks for each kernel position",
    )
    prune.add_argument(
        "--where",
        default=None,
        help="regular expression searched in leaf paths; by default every floating leaf of "
        "2+ dims (of a TrainState checkpoint: under params/ only)",
    )
    prune.add_argument(
        "--seed", type=_seed, default=0, help="seed of the key of the random methods"
    )
    prune.add_argument(
        "--global",
        dest="global_",
        action="store_true",
        help="one selection over all selected leaves (unstructured methods)",
    )
    prune.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing orbax checkpoint at OUT that this command did not write",
    )

    report = sub.add_parser(
        "report",
        help="per-leaf shapes and sparsity of a checkpoint",
        description="Per-leaf shapes, sparsity and all-zero channels of a checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    report.add_argument("checkpoint", metavar="CKPT")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")

    return parser


def _is_train_state(params) -> bool:
    return isinstance(params, dict) and {"params", "opt_state"} <= set(params)


def _prune(args) -> None:
    import jax

    from . import _global, _io, _paths

    method = _registry.get(args.method)
    _io.check_output(args.output, source=args.input, overwrite=args.overwrite)
    in_fmt = _io.format_of(args.input, must_exist=True)
    params = _io.load(args.input)
    params, priors, reparametrized = _io.split_torch_pruned(params)
    if reparametrized:
        print(
            f"read {len(reparametrized)} pruned torch parameter(s) (<name>_orig, <name>_mask): "
            "pruning among the entries their masks keep"
        )
        scores = _tree.apply_masks(params, priors)  # torch scores the masked weight
    else:
        scores = params
    where = args.where
    if where is None and _is_train_state(params):
        where = lambda p, leaf: p.startswith("params/") and _paths.is_default(leaf)  # noqa: E731
        print("selected the parameters of a TrainState checkpoint (params/...; --where overrides)")
    key = jax.random.key(args.seed) if method.random else None
    if method.grouped and "block_shape" in method.options:
        masks = _blocks(scores, method, key, where, priors, args, in_fmt)
    elif method.grouped:
        masks = _tree.prune(
            scores, method, key=key, where=where, masks=priors, **_nm_args(args, in_fmt)
        )
    elif args.amount is None:
        raise ValueError(f"--method {args.method} needs --amount")
    elif args.global_:
        if not method.global_ok:
            raise ValueError(f"--global needs an unstructured method, not {args.method}")
        masks = _global.global_unstructured(
            scores, args.amount, method=method.name, key=key, where=where, masks=priors
        )
    else:
        kwargs = {"amount": args.amount}
        if method.structured:
            kwargs["dim"] = OUTPUT_AXIS[in_fmt] if args.dim is None else args.dim
            layout = "torch's (out, in, ...)" if OUTPUT_AXIS[in_fmt] == 0 else "Flax's (..., out)"
            default = f", the output channels of {layout} layout" if args.dim is None else ""
            print(f"pruning channels along axis {kwargs['dim']}{default}")
        if "n" in method.options:
            kwargs["n"] = 2.0 if args.n is None else args.n
        masks = _tree.prune(scores, method, key=key, where=where, masks=priors, **kwargs)
    if reparametrized:
        out = _io.join_torch_pruned(params, masks, reparametrized)
    else:
        out = _tree.apply_masks(params, masks)
    _io.save(out, args.output, source=args.input, overwrite=args.overwrite)
    print(f"wrote {args.output} (sparsity {_tree.sparsity(params, masks):.4f})")


def _nm_args(args, in_fmt: str) -> dict:
    """--n, --m and --dim of an N:M method, checked; prints the axis it groups."""
    if args.amount is not None or args.global_:
        raise ValueError(f"--method {args.method} keeps --n of every --m: no --amount or --global")
    if args.m is None:
        raise ValueError(f"--method {args.method} needs --m (the group size)")
    if args.n is None:
        raise ValueError(f"--method {args.method} needs --n (the entries kept of every --m)")
    if not isinstance(args.n, float) or not args.n.is_integer():
        raise ValueError(f"--n {args.n}: {args.method} keeps an integer number of entries")
    dim = INPUT_AXIS[in_fmt] if args.dim is None else args.dim
    default = ", the input axis of the file's layout" if args.dim is None else ""
    print(f"keeping {int(args.n)} of every {args.m} entries along axis {dim}{default}")
    return {"n": int(args.n), "m": args.m, "dim": dim}


def _blocks(scores, method, key, where, priors, args, in_fmt: str):
    """The masks of a block method. Blocks tile the last two axes of Flax's layout, so a
    torch-layout file's weights ``(out, in, *kernel)`` are pruned as their Flax twins
    ``(*kernel, in, out)`` with the block shape reversed, and the masks turned back: a torch
    checkpoint and its Flax twin lose the same blocks (as torch_compat's classes do)."""
    import numpy as np

    if args.block_shape is None:
        raise ValueError(f"--method {args.method} needs --block-shape ROWS COLS")
    if args.amount is None:
        raise ValueError(f"--method {args.method} needs --amount (blocks, or a fraction)")
    if args.global_ or args.dim is not None or args.m is not None:
        raise ValueError(f"--method {args.method} takes no --global, --dim or --m")
    kwargs = {"amount": args.amount, "block_shape": tuple(args.block_shape)}
    if "n" in dict(method.defaults):
        kwargs["n"] = 1.0 if args.n is None else args.n
    elif args.n is not None:
        raise ValueError(f"--method {args.method} takes no --n")
    rows, cols = args.block_shape
    if rows < 1 or cols < 1:
        raise ValueError(f"--block-shape {rows} {cols}: each size must be at least 1")
    if OUTPUT_AXIS[in_fmt] != 0:
        print(f"pruning blocks of {rows} x {cols} of the last two axes, Flax's (..., in, out)")
        return _tree.prune(scores, method, key=key, where=where, masks=priors, **kwargs)
    print(f"pruning blocks of {rows} x {cols} of torch's (out, in) matrix (per kernel position)")

    def to_flax(a):
        a = np.asarray(a)
        return a.transpose(tuple(range(2, a.ndim)) + (1, 0)) if a.ndim >= 2 else a

    def to_torch(mask, like):
        mask, nd = np.asarray(mask), np.ndim(like)
        if nd < 2 or mask.ndim != nd:  # an unselected leaf's True, a 1-D leaf's mask
            return mask
        return mask.transpose((nd - 1, nd - 2) + tuple(range(nd - 2)))

    kwargs["block_shape"] = (cols, rows)
    flax_priors = None if priors is None else {p: to_flax(m) for p, m in priors.items()}
    masks = _tree.prune(
        {p: to_flax(a) for p, a in scores.items()},
        method,
        key=key,
        where=where,
        masks=flax_priors,
        **kwargs,
    )
    return {p: to_torch(masks[p], scores[p]) for p in scores}


def _report(args) -> None:
    from . import _io, _report

    fmt = _io.format_of(args.checkpoint, must_exist=True)
    rows = _report.report(_io.load(args.checkpoint), nm_dim=INPUT_AXIS[fmt])
    if args.json:
        print(json.dumps([row._asdict() for row in rows], indent=2))
        return
    print(_report.format_report(rows))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from . import _cache, _io

    # One run is one process: compiled programs are kept on disk for the next run
    # (JAXPRUNE_COMPILATION_CACHE=0 turns this off; see jaxprune._cache).
    _cache.enable_by_default()

    commands = {"prune": _prune, "report": _report}
    try:
        commands[args.command](args)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): no traceback, no more output
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (_io.CheckpointError, TypeError, ValueError, IndexError) as e:
        print(f"jaxprune {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
