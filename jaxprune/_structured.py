"""Structured methods: prune whole channels along one axis, at random or by norm.

Masks have the keepdims shape (size 1 on every axis but ``dim``) unless a full-shape prior
mask forces the full shape: a structured mask costs one byte per channel.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from . import _methods, _registry, _select
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
    return _methods.call(RANDOM_STRUCTURED, key, x, amount, dim=dim, default_mask=default_mask)


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
    return _methods.call(
        LN_STRUCTURED,
        None,
        x,
        amount,
        dim=dim,
        default_mask=default_mask,
        importance_scores=importance_scores,
        n=n,
    )


def check_norm(n: object, name: str = "n") -> float | str:
    """A norm order: any int or float (inf and -inf included) or ``'fro'``."""
    if isinstance(n, str):
        if n != "fro":
            raise ValueError(f"{name}={n!r} is not a supported norm: use a number or 'fro'.")
        return n
    if isinstance(n, bool) or not isinstance(n, (int, float)) and not hasattr(n, "__float__"):
        raise TypeError(f"{name} must be a number or 'fro'; got {n!r}.")
    value = float(n)
    if math.isnan(value):
        raise ValueError(f"{name}=nan is not a norm order.")
    return value


def norms_dtype(dtype: Any) -> Any:
    """The dtype channel norms are computed in: the scores' own float of 32 bits or more,
    else float32."""
    dtype = jnp.dtype(dtype)
    return dtype if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize >= 4 else jnp.float32


def channel_norms(scores: Array, norm: float | str, dim: int) -> Array:
    """The L``norm`` norm of each channel along ``dim`` (over all other axes)."""
    scores = scores.astype(norms_dtype(scores.dtype))
    axes = tuple(i for i in range(scores.ndim) if i != dim)
    a = jnp.abs(scores)
    if norm == "fro" or norm == 2.0:
        return jnp.sqrt(jnp.sum(a * a, axis=axes))
    if norm == math.inf:
        return jnp.max(a, axis=axes, initial=0.0)
    if norm == -math.inf:
        return jnp.min(a, axis=axes, initial=math.inf)
    if norm == 0.0:
        return jnp.sum(a != 0, axis=axes).astype(a.dtype)
    if norm == 1.0:
        return jnp.sum(a, axis=axes)
    return jnp.sum(a**norm, axis=axes) ** (1.0 / norm)


RANDOM_STRUCTURED = _registry.register(
    _registry.Method(
        "random_structured",
        lambda key, x, dim: _select.random_keys(key, (x.shape[dim],)),
        structured=True,
        random=True,
        order="draws",
        importance=False,
        reads_values=False,
        builtin=True,
        function=random_structured,
    )
)
LN_STRUCTURED = _registry.register(
    _registry.Method(
        "ln_structured",
        lambda x, dim, n: channel_norms(x, n, dim),
        structured=True,
        order="magnitude",  # norms are never negative; NaN last
        options=("n",),
        check=lambda options: {"n": check_norm(options["n"])},
        builtin=True,
        function=ln_structured,
    )
)
