"""``jp.nnx.compact``: a smaller NNX module, of the same classes, without the pruned channels."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

from . import _compact, _paths


def compact(
    model: nnx.Module, *example_args: Any, multiple_of: int = 1
) -> tuple[nnx.Module, _compact.CompactReport]:
    """A copy of ``model`` with its pruned channels physically removed; ``model`` is untouched.

    See :func:`jaxprune.compact` for what can be removed and why a channel stays, and for
    ``multiple_of``. The copy
    keeps the model's classes and attribute names, with smaller variables and the feature
    counts of the standard layers updated (``Linear``, ``LinearGeneral``, ``Conv``,
    ``BatchNorm``, ``LayerNorm``, ``GroupNorm``, ``RMSNorm``, ``MultiHeadAttention``); it
    runs under ``nnx.jit`` and trains with ``nnx.Optimizer``. Weights that stay pruned keep
    their masks (sliced), so the copy is still pruned where the masks still matter.
    The forward pass is traced as the model is: call ``model.eval()`` first (dropout and
    BatchNorm's batch statistics in training mode read values that are not parameters).

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> from flax import nnx
        >>> class MLP(nnx.Module):
        ...     def __init__(self, rngs):
        ...         self.a = nnx.Linear(4, 8, rngs=rngs)
        ...         self.b = nnx.Linear(8, 2, rngs=rngs)
        ...     def __call__(self, x):
        ...         return self.b(nnx.relu(self.a(x)))
        >>> model = MLP(nnx.Rngs(0))
        >>> jp.nnx.prune(model, "ln_structured", amount=0.5, n=2, dim=-1, where="a/kernel")
        >>> small, report = jp.nnx.compact(model, jnp.ones((1, 4)))
        >>> small.a.out_features, small.b.in_features, small.b.kernel.shape
        (4, 4, (4, 2))
        >>> x = jnp.ones((3, 4))
        >>> bool(jnp.allclose(small(x), model(x), atol=1e-6))
        True
    """
    from . import nnx as jnnx

    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be an nnx.Module; got {type(model).__name__}.")
    masks = {}
    nodes = jnnx._nodes(model)
    for path, node in nodes.items():
        if isinstance(node, jnnx.Pruned):
            parent, name = jnnx._split(path)
            mask = vars(nodes[parent]).get(name + "_mask")
            if isinstance(mask, jnnx.Mask):
                masks[path] = mask.get_value()
    clone = nnx.clone(model)
    if masks:
        jnnx.remove(clone)
    graphdef, state = nnx.split(clone)

    def apply_fn(st, *args):
        return nnx.merge(graphdef, st)(*args)

    s_paths, s_leaves, _ = _paths.flatten(state)
    mask_tree = {p: masks.get(p, True) for p in s_paths}
    _, small_state, report, slicer = _compact.compact_with_plan(
        apply_fn, state, mask_tree, *example_args, multiple_of=multiple_of
    )
    small = nnx.merge(graphdef, small_state)
    _update_features(small)
    shapes = dict(zip(s_paths, (jnp.shape(x) for x in s_leaves)))
    full = {p: jnp.broadcast_to(m, shapes[p]) for p, m in masks.items()}
    sliced = slicer(full)
    kept = {p: m for p, m in sliced.items() if not bool(jnp.all(m))}
    if kept:
        jnnx.prune(small, "custom_from_mask", mask=kept, where=lambda p, _: p in kept)
    return small, report


def _update_features(model: nnx.Module) -> None:
    """The feature counts of the standard layers, from their (smaller) variables."""
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Linear):
            node.in_features, node.out_features = node.kernel.shape
        elif isinstance(node, nnx.Conv):
            node.in_features = node.kernel.shape[-2] * node.feature_group_count
            node.out_features = node.kernel.shape[-1]
        elif isinstance(node, nnx.LinearGeneral):
            n_in = len(node.in_features) if isinstance(node.in_features, tuple) else 1
            shape = tuple(node.kernel.shape)
            node.in_features = shape[:n_in] if isinstance(node.in_features, tuple) else shape[0]
            out = shape[n_in:]
            node.out_features = out if isinstance(node.out_features, tuple) else out[0]
        elif isinstance(node, (nnx.BatchNorm, nnx.LayerNorm, nnx.RMSNorm, nnx.GroupNorm)):
            for name in ("scale", "bias", "mean"):
                v = getattr(node, name, None)
                if v is not None:
                    node.num_features = v.shape[-1]
                    break
        elif isinstance(node, nnx.MultiHeadAttention):
            heads, head_dim = node.query.kernel.shape[-2:]
            node.num_heads, node.head_dim = heads, head_dim
            node.qkv_features = heads * head_dim
            node.out_features = node.out.kernel.shape[-1]
