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

import math
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


#: Booleans are summed in groups of at most this many entries along the last axis. XLA:CPU
#: fuses a reduction over 32 or fewer entries with the comparison that produces them; a longer
#: one becomes a tree of reduce-windows that first writes every boolean out as a byte and reads
#: it back. Two fused levels (uint8, then uint16) leave 1/1024 of the entries to a plain sum:
#: a counting pass over the 302M keys of the W2 benchmark takes 41 ms instead of 106 ms (one
#: group of 128 in uint8) or 350 ms (``jnp.sum(b, dtype=uint32)``). Splitting only the last
#: axis keeps every other axis, and the last one's sharding, as they are: no resharding of a
#: sharded weight.
_GROUP = 32


def _group(n: int) -> int:
    """The largest divisor of ``n`` up to ``_GROUP`` (1 when there is none)."""
    for g in range(min(_GROUP, n), 1, -1):
        if n % g == 0:
            return g
    return 1


def _sum_groups(x: Array, dtype) -> Array:
    """Sums of the entries of ``x`` in groups of up to ``_GROUP`` along the last axis."""
    n = x.shape[-1]
    g = _group(n)
    if g == 1:
        return x.astype(dtype)
    return jnp.sum(x.astype(dtype).reshape(*x.shape[:-1], g, n // g), axis=-2, dtype=dtype)


def count_true(b: Array, dtype=jnp.uint32) -> Array:
    """The number of True entries of a boolean array, as ``dtype``."""
    if b.ndim == 0 or b.size == 0:
        return jnp.sum(b, dtype=dtype)
    partial = _sum_groups(_sum_groups(b, jnp.uint8), jnp.uint16)  # at most 32 * 32 each
    return jnp.sum(partial, dtype=dtype)


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


def _count_two(
    first: Sequence[Array], second: Sequence[Array], dtype=jnp.uint32
) -> tuple[Array, Array]:
    """:func:`_count` of two lists of boolean arrays (shaped alike pairwise) in one pass: the
    two booleans of an entry share one integer, a byte each, then 16 bits each once summed
    over 32 entries. A second count costs about a third of a pass instead of a whole one."""
    one, two = jnp.zeros((), dtype), jnp.zeros((), dtype)
    for b1, b2 in zip(first, second):
        if b1.ndim == 0 or b1.size == 0:
            one, two = one + count_true(b1, dtype), two + count_true(b2, dtype)
            continue
        both = _sum_groups(b1.astype(jnp.uint16) | (b2.astype(jnp.uint16) << 8), jnp.uint16)
        wide = (both & 0xFF).astype(jnp.uint32) | ((both >> 8).astype(jnp.uint32) << 16)
        wide = _sum_groups(wide, jnp.uint32)  # at most 32 * 32 in each half
        one = one + jnp.sum(wide & 0xFFFF, dtype=dtype)
        two = two + jnp.sum(wide >> 16, dtype=dtype)
    return one, two


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

    def step(_, state):
        lo1, hi1, lo2, hi2 = state
        mid1, mid2 = lo1 + (hi1 - lo1) // 2, lo2 + (hi2 - lo2) // 2
        c1, c2 = _count_two(
            [a & (kk <= mid1) for kk, a in zip(keys, alive)],
            [a & (kk <= mid2) for kk, a in zip(keys, alive)],
            cdt,
        )
        ok1, ok2 = c1 >= r1, c2 >= r2
        return (
            jnp.where(ok1, lo1, mid1 + 1),
            jnp.where(ok1, mid1, hi1),
            jnp.where(ok2, lo2, mid2 + 1),
            jnp.where(ok2, mid2, hi2),
        )

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
    below, upto = _count_two(
        [_where_alive(a, kk < lo) for kk, a in zip(keys, alive)],
        [_where_alive(a, kk <= hi) for kk, a in zip(keys, alive)],
        cdt,
    )
    ok = (below < k) & (upto >= k)
    return (
        jnp.where(ok, lo, zero),
        jnp.where(ok, hi, top),
        jnp.where(ok, below, jnp.zeros((), cdt)),
        jnp.where(ok, upto, n_alive),
    )


#: A narrowing round puts its two pivots this many binomial standard deviations either side
#: of the interpolated k-th key.
_Z_ROUND = 4.0


def _narrow(
    keys: Sequence[Array], alive: Sequence[Array | None], k: Array, start, cdt
) -> tuple[Array, Array, Array]:
    """The k-th lowest alive key ``v`` and the counts ``(count(< v), count(<= v))``, from a
    bracket ``(lo, hi, count(< lo), count(<= hi))`` that holds it.

    Each round counts at two pivots in one pass (:func:`_count_two`) and keeps the part of
    the interval between them that holds the k-th key. The pivots sit either side of where
    the k-th key falls if the keys inside the interval are spread evenly (they nearly are in
    a narrow bracket of a smooth distribution: within one binary exponent, float keys are
    linear in the value), ``_Z_ROUND`` binomial deviations apart. An interval of ``m`` units
    then shrinks to about ``8 sqrt(m)``: 800k units -> 7k -> 700 -> ... A round that fails to
    halve the interval (keys far from even: few distinct values, clusters) is followed by one
    with pivots at a third and two thirds of it, so no input takes more rounds than about
    twice the bits of the key.
    """
    kdtype = keys[0].dtype
    big = float(jnp.iinfo(kdtype).max)

    def counts(a_, b_):
        return _count_two(
            [_where_alive(al, kk <= a_) for kk, al in zip(keys, alive)],
            [_where_alive(al, kk <= b_) for kk, al in zip(keys, alive)],
            cdt,
        )

    def offset(x: Array, width: Array) -> Array:
        x = jnp.clip(jnp.floor(x), 0.0, big)
        return jnp.minimum(x.astype(kdtype), width - 1)

    def body(state):
        lo, hi, c_lo, c_hi, even = state
        width = hi - lo
        w = width.astype(jnp.float32)
        units = (c_hi - c_lo).astype(jnp.float32)
        need = (k - c_lo).astype(jnp.float32)  # the k-th key is the need-th in the interval
        p = need / units
        guess = w * p
        spread = _Z_ROUND * jnp.sqrt(units * p * (1.0 - p)) * w / units + 1.0
        a = lo + jnp.where(even, offset(guess - spread, width), offset(w / 3.0, width))
        b = lo + jnp.where(even, offset(guess + spread, width), offset(w * 2.0 / 3.0, width))
        b = jnp.maximum(a, b)
        c_a, c_b = counts(a, b)
        in_first, in_second = c_a >= k, c_b >= k
        new_lo = jnp.where(in_first, lo, jnp.where(in_second, a + 1, b + 1))
        new_hi = jnp.where(in_first, a, jnp.where(in_second, b, hi))
        new_c_lo = jnp.where(in_first, c_lo, jnp.where(in_second, c_a, c_b))
        new_c_hi = jnp.where(in_first, c_a, jnp.where(in_second, c_b, c_hi))
        halved = (new_hi - new_lo) <= width // 2
        return new_lo, new_hi, new_c_lo, new_c_hi, halved

    lo, hi, c_lo, c_hi = start
    v, _, c_lo, c_hi, _ = lax.while_loop(
        lambda state: state[0] < state[1], body, (lo, hi, c_lo, c_hi, jnp.array(True))
    )
    return v, c_lo, c_hi


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
        v, c_lo, c_hi = _narrow(keys, alive, k, _bracket(keys, alive, k, n_alive, cdt), cdt)
    take = k - c_lo  # how many units scored v to prune, lowest positions first
    n_ties = c_hi - c_lo
    simple = (take == 0) | (take == n_ties)
    ends = lax.cond(
        simple,
        lambda: [
            jnp.where(take == 0, jnp.zeros((), cdt), jnp.asarray(kk.size, cdt)) for kk in keys
        ],
        lambda: _tie_ends(keys, alive, v, take, cdt),
    )
    return [
        _where_alive(a, (kk < v) | ((kk == v) & (_positions(kk.shape, cdt) < j)))
        for kk, a, j in zip(keys, alive, ends)
    ]


def _positions(shape: tuple[int, ...], cdt) -> Array:
    """Row-major flat indices of an array of this shape."""
    return jnp.arange(math.prod(shape), dtype=cdt).reshape(shape)


def _as_rows(x: Array) -> Array:
    """``x`` as a matrix whose rows run along its last axis (a scalar as one row)."""
    return x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)


def _first_reaching(counts: Array, target: Array) -> tuple[Array, Array]:
    """The first index at which the running total of ``counts`` reaches ``target`` (>= 1,
    at most the total), and the total before that index."""
    running = jnp.cumsum(counts, dtype=counts.dtype)
    i = jnp.sum(running < target, dtype=jnp.int32)
    return i, jnp.where(i > 0, running[jnp.maximum(i - 1, 0)], 0).astype(counts.dtype)


def _tie_ends(
    keys: Sequence[Array], alive: Sequence[Array | None], v: Array, take: Array, cdt
) -> list[Array]:
    """Per array, the flat position below which its units keyed ``v`` are pruned, so that
    the first ``take`` such units in position order (arrays in order) go.

    One pass counts the ties per row of every array; the row of the cut and the column within
    it then come from running totals over those counts and over that one row: no bisection
    over positions, which would take a pass over everything per bit of the position."""
    row_counts = []
    for kk, a in zip(keys, alive):
        tie = _as_rows(_where_alive(a, kk == v))
        row_counts.append(
            jnp.sum(_sum_groups(_sum_groups(tie, jnp.uint8), jnp.uint16), axis=-1, dtype=cdt)
        )
    per_array = jnp.stack([jnp.sum(c, dtype=cdt) for c in row_counts])
    before = jnp.cumsum(per_array, dtype=cdt) - per_array
    ends = []
    for kk, a, counts, n_before, n_here in zip(keys, alive, row_counts, before, per_array):
        t = jnp.clip(take.astype(cdt), n_before, n_before + n_here) - n_before
        row, in_rows_before = _first_reaching(counts, t)
        tie = _as_rows(_where_alive(a, kk == v))
        width = tie.shape[1]
        line = lax.dynamic_index_in_dim(tie, jnp.minimum(row, tie.shape[0] - 1), keepdims=False)
        col, _ = _first_reaching(line.astype(cdt), t - in_rows_before)
        end = row.astype(cdt) * width + col.astype(cdt) + 1
        end = jnp.where(t == n_here, jnp.asarray(kk.size, cdt), end)
        ends.append(jnp.where(t == 0, jnp.zeros((), cdt), end))
    return ends


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
