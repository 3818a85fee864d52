"""A per-leaf summary of a params tree and its masks: shape, kept units, sparsity."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _paths, _tree
from ._typing import PyTree


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
        out.append((jnp.sum(zero, dtype=jnp.uint32), kept_channels))
    return out


def _channel_axis(mshape: tuple[int, ...], shape: tuple[int, ...]) -> int | None:
    """The axis of a keepdims mask: the one axis it spans, on a tensor with 2+ dims."""
    if len(mshape) != len(shape) or len(shape) < 2:
        return None
    spanned = [i for i, (m, n) in enumerate(zip(mshape, shape)) if m == n and n > 1]
    if len(spanned) == 1 and all(m == 1 for i, m in enumerate(mshape) if i != spanned[0]):
        return spanned[0]
    return None


def report(params: PyTree, masks: PyTree | None = None) -> list[LeafReport]:
    """Summarise every array leaf of ``params`` (masks applied when given).

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> rows = jp.report({"w": jnp.ones((2, 4))}, {"w": jnp.array([[True, False, True, True]])})
        >>> rows[0].sparsity, rows[0].channels
        (0.25, (1, 3, 4))
    """
    if masks is None:
        paths, leaves, _ = _paths.flatten(params)
        mlist = [None] * len(leaves)
    else:
        paths, leaves, mlist, _ = _tree._match_masks(params, masks)
    idx = [i for i, leaf in enumerate(leaves) if _paths.is_array(leaf)]
    stats = jax.device_get(_stats([leaves[i] for i in idx], [mlist[i] for i in idx]))
    rows = []
    for i, (zeros, kept) in zip(idx, stats):
        leaf, m = leaves[i], mlist[i]
        shape = tuple(leaf.shape)
        axis = None if m is None else _channel_axis(tuple(m.shape), shape)
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
    header = f"{'path':<20} {'shape':<16} {'size':>10} {'zeros':>10} {'sparsity':>8}  channels"
    lines = [header, "-" * len(header)]
    for r in rows:
        ch = "" if r.channels is None else f"{r.channels[1]}/{r.channels[2]} (dim {r.channels[0]})"
        lines.append(
            f"{r.path:<20} {str(r.shape):<16} {r.size:>10} {r.zeros:>10} "
            f"{100 * r.sparsity:>7.1f}%  {ch}"
        )
    size = sum(r.size for r in rows)
    zeros = sum(r.zeros for r in rows)
    frac = zeros / size if size else 0.0
    lines.append(f"{'total':<20} {'':<16} {size:>10} {zeros:>10} {100 * frac:>7.1f}%")
    return "\n".join(lines)
