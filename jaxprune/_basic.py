"""The methods that select nothing themselves: identity, a given mask, and applying a mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from . import _checks, _registry
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


_UNSIGNED = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}


def zero_pruned(x: Array, mask: Array) -> Array:
    """``jnp.where(mask, x, 0)`` for a mask that broadcasts to ``x``, as a bitwise AND of
    ``x``'s bits with all ones or all zeros: the same values (+0.0 where pruned, NaN and -0.0
    kept where kept), and on XLA:CPU as fast as a copy, where the select with a broadcast
    mask is slower (benchmarks/RESULTS.md, "Figures behind the code")."""
    size = jnp.dtype(x.dtype).itemsize
    plain = _checks.kind(jnp.dtype(x.dtype)) in ("float", "int")
    if not plain or size not in _UNSIGNED or (size == 8 and not jax.config.jax_enable_x64):
        return jnp.where(mask, x, jnp.zeros((), x.dtype))  # complex, bool, 64-bit without x64
    unsigned = _UNSIGNED[size]
    keep = jnp.zeros((), unsigned) - mask.astype(unsigned)  # all ones where kept
    return lax.bitcast_convert_type(lax.bitcast_convert_type(x, unsigned) & keep, x.dtype)


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
    return _zero_pruned(x, m)


# One program: called eagerly, each of zero_pruned's four ops would write a buffer of its own
# (benchmarks/RESULTS.md, "Figures behind the code").
_zero_pruned = jax.jit(zero_pruned)


IDENTITY = _registry.register(
    _registry.Method("identity", None, importance=False, builtin=True, function=identity)
)
CUSTOM_FROM_MASK = _registry.register(
    _registry.Method(
        "custom_from_mask",
        None,
        importance=False,
        inputs=("mask",),
        builtin=True,
        function=custom_from_mask,
    )
)
