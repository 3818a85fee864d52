"""Exact selection of the k lowest-scored units, without a full sort of large arrays.

Units are ordered by an unsigned-integer image of their scores (:func:`order_key`).
:func:`lowest_k` finds the k lowest among the units still alive, over one array or over
several arrays at once (global pruning), by counting the units at or below candidate keys:
no array is sorted, gathered or concatenated. Tiny inputs are ranked with one sort; small ones
bisect the key range (32 counting passes, cheap in cache); large ones bracket the k-th key
from a sample, narrow it by interpolation (two counts per pass) and usually finish with one
pass that collects the few candidates left (:func:`_narrow`): 4 to 6 passes over 300M
scores where a bisection takes 20 to 32. Every path selects the same units.

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


class _Keys:
    """The order keys of one array of scores (see :func:`order_key`), as comparisons.

    Keys of floats are never stored: comparing ``|x|`` with the float a key stands for is
    as cheap as comparing the key, and the 4 bytes per unit of a stored key array (1.2 GB
    for GPT-2-medium) cost more to write and to page in than the passes that read it.
    Other scores (integers; random bits, which are keys already) are mapped once.
    """

    def __init__(self, scores: Array, kdtype):
        self.kdtype = jnp.dtype(kdtype)
        self.implicit = bool(jnp.issubdtype(scores.dtype, jnp.floating))
        self.data = scores if self.implicit else order_key(scores).astype(kdtype)
        self.shape, self.size, self.ndim = scores.shape, scores.size, scores.ndim
        if self.implicit:
            wide = self.kdtype.itemsize == 8
            self._float = jnp.float64 if wide else jnp.float32
            self._inf = jnp.array(0x7FF0000000000000 if wide else 0x7F800000, kdtype)
            self._nan = order_key(jnp.array(jnp.nan, self._float))

    def le(self, v: Array) -> Array:
        """Whether each key is at most ``v``."""
        if not self.implicit:
            return self.data <= v
        bound = lax.bitcast_convert_type(jnp.minimum(v, self._inf), self._float)
        x = self.data.astype(self._float)
        return (v >= self._nan) | ((x <= bound) & (x >= -bound))

    def lt(self, v: Array) -> Array:
        """Whether each key is below ``v``."""
        return self.data < v if not self.implicit else (v > 0) & self.le(v - 1)

    def eq(self, v: Array) -> Array:
        """Whether each key is ``v``."""
        return self.data == v if not self.implicit else self.le(v) & ~self.lt(v)

    def value(self) -> Array:
        """The keys themselves."""
        return order_key(self.data).astype(self.kdtype) if self.implicit else self.data

    def sample(self) -> Array:
        """The keys of a strided sample (:func:`_sample`)."""
        part = _sample(self.data)
        return order_key(part).astype(self.kdtype) if self.implicit else part


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


def _min_groups(x: Array) -> Array:
    """Minima of the entries of ``x`` in groups of up to ``_GROUP`` along the last axis."""
    n = x.shape[-1]
    g = _group(n)
    return x if g == 1 else jnp.min(x.reshape(*x.shape[:-1], g, n // g), axis=-2)


def _partial_counts(b: Array) -> Array:
    """The True entries of ``b`` counted per group of up to 32 * 32 along the last axis, in
    the pass that makes ``b``: a ``uint16`` vector of about ``b.size / 1024`` counts."""
    if b.ndim == 0 or b.size == 0:
        return b.reshape(-1).astype(jnp.uint16)
    return _sum_groups(_sum_groups(b, jnp.uint8), jnp.uint16).reshape(-1)


def count_true(b: Array, dtype=jnp.uint32) -> Array:
    """The number of True entries of a boolean array, as ``dtype``."""
    return jnp.sum(_partial_counts(b), dtype=dtype)


#: Selections over at least this many units first bracket the k-th key from a sample
#: (:func:`_bracket`); smaller ones bisect the whole range in a loop of fixed length.
BRACKET_MIN = 1 << 20
_STRIDE = 8
_Z = 6.0


def _count(parts: Sequence[Array], dtype=jnp.uint32) -> Array:
    """The True entries of several boolean arrays, in all. Their partial counts are joined
    and summed once: a kernel per array for the pass, not three or four (the final sums
    are separate kernels on XLA:CPU, each costing compile time: 96 weights, 290 kernels)."""
    if not parts:
        return jnp.zeros((), dtype)
    return jnp.sum(jnp.concatenate([_partial_counts(p) for p in parts]), dtype=dtype)


def _count_two(
    first: Sequence[Array], second: Sequence[Array], dtype=jnp.uint32
) -> tuple[Array, Array]:
    """:func:`_count` of two lists of boolean arrays (shaped alike pairwise) in one pass: the
    two booleans of an entry share one integer, a byte each, then 16 bits each once summed
    over 32 entries. A second count costs about a third of a pass instead of a whole one."""
    partials = []
    for b1, b2 in zip(first, second):
        both = b1.astype(jnp.uint16) | (b2.astype(jnp.uint16) << 8)
        if both.ndim == 0 or both.size == 0:
            both = both.reshape(-1)
        else:
            both = _sum_groups(both, jnp.uint16)  # at most 32 in each byte
        wide = (both & 0xFF).astype(jnp.uint32) | ((both >> 8).astype(jnp.uint32) << 16)
        if wide.size:
            wide = _sum_groups(wide, jnp.uint32)  # at most 32 * 32 in each half
        partials.append(wide.reshape(-1))
    if not partials:
        return jnp.zeros((), dtype), jnp.zeros((), dtype)
    wide = jnp.concatenate(partials)
    return jnp.sum(wide & 0xFFFF, dtype=dtype), jnp.sum(wide >> 16, dtype=dtype)


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
    keys: Sequence[_Keys], alive: Sequence[Array | None], k: Array, n_alive: Array, cdt
) -> tuple[Array, Array, Array, Array]:
    """Bounds of the k-th lowest alive key and the counts there: ``(lo, hi, count(< lo),
    count(<= hi))``, from a sample of about one unit in 64: the sample's ranks ``k/n`` of the
    way through, widened by ``_Z`` standard deviations of a binomial rank. One counting pass
    checks them; when the k-th key is outside (about once in 10**9 draws for random scores;
    more often for scores with few distinct values) the bounds are the whole range. Either
    way the result is exact: the bounds only save passes (about 0.3 % of 300M normal scores
    are left inside)."""
    kdtype = keys[0].kdtype
    top = jnp.array(jnp.iinfo(kdtype).max, kdtype)
    zero = jnp.zeros((), kdtype)
    s_keys = [kk.sample() for kk in keys]
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
        [_where_alive(a, kk.lt(lo)) for kk, a in zip(keys, alive)],
        [_where_alive(a, kk.le(hi)) for kk, a in zip(keys, alive)],
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
_Z_ROUND = 2.5

#: What a narrowing round does (see :func:`_narrow`), and how many end games one selection
#: tries at most.
_INTERPOLATE, _THIRDS, _ENDGAME, _CHECK = 0, 1, 2, 3
_ENDGAMES = 3

#: Above this many units in all, the candidates of the end game are minima over groups of
#: 32 * 32 entries rather than 32 (fewer values to select from afterwards).
_TWO_LEVELS = 1 << 26


def _endgame(
    keys: Sequence[_Keys], alive: Sequence[Array | None], state, k: Array, cdt
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """One pass that takes, per group of entries, the least key in ``[lo, hi]``.

    When as many groups hold one as there are units in the interval, no group holds two: the
    minima are all the candidates, and the k-th key is found among them without touching the
    arrays again. Failing that, the k-th key lies between the least candidate and the k-th
    least minimum (the minima are a subset of the units); when those are equal, that is the
    key (every unit of the interval ties there, as scores with few distinct values do).

    Returns ``(found, v, count(< v), count(<= v), bound, hidden)``. When ``found`` only by the
    tie, ``count(<= v)`` is ``c_hi``, which may exceed it (the caller only tells "all tied
    units go" from it, and counts them again otherwise). When not ``found``, ``v`` is the
    least key in the interval, a new ``lo`` (``count(< v)`` is still ``c_lo``); ``bound``, the
    k-th least minimum, is at or above the k-th key, and at it or a candidate or two above
    when ``hidden`` (the units that share a group with a lesser one) is small.
    """
    lo, hi, c_lo, c_hi = state[:4]
    kdtype = keys[0].kdtype
    width = hi - lo
    minima = []
    for kk, al in zip(keys, alive):
        key = kk.value()
        offsets = jnp.where(_where_alive(al, (key >= lo) & (key <= hi)), key - lo, width + 1)
        minima.append(_min_groups(offsets.reshape(-1) if offsets.ndim == 0 else offsets))
    if sum(kk.size for kk in keys) > _TWO_LEVELS:
        # Fused into the pass, a second level of minima runs at a third of the speed (so
        # do 32-bit sums; 8- and 16-bit ones do not slow down): it runs apart, on 1/32 of
        # the entries.
        minima = [_min_groups(m) for m in lax.optimization_barrier(minima)]
    minima = [jnp.concatenate([m.reshape(-1) for m in minima])]  # a few kernels from here on

    def count_le(t):
        return _count([m <= t for m in minima], cdt)

    hidden = (c_hi - c_lo) - count_le(width)  # units sharing a group with a lesser one
    distinct = hidden == 0

    need = k - c_lo
    v, _ = lax.while_loop(
        lambda lohi: lohi[0] < lohi[1],
        lambda lohi: _halve(*lohi, count_le, need)[:2],
        (jnp.zeros((), kdtype), width),
    )
    least = jnp.min(jnp.stack([jnp.min(m) for m in minima]))
    tied = least == v
    found = distinct | tied
    below = jnp.where(distinct, c_lo + _count([m < v for m in minima], cdt), c_lo)
    upto = jnp.where(distinct, c_lo + count_le(v), c_hi)
    return found, lo + jnp.where(found, v, least), below, upto, lo + v, hidden


def _narrow(
    keys: Sequence[_Keys],
    alive: Sequence[Array | None],
    k: Array,
    start,
    cdt,
) -> tuple[Array, Array, Array]:
    """The k-th lowest alive key ``v`` and the counts ``(count(< v), count(<= v))``, from a
    bracket ``(lo, hi, count(< lo), count(<= hi))`` that holds it.

    Each round counts at two pivots in one pass (:func:`_count_two`) and keeps the part of
    the interval that holds the k-th key. The pivots sit ``_Z_ROUND`` binomial deviations
    either side of where the k-th key falls if the units inside the interval are spread
    evenly over its values (keys of floats are interpolated as the floats they stand for,
    others as integers), which they nearly are in a narrow bracket of a smooth distribution.
    An interval of ``m`` units then shrinks to about ``5 sqrt(m)``: 800k units -> 2k -> 100.
    A round that fails to halve the interval (units far from even: few distinct values,
    clusters) is followed by one with pivots at a third and two thirds of it, so no input
    takes more than about twice the rounds of a bisection. Once few units are left,
    :func:`_endgame` usually finds the key in one more pass.
    """
    kdtype = keys[0].kdtype
    big = float(jnp.iinfo(kdtype).max)
    total = sum(kk.size for kk in keys)
    floats = all(kk.implicit for kk in keys) and kdtype == jnp.uint32

    def counts(a_, b_):
        return _count_two(
            [_where_alive(al, kk.le(a_)) for kk, al in zip(keys, alive)],
            [_where_alive(al, kk.le(b_)) for kk, al in zip(keys, alive)],
            cdt,
        )

    def pivot(lo: Array, hi: Array, frac: Array, spaced_by_value: Array | bool) -> Array:
        """The key ``frac`` of the way from ``lo`` to ``hi``, within ``[lo, hi - 1]``."""
        width = hi - lo
        steps = jnp.clip(jnp.floor(width.astype(jnp.float32) * frac), 0.0, big)
        by_key = lo + jnp.minimum(steps.astype(kdtype), width - 1)
        if not floats:
            return by_key
        v_lo = lax.bitcast_convert_type(lo, jnp.float32)
        v_hi = lax.bitcast_convert_type(hi, jnp.float32)
        value = v_lo + (v_hi - v_lo) * jnp.clip(frac, 0.0, 1.0)
        by_value = jnp.clip(lax.bitcast_convert_type(value, kdtype), lo, hi - 1)
        return jnp.where(spaced_by_value & jnp.isfinite(v_hi), by_value, by_key)

    def split(state):
        lo, hi, c_lo, c_hi, mode, tries, bound = state
        width = hi - lo
        units = (c_hi - c_lo).astype(jnp.float32)
        need = (k - c_lo).astype(jnp.float32)  # the k-th key is the need-th in here
        p = need / units
        spread = _Z_ROUND * jnp.sqrt(units * p * (1.0 - p)) + 1.0
        a = pivot(lo, hi, (need - spread) / units, True)
        b = pivot(lo, hi, (need + spread) / units, True)
        thirds = mode == _THIRDS
        a = jnp.where(thirds, pivot(lo, hi, 1 / 3, False), a)
        b = jnp.where(thirds, pivot(lo, hi, 2 / 3, False), b)
        check = mode == _CHECK  # is the end game's bound the key?
        a = jnp.where(check, jnp.clip(bound - 1, lo, hi - 1), a)
        b = jnp.where(check, jnp.clip(bound, lo, hi - 1), b)
        b = jnp.maximum(a, b)
        c_a, c_b = counts(a, b)
        in_first, in_second = c_a >= k, c_b >= k
        lo_ = jnp.where(in_first, lo, jnp.where(in_second, a + 1, b + 1))
        hi_ = jnp.where(in_first, a, jnp.where(in_second, b, hi))
        c_lo_ = jnp.where(in_first, c_lo, jnp.where(in_second, c_a, c_b))
        c_hi_ = jnp.where(in_first, c_a, jnp.where(in_second, c_b, c_hi))
        halved = (hi_ - lo_) <= width // 2
        few_left = (c_hi_ - c_lo_ <= few) & (tries < _ENDGAMES)
        # A first failure to halve may be a run of tied keys, which the end game settles.
        stuck = ~halved & (tries == 0) & (mode == _INTERPOLATE)
        next_mode = jnp.where(
            (few_left | stuck) & (hi_ - lo_ < whole),
            _ENDGAME,
            jnp.where(halved | (mode != _INTERPOLATE), _INTERPOLATE, _THIRDS),
        )
        return lo_, hi_, c_lo_, c_hi_, jnp.asarray(next_mode, jnp.int32), tries, bound

    def endgame(state):
        lo, hi, c_lo, c_hi, _, tries, _ = state
        found, v, below, upto, bound, hidden = _endgame(keys, alive, state, k, cdt)
        return (
            v,
            jnp.where(found, v, hi),
            below,
            jnp.where(found, upto, c_hi),
            jnp.where(hidden <= 2, _CHECK, _THIRDS).astype(jnp.int32),
            tries + 1,
            bound,
        )

    groups = total // (_GROUP ** (2 if total > _TWO_LEVELS else 1))
    few = max(8, math.isqrt(groups // 16))  # two of that many share a group: p ~ 1/32
    whole = jnp.array(jnp.iinfo(kdtype).max, kdtype)  # the end game's offsets need width + 1

    lo, hi, c_lo, c_hi = start
    ready = (c_hi - c_lo <= few) & (hi - lo < whole)
    mode = jnp.where(ready, _ENDGAME, _INTERPOLATE).astype(jnp.int32)
    v, _, c_lo, c_hi, _, _, _ = lax.while_loop(
        lambda state: state[0] < state[1],
        lambda state: lax.cond(state[4] == _ENDGAME, endgame, split, state),
        (lo, hi, c_lo, c_hi, mode, jnp.zeros((), jnp.int32), hi),
    )
    return v, c_lo, c_hi


def _where_alive(a: Array | None, cond: Array) -> Array:
    return cond if a is None else a & cond


def _lowest_k_counting(
    keys: Sequence[_Keys], alive: Sequence[Array | None], k: Array
) -> list[Array]:
    """:func:`lowest_k` by counting: the k-th key by bisection (under ``BRACKET_MIN`` units)
    or by narrowing a sampled bracket (:func:`_narrow`), then the cut among its ties."""
    kdtype = keys[0].kdtype
    nbits = 8 * kdtype.itemsize
    total = sum(kk.size for kk in keys)
    # Counts and positions are unsigned 32-bit up to 2**32 - 1 units, 64-bit beyond (x64).
    cdt = jnp.uint32 if total < 2**32 else jnp.uint64
    k = k.astype(cdt)

    def count_le(v):
        return _count([_where_alive(a, kk.le(v)) for kk, a in zip(keys, alive)], cdt)

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
    cut = _tie_ends if total >= BRACKET_MIN else _tie_ends_by_bisection
    simple = (take == 0) | (take == n_ties)
    ends = lax.cond(
        simple,
        lambda: [
            jnp.where(take == 0, jnp.zeros((), cdt), jnp.asarray(kk.size, cdt)) for kk in keys
        ],
        lambda: cut(keys, alive, v, take, cdt),
    )
    return [
        _where_alive(a, kk.lt(v) | (kk.eq(v) & (_positions(kk.shape, cdt) < j)))
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
    at most the total), and the total before that index (reductions only: no indexing, which
    would gather a sharded vector)."""
    short = jnp.cumsum(counts, dtype=counts.dtype) < target
    before = jnp.sum(jnp.where(short, counts, jnp.zeros((), counts.dtype)), dtype=counts.dtype)
    return jnp.sum(short, dtype=jnp.int32), before


def _pick(x: Array, i: Array) -> Array:
    """``x[i]`` along the first axis, as a sum of one-hot rows: a sharded first axis is
    reduced where it lies (and the small result summed across devices), where indexing
    would gather the whole array."""
    hit = (jnp.arange(x.shape[0]) == i).reshape(-1, *([1] * (x.ndim - 1)))
    return jnp.sum(jnp.where(hit, x, jnp.zeros((), x.dtype)), axis=0, dtype=x.dtype)


def _tie_ends_by_bisection(
    keys: Sequence[_Keys], alive: Sequence[Array | None], v: Array, take: Array, cdt
) -> list[Array]:
    """:func:`_tie_ends` for small selections, by bisection over positions: one pass per bit
    of the position, cheap in cache, and a third of the compile time of the bitmaps."""
    ties = [_where_alive(a, kk.eq(v)) for kk, a in zip(keys, alive)]
    starts = [0]
    for kk in keys:
        starts.append(starts[-1] + kk.size)

    def count_before(j):
        return _count(
            [
                t & (_positions(kk.shape, cdt) + start < j)
                for t, kk, start in zip(ties, keys, starts)
            ],
            cdt,
        )

    def step(_, lohi):
        return _halve(*lohi, count_before, take)[:2]

    total = jnp.asarray(starts[-1], cdt)
    j, _ = lax.fori_loop(0, starts[-1].bit_length(), step, (jnp.zeros((), cdt), total))
    return [
        (jnp.clip(j, start, start + kk.size) - start).astype(cdt) for kk, start in zip(keys, starts)
    ]


def _tie_ends(
    keys: Sequence[_Keys], alive: Sequence[Array | None], v: Array, take: Array, cdt
) -> list[Array]:
    """Per array, the flat position below which its units keyed ``v`` are pruned, so that
    the first ``take`` (at least one, fewer than all) such units in position order (arrays
    in order) go.

    One pass writes, per row of every array, bitmaps of its ties in words of up to 32
    consecutive columns (1/32 of the entries, 4 bytes each), joined in position order. A
    running total of their bit counts gives the word of the cut, and the word the column:
    no bisection over positions, which would take a pass over everything per bit of the
    position, and a few kernels in all rather than a few per array."""
    words, layout, start = [], [], 0
    for kk, a in zip(keys, alive):
        tie = _as_rows(_where_alive(a, kk.eq(v)))
        rows, width = tie.shape
        g = _group(width)
        chunks = tie.reshape(rows, width // g, g).astype(jnp.uint32)
        bits = jnp.sum(chunks << jnp.arange(g, dtype=jnp.uint32), axis=-1, dtype=jnp.uint32)
        words.append(bits.reshape(-1))
        layout.append((start, rows * (width // g), width // g, g, width, kk.size))
        start += rows * (width // g)
    pad = -start % _GROUP  # blocks of 32 words: the running total runs over the blocks
    blocks = jnp.concatenate([*words, jnp.zeros((pad,), jnp.uint32)]).reshape(-1, _GROUP)
    per_block = jnp.sum(lax.population_count(blocks), axis=1, dtype=cdt)
    block_index, before = _first_reaching(per_block, take)
    block = _pick(blocks, block_index)
    word_index, in_block = _first_reaching(lax.population_count(block).astype(cdt), take - before)
    word = _pick(block, word_index)
    lanes = ((word >> jnp.arange(32, dtype=jnp.uint32)) & 1).astype(cdt)
    bit, _ = _first_reaching(lanes, take - before - in_block)
    index = block_index * _GROUP + word_index
    ends = []
    for first, n_words, per_row, g, width, size in layout:
        local = jnp.clip(index - first, 0, max(n_words - 1, 0)).astype(cdt)
        end = (local // per_row) * width + (local % per_row) * g + bit.astype(cdt) + 1
        end = jnp.where(index < first, jnp.zeros((), cdt), end)
        ends.append(jnp.where(index >= first + n_words, jnp.asarray(size, cdt), end))
    return ends


def lowest_k(scores: Sequence[Array], alive: Sequence[Array | None], k: Array) -> list[Array]:
    """Boolean masks of the ``k`` alive units with the lowest order keys (True = selected).

    Args:
        scores: arrays ordered by their :func:`order_key`: floats and integers by magnitude,
            NaN last; unsigned integers (random bits) as they are.
        alive: for each array, a boolean array broadcastable to it (or None: all alive); only
            alive units are counted and selected.
        k: number of units to select in all; must not exceed the number of alive units.

    Returns:
        One boolean array per input, shaped like it.
    """
    scores = list(scores)
    alive = [None if a is None else jnp.broadcast_to(a, s.shape) for s, a in zip(scores, alive)]
    k = jnp.asarray(k, jnp.uint32)
    total = sum(s.size for s in scores)
    if total >= 2**32 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"a selection over {total} units needs 64-bit counters: enable "
            "jax.config.update('jax_enable_x64', True) (up to 2**32 - 1 units work without)"
        )
    if total == 0:
        return [jnp.zeros(s.shape, bool) for s in scores]
    wide = any(jnp.dtype(s.dtype).itemsize == 8 for s in scores)
    kdtype = jnp.uint64 if wide else jnp.uint32
    if total <= SORT_LIMIT:
        alive = [jnp.ones(s.shape, bool) if a is None else a for s, a in zip(scores, alive)]
        return _lowest_k_sorted([order_key(s).astype(kdtype) for s in scores], alive, k)
    if not all(jnp.issubdtype(s.dtype, jnp.floating) for s in scores):
        scores = [order_key(s) for s in scores]  # one kind of keys for all: stored ones
    return _lowest_k_counting([_Keys(s, kdtype) for s in scores], alive, k)


def random_keys(key: jax.Array, shape: tuple[int, ...]) -> Array:
    """Uniform ``uint32`` scores for random selection."""
    return jax.random.bits(key, shape, jnp.uint32)
