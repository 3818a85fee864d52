"""Structured methods: prune whole channels along one axis, at random or by norm.

Masks have the keepdims shape (size 1 on every axis but ``dim``) unless a full-shape prior
mask forces the full shape: a structured mask costs one byte per channel.
"""

from __future__ import annotations

from . import _amount, _checks, _keys, _methods
from ._typing import Amount, Array, ArrayLike, NormOrder, PRNGKey


def random_structured(
    key: PRNGKey,
    x: ArrayLike,
    amount: Amount,
    dim: int = -1,
    *,
    default_mask: ArrayLike | None = None,
) -> Array:
    """Mask that prunes ``amount`` of the currently unpruned channels along ``dim`` at random.

    The mask depends only on ``key``, the number of channels along ``dim``, the prior and the
    amount: a Flax ``(in, out)`` kernel with ``dim=-1`` and the torch ``(out, in)`` weight with
    ``dim=0`` lose the same channels under the same key. Each channel draws 32 random bits;
    the lowest draws among unpruned channels are pruned (ties by position), so exactly the
    requested count goes.

    Args:
        key: a ``jax.random.key`` or legacy ``PRNGKey``.
        x: the tensor, at least 2-D; only its shape is used.
        amount: an int count, or a float fraction in [0, 1] of the unpruned channels (Python's
            ``round``, half to even); a ``jax.Array`` amount may be traced.
        dim: the channel axis (negative counts from the end).
        default_mask: the mask already in force. A channel is unpruned while any of its
            entries is kept; pruned channels are neither counted nor chosen again.

    Returns:
        A boolean mask, keepdims-shaped (``n`` along ``dim``, 1 elsewhere) unless the prior is
        full-shaped, in which case it is the prior combined with the channel mask.

    Raises:
        ValueError: ``x`` has fewer than 2 dims; ``amount`` out of range or too large.
        IndexError: ``dim`` out of range.
        TypeError: bad ``amount``, ``dim`` or ``key``.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> m = jp.random_structured(jax.random.key(0), jnp.ones((3, 8)), 0.25, dim=-1)
        >>> m.shape, int((~m).sum())
        ((1, 8), 2)
    """
    amount = _amount.check_amount(amount)
    x = _checks.as_tensor(x)
    spec = _methods.plan("random_structured", x.shape, dim=dim)
    prior = _checks.as_mask(default_mask, spec.shape, "default_mask")
    key = _keys.as_key(key)
    return _methods.run(spec, key, None, prior, amount)


def ln_structured(
    x: ArrayLike,
    amount: Amount,
    n: NormOrder,
    dim: int = -1,
    *,
    default_mask: ArrayLike | None = None,
    importance_scores: ArrayLike | None = None,
) -> Array:
    """Mask that prunes the ``amount`` unpruned channels along ``dim`` of smallest L``n`` norm.

    Norms are taken over every axis but ``dim``, of ``x`` (or ``importance_scores``) as
    given. torch scores a parameter that is already pruned by its current, masked value: to
    reproduce torch's later rounds, pass ``apply_mask(x, prior)``. ``n`` is any int or float,
    ``inf`` (max), ``-inf`` (min), ``0`` (count of nonzeros) or ``'fro'`` (L2 over all reduced
    axes).
    Float16 and bfloat16 norms are computed in float32. Ties are broken by channel index
    (lower pruned first); a NaN norm counts as the largest.

    Args:
        x: the tensor, at least 2-D.
        amount: an int count or float fraction of the unpruned channels.
        n: the norm order.
        dim: the channel axis.
        default_mask: the mask already in force.
        importance_scores: scores of ``x``'s shape used in place of ``x``.

    Returns:
        A boolean mask, keepdims-shaped unless the prior is full-shaped.

    Raises:
        ValueError: ``x`` has fewer than 2 dims, bad amount, unsupported ``n``.
        IndexError: ``dim`` out of range.
        TypeError: bad ``amount``, ``dim`` or ``n`` type.
        ShapeMismatchError: ``importance_scores`` or ``default_mask`` of the wrong shape.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> w = jnp.array([[1.0, 0.1, 3.0], [1.0, 0.2, -3.0]])
        >>> jp.ln_structured(w, 1, n=2, dim=1).tolist()
        [[True, False, True]]
    """
    amount = _amount.check_amount(amount)
    x = _checks.as_tensor(x)
    spec = _methods.plan("ln_structured", x.shape, dim=dim, n=n)
    scores = _checks.check_scores(importance_scores, spec.shape, "importance_scores")
    prior = _checks.as_mask(default_mask, spec.shape, "default_mask")
    return _methods.run(spec, None, x if scores is None else scores, prior, amount)
