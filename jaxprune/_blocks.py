"""Block sparsity: prune whole blocks of the last two axes, by their norm or at random.

A block is ``block_shape = (rows, cols)`` consecutive entries of the last two axes; a tensor
of more than two dimensions is tiled per leading index (a conv kernel ``(kh, kw, in, out)``
is pruned in ``(in, out)`` blocks, separately for each ``(kh, kw)``). Where the block shape
does not divide the axes, the last blocks are partial: they are scored by their real entries
only, and count as one block each.

The amount counts blocks, as torch's amounts count units: an int is a number of blocks, a
float a fraction of the unpruned blocks. A block is unpruned while any of its entries is
(as torch counts a channel); pruned blocks are never chosen again, and a block chosen now
loses all of its entries. The selection is :func:`jaxprune.l1_unstructured`'s over one score
per block (ties: the lower block index, row-major over the leading indices and the block
grid, is pruned first), so the counts, the rounding and the errors are the library's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from . import _amount, _checks, _methods, _registry, _unstructured
from ._typing import Amount, Array, ArrayLike, PRNGKey


def check_block_shape(block_shape: Any, shape: tuple[int, ...]) -> tuple[int, int]:
    """Validate ``block_shape`` against a tensor's shape (:func:`block_shape_pair`).

    Raises:
        ValueError: a tensor of fewer than two dimensions.
    """
    if len(shape) < 2:
        raise ValueError(
            f"block pruning needs a tensor of at least two dimensions; got shape {shape}."
        )
    return block_shape_pair(block_shape)


def block_shape_pair(block_shape: Any) -> tuple[int, int]:
    """Validate ``block_shape`` on its own: a pair of ints, each at least 1.

    Raises:
        TypeError: not a pair of ints.
        ValueError: a block size below 1.
    """
    if (
        not isinstance(block_shape, (tuple, list))
        or len(block_shape) != 2
        or any(isinstance(b, bool) or not isinstance(b, numbers.Integral) for b in block_shape)
    ):
        raise TypeError(f"block_shape must be a pair of ints (rows, cols); got {block_shape!r}.")
    rows, cols = int(block_shape[0]), int(block_shape[1])
    if rows < 1 or cols < 1:
        raise ValueError(f"block_shape={block_shape!r}: each size must be at least 1.")
    return rows, cols


def _check_norm(n: Any) -> float:
    if isinstance(n, bool) or not isinstance(n, numbers.Real) or not (n > 0):
        raise ValueError(
            f"n={n!r}: a block's norm takes a positive number or inf (a partial block is "
            "scored by its real entries, which needs a norm that zeros do not change)."
        )
    return float(n)


def _padded_blocks(x: Array, rows: int, cols: int) -> Array:
    """``x`` padded with zeros to whole blocks, as ``(..., R, rows, C, cols)``."""
    r, c = x.shape[-2], x.shape[-1]
    pr, pc = -r % rows, -c % cols
    if pr or pc:
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, pr), (0, pc)])
    lead = x.shape[:-2]
    return x.reshape(lead + ((r + pr) // rows, rows, (c + pc) // cols, cols))


@functools.partial(jax.jit, static_argnums=(1, 2))
def block_norms(x: Array, block_shape: tuple[int, int], n: float) -> Array:
    """The L``n`` norm of each block's real entries: ``(..., R, C)``, float32 at least."""
    dtype = (
        jnp.promote_types(x.dtype, jnp.float32)
        if jnp.issubdtype(x.dtype, jnp.floating)
        else jnp.float32
    )
    rows, cols = block_shape
    a = jnp.abs(x.astype(dtype))
    if not math.isinf(n):
        a = a**n
    r, c = a.shape[-2], a.shape[-1]
    pr, pc = -r % rows, -c % cols
    if pr or pc:  # zeros change neither a sum of powers nor a max of magnitudes
        a = jnp.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, pr), (0, pc)])
    lead, big_r, big_c = a.shape[:-2], (r + pr) // rows, (c + pc) // cols
    reduce = jnp.max if math.isinf(n) else jnp.sum
    # Rows first, over whole rows of the matrix (contiguous, vectorised), then each row's
    # column groups: XLA:CPU reduces contiguous rows faster than both block axes at once.
    a = reduce(a.reshape(lead + (big_r, rows, a.shape[-1])), axis=-2)
    a = reduce(a.reshape(lead + (big_r, big_c, cols)), axis=-1)
    return a if math.isinf(n) else a ** (1.0 / n)


def alive_blocks(prior: Array | None, shape: tuple[int, ...], block_shape) -> Array | None:
    """Blocks with an unpruned entry, ``(..., R, C)``; None without a prior."""
    if prior is None:
        return None
    return _alive_blocks(prior, shape, block_shape)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _alive_blocks(prior: Array, shape: tuple[int, ...], block_shape) -> Array:
    full = jnp.broadcast_to(prior, shape)
    return jnp.any(_padded_blocks(full, *block_shape), axis=(-3, -1))


def expand(kept: Array, shape: tuple[int, ...], block_shape: tuple[int, int]) -> Array:
    """A block mask ``(..., R, C)`` as an entry mask of ``shape``."""
    rows, cols = block_shape
    full = jnp.repeat(jnp.repeat(kept, rows, axis=-2), cols, axis=-1)
    return full[..., : shape[-2], : shape[-1]]


#: The selections over one score per block: the library's L1 and random selections, whose
#: messages count blocks (not registered: they are not methods of their own).
_BY_NORM = dataclasses.replace(_unstructured.L1_UNSTRUCTURED, units="blocks")
_AT_RANDOM = dataclasses.replace(_unstructured.RANDOM_UNSTRUCTURED, units="blocks")


@functools.partial(jax.jit, static_argnums=(2, 3))
def _finish(kept_b, prior, shape, block_shape) -> Array:
    mask = expand(kept_b, shape, block_shape)
    return mask if prior is None else mask & jnp.broadcast_to(prior, shape)


def block_structured(
    x: ArrayLike,
    amount: Amount,
    block_shape: tuple[int, int],
    n: float = 1,
    *,
    default_mask: ArrayLike | None = None,
    importance_scores: ArrayLike | None = None,
) -> Array:
    """Mask that prunes the ``amount`` unpruned blocks of the last two axes of smallest
    L``n`` norm (see the module: partial edge blocks, tensors above 2-D, counting).

    Args:
        x: the tensor, at least 2-D.
        amount: an int number of blocks, or a float fraction of the unpruned blocks.
        block_shape: ``(rows, cols)`` of a block.
        n: the norm, a positive number or ``inf`` (default L1).
        default_mask: the mask already in force (broadcastable to ``x``).
        importance_scores: scores of ``x``'s shape used in place of ``x``.

    Returns:
        A boolean mask of ``x``'s shape, ``True`` where kept.

    Raises:
        TypeError: bad ``amount`` or ``block_shape`` type.
        ValueError: ``amount`` out of range or above the unpruned blocks, a bad ``n``, a
            tensor below 2-D, a block size below 1.
        ShapeMismatchError: ``importance_scores`` or ``default_mask`` of the wrong shape.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> w = jnp.array([[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 5.0]])
        >>> jp.block_structured(w, 1, (2, 2)).astype(int).tolist()
        [[0, 0, 1, 1], [0, 0, 1, 1]]
    """
    x = _checks.as_tensor(x)
    block_shape = check_block_shape(block_shape, x.shape)
    n = _check_norm(n)
    scores = _checks.check_scores(importance_scores, x.shape, "importance_scores")
    prior = _checks.as_mask(default_mask, x.shape, "default_mask")
    norms = block_norms(x if scores is None else scores, block_shape, n)
    alive = alive_blocks(prior, x.shape, block_shape)
    kept = _methods.call(_BY_NORM, None, norms, amount, default_mask=alive)
    return _finish(kept, prior, x.shape, block_shape)


def random_block_structured(
    key: PRNGKey,
    x: ArrayLike,
    amount: Amount,
    block_shape: tuple[int, int],
    *,
    default_mask: ArrayLike | None = None,
) -> Array:
    """Mask that prunes ``amount`` random unpruned blocks of the last two axes (see
    :func:`block_structured`; only ``x``'s shape is used). Each block draws 32 random bits
    from ``key``, as :func:`jaxprune.random_unstructured` draws them for an array of one
    entry per block.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> mask = jp.random_block_structured(jax.random.key(0), jnp.ones((4, 6)), 0.5, (2, 3))
        >>> int(mask.sum())  # 2 of the 4 blocks of 6 entries kept
        12
    """
    x = _checks.as_tensor(x)
    block_shape = check_block_shape(block_shape, x.shape)
    prior = _checks.as_mask(default_mask, x.shape, "default_mask")
    rows, cols = block_shape
    grid = x.shape[:-2] + (-(-x.shape[-2] // rows), -(-x.shape[-1] // cols))
    alive = alive_blocks(prior, x.shape, block_shape)
    kept = _methods.call(_AT_RANDOM, key, jnp.zeros(grid, jnp.float32), amount, default_mask=alive)
    return _finish(kept, prior, x.shape, block_shape)


def scheduled_blocks(
    key: PRNGKey | None,
    x: Array,
    prior: Array | None,
    sparsity: Array,
    *,
    block_shape: tuple[int, int],
    n: float = 1,
) -> Array:
    """One step of a gradual block schedule (:attr:`jaxprune._registry.Method.scheduled`):
    prune, among the unpruned blocks, just enough for ``round(sparsity * blocks)`` of the
    leaf's blocks to be pruned in all; smallest L``n`` norm first, or at random when ``key``
    is given (the selection of :func:`block_structured` with a traced count)."""
    block_shape = check_block_shape(block_shape, tuple(x.shape))
    rows, cols = block_shape
    grid = tuple(x.shape[:-2]) + (-(-x.shape[-2] // rows), -(-x.shape[-1] // cols))
    if key is None:
        method, scores = _BY_NORM, block_norms(x, block_shape, _check_norm(n))
    else:
        method, scores = _AT_RANDOM, None
    spec = _methods.plan(method, grid)
    alive = alive_blocks(prior, tuple(x.shape), block_shape)
    k = _amount.count_to_reach(sparsity, spec.units, _methods.n_alive(spec, alive))
    kept = _methods.compute(spec, _amount.EXACT, key, scores, alive, k)
    return _finish(kept, prior, tuple(x.shape), block_shape)


BLOCK_STRUCTURED = _registry.register(
    _registry.Method(
        "block_structured",
        None,
        options=("amount", "block_shape"),
        defaults=(("n", 1),),
        grouped=True,
        scheduled=scheduled_blocks,
        function=block_structured,
    )
)
RANDOM_BLOCK_STRUCTURED = _registry.register(
    _registry.Method(
        "random_block_structured",
        None,
        random=True,
        options=("amount", "block_shape"),
        importance=False,
        reads_values=False,
        grouped=True,
        scheduled=scheduled_blocks,
        function=random_block_structured,
    )
)
