"""Exact selection of the k lowest-scored units, without a full sort of large arrays.

Units are ordered by an unsigned-integer image of their scores (:func:`order_key`).
:func:`lowest_k` finds the k lowest among the units still alive, over one array or over
several arrays at once (global pruning), by counting the units at or below candidate keys:
no array of scores is sorted, gathered or copied (only partial counts, minima and bitmaps of
1/32 to 1/1024 of the entries are joined). Tiny inputs are ranked with one sort; small ones
bisect the key range (32 counting passes, cheap in cache); large ones bracket the k-th key
from a sample, narrow it by interpolation (two counts per pass) and usually finish with one
pass that collects the few candidates left (:mod:`jaxprune._narrowing`): 4 to 6 passes over
300M scores where a bisection takes 20 to 32. The cut among tied units is
:mod:`jaxprune._ties`; the counting itself, :mod:`jaxprune._counting`. Every path selects
the same units.

Tie rule: units are ordered by (score, position), where the position is the row-major flat
index, and arrays given together are taken in order. Among equal scores, the unit with the
lower position is pruned first. NaN scores order above +inf: they are pruned last.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ._counting import count_all, count_true, halve, where_alive
from ._narrowing import bracket, narrow
from ._order import Keys, order_key
from ._ties import positions, tie_ends, tie_ends_by_bisection
from ._typing import Array

__all__ = [
    "BRACKET_MIN",
    "SORT_LIMIT",
    "count_true",
    "lowest_k",
    "lowest_k_rows",
    "order_key",
    "random_keys",
]

#: Up to this many units in all, one sort ranks them; above it, bisection counts. XLA:CPU's
#: sort is slow even for a few thousand values (a 4096-channel selection sorts in four times
#: the time of a bisection), so only tiny selections are sorted.
SORT_LIMIT = 64


#: Selections over at least this many units first bracket the k-th key from a sample
#: (:func:`jaxprune._narrowing.bracket`); smaller ones bisect the whole range in a loop of
#: fixed length.
BRACKET_MIN = 1 << 20


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


def _counting_dtype(total: int):
    """Counts and positions are unsigned 32-bit up to 2**32 - 1 units, 64-bit beyond (x64)."""
    return jnp.uint32 if total < 2**32 else jnp.uint64


def _kth(keys: Sequence[Keys], alive: Sequence[Array | None], k: Array, cdt) -> tuple:
    """The k-th lowest alive key ``v`` (1-based), with the counts of alive units keyed below
    ``v`` and at most ``v``: by bisection (under ``BRACKET_MIN`` units) or by narrowing a
    sampled bracket (:func:`narrow`)."""
    kdtype = keys[0].kdtype
    total = sum(kk.size for kk in keys)

    def count_le(v):
        return count_all([where_alive(a, kk.le(v)) for kk, a in zip(keys, alive)], cdt)

    # The loop keeps the counts at both ends of the interval: count(< lo) and count(<= hi).
    def value_step(_, state):
        lo, hi, c_lo, c_hi = state
        lo, hi, c, enough = halve(lo, hi, count_le, k)
        return lo, hi, jnp.where(enough, c_lo, c), jnp.where(enough, c, c_hi)

    n_alive = jnp.asarray(sum(kk.size for kk, a in zip(keys, alive) if a is None), cdt)
    n_alive = n_alive + count_all([a for a in alive if a is not None], cdt)
    if total < BRACKET_MIN:
        zero = jnp.zeros((), kdtype)
        top = jnp.array(jnp.iinfo(kdtype).max, kdtype)
        start = (zero, top, jnp.zeros((), cdt), n_alive)
        v, _, c_lo, c_hi = lax.fori_loop(0, 8 * kdtype.itemsize, value_step, start)
        return v, c_lo, c_hi
    return narrow(keys, alive, k, bracket(keys, alive, k, n_alive, cdt), cdt)


def _plain_ends(keys: Sequence[Keys], take: Array, cdt) -> list[Array]:
    """The tie cut when it prunes none or all of the tied units."""
    return [jnp.where(take == 0, jnp.zeros((), cdt), jnp.asarray(kk.size, cdt)) for kk in keys]


def _below(
    keys: Sequence[Keys], alive: Sequence[Array | None], v: Array, ends: Sequence[Array], cdt
) -> list[Array]:
    """The alive units keyed below ``v``, and those keyed ``v`` before their array's end."""
    return [
        where_alive(a, kk.lt(v) | (kk.eq(v) & (positions(kk.shape, cdt) < j)))
        for kk, a, j in zip(keys, alive, ends)
    ]


def _by_counting(kth, plain_ends, cut, below, k: Array):
    """The skeleton of a selection by counting, for one selection or a batch of rows: the
    k-th key ``v`` and the counts at it (``kth(k)``), then where the pruned units end among
    the units keyed ``v`` (``plain_ends(take)`` when none or all of them go, else
    ``cut(v, take)``, run only when some selection needs it), then the pruned units
    (``below(v, ends)``). With rows, ``k`` and every count have one entry per row."""
    v, c_lo, c_hi = kth(k)
    take = k - c_lo  # how many units keyed v to prune, lowest positions first
    plain = (take == 0) | (take == c_hi - c_lo)
    ends = lax.cond(
        jnp.all(plain),
        lambda: plain_ends(take),
        lambda: jax.tree.map(lambda p, c: jnp.where(plain, p, c), plain_ends(take), cut(v, take)),
    )
    return below(v, ends)


def _lowest_k_counting(
    keys: Sequence[Keys], alive: Sequence[Array | None], k: Array
) -> list[Array]:
    """:func:`lowest_k` by counting: the k-th key (:func:`_kth`), then the cut among its
    ties."""
    total = sum(kk.size for kk in keys)
    cdt = _counting_dtype(total)
    cut = tie_ends if total >= BRACKET_MIN else tie_ends_by_bisection
    return _by_counting(
        lambda kk: _kth(keys, alive, kk, cdt),
        lambda take: _plain_ends(keys, take, cdt),
        lambda v, take: cut(keys, alive, v, take, cdt),
        lambda v, ends: _below(keys, alive, v, ends, cdt),
        k.astype(cdt),
    )


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
    return _lowest_k_counting([Keys(s, kdtype) for s in scores], alive, k)


def lowest_k_rows(scores: Array, alive: Array | None, k: Array) -> Array:
    """:func:`lowest_k` on each row of ``scores`` (``(G, W)``, under ``BRACKET_MIN`` units a
    row), with ``alive`` ``(G, W)`` or None and ``k`` ``(G,)``: the same units, selected in
    one batched loop.

    The cut among tied keys runs only when some row's k-th key is tied and the cut falls
    inside its run; a ``vmap`` of :func:`lowest_k` runs it for every row (its ``cond``
    becomes a select), a third of the time of a selection over random bits, which almost
    never tie.
    """
    width = scores.shape[1]
    rows_alive = 0 if alive is not None else None  # vmap's in_axes for alive
    if width <= SORT_LIMIT:
        one = jax.vmap(lambda s, a, kk: lowest_k([s], [a], kk)[0], (0, rows_alive, 0))
        return one(scores, alive, k)
    kdtype = jnp.uint64 if jnp.dtype(scores.dtype).itemsize == 8 else jnp.uint32
    cdt = _counting_dtype(width)
    k = jnp.asarray(k, jnp.uint32).astype(cdt)

    def keys_of(row):
        return [Keys(row, kdtype)]

    def kth(row, a, kk):
        return _kth(keys_of(row), [a], kk, cdt)

    def cut(row, a, v, take):
        return tie_ends_by_bisection(keys_of(row), [a], v, take, cdt)[0]

    def below(row, a, v, end):
        return _below(keys_of(row), [a], v, [end], cdt)[0]

    return _by_counting(
        lambda kk: jax.vmap(kth, (0, rows_alive, 0))(scores, alive, kk),
        lambda take: jnp.where(take == 0, jnp.zeros((), cdt), jnp.asarray(width, cdt)),
        lambda v, take: jax.vmap(cut, (0, rows_alive, 0, 0))(scores, alive, v, take),
        lambda v, ends: jax.vmap(below, (0, rows_alive, 0, 0))(scores, alive, v, ends),
        k,
    )


def random_keys(key: jax.Array, shape: tuple[int, ...]) -> Array:
    """Uniform ``uint32`` scores for random selection."""
    return jax.random.bits(key, shape, jnp.uint32)
