"""N:M sparsity for torch modules: ``NMUnstructured`` and ``RandomNM``, beyond torch's list.

torch's weights are ``(out, in, ...)``, so the groups run along ``dim=1``, the input
channels, by default. A torch weight and its Flax twin (``(in, out)``, ``(kh, kw, in, out)``)
get the same mask, transposed: the selection runs on the weight in Flax's layout, through
``jaxprune.nm_unstructured`` and ``jaxprune.random_nm``, whenever the groups run along
``dim=1``.

The methods' ``PRUNING_TYPE`` is ``"global"``: torch's ``PruningContainer`` then hands them
the whole tensor and mask (an ``"unstructured"`` method gets the unpruned entries as one
flat slice, which has no groups), and torch's ``global_unstructured`` refuses them with its
own error. As for torch's unstructured methods, an entry is unpruned while its mask value is
exactly 1, and the new mask is the mask in force times the entries kept.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn.utils.prune as _torch_prune


def check_nm(n: Any, m: Any, dim: Any) -> None:
    """The checks of ``n``, ``m`` (jaxprune's) and ``dim`` at construction."""
    from jaxprune import _kernel

    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"dim must be an int; got {dim!r}.")
    _kernel.check_nm(n, m)


def _flax_order(ndim: int, dim: int) -> tuple[int, ...] | None:
    """The permutation from torch's layout to Flax's (``(out, in, *k)`` to ``(*k, in,
    out)``) when the groups run along torch's input axis, else None."""
    if ndim < 2 or dim % ndim != 1:
        return None
    return (*range(2, ndim), 1, 0)


def kept(method: Any, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
    """The entries ``method`` keeps (a torch bool tensor like ``t``), among those whose mask
    value is 1; the selection runs in JAX."""
    import jaxprune as jp

    from . import _masks  # configures JAX on first use
    from ._bridge import to_jax, to_torch

    dim = method.dim
    if not -t.dim() <= dim < t.dim():
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-t.dim()}, {t.dim() - 1}], "
            f"but got {dim})"
        )
    if t.shape[dim] % method.m:
        raise ValueError(
            f"the length along dim={dim} is {t.shape[dim]}, not a multiple of m={method.m}: "
            f"N:M groups of a tensor of shape {tuple(t.shape)} must tile that axis."
        )
    order = _flax_order(t.dim(), dim)
    alive = default_mask == 1
    if order is not None:
        t, alive, dim = t.permute(order), alive.permute(order), -2
    key = getattr(method, "key", None)
    if not method.RANDOM:
        mask = jp.nm_unstructured(to_jax(t), method.n, method.m, dim, default_mask=to_jax(alive))
    elif key is not None:
        mask = jp.random_nm(_masks.as_key(key), to_jax(t), method.n, method.m, dim,
                            default_mask=to_jax(alive))  # fmt: skip
    else:  # torch's generator: one draw per entry, the n highest kept per group
        draws = torch.rand(t.shape, device=t.device)
        mask = jp.nm_unstructured(to_jax(t), method.n, method.m, dim,
                                  default_mask=to_jax(alive),
                                  importance_scores=to_jax(draws))  # fmt: skip
    return _to_torch_layout(to_torch(mask, t, torch.bool), order)


def _to_torch_layout(mask: torch.Tensor, order: tuple[int, ...] | None) -> torch.Tensor:
    """A mask made in Flax's layout (``order``, as :func:`_flax_order` gave it) in torch's."""
    if order is not None:
        mask = mask.permute(sorted(range(len(order)), key=order.__getitem__))
    return mask.contiguous()


class _InFlaxLayout(_torch_prune.BasePruningMethod):
    """``compute_mask`` of the methods beyond torch's list: the mask in force times the
    entries kept (``_kept``, selected in JAX on the Flax twin's layout)."""

    PRUNING_TYPE = "global"
    RANDOM = False

    def compute_mask(self, t, default_mask):
        if t.device.type == "meta":  # no values to select from: the shape only
            return default_mask.clone(memory_format=torch.contiguous_format)
        return default_mask * self._kept(t, default_mask)


class GroupMethod(_InFlaxLayout):
    """The N:M methods."""

    def _kept(self, t, default_mask):
        return kept(self, t, default_mask)


def check_blocks(amount: Any, block_shape: Any) -> tuple[int, int]:
    """The checks of a block method's ``amount`` (torch's) and ``block_shape`` (jaxprune's)."""
    from jaxprune import _kernel

    _torch_prune._validate_pruning_amount_init(amount)
    return _kernel.block_shape_pair(block_shape)


def kept_blocks(method: Any, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
    """The entries a block method keeps, selected in JAX on the weight in Flax's layout
    (torch's ``(out, in, *k)`` as ``(*k, in, out)``, the block shape reversed with it), so
    that a torch layer and its Flax twin lose the same blocks."""
    import jaxprune as jp

    from . import _masks  # configures JAX on first use
    from ._bridge import to_jax, to_torch

    if t.dim() < 2:
        raise ValueError(
            f"block pruning needs a tensor of at least two dimensions; got shape {tuple(t.shape)}."
        )
    order = _flax_order(t.dim(), 1)
    rows, cols = method.block_shape
    prior = default_mask != 0  # a block is unpruned while any of its entries is
    flax, alive, block = t.permute(order), prior.permute(order), (cols, rows)
    key = getattr(method, "key", None)
    if not method.RANDOM:
        mask = jp.block_structured(to_jax(flax), method.amount, block, method.n,
                                   default_mask=to_jax(alive))  # fmt: skip
    elif key is not None:
        mask = jp.random_block_structured(_masks.as_key(key), to_jax(flax), method.amount,
                                          block, default_mask=to_jax(alive))  # fmt: skip
    else:  # torch's generator: one draw per block, the lowest pruned (max-norm of a block
        # whose entries all hold its draw is the draw)
        r, c = flax.shape[-2], flax.shape[-1]
        grid = (*flax.shape[:-2], -(-r // cols), -(-c // rows))
        draws = torch.rand(grid, device=t.device)
        full = draws.repeat_interleave(cols, dim=-2).repeat_interleave(rows, dim=-1)
        full = full[..., :r, :c].contiguous()
        mask = jp.block_structured(to_jax(flax), method.amount, block, float("inf"),
                                   default_mask=to_jax(alive),
                                   importance_scores=to_jax(full))  # fmt: skip
    return _to_torch_layout(to_torch(mask, t, torch.bool), order)


class BlockMethod(_InFlaxLayout):
    """The block methods."""

    def _kept(self, t, default_mask):
        return kept_blocks(self, t, default_mask)
