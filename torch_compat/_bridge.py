"""Moving tensors between torch and JAX through DLPack, without copies where possible."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch


def to_jax(t: torch.Tensor) -> jax.Array:
    """A JAX view of a torch tensor (zero-copy for contiguous CPU tensors JAX can alias)."""
    t = t.detach()
    if t.device.type != "cpu" and jax.default_backend() == "cpu":
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    try:
        return jax.dlpack.from_dlpack(t)
    except (TypeError, RuntimeError, BufferError, ValueError):
        return jnp.asarray(t.cpu().numpy())


def to_torch(a: jax.Array, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A JAX array as a torch tensor of ``dtype`` on ``like``'s device."""
    try:
        out = torch.from_dlpack(a)
    except (TypeError, RuntimeError, BufferError, ValueError):
        out = torch.from_numpy(np.asarray(a))
    return out.to(device=like.device, dtype=dtype)
