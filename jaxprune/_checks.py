"""Input checks shared by every method: done in Python, before any work."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ShapeMismatchError
from ._typing import Array, ArrayLike


@functools.cache
def kind(dtype: np.dtype) -> str:
    """``"float"``, ``"int"`` (signed or not), ``"bool"``, ``"complex"`` or ``"other"``
    (cached: ``jnp.issubdtype`` costs microseconds, and a model has hundreds of leaves)."""
    if dtype == jnp.bool_:
        return "bool"
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "complex"
    if jnp.issubdtype(dtype, jnp.floating):
        return "float"
    return "int" if jnp.issubdtype(dtype, jnp.integer) else "other"


def as_tensor(x: ArrayLike, name: str = "x") -> Array:
    """``x`` as a jax array of a dtype that can be pruned (real numbers)."""
    if not isinstance(x, jax.Array):
        if not hasattr(x, "shape") and not isinstance(x, (list, tuple, int, float)):
            raise TypeError(f"{name} must be an array; got {type(x).__name__}.")
        x = jnp.asarray(x)
    k = kind(x.dtype)
    if k in ("bool", "complex"):
        raise TypeError(
            f"{name} has dtype {x.dtype}; pruning needs real numbers (float or integer)."
        )
    if k == "other":
        raise TypeError(f"{name} has dtype {x.dtype}; pruning needs real numbers.")
    return x


def check_dim(shape: tuple[int, ...], dim: object, name: str = "dim") -> int:
    """``dim`` normalized to ``[0, len(shape))`` (torch's ``_validate_pruning_dim``).

    Raises:
        TypeError: ``dim`` is not an int.
        IndexError: ``dim`` is out of range for ``shape``.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {dim!r}.")
    ndim = len(shape)
    if not -ndim <= dim < ndim:
        raise IndexError(f"Invalid index {name}={dim} for tensor of size {shape}")
    return int(dim) % ndim


def check_structured(shape: tuple[int, ...], name: str = "x") -> None:
    """Structured pruning needs channels: at least two dimensions."""
    if len(shape) <= 1:
        raise ValueError(
            "Structured pruning can only be applied to multidimensional tensors. "
            f"Found {name} of shape {shape} with {len(shape)} dims"
        )


def fits(small: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Whether an array of shape ``small`` broadcasts to ``shape`` without growing it."""
    if len(small) > len(shape):
        return False
    padded = (1,) * (len(shape) - len(small)) + tuple(small)
    return all(s in (1, n) for s, n in zip(padded, shape))


def as_mask(mask: ArrayLike | None, shape: tuple[int, ...], name: str) -> Array | None:
    """A mask as a boolean array of rank ``len(shape)`` that broadcasts to ``shape``.

    Non-boolean masks count nonzero entries as kept (torch multiplies by them).

    Raises:
        TypeError: not an array.
        ShapeMismatchError: does not broadcast to ``shape`` without growing it.
    """
    if mask is None:
        return None
    if not hasattr(mask, "shape"):
        if isinstance(mask, (bool, int, float)):
            mask = np.asarray(mask)
        else:
            raise TypeError(f"{name} must be an array; got {type(mask).__name__}.")
    mshape = tuple(mask.shape)
    if not fits(mshape, shape):
        raise ShapeMismatchError(
            f"{name} of shape {mshape} does not broadcast to the tensor's shape {shape}"
        )
    # A boolean jax.Array of the right rank (a mask this library made) is taken as it is:
    # asarray and a no-op reshape cost dispatch, per leaf and per call.
    m = mask if isinstance(mask, jax.Array) else jnp.asarray(mask)
    if m.dtype != jnp.bool_:
        if kind(m.dtype) == "complex":
            raise TypeError(f"{name} has dtype {m.dtype}; masks are boolean or real.")
        m = m != 0
    if m.ndim == len(shape):
        return m
    return m.reshape((1,) * (len(shape) - m.ndim) + m.shape)


def check_scores(scores: ArrayLike | None, shape: tuple[int, ...], name: str) -> Array | None:
    """Importance scores: same shape as the tensor (torch raises AssertionError otherwise)."""
    if scores is None:
        return None
    s = as_tensor(scores, name)
    if tuple(s.shape) != tuple(shape):
        raise ShapeMismatchError(
            f"{name} should have the same shape as the tensor, got {tuple(s.shape)} vs {shape}"
        )
    return s


def is_traced(a: object) -> bool:
    return isinstance(a, jax.core.Tracer)


try:  # JAX's own test of its trace state: a few hundred nanoseconds
    from jax._src.core import trace_state_clean as _trace_state_clean
except ImportError:  # pragma: no cover - a JAX without it
    _trace_state_clean = None


@functools.cache
def true_scalar() -> Array:
    """A scalar ``True`` on the device: the mask of a leaf that is not pruned (put once; an
    eager ``jnp.ones((), bool)`` would compile a program)."""
    return jax.device_put(np.True_)


def under_trace() -> bool:
    """Whether a JAX transformation (``jit``, ``vmap``, ``eval_shape``...) is tracing the
    caller, even when every array at hand is concrete (closed over by the traced function).

    Eager-only work (host counts, cached device constants, kernels called one by one) must
    not run then: its results would be tracers of the caller's trace, and a cached one would
    leak into later programs.
    """
    if _trace_state_clean is not None:
        return not _trace_state_clean()
    return isinstance(jnp.zeros((), jnp.bool_), jax.core.Tracer)
