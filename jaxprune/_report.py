"""A per-leaf summary of a params tree and its masks: shape, kept units, sparsity."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _tree
from ._typing import PyTree, Where


class LeafReport(NamedTuple):
    """One array leaf of a params tree, masks applied.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> row = jp.report({"b": jnp.array([0.0, 1.0])})[0]
        >>> row.path, row.shape, row.zeros, row.sparsity, row.channels
        ('b', (2,), 1, 0.5, None)
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    zeros: int  #: entries that are zero after masking
    sparsity: float  #: ``zeros / size``
    channels: tuple[int, int, int] | None  #: ``(dim, kept, total)`` for a structured mask


@jax.jit
def _stats(leaves, masks):
    out = []
    for x, m in zip(leaves, masks):
        zero = x == 0 if m is None else (x == 0) | ~m
        kept_channels = None
        if m is not None and m.ndim == x.ndim and 0 < m.ndim:
            kept_channels = jnp.sum(m, dtype=jnp.uint32)
        elif m is None and x.ndim >= 2 and x.size:
            # Without masks, the channels read from the values: per axis, how many slices
            # are all zero.
            kept_channels = jnp.stack(
                [
                    jnp.sum(~jnp.all(zero, axis=tuple(a for a in range(x.ndim) if a != d)))
                    for d in range(x.ndim)
                ]
            ).astype(jnp.uint32)
        out.append((jnp.sum(zero, dtype=jnp.uint32), kept_channels))
    return out


def _dead_axis(kept: Any, shape: tuple[int, ...]) -> int | None:
    """The axis with the most all-zero channels (the last one among equals), if any."""
    dead = [n - int(k) for n, k in zip(shape, kept)]
    best = max(dead)
    if best == 0:
        return None
    return max(i for i, d in enumerate(dead) if d == best)


def _channel_axis(mshape: tuple[int, ...], shape: tuple[int, ...]) -> int | None:
    """The axis of a keepdims mask: the one axis it spans, on a tensor with 2+ dims."""
    if len(mshape) != len(shape) or len(shape) < 2:
        return None
    spanned = [i for i, (m, n) in enumerate(zip(mshape, shape)) if m == n and n > 1]
    if len(spanned) == 1 and all(m == 1 for i, m in enumerate(mshape) if i != spanned[0]):
        return spanned[0]
    return None


def report(params: PyTree, masks: PyTree | None = None, *, where: Where = None) -> list[LeafReport]:
    """Summarise the array leaves of ``params`` (masks applied when given).

    ``channels`` is ``(dim, kept, total)`` for a leaf whose mask is structured (keepdims);
    without masks, for a leaf of 2+ dims with all-zero channels, read from its values (the
    axis with the most of them). ``where`` selects the leaves as in :func:`jaxprune.prune`;
    None reports every array leaf.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> rows = jp.report({"w": jnp.ones((2, 4))}, {"w": jnp.array([[True, False, True, True]])})
        >>> rows[0].sparsity, rows[0].channels
        (0.25, (1, 3, 4))
    """
    paths, leaves, mlist, idx = _tree.selected_leaves(params, masks, where)
    stats = jax.device_get(_stats([leaves[i] for i in idx], [mlist[i] for i in idx]))
    rows = []
    for i, (zeros, kept) in zip(idx, stats):
        leaf, m = leaves[i], mlist[i]
        shape = tuple(leaf.shape)
        if m is None:
            axis = None if kept is None else _dead_axis(kept, shape)
            channels = None if axis is None else (axis, int(kept[axis]), shape[axis])
        else:
            axis = _channel_axis(tuple(m.shape), shape)
            channels = None if axis is None else (axis, int(kept), shape[axis])
        size = int(leaf.size)
        rows.append(
            LeafReport(
                path=paths[i],
                shape=shape,
                dtype=str(leaf.dtype),
                size=size,
                zeros=int(zeros),
                sparsity=int(zeros) / size if size else 0.0,
                channels=channels,
            )
        )
    return rows


def format_report(rows: list[LeafReport]) -> str:
    """The rows of :func:`report` as a plain-text table, with a total line.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> print(jp.format_report(jp.report({"w": jnp.zeros((2, 2))})).splitlines()[-1].split())
        ['total', '4', '4', '100.0%']
    """
    cells = [
        (
            r.path,
            str(r.shape),
            r.size,
            r.zeros,
            r.sparsity,
            "" if r.channels is None else f"{r.channels[1]}/{r.channels[2]} (dim {r.channels[0]})",
        )
        for r in rows
    ]
    # Columns as wide as their longest cell: NNX and HuggingFace paths run long.
    pw = max([len("path"), len("total")] + [len(c[0]) for c in cells])
    sw = max([len("shape")] + [len(c[1]) for c in cells])
    nw = max([10] + [len(str(c[2])) for c in cells])
    header = (
        f"{'path':<{pw}} {'shape':<{sw}} {'size':>{nw}} {'zeros':>{nw}} {'sparsity':>8}  channels"
    )
    lines = [header, "-" * len(header)]
    for path, shape, size, zeros, sparsity, ch in cells:
        lines.append(
            f"{path:<{pw}} {shape:<{sw}} {size:>{nw}} {zeros:>{nw}} {100 * sparsity:>7.1f}%  {ch}"
        )
    size = sum(r.size for r in rows)
    zeros = sum(r.zeros for r in rows)
    frac = zeros / size if size else 0.0
    lines.append(f"{'total':<{pw}} {'':<{sw}} {size:>{nw}} {zeros:>{nw}} {100 * frac:>7.1f}%")
    return "\n".join(lines)
