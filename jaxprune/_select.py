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


#: Selections over at least this many units first bracket the k-th key from a sample
#: (:func:`_bracket`); smaller ones bisect the whole range in a loop of fixed length.
BRACKET_MIN = 1 << 20
_STRIDE = 8
_Z = 6.0


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


def _halve(lo: Array, hi: Array, count, target: Array) -> tuple[Array, Array, Array, Array]:
    """One bisection step for the smallest ``v`` in ``[lo, hi]`` with ``count(v) >= target``:
    the new bounds, the count at the midpoint and whether it reached the target there."""
    mid = lo + (hi - lo) // 2
    c = count(mid)
    ok = c >= target
    return jnp.where(ok, lo, mid + 1), jnp.where(ok, mid, hi), c, ok


def _kth_pair(keys: Sequence[Array], alive: Sequence[Array], r1: Array, r2: Array, cdt):
    """The r1-th and r2-th lowest alive keys (1-based), by one bisection loop for both."""
    kdtype = keys[0].dtype

    def count_le(v):
        return _count([a & (kk <= v) for kk, a in zip(keys, alive)], cdt)

    def step(_, state):
        lo1, hi1, lo2, hi2 = state
        lo1, hi1, _, _ = _halve(lo1, hi1, count_le, r1)
        lo2, hi2, _, _ = _halve(lo2, hi2, count_le, r2)
        return lo1, hi1, lo2, hi2

    zero = jnp.zeros((), kdtype)
    top = jnp.array(jnp.iinfo(kdtype).max, kdtype)
    out = lax.fori_loop(0, 8 * jnp.dtype(kdtype).itemsize, step, (zero, top, zero, top))
    return out[0], out[2]


def _sample(x: Array) -> Array:
    """Every _STRIDE-th entry along the first and the last axis (every _STRIDE**2-th of a
    vector): a strided view that keeps every other axis, and so any sharding, as it is."""
    if x.ndim == 0:
        return x
    index = [slice(None)] * x.ndim
    if x.ndim == 1:
        index[0] = slice(None, None, _STRIDE * _STRIDE)
    else:
        index[0] = slice(None, None, _STRIDE)
        index[-1] = slice(None, None, _STRIDE)
    return x[tuple(index)]


def _bracket(
    keys: Sequence[Array], alive: Sequence[Array | None], k: Array, n_alive: Array, cdt
) -> tuple[Array, Array, Array, Array]:
    """Bounds of the k-th lowest alive key and the counts there: ``(lo, hi, count(< lo),
    count(<= hi))``, from a sample of about one unit in 64: the sample's ranks ``k/n`` of the
    way through, widened by ``_Z`` standard deviations of a binomial rank. One counting pass
    checks them; when the k-th key is outside (about once in 10**9 draws for random scores;
    more often for scores with few distinct values) the bounds are the whole range. Either
    way the result is exact: the bounds only save bisection steps (about 32 -> 20 for 4M
    normal scores)."""
    kdtype = keys[0].dtype
    top = jnp.array(jnp.iinfo(kdtype).max, kdtype)
    zero = jnp.zeros((), kdtype)
    s_keys = [_sample(kk) for kk in keys]
    s_alive = [
        jnp.ones(sk.shape, bool) if a is None else _sample(a) for sk, a in zip(s_keys, alive)
    ]
    n_sample = _count(s_alive, cdt).astype(jnp.float32)
    q = k.astype(jnp.float32) / jnp.maximum(n_alive.astype(jnp.float32), 1.0)
    mean = q * n_sample
    sd = jnp.sqrt(n_sample * q * (1.0 - q)) + 1.0
    r_lo = jnp.floor(mean - _Z * sd)
    r_hi = jnp.ceil(mean + _Z * sd) + 1.0
    top_rank = jnp.maximum(n_sample, 1.0)
    lo, hi = _kth_pair(
        s_keys,
        s_alive,
        jnp.clip(r_lo, 1.0, top_rank).astype(cdt),
        jnp.clip(r_hi, 1.0, top_rank).astype(cdt),
        cdt,
    )
    lo = jnp.where(r_lo < 1.0, zero, lo)
    hi = jnp.where(r_hi > n_sample, top, hi)
    below = _count([_where_alive(a, kk < lo) for kk, a in zip(keys, alive)], cdt)
    upto = _count([_where_alive(a, kk <= hi) for kk, a in zip(keys, alive)], cdt)
    ok = (below < k) & (upto >= k)
    return (
        jnp.where(ok, lo, zero),
        jnp.where(ok, hi, top),
        jnp.where(ok, below, jnp.zeros((), cdt)),
        jnp.where(ok, upto, n_alive),
    )


def _where_alive(a: Array | None, cond: Array) -> Array:
    return cond if a is None else a & cond


def _lowest_k_bisect(keys: Sequence[Array], alive: Sequence[Array | None], k: Array) -> list[Array]:
    kdtype = keys[0].dtype
    nbits = 8 * jnp.dtype(kdtype).itemsize
    total = sum(kk.size for kk in keys)
    # Counts and positions are unsigned 32-bit up to 2**32 - 1 units, 64-bit beyond (x64).
    cdt = jnp.uint32 if total < 2**32 else jnp.uint64
    k = k.astype(cdt)

    def count_le(v):
        return _count([_where_alive(a, kk <= v) for kk, a in zip(keys, alive)], cdt)

    # The loop keeps the counts at both ends of the interval: count(< lo) and count(<= hi).
    def value_step(_, state):
        lo, hi, c_lo, c_hi = state
        lo, hi, c, enough = _halve(lo, hi, count_le, k)
        return lo, hi, jnp.where(enough, c_lo, c), jnp.where(enough, c, c_hi)

    n_alive = jnp.asarray(sum(kk.size for kk, a in zip(keys, alive) if a is None), cdt)
    n_alive = n_alive + _count([a for a in alive if a is not None], cdt)
    zero = jnp.zeros((), kdtype)
    top = jnp.array(jnp.iinfo(kdtype).max, kdtype)
    if total < BRACKET_MIN:
        start = (zero, top, jnp.zeros((), cdt), n_alive)
        v, _, c_lo, c_hi = lax.fori_loop(0, nbits, value_step, start)
    else:
        start = _bracket(keys, alive, k, n_alive, cdt)
        v, _, c_lo, c_hi = lax.while_loop(
            lambda state: state[0] < state[1], lambda state: value_step(0, state), start
        )
    take = k - c_lo  # how many units scored v to prune, lowest positions first
    n_ties = c_hi - c_lo

    offsets, at = [], 0
    for kk in keys:
        offsets.append(at)
        at += kk.size

    def positions(i):
        kk = keys[i]
        return jnp.arange(kk.size, dtype=cdt).reshape(kk.shape) + jnp.asarray(offsets[i], cdt)

    def cutoff():
        ties = [_where_alive(a, kk == v) for kk, a in zip(keys, alive)]

        def count_before(j):
            return _count([t & (positions(i) < j) for i, t in enumerate(ties)], cdt)

        def step(_, lohi):
            lo, hi, _, _ = _halve(*lohi, count_before, take)
            return lo, hi

        steps = max(1, int(total).bit_length())
        j, _ = lax.fori_loop(0, steps, step, (jnp.asarray(0, cdt), jnp.asarray(total, cdt)))
        return j

    simple = (take == 0) | (take == n_ties)
    j = lax.cond(
        simple,
        lambda: jnp.where(take == 0, jnp.asarray(0, cdt), jnp.asarray(total, cdt)),
        cutoff,
    )
    return [
        _where_alive(a, (kk < v) | ((kk == v) & (positions(i) < j)))
        for i, (kk, a) in enumerate(zip(keys, alive))
    ]


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
    alive = [None if a is None else jnp.broadcast_to(a, kk.shape) for kk, a in zip(keys, alive)]
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
        alive = [jnp.ones(kk.shape, bool) if a is None else a for kk, a in zip(keys, alive)]
        return _lowest_k_sorted(keys, alive, k)
    return _lowest_k_bisect(keys, alive, k)


def random_keys(key: jax.Array, shape: tuple[int, ...]) -> Array:
    """Uniform ``uint32`` scores for random selection."""
    return jax.random.bits(key, shape, jnp.uint32)
