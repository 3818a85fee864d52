"""N:M sparsity: in every group of ``m`` consecutive entries along an axis, keep ``n``.

Hardware rewards this structure (2:4 on sparse tensor cores). The groups run along the input
(contracting) axis by default, ``dim=-2``: Flax's ``Dense`` kernels are ``(in, out)`` and its
``Conv`` kernels ``(..., in, out)``, so a group is ``m`` consecutive input features of one
output, as the tensor cores need.

Within a group the ``n`` alive entries of largest score are kept (magnitude for
:func:`nm_unstructured`, random bits for :func:`random_nm`); among equal scores the lower
position is pruned first, as everywhere in this library (so the higher one is kept).
Entries the prior mask pruned are never kept again: a group with fewer than ``n`` alive
entries keeps those, and one with more keeps ``n`` of them.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _checks, _keys, _order, _registry, _select
from ._typing import Array, ArrayLike, PRNGKey

#: Groups up to this size rank their entries by pairwise comparison (``m * m`` per group,
#: no sort); larger ones sort each group.
PAIRWISE_LIMIT = 16


def check_nm(n: Any, m: Any) -> tuple[int, int]:
    """Validate ``n`` and ``m``: ints with ``m >= 1`` and ``0 <= n <= m``.

    Raises:
        TypeError: ``n`` or ``m`` is not an int (a bool is refused).
        ValueError: ``m < 1``, or ``n`` outside ``[0, m]``.
    """
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int; got {v!r}.")
    n, m = int(n), int(m)
    if m < 1:
        raise ValueError(f"m={m} must be at least 1 (the size of a group).")
    if not 0 <= n <= m:
        raise ValueError(f"n={n} must be between 0 and m={m} (the entries kept per group).")
    return n, m


def _check_axis(shape: tuple[int, ...], dim: Any, m: int) -> int:
    if not shape:
        raise ValueError("N:M sparsity needs a tensor of at least one dimension; got a scalar.")
    d = _checks.check_dim(shape, dim)
    if shape[d] % m:
        raise ValueError(
            f"the length along dim={dim} is {shape[d]}, not a multiple of m={m}: N:M groups "
            f"of a tensor of shape {shape} must tile that axis."
        )
    return d


def _groups(a: Array, d: int, m: int) -> Array:
    """``a`` with axis ``d`` split in place into ``(length // m, m)``: the group's positions
    run along axis ``d + 1``, and nothing is transposed."""
    return a.reshape(a.shape[:d] + (a.shape[d] // m, m) + a.shape[d + 1 :])


def keep_top_n(keys: Array, alive: Array, n: int | Array, axis: int = -1) -> Array:
    """Per group (along ``axis``), the ``n`` alive entries of highest key; ties keep the
    higher position (the lower one is pruned first)."""
    axis = axis % keys.ndim
    m = keys.shape[axis]
    if m <= PAIRWISE_LIMIT:
        # Each entry's rank is the number of alive entries of its group that outrank it: all
        # m * m comparisons at once, summed over the other entry: one reduction that XLA
        # fuses with the comparisons, where unrolled slices stacked back cost a pass more.
        ki = jnp.expand_dims(keys, axis + 1)  # entry i along axis, j along axis + 1
        kj = jnp.expand_dims(keys, axis)
        aj = jnp.expand_dims(alive, axis)
        shape = [1] * (keys.ndim + 1)
        shape[axis], shape[axis + 1] = m, m
        pos_i = lax.broadcasted_iota(jnp.int32, shape, axis)
        pos_j = lax.broadcasted_iota(jnp.int32, shape, axis + 1)
        beats = (kj > ki) | ((kj == ki) & (pos_j > pos_i))
        rank = jnp.sum(aj & beats, axis=axis + 1, dtype=jnp.int32)
        return alive & (rank < n)
    # Larger groups: sort by (dead, key, position), highest first, and keep the first n.
    pos = lax.broadcasted_iota(jnp.int32, keys.shape, axis)
    order = -lax.sort((~alive, ~keys, -pos), dimension=axis, num_keys=3)[2]
    rank = jnp.argsort(order, axis=axis)  # each entry's place in that order
    return alive & (rank < n)


def _nm_mask(keys: Array, prior: Array | None, n: int | Array, m: int, d: int) -> Array:
    """The N:M mask of ``keys`` (highest kept) over ``prior``, inside a traced program."""
    alive = jnp.ones(keys.shape, bool) if prior is None else jnp.broadcast_to(prior, keys.shape)
    kept = keep_top_n(_groups(keys, d, m), _groups(alive, d, m), n, axis=d + 1)
    return kept.reshape(keys.shape)


# One program per call, from the values or the key to the mask (the keys are never stored);
# n is traced, so one program serves every n of a shape.
@functools.partial(jax.jit, static_argnums=(3, 4))
def _by_magnitude(scores: Array, prior: Array | None, n: Any, m: int, d: int) -> Array:
    return _nm_mask(_order.order_key(scores), prior, n, m, d)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _at_random(key: Array, prior: Array | None, n: Any, m: int, d: int, shape) -> Array:
    return _nm_mask(_select.random_keys(key, shape), prior, n, m, d)


def nm_unstructured(
    x: ArrayLike,
    n: int,
    m: int,
    dim: int = -2,
    *,
    default_mask: ArrayLike | None = None,
    importance_scores: ArrayLike | None = None,
) -> Array:
    """Mask that keeps, in every group of ``m`` consecutive entries along ``dim``, the ``n``
    of largest magnitude (2:4 keeps 2 of every 4).

    Args:
        x: the tensor (float or integer), at least 1-D.
        n: entries kept per group (``0 <= n <= m``).
        m: the group size; ``x.shape[dim]`` must be a multiple of it.
        dim: the axis the groups run along; by default the input axis of a Flax kernel
            (``Dense`` ``(in, out)``, ``Conv`` ``(..., in, out)``).
        default_mask: the mask already in force; its pruned entries stay pruned and a group
            keeps at most ``n`` of its alive entries.
        importance_scores: scores of ``x``'s shape used in place of ``x``.

    Returns:
        A boolean mask of ``x``'s shape, ``True`` where kept. NaN counts as larger than any
        number (kept first); among equal magnitudes the lower position is pruned first.

    Raises:
        TypeError: ``n`` or ``m`` not an int; bad ``x`` dtype.
        ValueError: ``n`` or ``m`` out of range, or ``x.shape[dim]`` not a multiple of ``m``.
        IndexError: ``dim`` out of range.
        ShapeMismatchError: ``importance_scores`` or ``default_mask`` of the wrong shape.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> w = jnp.array([[1.0, -4.0], [3.0, 0.5], [-2.0, 2.0], [0.1, 1.0]])  # (in, out)
        >>> jp.nm_unstructured(w, 2, 4).T.astype(int).tolist()  # 2 of the 4 inputs per output
        [[0, 1, 1, 0], [1, 0, 1, 0]]
    """
    n, m = check_nm(n, m)
    x = _checks.as_tensor(x)
    d = _check_axis(x.shape, dim, m)
    scores = _checks.check_scores(importance_scores, x.shape, "importance_scores")
    scores = x if scores is None else scores
    prior = _checks.as_mask(default_mask, x.shape, "default_mask")
    return _by_magnitude(scores, prior, n, m, d)


def random_nm(
    key: PRNGKey,
    x: ArrayLike,
    n: int,
    m: int,
    dim: int = -2,
    *,
    default_mask: ArrayLike | None = None,
) -> Array:
    """Mask that keeps ``n`` random entries in every group of ``m`` consecutive entries
    along ``dim`` (see :func:`nm_unstructured`; only ``x``'s shape is used).

    Each entry draws 32 random bits from ``key``; a group keeps its ``n`` alive entries of
    highest draws, so every group keeps exactly ``min(n, alive)``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> mask = jp.random_nm(jax.random.key(0), jnp.ones((8, 3)), 2, 4)
        >>> mask.reshape(2, 4, 3).sum(axis=1).tolist()  # every group keeps 2
        [[2, 2, 2], [2, 2, 2]]
    """
    n, m = check_nm(n, m)
    x = _checks.as_tensor(x)
    d = _check_axis(x.shape, dim, m)
    key = _keys.as_key(key)
    prior = _checks.as_mask(default_mask, x.shape, "default_mask")
    return _at_random(key, prior, n, m, d, tuple(x.shape))


def kept_per_group(n: int, m: int, sparsity: ArrayLike) -> Array:
    """Entries each group keeps at ``sparsity`` under a gradual schedule (traced): ``m -
    round(sparsity * m)``, never fewer than ``n``, so that a schedule ending at ``1 - n/m``
    (0.5 for 2:4) ends at exactly ``n:m``.

    Example:
        >>> import jaxprune._nm as nm
        >>> [int(nm.kept_per_group(2, 4, s)) for s in (0.0, 0.25, 0.5, 0.9)]
        [4, 3, 2, 2]
    """
    pruned = jnp.round(jnp.asarray(sparsity, jnp.float32) * m).astype(jnp.int32)
    return jnp.clip(m - pruned, n, m)


def scheduled_nm(
    key: PRNGKey | None,
    x: Array,
    prior: Array | None,
    sparsity: Array,
    *,
    n: int,
    m: int,
    dim: int = -2,
) -> Array:
    """One step of a gradual N:M schedule (:attr:`jaxprune._registry.Method.scheduled`): a
    ramp of ``n``. Every group keeps its :func:`kept_per_group` alive entries of largest
    magnitude (random draws when ``key`` is given); entries pruned before stay pruned, so
    a group never holds more than that many survivors."""
    n, m = check_nm(n, m)
    d = _check_axis(tuple(x.shape), dim, m)
    keys = _order.order_key(x) if key is None else _select.random_keys(key, x.shape)
    return _nm_mask(keys, prior, kept_per_group(n, m, sparsity), m, d)


def is_nm(x_or_params: Any, n: int, m: int, dim: int = -2) -> Any:
    """Whether a tensor has N:M structure: at most ``n`` nonzero entries in every group of
    ``m`` consecutive entries along ``dim``.

    Given a params pytree, answers per leaf (a pytree of Python bools of the same
    structure); a leaf that is not an array of at least one dimension, or whose length
    along ``dim`` is not a multiple of ``m``, is ``False``.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> w = jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
        >>> jp.is_nm(w, 2, 4), jp.is_nm(w, 1, 4)
        (True, False)
        >>> jp.is_nm({"a": w, "b": jnp.ones(3)}, 2, 4)
        {'a': True, 'b': False}
    """
    n, m = check_nm(n, m)
    if _is_array(x_or_params):
        return _is_nm_leaf(x_or_params, n, m, dim, strict=True)
    return jax.tree.map(lambda leaf: _is_nm_leaf(leaf, n, m, dim, strict=False), x_or_params)


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _is_nm_leaf(x: Any, n: int, m: int, dim: Any, *, strict: bool) -> bool:
    if not _is_array(x) or np.ndim(x) == 0:
        if strict:
            raise ValueError("is_nm needs a tensor of at least one dimension; got a scalar.")
        return False
    shape = tuple(np.shape(x))
    try:
        d = _check_axis(shape, dim, m)
    except (ValueError, IndexError):
        if strict:
            raise
        return False
    counts = jnp.sum(_groups(jnp.asarray(x) != 0, d, m), axis=d + 1)
    return bool(jnp.all(counts <= n))


NM_UNSTRUCTURED = _registry.register(
    _registry.Method(
        "nm_unstructured",
        None,
        options=("n", "m"),
        defaults=(("dim", -2),),
        grouped=True,
        scheduled=scheduled_nm,
        function=nm_unstructured,
    )
)
RANDOM_NM = _registry.register(
    _registry.Method(
        "random_nm",
        None,
        random=True,
        options=("n", "m"),
        defaults=(("dim", -2),),
        importance=False,
        reads_values=False,
        grouped=True,
        scheduled=scheduled_nm,
        function=random_nm,
    )
)
