"""Counting booleans with reductions that XLA:CPU fuses into the pass that makes them, and
the other reductions the selection is built from (no indexing: a sharded axis is reduced
where it lies)."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from ._typing import Array

#: Booleans are summed in groups of at most this many entries along the last axis. XLA:CPU
#: fuses a reduction over 32 or fewer entries with the comparison that produces them; a longer
#: one becomes a tree of reduce-windows that first writes every boolean out as a byte and reads
#: it back. Two fused levels (uint8, then uint16) leave 1/1024 of the entries to a plain sum:
#: a counting pass is 2.5 times faster than with one group of 128 in uint8 and 8 times faster
#: than ``jnp.sum(b, dtype=uint32)`` (benchmarks/RESULTS.md). Splitting only the last
#: axis keeps every other axis, and the last one's sharding, as they are: no resharding of a
#: sharded weight.
GROUP = 32


def group_size(n: int) -> int:
    """The largest divisor of ``n`` up to ``GROUP`` (1 when there is none)."""
    for g in range(min(GROUP, n), 1, -1):
        if n % g == 0:
            return g
    return 1


def sum_groups(x: Array, dtype) -> Array:
    """Sums of the entries of ``x`` in groups of up to ``GROUP`` along the last axis."""
    n = x.shape[-1]
    g = group_size(n)
    if g == 1:
        return x.astype(dtype)
    return jnp.sum(x.astype(dtype).reshape(*x.shape[:-1], g, n // g), axis=-2, dtype=dtype)


def min_groups(x: Array) -> Array:
    """Minima of the entries of ``x`` in groups of up to ``GROUP`` along the last axis."""
    n = x.shape[-1]
    g = group_size(n)
    return x if g == 1 else jnp.min(x.reshape(*x.shape[:-1], g, n // g), axis=-2)


def partial_counts(b: Array) -> Array:
    """The True entries of ``b`` counted per group of up to 32 * 32 along the last axis, in
    the pass that makes ``b``: a ``uint16`` vector of about ``b.size / 1024`` counts."""
    if b.ndim == 0 or b.size == 0:
        return b.reshape(-1).astype(jnp.uint16)
    return sum_groups(sum_groups(b, jnp.uint8), jnp.uint16).reshape(-1)


def count_true(b: Array, dtype=jnp.uint32) -> Array:
    """The number of True entries of a boolean array, as ``dtype``."""
    return jnp.sum(partial_counts(b), dtype=dtype)


def count_all(parts: Sequence[Array], dtype=jnp.uint32) -> Array:
    """The True entries of several boolean arrays, in all. Their partial counts are joined
    and summed once: a kernel per array for the pass, not three or four (the final sums
    are separate kernels on XLA:CPU, each costing compile time: 96 weights, 290 kernels)."""
    if not parts:
        return jnp.zeros((), dtype)
    return jnp.sum(jnp.concatenate([partial_counts(p) for p in parts]), dtype=dtype)


def count_two(
    first: Sequence[Array], second: Sequence[Array], dtype=jnp.uint32
) -> tuple[Array, Array]:
    """:func:`count_all` of two lists of boolean arrays (shaped alike pairwise) in one pass: the
    two booleans of an entry share one integer, a byte each, then 16 bits each once summed
    over 32 entries. A second count costs about a third of a pass instead of a whole one."""
    partials = []
    for b1, b2 in zip(first, second):
        both = b1.astype(jnp.uint16) | (b2.astype(jnp.uint16) << 8)
        if both.ndim == 0 or both.size == 0:
            both = both.reshape(-1)
        else:
            both = sum_groups(both, jnp.uint16)  # at most 32 in each byte
        wide = (both & 0xFF).astype(jnp.uint32) | ((both >> 8).astype(jnp.uint32) << 16)
        if wide.size:
            wide = sum_groups(wide, jnp.uint32)  # at most 32 * 32 in each half
        partials.append(wide.reshape(-1))
    if not partials:
        return jnp.zeros((), dtype), jnp.zeros((), dtype)
    wide = jnp.concatenate(partials)
    return jnp.sum(wide & 0xFFFF, dtype=dtype), jnp.sum(wide >> 16, dtype=dtype)


def where_alive(a: Array | None, cond: Array) -> Array:
    return cond if a is None else a & cond


def halve(lo: Array, hi: Array, count, target: Array) -> tuple[Array, Array, Array, Array]:
    """One bisection step for the smallest ``v`` in ``[lo, hi]`` with ``count(v) >= target``:
    the new bounds, the count at the midpoint and whether it reached the target there."""
    mid = lo + (hi - lo) // 2
    c = count(mid)
    ok = c >= target
    return jnp.where(ok, lo, mid + 1), jnp.where(ok, mid, hi), c, ok


def first_reaching(counts: Array, target: Array) -> tuple[Array, Array]:
    """The first index at which the running total of ``counts`` reaches ``target`` (>= 1,
    at most the total), and the total before that index (reductions only: no indexing, which
    would gather a sharded vector)."""
    short = jnp.cumsum(counts, dtype=counts.dtype) < target
    before = jnp.sum(jnp.where(short, counts, jnp.zeros((), counts.dtype)), dtype=counts.dtype)
    return jnp.sum(short, dtype=jnp.int32), before


def pick(x: Array, i: Array) -> Array:
    """``x[i]`` along the first axis, as a sum of one-hot rows: a sharded first axis is
    reduced where it lies (and the small result summed across devices), where indexing
    would gather the whole array."""
    hit = (jnp.arange(x.shape[0]) == i).reshape(-1, *([1] * (x.ndim - 1)))
    return jnp.sum(jnp.where(hit, x, jnp.zeros((), x.dtype)), axis=0, dtype=x.dtype)
