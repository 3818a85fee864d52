"""Many small selections run as the rows of one padded array.

A model's weights come in a few widths, and XLA:CPU compiles every kernel of a program on its
own, even a slice. One selection loop per width and one output kernel per weight were most of
a first call's compilation (benchmarks/RESULTS.md, "Figures behind the code"). Here the calls
whose unit counts are close share one padded group:

- every call's units are laid out in a row of the group's width ``W``, the row's tail being
  dead units (never counted, never selected: the selection is the call's own, unit for unit);
- one batched selection loop serves the whole group
  (:func:`jaxprune._select.lowest_k_rows`);
- the masks come out as the rows of one ``(G, W)`` boolean array. An eager caller takes each
  mask from its row with one small kernel compiled per mask shape (:func:`take`); a traced
  caller slices in its own program (:func:`row_mask`).

Random bits are drawn at the group's width at once when the key's generator gives a prefix of
the same bits for a shorter draw (threefry with ``jax_threefry_partitionable``, JAX's
default); otherwise each call draws its own bits and they are padded.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _amount, _methods, _select
from ._typing import Array

#: Calls of different widths share a group while the group's padded entries are at most
#: ``PAD_LIMIT`` times its real ones, or at most ``PAD_SLACK`` more. A group costs
#: compilation (its random draw and its selection loop) once; padding costs selection time
#: in proportion to the dead entries on every call. 24 GPT-2 blocks: widths 4096 and 3072
#: share a group, 1024 has its own. ResNet-50: one group for its widths of 64 to 2048, where
#: the ratio alone made five. The trade-off's figures: benchmarks/RESULTS.md.
PAD_LIMIT = 1.25
PAD_SLACK = 1 << 17


class Group(NamedTuple):
    """Calls selected together: their indices, widest first, and the padded width."""

    members: tuple[int, ...]
    width: int


def plan(
    specs: Sequence[_methods.Spec],
    counts: Sequence[_amount.Count],
    scores: Sequence[Any],
) -> tuple[Group, ...]:
    """Group the small calls (at most ``BATCH_LIMIT`` units) that can share a selection.

    Calls group by their keys' dtype and by how their count is computed (``counts``); within
    that, by width, widest first: a width joins the current group while the padded entries
    stay within :data:`PAD_LIMIT` times the real ones or :data:`PAD_SLACK` above them. Large
    calls and calls without units are left out: they select on their own.
    """
    kinds: dict[tuple[Any, ...], dict[int, list[int]]] = {}
    for i, spec in enumerate(specs):
        if spec.units == 0 or _methods.is_large(spec):
            continue
        dtype = None if scores[i] is None else jnp.dtype(scores[i].dtype)
        kind = (_methods.keys_dtype(spec, dtype), counts[i])
        kinds.setdefault(kind, {}).setdefault(spec.units, []).append(i)
    groups = []
    for by_width in kinds.values():
        members: list[int] = []
        width = real = 0
        for w in sorted(by_width, reverse=True):
            calls = by_width[w]
            padded, joined = (len(members) + len(calls)) * width, real + w * len(calls)
            if members and padded > max(PAD_LIMIT * joined, joined + PAD_SLACK):
                groups.append(Group(tuple(members), width))
                members, real = [], 0
            if not members:
                width = w
            members += calls
            real += w * len(calls)
        groups.append(Group(tuple(members), width))
    return tuple(groups)


def is_row(spec: _methods.Spec, prior: Any) -> bool:
    """Whether a call's mask is its row as it is: no prior, or a prior no larger than the
    mask (a keepdims or scalar prior, or any prior of an unstructured call)."""
    if prior is None or spec.dim is None:
        return True
    shape = _methods.mask_shape(spec)
    return np.broadcast_shapes(tuple(jnp.shape(prior)), shape) == shape


def _pad(row: Array, width: int) -> Array:
    row = row.reshape(-1)
    return jnp.pad(row, (0, width - row.shape[0])) if row.shape[0] < width else row


def _prefix_draws(keys: Array) -> bool:
    """Whether bits drawn for ``n`` units are the first ``n`` of a longer draw."""
    return jax.config.jax_threefry_partitionable and str(jax.random.key_impl(keys)) == (
        "threefry2x32"
    )


def _keys(group: Group, specs, keys, scores) -> Array:
    members, width = group.members, group.width
    first = specs[members[0]]
    if first.method.order == "draws":
        batch = _gather_keys(keys, members)
        if _prefix_draws(batch):
            return jax.vmap(lambda kk: _select.random_keys(kk, (width,)))(batch)
        rows = [_methods.unit_keys(specs[i], batch[j], None) for j, i in enumerate(members)]
    else:
        rows = [
            _methods.unit_keys(specs[i], keys[i] if first.method.random else None, scores[i])
            for i in members
        ]
    return jnp.stack([_pad(r, width) for r in rows])


def select(
    group: Group,
    specs: Sequence[_methods.Spec],
    plans: Sequence[_amount.Count],
    keys: list[Array | None] | Array,
    scores: Sequence[Array | None],
    priors: Sequence[Array | None],
    counts: Sequence[Any],
    exact: Array,
) -> Array:
    """The kept units of every call of ``group``, one row each (inside a traced program).

    Row ``j`` holds call ``group.members[j]``'s kept units in its first ``units`` entries
    (False after them): the mask :func:`jaxprune._methods.compute` gives, flattened.
    """
    members, width = group.members, group.width
    lengths = np.array([specs[i].units for i in members], np.uint32)
    padded = bool((lengths != width).any())
    alive_units = [_methods.alive_units(specs[i], priors[i]) for i in members]
    alive = None
    if any(a is not None for a in alive_units):
        alive = jnp.stack(
            [jnp.ones((width,), bool) if a is None else _pad(a, width) for a in alive_units]
        )
    if padded:
        real = jnp.arange(width, dtype=jnp.uint32) < lengths[:, None]
        alive = real if alive is None else alive & real
    n_alive = jnp.asarray(lengths) if alive is None else jnp.sum(alive, axis=1, dtype=jnp.uint32)

    count = plans[members[0]]  # one kind per group (plan)
    if count == _amount.EXACT:  # counts from Python, in one array (pack_counts)
        k = exact[np.asarray(members)]
    else:  # a table's first call is the widest, whose table serves every row
        k = count.in_program(counts[members[0]], n_alive, width)

    pruned = _select.lowest_k_rows(_keys(group, specs, keys, scores), alive, k)
    return ~pruned if alive is None else ~pruned & alive


def compute_many(
    specs: tuple[_methods.Spec, ...],
    plans: tuple[_amount.Count, ...],
    groups: tuple[Group, ...],
    keys: list[Array | None] | Array,
    scores: list[Array | None],
    priors: list[Array | None],
    counts: list[Any],
    exact: Array,
) -> tuple[list[Array | None], list[Array]]:
    """The masks of many calls in one program: ``(masks, blocks)``.

    ``groups`` is :func:`plan`'s grouping of the calls. ``blocks`` holds each group's rows
    (:func:`select`); ``masks[i]`` is call ``i``'s mask, or None where the mask is its row as
    it is (:func:`is_row`), for the caller to take (:func:`take`, :func:`row_mask`). ``keys``
    holds each call's key (None for the methods that draw nothing), or is one array whose rows
    are the calls' keys. ``counts`` and ``exact`` are :func:`pack_counts`'s.

    The calls left out of the groups (over ``BATCH_LIMIT`` units) select one after the other:
    each counting pass then reads one weight, which stays in the CPU's cache for all its
    passes, where a batch of weights would be read from memory on every pass (8 GPT-2 blocks,
    l1_unstructured: three times faster one at a time). Their random draws of one shape
    are made by one ``vmap``-ed generator.
    """
    masks: list[Array | None] = [None] * len(specs)
    blocks = []
    for group in groups:
        block = select(group, specs, plans, keys, scores, priors, counts, exact)
        blocks.append(block)
        for j, i in enumerate(group.members):
            if not is_row(specs[i], priors[i]):
                masks[i] = row_mask(block, j, specs[i], priors[i])
    grouped = {i for group in groups for i in group.members}
    alone = [i for i in range(len(specs)) if i not in grouped]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i in alone:
        if specs[i].method.order == "draws":
            by_shape.setdefault(_methods.unit_shape(specs[i]), []).append(i)
    bits: dict[int, Array] = {}
    for shape, members in by_shape.items():
        batch = _gather_keys(keys, members)
        drawn = jax.vmap(lambda kk, shape=shape: _select.random_keys(kk, shape))(batch)
        bits.update((i, drawn[j]) for j, i in enumerate(members))
    for i in alone:
        key = keys[i] if specs[i].method.random else None
        sel = _methods.selection(
            specs[i], plans[i], key, scores[i], priors[i], counts[i], bits.get(i)
        )
        (pruned,) = _select.lowest_k([sel.keys], [sel.alive], sel.k)
        masks[i] = _methods.finish(specs[i], pruned, sel, priors[i])
    return masks, blocks


def _gather_keys(keys: list[Array | None] | Array, members: Sequence[int]) -> Array:
    if isinstance(keys, list):
        return jnp.stack([keys[i] for i in members])
    return keys[np.asarray(members)]  # rows of one array of keys: one gather


def pack_counts(
    groups: tuple[Group, ...], plans: Sequence[_amount.Count], counts: Sequence[Any]
) -> tuple[list[Any], np.ndarray]:
    """``counts`` as :func:`compute_many` takes them: the grouped calls' exact counts in one
    array (one argument of the program, not one scalar per call, whose dispatch costs more
    than the selection of a small tree), and of each group's tables of Python's rounding
    only the first, the one its rows read."""
    counts = list(counts)
    exact = np.zeros(len(counts), np.uint32)
    for group in groups:
        for j, i in enumerate(group.members):
            if plans[i] == _amount.EXACT:
                exact[i] = counts[i]
                counts[i] = None
            elif plans[i] == _amount.TABLE and j:
                counts[i] = None
    return counts, exact


def fill_rows(
    masks: list[Array | None],
    groups: tuple[Group, ...],
    blocks: Sequence[Array],
    row: Any,
) -> None:
    """Fill in each mask that :func:`compute_many` left to its row (None) with
    ``row(block, j, i)``: call ``i``'s group's rows and its row ``j``."""
    for group, block in zip(groups, blocks):
        for j, i in enumerate(group.members):
            if masks[i] is None:
                masks[i] = row(block, j, i)


def row_mask(block: Array, j: int, spec: _methods.Spec, prior: Array | None) -> Array:
    """Call ``j``'s mask from its group's rows, inside a traced program."""
    mask = block[j, : spec.units].reshape(_methods.mask_shape(spec))
    return mask if is_row(spec, prior) else mask & prior


@functools.partial(jax.jit, static_argnums=(2, 3))
def _take(block: Array, j: Array, units: int, shape: tuple[int, ...]) -> Array:
    return lax.dynamic_index_in_dim(block, j, keepdims=False)[:units].reshape(shape)


@functools.cache
def _row_index(j: int) -> Array:
    # A device scalar made once: passing it costs less than a NumPy int (put, not built by
    # an eager op, which would compile a program of its own).
    return jax.device_put(np.int32(j))


def take(block: Array, j: int, spec: _methods.Spec) -> Array:
    """Call ``j``'s mask from its group's rows, eagerly: one kernel per mask shape, compiled
    once and run per call (a few microseconds each)."""
    return _take(block, _row_index(j), spec.units, _methods.mask_shape(spec))
