"""Large selections: the k-th lowest key bracketed from a sample, then narrowed by
interpolation, two counts to a pass, and usually settled by an end game in one more pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from ._counting import GROUP, count_all, count_true, count_two, halve, min_groups, where_alive
from ._order import Keys, sample
from ._typing import Array

#: The bracket spans this many binomial standard deviations of the sample's rank either side.
_Z = 6.0


def _kth_pair(keys: Sequence[Array], alive: Sequence[Array], r1: Array, r2: Array, cdt):
    """The r1-th and r2-th lowest alive keys (1-based), by one bisection loop for both."""
    kdtype = keys[0].dtype

    def step(_, state):
        lo1, hi1, lo2, hi2 = state
        mid1, mid2 = lo1 + (hi1 - lo1) // 2, lo2 + (hi2 - lo2) // 2
        c1, c2 = count_two(
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


def bracket(
    keys: Sequence[Keys], alive: Sequence[Array | None], k: Array, n_alive: Array, cdt
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
    s_alive = [jnp.ones(sk.shape, bool) if a is None else sample(a) for sk, a in zip(s_keys, alive)]
    n_sample = count_all(s_alive, cdt).astype(jnp.float32)
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
    below, upto = count_two(
        [where_alive(a, kk.lt(lo)) for kk, a in zip(keys, alive)],
        [where_alive(a, kk.le(hi)) for kk, a in zip(keys, alive)],
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

#: What a narrowing round does (see :func:`narrow`), and how many end games one selection
#: tries at most.
_INTERPOLATE, _THIRDS, _ENDGAME, _CHECK = 0, 1, 2, 3
_ENDGAMES = 3

#: Above this many units in all, the candidates of the end game are minima over groups of
#: 32 * 32 entries rather than 32 (fewer values to select from afterwards).
_TWO_LEVELS = 1 << 26


class Narrowing(NamedTuple):
    """The state of :func:`narrow`'s loop: the interval ``[lo, hi]`` that holds the k-th key,
    the counts at its ends, what the next round does, how many end games were tried, and the
    last end game's bound on the k-th key."""

    lo: Array
    hi: Array
    c_lo: Array  #: alive units keyed below lo
    c_hi: Array  #: alive units keyed at most hi
    mode: Array  #: _INTERPOLATE, _THIRDS, _ENDGAME or _CHECK (int32)
    tries: Array  #: end games so far (int32)
    bound: Array  #: the k-th least minimum of the last end game


def endgame(
    keys: Sequence[Keys], alive: Sequence[Array | None], state: Narrowing, k: Array, cdt
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
    lo, hi, c_lo, c_hi = state.lo, state.hi, state.c_lo, state.c_hi
    kdtype = keys[0].kdtype
    width = hi - lo
    minima = []
    for kk, al in zip(keys, alive):
        key = kk.value()
        offsets = jnp.where(where_alive(al, (key >= lo) & (key <= hi)), key - lo, width + 1)
        minima.append(min_groups(offsets.reshape(-1) if offsets.ndim == 0 else offsets))
    if sum(kk.size for kk in keys) > _TWO_LEVELS:
        # Fused into the pass, a second level of minima runs at a third of the speed (so
        # do 32-bit sums; 8- and 16-bit ones do not slow down): it runs apart, on 1/32 of
        # the entries.
        minima = [min_groups(m) for m in lax.optimization_barrier(minima)]
    cand = jnp.concatenate([m.reshape(-1) for m in minima])  # a few kernels from here on

    def count_le(t):
        return count_true(cand <= t, cdt)

    hidden = (c_hi - c_lo) - count_le(width)  # units sharing a group with a lesser one
    distinct = hidden == 0

    need = k - c_lo
    v, _ = lax.while_loop(
        lambda lohi: lohi[0] < lohi[1],
        lambda lohi: halve(*lohi, count_le, need)[:2],
        (jnp.zeros((), kdtype), width),
    )
    least = jnp.min(cand)
    tied = least == v
    found = distinct | tied
    below = jnp.where(distinct, c_lo + count_true(cand < v, cdt), c_lo)
    upto = jnp.where(distinct, c_lo + count_le(v), c_hi)
    return found, lo + jnp.where(found, v, least), below, upto, lo + v, hidden


def narrow(
    keys: Sequence[Keys],
    alive: Sequence[Array | None],
    k: Array,
    start,
    cdt,
) -> tuple[Array, Array, Array]:
    """The k-th lowest alive key ``v`` and the counts ``(count(< v), count(<= v))``, from a
    bracket ``(lo, hi, count(< lo), count(<= hi))`` that holds it.

    Each round counts at two pivots in one pass (:func:`count_two`) and keeps the part of
    the interval that holds the k-th key. The pivots sit ``_Z_ROUND`` binomial deviations
    either side of where the k-th key falls if the units inside the interval are spread
    evenly over its values (keys of floats are interpolated as the floats they stand for,
    others as integers), which they nearly are in a narrow bracket of a smooth distribution.
    An interval of ``m`` units then shrinks to about ``5 sqrt(m)``: 800k units -> 2k -> 100.
    A round that fails to halve the interval (units far from even: few distinct values,
    clusters) is followed by one with pivots at a third and two thirds of it, so no input
    takes more than about twice the rounds of a bisection. Once few units are left,
    :func:`endgame` usually finds the key in one more pass.
    """
    kdtype = keys[0].kdtype
    big = float(jnp.iinfo(kdtype).max)
    total = sum(kk.size for kk in keys)
    floats = all(kk.implicit for kk in keys) and kdtype == jnp.uint32
    groups = total // (GROUP ** (2 if total > _TWO_LEVELS else 1))
    #: the end game starts once this few units are left: two of them share a group ~1/32
    few = max(8, math.isqrt(groups // 16))
    whole = jnp.array(jnp.iinfo(kdtype).max, kdtype)  # the end game's offsets need width + 1

    def counts(a_, b_):
        return count_two(
            [where_alive(al, kk.le(a_)) for kk, al in zip(keys, alive)],
            [where_alive(al, kk.le(b_)) for kk, al in zip(keys, alive)],
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

    def split(state: Narrowing) -> Narrowing:
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
        return Narrowing(lo_, hi_, c_lo_, c_hi_, jnp.asarray(next_mode, jnp.int32), tries, bound)

    def end_round(state: Narrowing) -> Narrowing:
        found, v, below, upto, bound, hidden = endgame(keys, alive, state, k, cdt)
        return Narrowing(
            lo=v,
            hi=jnp.where(found, v, state.hi),
            c_lo=below,
            c_hi=jnp.where(found, upto, state.c_hi),
            mode=jnp.where(hidden <= 2, _CHECK, _THIRDS).astype(jnp.int32),
            tries=state.tries + 1,
            bound=bound,
        )

    lo, hi, c_lo, c_hi = start
    ready = (c_hi - c_lo <= few) & (hi - lo < whole)
    mode = jnp.where(ready, _ENDGAME, _INTERPOLATE).astype(jnp.int32)
    out = lax.while_loop(
        lambda state: state.lo < state.hi,
        lambda state: lax.cond(state.mode == _ENDGAME, end_round, split, state),
        Narrowing(lo, hi, c_lo, c_hi, mode, jnp.zeros((), jnp.int32), hi),
    )
    return out.lo, out.c_lo, out.c_hi
