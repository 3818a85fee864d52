"""What crosses between torch and JAX: tensors through DLPack (without copies where possible),
and what torch_compat takes from torch itself (its random draws, its norms)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.utils.prune as _torch_prune


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
        out = torch.from_numpy(np.array(a))
    return out.to(device=like.device, dtype=dtype)


class Torch(NamedTuple):
    """What comes from torch itself, as torch tensors. ``like(n)`` is ``rand_like`` of an
    n-vector of the tensor's dtype; ``default(n)`` is ``torch.rand(n)``; ``norms(n, dim,
    shape, alive)`` is torch's ``_compute_norm`` of the tensor (reshaped to ``shape``, and of
    its ``alive`` channels along ``dim`` only, as the container slices it when ``alive`` is
    given), one norm per channel it sees, in torch's dtype."""

    like: Callable[[int], torch.Tensor]
    default: Callable[[int], torch.Tensor]
    norms: Callable[[Any, int, tuple[int, ...], Any], torch.Tensor]


def torch_source(t: torch.Tensor) -> Torch:
    """What torch_compat takes from torch for ``t``: its generator's draws and its norms."""

    def norms(n: Any, dim: int, shape: tuple[int, ...], alive: torch.Tensor | None):
        # torch's own norm call on the tensor its method sees: the container's slice
        # t[alive] along dim (a boolean index, as torch's container makes it).
        x = t.detach()
        # The container's view of a 1-D tensor is one (1, N) row, or an empty (0, N) one.
        x = x.reshape(shape) if x.numel() == math.prod(shape) else x.new_empty(shape)
        if alive is not None:
            index = [slice(None)] * x.dim()
            index[dim] = alive.to(x.device)
            x = x[tuple(index)]
        return _torch_prune._compute_norm(x, n, dim)

    return Torch(
        like=lambda n: torch.rand(n, dtype=t.dtype, device=t.device),
        default=lambda n: torch.rand(n, device=t.device),
        norms=norms,
    )
