"""The channel norms of LnStructured (what torch computes with its norm function), in JAX.

Vector norms for any number ``n`` (0, inf and -inf included) and ``'fro'``; ``'fro'`` over
more than two axes and ``'nuc'`` over anything but two axes raise the ``RuntimeError`` torch
raises. Norms of float16/bfloat16 tensors are accumulated in float32 and rounded back to the
tensor's dtype, as torch returns them.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxprune._typing import Array


def _matrix_dims_error(dims: list[int]) -> RuntimeError:
    return RuntimeError(
        "linalg.matrix_norm: dim must be a 2-tuple. Got " + " ".join(str(d) for d in dims)
    )


def channel_norms(t: Array, n: object, dim: int) -> Array:
    """The norm of each channel along ``dim``, as torch's ``_compute_norm`` computes it."""
    if not jnp.issubdtype(t.dtype, jnp.floating):
        raise RuntimeError(
            f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
            f"Got {t.dtype}"
        )
    dims = list(range(t.ndim))
    d = dims[dim]
    dims.remove(d)
    wide = t.astype(jnp.float32) if t.dtype.itemsize < 4 else t
    a = jnp.abs(wide)
    axes = tuple(dims)
    if n == "nuc":
        if len(dims) != 2:
            raise _matrix_dims_error(dims)
        mats = jnp.moveaxis(wide, (dims[0], dims[1]), (-2, -1))
        out = jnp.linalg.svd(mats, compute_uv=False).sum(axis=-1)
    elif n == "fro":
        if len(dims) > 2:
            raise _matrix_dims_error(dims)
        out = jnp.sqrt(jnp.sum(a * a, axis=axes))
    elif isinstance(n, str):
        raise RuntimeError(f"linalg.vector_norm: unsupported norm {n!r}")
    else:
        p = float(n)
        if p == math.inf:
            out = jnp.max(a, axis=axes, initial=0.0)
        elif p == -math.inf:
            out = jnp.min(a, axis=axes, initial=math.inf)
        elif p == 0.0:
            out = jnp.sum(a != 0, axis=axes).astype(a.dtype)
        elif p == 1.0:
            out = jnp.sum(a, axis=axes)
        elif p == 2.0:
            out = jnp.sqrt(jnp.sum(a * a, axis=axes))
        else:
            out = jnp.sum(a**p, axis=axes) ** (1.0 / p)
    return out.astype(t.dtype)
