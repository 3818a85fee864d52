"""Exception types beyond the built-in ones."""

from __future__ import annotations


class ShapeMismatchError(ValueError, AssertionError):
    """An array's shape does not fit the tensor it belongs to.

    torch raises ``AssertionError`` for a wrong ``importance_scores`` or custom mask shape;
    this error is both that and a ``ValueError``, so either ``except`` clause catches it.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> try:
        ...     jp.l1_unstructured(jnp.ones((2, 3)), 1, importance_scores=jnp.ones(3))
        ... except AssertionError as e:
        ...     print(type(e).__name__, isinstance(e, ValueError))
        ShapeMismatchError True
    """
