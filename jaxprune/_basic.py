"""The methods that select nothing themselves: identity, a given mask, and applying a mask."""

from __future__ import annotations

import jax.numpy as jnp

from . import _checks
from ._typing import Array, ArrayLike


def identity(x: ArrayLike) -> Array:
    """A mask that keeps everything: ``True`` of shape ``(1,) * x.ndim``.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> jp.identity(jnp.zeros((2, 3))).shape
        (1, 1)
    """
    x = _checks.as_tensor(x)
    return jnp.ones((1,) * x.ndim, bool)


def custom_from_mask(
    x: ArrayLike, mask: ArrayLike, *, default_mask: ArrayLike | None = None
) -> Array:
    """A given mask, combined with the mask already in force.

    Args:
        x: the tensor the mask belongs to.
        mask: boolean (or numeric: nonzero is kept) and broadcastable to ``x``; a keepdims
            mask stays keepdims.
        default_mask: the mask already in force.

    Returns:
        ``mask & default_mask`` as a boolean array of ``x``'s rank.

    Raises:
        ShapeMismatchError: a mask does not broadcast to ``x``.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> jp.custom_from_mask(jnp.ones(3), jnp.array([0, 1, 1])).tolist()
        [False, True, True]
    """
    x = _checks.as_tensor(x)
    new = _checks.as_mask(mask, x.shape, "mask")
    prior = _checks.as_mask(default_mask, x.shape, "default_mask")
    return new if prior is None else new & prior


def apply_mask(x: ArrayLike, mask: ArrayLike) -> Array:
    """``x`` with pruned entries set to exactly zero, in ``x``'s dtype.

    This is ``jnp.where(mask, x, 0)``: a pruned NaN or -0.0 becomes +0.0 (a multiply would
    keep NaN). Under ``jit`` it fuses into the consumer of the weight.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> jp.apply_mask(jnp.array([1.0, -2.0]), jnp.array([False, True])).tolist()
        [0.0, -2.0]
    """
    x = _checks.as_tensor(x)
    m = _checks.as_mask(mask, x.shape, "mask")
    return jnp.where(m, x, jnp.zeros((), x.dtype))
