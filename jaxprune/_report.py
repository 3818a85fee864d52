"""A per-leaf summary of a params tree and its masks: shape, kept units, sparsity."""

from __future__ import annotations

import functools
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
    #: ``(n, m, dim)``: at most ``n`` nonzero entries in every ``m`` consecutive ones along
    #: ``dim`` (the sparsest such pattern for m in 2, 4, 8, 16; None if none is below 1)
    nm: tuple[int, int, int] | None = None


#: The group sizes the report tries for N:M structure.
NM_GROUPS = (2, 4, 8, 16)


@functools.partial(jax.jit, static_argnames="nm_dim")
def _stats(leaves, masks, *, nm_dim):
    out = []
    for x, m in zip(leaves, masks):
        zero = x == 0 if m is None else (x == 0) | ~m
        most = None  # per group size, the most nonzero entries in one group (-1: no tiling)
        if x.ndim >= 2 and x.size:
            d = nm_dim % x.ndim
            nonzero = jnp.moveaxis(~zero, d, -1)
            most = jnp.stack(
                [
                    jnp.max(jnp.sum(nonzero.reshape(*nonzero.shape[:-1], -1, g), axis=-1))
                    if x.shape[d] % g == 0
                    else jnp.int32(-1)
                    for g in NM_GROUPS
                ]
            ).astype(jnp.int32)
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
        out.append((jnp.sum(zero, dtype=jnp.uint32), kept_channels, most))
    return out


def _nm(most: Any, dim: int) -> tuple[int, int, int] | None:
    """The sparsest N:M pattern the group maxima show (the smallest m among equals)."""
    if most is None:
        return None
    found = [(int(n) / g, g, int(n)) for n, g in zip(most, NM_GROUPS) if 0 < int(n) < g]
    if not found:
        return None
    _, g, n = min(found)
    return (n, g, dim)


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


def report(
    params: PyTree, masks: PyTree | None = None, *, where: Where = None, nm_dim: int = -2
) -> list[LeafReport]:
    """Summarise the array leaves of ``params`` (masks applied when given).

    ``channels`` is ``(dim, kept, total)`` for a leaf whose mask is structured (keepdims);
    without masks, for a leaf of 2+ dims with all-zero channels, read from its values (the
    axis with the most of them). ``nm`` is ``(n, m, dim)`` for a leaf of 2+ dims with at
    most ``n`` nonzero entries in every group of ``m`` along ``nm_dim`` (the input axis of
    Flax kernels by default; 1 for torch's layout), the sparsest such pattern for ``m`` in
    2, 4, 8 and 16 (:func:`jaxprune.is_nm` checks one). ``where`` selects the leaves as in
    :func:`jaxprune.prune`; None reports every array leaf.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> rows = jp.report({"w": jnp.ones((2, 4))}, {"w": jnp.array([[True, False, True, True]])})
        >>> rows[0].sparsity, rows[0].channels
        (0.25, (1, 3, 4))
    """
    paths, leaves, mlist, idx = _tree.selected_leaves(params, masks, where)
    stats = jax.device_get(_stats([leaves[i] for i in idx], [mlist[i] for i in idx], nm_dim=nm_dim))
    rows = []
    for i, (zeros, kept, most) in zip(idx, stats):
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
                nm=_nm(most, nm_dim % len(shape) if len(shape) >= 2 else nm_dim),
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
            "" if r.nm is None else f"{r.nm[0]}:{r.nm[1]} (dim {r.nm[2]})",
        )
        for r in rows
    ]
    # Columns as wide as their longest cell: NNX and HuggingFace paths run long.
    pw = max([len("path"), len("total")] + [len(c[0]) for c in cells])
    sw = max([len("shape")] + [len(c[1]) for c in cells])
    nw = max([10] + [len(str(c[2])) for c in cells])
    cw = max([len("channels")] + [len(c[5]) for c in cells])
    header = (
        f"{'path':<{pw}} {'shape':<{sw}} {'size':>{nw}} {'zeros':>{nw}} {'sparsity':>8}  "
        f"{'channels':<{cw}}  N:M"
    )
    lines = [header, "-" * len(header)]
    for path, shape, size, zeros, sparsity, ch, nm in cells:
        lines.append(
            f"{path:<{pw}} {shape:<{sw}} {size:>{nw}} {zeros:>{nw}} {100 * sparsity:>7.1f}%  "
            f"{ch:<{cw}}  {nm}".rstrip()
        )
    size = sum(r.size for r in rows)
    zeros = sum(r.zeros for r in rows)
    frac = zeros / size if size else 0.0
    lines.append(f"{'total':<{pw}} {'':<{sw}} {size:>{nw}} {zeros:>{nw}} {100 * frac:>7.1f}%")
    return "\n".join(lines)
