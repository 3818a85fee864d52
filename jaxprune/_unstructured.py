"""Unstructured methods: prune individual entries, at random or by magnitude."""

from __future__ import annotations

from . import _methods, _registry, _select
from ._typing import Amount, Array, ArrayLike, PRNGKey


def random_unstructured(
    key: PRNGKey,
    x: ArrayLike,
    amount: Amount,
    *,
    default_mask: ArrayLike | None = None,
) -> Array:
    """Mask that prunes ``amount`` of the currently unpruned entries of ``x`` at random.

    Each entry draws 32 random bits from ``key``; the entries with the lowest draws are
    pruned (ties by position, lower first), so exactly the requested count goes.

    Args:
        key: a ``jax.random.key`` or legacy ``PRNGKey``.
        x: the tensor; only its shape is used.
        amount: an int count, or a float fraction in [0, 1] of the unpruned entries, rounded
            with Python's ``round`` (half to even). A ``jax.Array`` amount may be traced: it
            then rounds half to even in its own dtype and is clamped to the valid range.
        default_mask: the mask already in force (broadcastable to ``x``); its pruned entries
            are neither counted nor chosen again, and stay pruned.

    Returns:
        A boolean mask of ``x``'s shape, ``True`` where kept.

    Raises:
        TypeError: bad ``amount`` type, bad ``key`` or ``x`` dtype.
        ValueError: ``amount`` out of range or larger than the number of unpruned entries.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> mask = jp.random_unstructured(jax.random.key(0), jnp.ones((4, 5)), 0.5)
        >>> int((~mask).sum())
        10
    """
    return _methods.call(RANDOM_UNSTRUCTURED, key, x, amount, default_mask=default_mask)


def l1_unstructured(
    x: ArrayLike,
    amount: Amount,
    *,
    default_mask: ArrayLike | None = None,
    importance_scores: ArrayLike | None = None,
) -> Array:
    """Mask that prunes the ``amount`` currently unpruned entries of smallest magnitude.

    The selection is exact (no sort of the whole tensor: counting passes over the integer
    image of ``|x|``). Ties are broken by position: among equal magnitudes the entry with the lower
    row-major index is pruned first. NaN counts as larger than any number, so it is pruned
    last. Whenever no two entries tie at the boundary, the pruned set equals torch's.

    Args:
        x: the tensor (float or integer).
        amount: an int count or a float fraction of the unpruned entries (see
            :func:`random_unstructured`).
        default_mask: the mask already in force; pruned entries are neither counted nor
            chosen again.
        importance_scores: scores of ``x``'s shape used in place of ``x``.

    Returns:
        A boolean mask of ``x``'s shape, ``True`` where kept.

    Raises:
        TypeError: bad ``amount`` type or ``x`` dtype.
        ValueError: ``amount`` out of range or too large.
        ShapeMismatchError: ``importance_scores`` or ``default_mask`` of the wrong shape
            (an ``AssertionError``, as in torch, and a ``ValueError``).

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> jp.l1_unstructured(jnp.array([3.0, -1.0, 0.5, 2.0]), 2).tolist()
        [True, False, False, True]
    """
    return _methods.call(
        L1_UNSTRUCTURED,
        None,
        x,
        amount,
        default_mask=default_mask,
        importance_scores=importance_scores,
    )


RANDOM_UNSTRUCTURED = _registry.register(
    _registry.Method(
        "random_unstructured",
        lambda key, x: _select.random_keys(key, x.shape),
        random=True,
        order="draws",
        importance=False,
        reads_values=False,
        alias="random",
        builtin=True,
        function=random_unstructured,
    )
)
L1_UNSTRUCTURED = _registry.register(
    _registry.Method(
        "l1_unstructured",
        lambda x: x,  # ordered by magnitude
        order="magnitude",
        alias="l1",
        builtin=True,
        function=l1_unstructured,
    )
)
