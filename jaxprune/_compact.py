"""Physical compaction: a smaller params tree, and a function that runs it, with the same outputs.

:func:`compact` traces ``apply_fn(params, *example_args)`` to a jaxpr, finds which pruned
channels can be removed (:mod:`jaxprune._coupling`), folds the constants that removed
channels still carried into the biases of their consumers, slices every params leaf that
reads those channels, and returns a function that runs the smaller params: the same jaxpr,
re-traced for each new input shape, evaluated with its shapes adjusted to the kept channels.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from . import _coupling, _methods, _paths, _tracked
from ._typing import PyTree


class LayerReport(NamedTuple):
    """One params leaf: its shape (channels) and size before and after, and the FLOPs of
    the matmuls and convolutions whose weight it is (0 for other leaves).

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> p = {"w1": jnp.ones((2, 4)), "w2": jnp.ones((4, 1))}
        >>> masks = {"w1": jnp.array([[True, True, False, False]]), "w2": True}
        >>> _, _, report = jp.compact(lambda p, x: x @ p["w1"] @ p["w2"], p, masks, jnp.ones(2))
        >>> row = report.layers[0]
        >>> row.path, row.shape_before, row.shape_after, row.flops_before, row.flops_after
        ('w1', (2, 4), (2, 2), 16, 8)
    """

    path: str
    shape_before: tuple[int, ...]
    shape_after: tuple[int, ...]
    params_before: int
    params_after: int
    flops_before: int
    flops_after: int


class CompactReport(NamedTuple):
    """What :func:`compact` removed.

    Attributes:
        layers: one row per params leaf, in the params' order.
        params_before, params_after: parameter counts of the whole tree.
        flops_before, flops_after: multiply-adds times two of the ``dot_general`` and
            convolutions of one call on the example arguments.
        kept: why channels that the masks pruned were kept (one line per group of coupled
            channels: the leaves involved and the operation that pinned them).

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> p = {"w1": jnp.ones((2, 4)), "w2": jnp.ones((4, 1))}
        >>> masks = {"w1": jnp.array([[True, True, False, False]]), "w2": True}
        >>> f = lambda p, x: jax.nn.relu(x @ p["w1"])  # the pruned channels reach the output
        >>> _, _, report = jp.compact(f, p, masks, jnp.ones(2))
        >>> report.params_after == report.params_before, report.kept
        (True, ["2 of 4 pruned channels of w1 kept: the function's output"])
    """

    layers: list[LayerReport]
    params_before: int
    params_after: int
    flops_before: int
    flops_after: int
    kept: list[str]

    def __str__(self) -> str:
        lines = [f"{'leaf':<40} {'before':>18} {'after':>18} {'FLOPs before':>14} {'after':>14}"]
        for r in self.layers:
            if r.shape_before != r.shape_after or r.flops_before != r.flops_after:
                lines.append(
                    f"{r.path:<40} {r.shape_before!s:>18} {r.shape_after!s:>18} "
                    f"{r.flops_before:>14,} {r.flops_after:>14,}"
                )
        lines.append(
            f"params {self.params_before:,} -> {self.params_after:,} "
            f"({self.params_after / max(self.params_before, 1):.1%}); "
            f"FLOPs {self.flops_before:,} -> {self.flops_after:,} "
            f"({self.flops_after / max(self.flops_before, 1):.1%})"
        )
        lines += [f"kept: {k}" for k in self.kept]
        return "\n".join(lines)


def compact(
    apply_fn: Any, params: PyTree, masks: PyTree, *example_args: Any, multiple_of: int = 1
) -> tuple[Any, PyTree, CompactReport]:
    """Remove pruned channels for real: ``(compact_apply_fn, compact_params, report)``.

    ``apply_fn(params, *args)`` takes the params tree (wrap linen's
    ``lambda p, x: model.apply({"params": p}, x)``; pass BatchNorm's statistics inside the
    tree, ``{"params": ..., "batch_stats": ...}``, to have them sliced too). ``masks`` are the
    pruning masks of ``params`` (any masks: a layer's output channel that they prune
    entirely is a removal candidate, typically from ``ln_structured`` or
    ``random_structured`` along the output axis). ``compact_params`` keeps the same keys
    with smaller leaves, and ``compact_apply_fn(compact_params, *args)`` returns what
    ``apply_fn(apply_masks(params, masks), *args)`` returns, up to float rounding, for inputs
    of any shape the original accepts (it is re-traced per input shape; ``jax.jit`` it).
    ``example_args`` are arrays (or pytrees of arrays); close over static arguments such as
    a ``train`` flag.

    A channel is removed where every path it takes is understood (see
    :mod:`jaxprune._coupling`): through elementwise operations, biases, activations,
    normalisation with per-channel parameters (BatchNorm, GroupNorm's affine parameters),
    pooling, reductions over other axes, reshapes and transposes, concatenations (at their
    offsets), residual additions (a
    channel goes only where every coupled layer lost it) and into the input rows or input
    channels of the next dense layer or convolution. A removed channel that still carries a
    constant (a bias that was not pruned, BatchNorm's shift) has that constant folded into
    the next layer's bias (exact for dense layers and unpadded convolutions; a padded
    convolution sees zeros at the borders, so there only channels that are exactly zero
    go). Channels are kept, and the reason listed in ``report.kept``, where they reach the
    function's output, a reduction over the channel axis (LayerNorm, softmax), a grouped or
    depthwise convolution, a reshape that splits the channels (attention heads), or any
    operation not listed here.

    ``multiple_of`` rounds the channels each group keeps up to a multiple of it (keeping
    back some removable channels, the highest indices first, exactly as they were): XLA's
    CPU convolutions run far faster on channel counts that are multiples of 8
    (benchmarks/RESULTS.md, "Compaction").
    Groups of attention heads (a layer's output axis that is not its kernel's last) are
    not rounded.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> params = {"w1": jnp.arange(12.0).reshape(3, 4), "b1": jnp.ones(4),
        ...           "w2": jnp.ones((4, 2)), "b2": jnp.zeros(2)}
        >>> def mlp(p, x):
        ...     return jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        >>> masks = jp.prune(params, "ln_structured", amount=2, n=1, dim=-1, where="w1")
        >>> fn, small, report = jp.compact(mlp, params, masks, jnp.ones((5, 3)))
        >>> small["w1"].shape, small["w2"].shape, report.params_after
        ((3, 2), (2, 2), 14)
        >>> x = jnp.ones((7, 3))
        >>> bool(jnp.allclose(fn(small, x), mlp(jp.apply_masks(params, masks), x)))
        True
    """
    runner, compact_params, report, _ = compact_with_plan(
        apply_fn, params, masks, *example_args, multiple_of=multiple_of
    )
    return runner, compact_params, report


def compact_with_plan(apply_fn, params, masks, *example_args, multiple_of: int = 1):
    """:func:`compact`, plus a function that slices any tree of arrays shaped like
    ``params`` (full-shape masks, say) as the params were sliced (no constants folded)."""
    masked = _basic_masked(params, masks)
    paths, leaves, treedef = _paths.flatten(masked)
    mask_leaves = _aligned_masks(masks, treedef, paths)
    host = [_on_host(leaf) for leaf in leaves]
    dead = _dead_fn(host, mask_leaves)
    closed, out_shapes = jax.make_jaxpr(apply_fn, return_shape=True)(masked, *example_args)
    analysis = _coupling.Analysis(closed, len(leaves), host, dead)
    if isinstance(multiple_of, bool) or not isinstance(multiple_of, int) or multiple_of < 1:
        raise ValueError(f"multiple_of={multiple_of!r} should be a positive int")
    removable = analysis.removable()
    if multiple_of > 1:
        removable = _rounded(analysis, removable, host, multiple_of)
    new = _fold_and_slice(analysis, removable, host)
    compact_leaves = [
        leaf if n is h else jnp.asarray(n, leaf.dtype) for n, h, leaf in zip(new, host, leaves)
    ]
    compact_params = jax.tree_util.tree_unflatten(treedef, compact_leaves)

    keep_count = {}  # (leaf, axis) of each member -> channels kept in its group
    for g, group in analysis.groups.items():
        for key in group.members:
            keep_count[key] = int(group.size - removable[g].sum())
    avals = jax.tree_util.tree_unflatten(
        treedef, [jax.ShapeDtypeStruct(np.shape(x), x.dtype) for x in leaves]
    )
    new_shapes = [tuple(np.shape(x)) for x in compact_leaves]
    runner = _Runner(apply_fn, avals, len(leaves), keep_count, new_shapes, dead)
    # This trace serves these shapes.
    runner.seed(example_args, closed, analysis, jax.tree_util.tree_structure(out_shapes))

    flops_before = _flops(closed.jaxpr, lambda v: tuple(v.aval.shape), analysis.pvals)
    flops_after = _flops(*runner.plan(example_args), analysis.pvals)
    rows = [
        LayerReport(
            p,
            tuple(np.shape(a)),
            tuple(np.shape(b)),
            int(np.size(a)),
            int(np.size(b)),
            flops_before.get(i, 0),
            flops_after.get(i, 0),
        )
        for i, (p, a, b) in enumerate(zip(paths, leaves, compact_leaves))
    ]
    kept = [
        line
        for g, group in analysis.groups.items()
        if (line := _why_kept(group, removable[g], dead, paths, multiple_of))
    ]
    report = CompactReport(
        rows,
        sum(r.params_before for r in rows),
        sum(r.params_after for r in rows),
        sum(flops_before.values()),
        sum(flops_after.values()),
        kept,
    )

    def slicer(tree: PyTree) -> PyTree:
        t_paths, t_leaves, t_def = _paths.flatten(tree)
        index = {p: i for i, p in enumerate(paths)}
        arrays = [np.asarray(x) for x in t_leaves]
        by_leaf = {index[p]: a for p, a in zip(t_paths, arrays) if p in index}
        sliced = _slice(analysis, removable, by_leaf)
        out = [sliced.get(index.get(p, -1), a) for p, a in zip(t_paths, arrays)]
        return jax.tree_util.tree_unflatten(t_def, out)

    return runner, compact_params, report, slicer


def _rounded(analysis, removable, host, multiple: int) -> dict[int, np.ndarray]:
    """Removal sets whose kept counts are rounded up to a multiple (heads excepted)."""
    out = {}
    for g, gone in removable.items():
        group = analysis.groups[g]
        heads = any(axis != host[leaf].ndim - 1 for leaf, axis in group.producers)
        kept = group.size - int(gone.sum())
        want = min(group.size, -(-kept // multiple) * multiple)
        if heads or want == kept:
            out[g] = gone
            continue
        gone = gone.copy()
        gone[np.flatnonzero(gone)[-(want - kept) :]] = False  # the highest indices stay
        out[g] = gone
    return out


def _on_host(leaf: Any) -> Any:
    """A leaf as NumPy, except PRNG keys (an NNX model's ``Rngs``), which stay JAX arrays:
    they carry no channels and NumPy cannot hold them."""
    dtype = getattr(leaf, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        return leaf
    return np.asarray(leaf)


def _why_kept(group, gone: np.ndarray, dead, paths: list[str], multiple: int) -> str | None:
    """A line for the report where channels that every producer lost stay, or None."""
    if not group.producers:  # a concatenation: its parts report for themselves
        return None
    lost = np.ones(group.size, bool)
    for leaf, axis in group.producers:
        lost &= dead(leaf, axis)
    lost &= ~gone
    if not lost.any():
        return None
    layers = ", ".join(sorted({paths[leaf] for leaf, _ in group.producers}))
    what = f"{int(lost.sum())} of {group.size} pruned channels of {layers} kept"
    if group.pins:
        return f"{what}: {sorted(set(group.pins))[0]}"
    reasons = set()
    for e in group.entries:
        const = e.const[lost]
        if not np.isfinite(const).all():
            reasons.add(f"{paths[e.kernel]} reads them mixed with live values")
        elif (const != 0).any() and not (e.exact and e.bias is not None):
            how = "a padded convolution" if not e.exact else "a layer with no bias after it"
            reasons.add(f"they carry a constant into {paths[e.kernel]}, {how}")
    if not reasons:
        reasons.add(f"the channel count rounded up to a multiple of {multiple}")
    return f"{what}: {'; '.join(sorted(reasons))}"


def _basic_masked(params: PyTree, masks: PyTree) -> PyTree:
    from . import _tree

    return _tree.apply_masks(params, masks)


def _aligned_masks(masks: PyTree, treedef, paths: list[str]) -> list[Any]:
    by_path = dict(zip(*_paths.flatten(masks)[:2]))
    return [by_path.get(p, True) for p in paths]


def _dead_fn(host: list[np.ndarray], mask_leaves: list[Any]):
    @functools.cache
    def dead(leaf: int, axis: int) -> np.ndarray:
        """Output channels of ``host[leaf]`` along ``axis`` that the mask prunes entirely."""
        return ~_methods.alive_channels_numpy(host[leaf].shape, axis, mask_leaves[leaf])

    return dead


def _channel_of(size: int, outer: int, inner: int, c: int) -> np.ndarray:
    return (np.arange(size) // inner) % c


def _fold_and_slice(analysis, removable: dict[int, np.ndarray], host: list[np.ndarray]):
    """The compact leaves: constants of removed channels folded into the next biases
    (in float64), then every member sliced."""
    new = list(host)
    for g, group in analysis.groups.items():
        gone = removable[g]
        if not gone.any():
            continue
        for e in group.entries:
            const = np.where(gone & np.isfinite(e.const), e.const, 0.0)
            if not const.any():
                continue
            w = np.asarray(host[e.kernel], np.float64)
            w = np.moveaxis(w, (e.axis, e.out_axis), (0, 1))
            w = w.reshape(w.shape[0], w.shape[1], -1).sum(axis=2)  # kernel positions summed
            rows = const[_channel_of(w.shape[0], e.outer, e.inner, group.size)]
            leaf, axis = e.bias
            shape = [1] * new[leaf].ndim
            shape[axis] = -1
            folded = np.asarray(new[leaf], np.float64) + (rows @ w).reshape(shape)
            new[leaf] = folded.astype(host[leaf].dtype)
    sliced = _slice(analysis, removable, dict(enumerate(new)))
    return [sliced[i] for i in range(len(new))]


def _slice(analysis, removable, arrays: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """``arrays`` (by leaf index, each of its leaf's shape) with removed channels cut out."""
    out = dict(arrays)
    for g, group in analysis.groups.items():
        gone = removable[g]
        if not gone.any():
            continue
        for (leaf, axis), (outer, inner) in group.members.items():
            if leaf not in out:
                continue
            a = out[leaf]
            if a.ndim <= axis or a.shape[axis] == 1:  # a keepdims mask: nothing along it
                continue
            keep = ~gone[_channel_of(a.shape[axis], outer, inner, group.size)]
            out[leaf] = np.compress(keep, a, axis=axis)
    return out


class _Runner:
    """``compact_apply_fn``: the original jaxpr, re-traced per input shape, evaluated on the
    compact params with its shapes adjusted."""

    def __init__(self, apply_fn, avals, n_params, keep_count, new_shapes, dead):
        self._apply_fn = apply_fn
        self._avals = avals
        self._n = n_params
        self._keep = keep_count
        self._leaf_shapes = new_shapes
        self._dead = dead  # the masks' dead channels: the same groups in every re-trace
        self._cache: dict[Any, tuple] = {}
        functools.update_wrapper(self, apply_fn, updated=())

    @staticmethod
    def _key(args):
        spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), args)
        leaves = tuple((s.shape, s.dtype) for s in jax.tree.leaves(spec))
        return spec, (jax.tree_util.tree_structure(spec), leaves)

    def seed(self, args, closed, analysis, out_tree) -> None:
        """Reuse ``compact``'s own trace and analysis for ``args``' shapes."""
        self._cache[self._key(args)[1]] = (closed, self._shape_fn(analysis), out_tree)

    def _plan(self, args):
        """The jaxpr for ``args``' shapes, each variable's compact shape, and the output's
        tree structure (traced once per input shape)."""
        spec, key = self._key(args)
        if key not in self._cache:
            closed, out = jax.make_jaxpr(self._apply_fn, return_shape=True)(self._avals, *spec)
            analysis = _coupling.Analysis(closed, self._n, None, self._dead)
            self._cache[key] = (closed, self._shape_fn(analysis), jax.tree.structure(out))
        return self._cache[key]

    def plan(self, args) -> tuple[jcore.Jaxpr, Any]:
        """The jaxpr for ``args``' shapes and each of its variables' compact shape."""
        closed, shape, _ = self._plan(args)
        return closed.jaxpr, shape

    def _shape_fn(self, analysis):
        kept = {}
        for g, group in analysis.groups.items():
            counts = {self._keep.get(k) for k in group.members} - {None}
            kept[g] = counts.pop() if len(counts) == 1 else group.size
        # A concatenation keeps what its parts keep (older parts first).
        for g in sorted(g for g, group in analysis.groups.items() if group.parts):
            kept[g] = sum(
                size if part is None else kept[analysis.find(part)]
                for part, _, size in analysis.groups[g].parts
            )

        def shape(var) -> tuple[int, ...]:
            old = tuple(var.aval.shape)
            if var in analysis.chans:
                c = analysis.chans[var]
                out = list(old)
                out[c.axis] = c.outer * kept[analysis.find(c.group)] * c.inner
                return tuple(out)
            if var in analysis.pvals:
                out = list(old)
                for leaf, axes in analysis.pvals[var].sources:
                    for i, la in enumerate(axes):
                        if la is not None and la != _tracked.OPAQUE:
                            out[i] = self._leaf_shapes[leaf][la] if old[i] != 1 else 1
                return tuple(out)
            return old

        return shape

    def __call__(self, params: PyTree, *args: Any) -> Any:
        closed, shape, out_tree = self._plan(args)
        flat = jax.tree_util.tree_leaves(params) + jax.tree_util.tree_leaves(args)
        env = dict(zip(closed.jaxpr.constvars, closed.consts))
        env.update(zip(closed.jaxpr.invars, flat))
        return jax.tree_util.tree_unflatten(out_tree, _evaluate(closed.jaxpr, env, shape))


def _evaluate(jaxpr: jcore.Jaxpr, env: dict, shape) -> list[Any]:
    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for eqn in jaxpr.eqns:
        vals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        call = _tracked.inner_jaxpr(eqn)
        if call is not None:
            sub, consts = call
            sub_env = dict(zip(sub.constvars, consts))
            sub_env.update(zip(sub.invars, vals[len(vals) - len(sub.invars) :]))
            outs = _evaluate(sub, sub_env, shape)
        else:
            params = dict(eqn.params)
            if name == "reshape":
                params["new_sizes"] = shape(eqn.outvars[0])
            elif name == "broadcast_in_dim":
                params["shape"] = shape(eqn.outvars[0])
            bind = eqn.primitive.get_bind_params(params)
            out = eqn.primitive.bind(*vals, **bind)
            outs = out if eqn.primitive.multiple_results else [out]
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def _flops(jaxpr: jcore.Jaxpr, shape, pvals: dict, out: dict | None = None) -> dict:
    """Multiply-adds times two of each ``dot_general`` and convolution, by the params leaf
    of its weight (None where the weight is no single leaf)."""
    out = {} if out is None else out
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        call = _tracked.inner_jaxpr(eqn)
        if call is not None:
            _flops(call[0], shape, pvals, out)
            continue
        if name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]
            lhs = shape(eqn.invars[0])
            n = 2 * math.prod(shape(eqn.outvars[0])) * math.prod(lhs[d] for d in lc)
        elif name == "conv_general_dilated":
            rhs = shape(eqn.invars[1])
            spec = eqn.params["dimension_numbers"].rhs_spec
            per_out = rhs[spec[1]] * math.prod(rhs[d] for d in spec[2:])
            n = 2 * math.prod(shape(eqn.outvars[0])) * per_out
        else:
            continue
        weight = pvals.get(eqn.invars[1]) if not isinstance(eqn.invars[1], jcore.Literal) else None
        leaf = weight.sources[0][0] if weight is not None and len(weight.sources) == 1 else None
        out[leaf] = out.get(leaf, 0) + n
    return out
