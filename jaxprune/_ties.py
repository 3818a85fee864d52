"""The cut among the units tied at the k-th key: the first ones in position order go."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
from jax import lax

from ._counting import GROUP, count_all, first_reaching, group_size, halve, pick, where_alive
from ._order import Keys
from ._typing import Array


def positions(shape: tuple[int, ...], cdt) -> Array:
    """Row-major flat indices of an array of this shape."""
    return jnp.arange(math.prod(shape), dtype=cdt).reshape(shape)


def _as_rows(x: Array) -> Array:
    """``x`` as a matrix whose rows run along its last axis (a scalar as one row)."""
    return x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)


def tie_ends_by_bisection(
    keys: Sequence[Keys], alive: Sequence[Array | None], v: Array, take: Array, cdt
) -> list[Array]:
    """:func:`tie_ends` for small selections, by bisection over positions: one pass per bit
    of the position, cheap in cache, and a third of the compile time of the bitmaps."""
    ties = [where_alive(a, kk.eq(v)) for kk, a in zip(keys, alive)]
    starts = [0]
    for kk in keys:
        starts.append(starts[-1] + kk.size)

    def count_before(j):
        return count_all(
            [
                t & (positions(kk.shape, cdt) + start < j)
                for t, kk, start in zip(ties, keys, starts)
            ],
            cdt,
        )

    def step(_, lohi):
        return halve(*lohi, count_before, take)[:2]

    total = jnp.asarray(starts[-1], cdt)
    j, _ = lax.fori_loop(0, starts[-1].bit_length(), step, (jnp.zeros((), cdt), total))
    return [
        (jnp.clip(j, start, start + kk.size) - start).astype(cdt) for kk, start in zip(keys, starts)
    ]


def tie_ends(
    keys: Sequence[Keys], alive: Sequence[Array | None], v: Array, take: Array, cdt
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
        tie = _as_rows(where_alive(a, kk.eq(v)))
        rows, width = tie.shape
        g = group_size(width)
        chunks = tie.reshape(rows, width // g, g).astype(jnp.uint32)
        bits = jnp.sum(chunks << jnp.arange(g, dtype=jnp.uint32), axis=-1, dtype=jnp.uint32)
        words.append(bits.reshape(-1))
        layout.append((start, rows * (width // g), width // g, g, width, kk.size))
        start += rows * (width // g)
    pad = -start % GROUP  # blocks of 32 words: the running total runs over the blocks
    blocks = jnp.concatenate([*words, jnp.zeros((pad,), jnp.uint32)]).reshape(-1, GROUP)
    per_block = jnp.sum(lax.population_count(blocks), axis=1, dtype=cdt)
    block_index, before = first_reaching(per_block, take)
    block = pick(blocks, block_index)
    word_index, in_block = first_reaching(lax.population_count(block).astype(cdt), take - before)
    word = pick(block, word_index)
    lanes = ((word >> jnp.arange(32, dtype=jnp.uint32)) & 1).astype(cdt)
    bit, _ = first_reaching(lanes, take - before - in_block)
    index = (block_index * GROUP + word_index).astype(cdt)

    def c(n: int) -> Array:  # a Python int as a counter: sizes may pass 2**31
        return jnp.asarray(n, cdt)

    ends = []
    for first, n_words, per_row, g, width, size in layout:
        local = jnp.clip(index - c(first), c(0), c(max(n_words - 1, 0)))
        end = (local // c(per_row)) * c(width) + (local % c(per_row)) * c(g) + bit.astype(cdt)
        end = jnp.where(index < c(first), c(0), end + c(1))
        ends.append(jnp.where(index >= c(first + n_words), c(size), end))
    return ends
