"""Exact selection of the k lowest-scored units, without a full sort of large arrays.

Scores are first mapped to unsigned integers whose order is the order of the scores
(:func:`order_key`). :func:`lowest_k` then finds the k lowest among the units still alive,
over one array or over several arrays at once (global pruning), by bisection on the integer
image: each step counts the units at or below a candidate value, so no array is sorted,
gathered or concatenated. Small inputs are ranked with one sort instead; both paths select the
same units.

Tie rule: units are ordered by (score, position), where the position is the row-major flat
index, and arrays given together are taken in order. Among equal scores, the unit with the
lower position is pruned first. NaN scores order above +inf: they are pruned last.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ._typing import Array

#: Up to this many units in all, one sort ranks them; above it, bisection counts. XLA:CPU's
#: sort is slow even for a few thousand values (a 4096-channel selection: 0.9 ms sorted,
#: 0.2 ms by bisection), so only tiny selections are sorted.
SORT_LIMIT = 64


def order_key(scores: Array) -> Array:
    """Unsigned integers ordered as ``|scores|``, with every NaN above +inf.

    Floats up to 32 bits map to ``uint32`` (exact: float16 and bfloat16 widen losslessly),
    float64 to ``uint64``; integers map to the unsigned type of their magnitude (the magnitude
    of the most negative value included).
    """
    dtype = scores.dtype
    if jnp.issubdtype(dtype, jnp.floating):
        wide = jnp.float64 if dtype.itemsize == 8 else jnp.float32
        mag = jnp.abs(scores.astype(wide))
        mag = jnp.where(jnp.isnan(mag), jnp.array(jnp.nan, wide), mag)
        return lax.bitcast_convert_type(mag, jnp.uint64 if dtype.itemsize == 8 else jnp.uint32)
    if jnp.issubdtype(dtype, jnp.signedinteger):
        if dtype.itemsize == 8:
            return jnp.abs(scores).astype(jnp.uint64)
        return jnp.abs(scores.astype(jnp.int32)).astype(jnp.uint32)
    if jnp.issubdtype(dtype, jnp.unsignedinteger):
        return scores.astype(jnp.uint64 if dtype.itemsize == 8 else jnp.uint32)
    raise TypeError(f"cannot rank scores of dtype {dtype}")


#: Booleans are counted in groups of this many along the last axis: summing a
#: (..., _ROWS, n / _ROWS) array over its second-to-last axis in uint8 vectorizes on XLA:CPU,
#: where ``jnp.sum(b, dtype=uint32)`` does not: on a 4M-entry weight, 0.47 ms against 3.8 ms
#: per counting pass (32 passes per selection). Splitting only the last axis keeps every
#: other axis, and the last one's sharding, as they are: no resharding of a sharded weight.
_ROWS = 128


def count_true(b: Array, dtype=jnp.uint32) -> Array:
    """The number of True entries of a boolean array, as ``dtype``."""
    if b.ndim and b.shape[-1] % _ROWS == 0 and b.shape[-1]:
        rows = b.reshape(*b.shape[:-1], _ROWS, b.shape[-1] // _ROWS).astype(jnp.uint8)
        return jnp.sum(jnp.sum(rows, axis=-2, dtype=jnp.uint8), dtype=dtype)
    if b.size < 2**31:
        return jnp.sum(b.astype(jnp.int32)).astype(dtype)
    return jnp.sum(b, dtype=dtype)


def _count(parts: Sequence[Array], dtype=jnp.uint32) -> Array:
    total = jnp.zeros((), dtype)
    for p in parts:
        total = total + count_true(p, dtype)
    return total


def _lowest_k_sorted(keys: Sequence[Array], alive: Sequence[Array], k: Array) -> list[Array]:
    flat_keys = jnp.concatenate([kk.reshape(-1) for kk in keys])
    flat_dead = jnp.concatenate([~a.reshape(-1) for a in alive])
    pos = jnp.arange(flat_keys.shape[0], dtype=jnp.uint32)
    # Sort by (dead, key); lax.sort is stable, so equal keys keep their positions' order.
    _, _, order = lax.sort((flat_dead, flat_keys, pos), num_keys=2, is_stable=True)
    rank = jnp.zeros_like(pos).at[order].set(pos)
    prune = (rank < k) & ~flat_dead
    out, start = [], 0
    for kk in keys:
        out.append(prune[start : start + kk.size].reshape(kk.shape))
        start += kk.size
    return out


def _lowest_k_bisect(keys: Sequence[Array], alive: Sequence[Array], k: Array) -> list[Array]:
    kdtype = keys[0].dtype
    nbits = 8 * jnp.dtype(kdtype).itemsize
    total = sum(kk.size for kk in keys)
    # Counts and positions are unsigned 32-bit up to 2**32 - 1 units, 64-bit beyond (x64).
    cdt = jnp.uint32 if total < 2**32 else jnp.uint64
    k = k.astype(cdt)

    def count_le(v):
        return _count([a & (kk <= v) for kk, a in zip(keys, alive)], cdt)

    def value_step(_, lohi):
        lo, hi = lohi
        mid = lo + (hi - lo) // 2
        enough = count_le(mid) >= k
        return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

    lo0 = jnp.zeros((), kdtype)
    hi0 = jnp.array(jnp.iinfo(kdtype).max, kdtype)
    v, _ = lax.fori_loop(0, nbits, value_step, (lo0, hi0))

    less = [a & (kk < v) for kk, a in zip(keys, alive)]
    ties = [a & (kk == v) for kk, a in zip(keys, alive)]
    take = k - _count(less, cdt)  # how many tied units to prune, lowest positions first
    n_ties = _count(ties, cdt)

    offsets, start = [], 0
    for kk in keys:
        offsets.append(start)
        start += kk.size
    positions = [
        jnp.arange(kk.size, dtype=cdt).reshape(kk.shape) + jnp.asarray(off, cdt)
        for kk, off in zip(keys, offsets)
    ]

    def cutoff():
        def count_before(j):
            return _count([t & (p < j) for t, p in zip(ties, positions)], cdt)

        def step(_, lohi):
            lo, hi = lohi
            mid = lo + (hi - lo) // 2
            enough = count_before(mid) >= take
            return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

        steps = max(1, int(total).bit_length())
        j, _ = lax.fori_loop(0, steps, step, (jnp.asarray(0, cdt), jnp.asarray(total, cdt)))
        return j

    simple = (take == 0) | (take == n_ties)
    j = lax.cond(
        simple,
        lambda: jnp.where(take == 0, jnp.asarray(0, cdt), jnp.asarray(total, cdt)),
        cutoff,
    )
    return [lt | (t & (p < j)) for lt, t, p in zip(less, ties, positions)]


def lowest_k(keys: Sequence[Array], alive: Sequence[Array | None], k: Array) -> list[Array]:
    """Boolean masks of the ``k`` alive units with the lowest keys (True = selected).

    Args:
        keys: unsigned-integer arrays of one dtype (see :func:`order_key`).
        alive: for each array, a boolean array broadcastable to it (or None: all alive); only
            alive units are counted and selected.
        k: number of units to select in all; must not exceed the number of alive units.

    Returns:
        One boolean array per input, shaped like its keys.
    """
    keys = list(keys)
    alive = [
        jnp.ones(kk.shape, bool) if a is None else jnp.broadcast_to(a, kk.shape)
        for kk, a in zip(keys, alive)
    ]
    k = jnp.asarray(k, jnp.uint32)
    total = sum(kk.size for kk in keys)
    if total >= 2**32 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"a selection over {total} units needs 64-bit counters: enable "
            "jax.config.update('jax_enable_x64', True) (up to 2**32 - 1 units work without)"
        )
    if total == 0:
        return [jnp.zeros(kk.shape, bool) for kk in keys]
    if total <= SORT_LIMIT:
        return _lowest_k_sorted(keys, alive, k)
    return _lowest_k_bisect(keys, alive, k)


def random_keys(key: jax.Array, shape: tuple[int, ...]) -> Array:
    """Uniform ``uint32`` scores for random selection."""
    return jax.random.bits(key, shape, jnp.uint32)
