"""optax integration: keep pruned weights at exactly zero, and prune gradually on a schedule.

Both transformations wrap any optax optimizer. Their update

1. zeroes the gradients of pruned entries,
2. zeroes the inner optimizer's state at pruned entries (every subtree of its state shaped like
   the params: momentum traces, Adam moments, accumulated gradients), so stale moments never
   move a pruned weight, not even after the masks change,
3. runs the inner update, and
4. replaces the update of every pruned entry by ``-param``, so that after
   ``optax.apply_updates`` the entry is exactly ``0.0`` whatever the inner optimizer did
   (weight decay, momentum, schedules) and even if the params were not masked before, as
   long as the pruned values are finite: an update cannot bring NaN or ±inf to zero (``p +
   (-p)`` is NaN), so params that may hold them at pruned entries are masked once with
   :func:`jaxprune.apply_masks` first (it writes +0.0 there whatever they hold), and then
   stay exactly zero.

Masks are matched to the params by path (``"Dense_0/kernel"``; NNX ``Variable`` wrappers are
looked through), so a masks tree made from ``nnx.state(model, nnx.Param)`` fits the pure state
that ``nnx.Optimizer`` hands to the transformation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import _amount, _basic, _checks, _extras, _keys, _methods, _paths, _registry
from ._typing import Array, PRNGKey, PyTree, Where

if TYPE_CHECKING:  # optax is imported when a wrapper is made, not with the package
    import optax


class KeepPrunedState(NamedTuple):
    """State of :func:`keep_pruned`: the inner optimizer's state and the masks in force.

    Example:
        >>> import jax.numpy as jnp, optax, jaxprune as jp
        >>> masks = {"w": jnp.array([True, False])}
        >>> state = jp.keep_pruned(optax.sgd(0.1), masks).init({"w": jnp.ones(2)})
        >>> isinstance(state, jp.KeepPrunedState), state.masks["w"].tolist()
        (True, [True, False])
    """

    inner: Any
    masks: PyTree


class GradualPruningState(NamedTuple):
    """State of :func:`gradual_pruning`.

    Example:
        >>> import jax.numpy as jnp, optax, jaxprune as jp
        >>> tx = jp.gradual_pruning(optax.sgd(0.1), "l1_unstructured", jp.constant_schedule(0.5))
        >>> state = tx.init({"w": jnp.ones((2, 2))})
        >>> int(state.count), state.masks["w"].tolist()  # nothing pruned before the first step
        (0, [[True, True], [True, True]])
    """

    count: Array  #: number of updates done so far (int32)
    key: Array  #: raw key data of the base key
    masks: PyTree  #: the masks in force
    inner: Any  #: the inner optimizer's state


def _aligned(masks: PyTree, like: PyTree, name: str = "masks") -> list[Any]:
    """The leaves of ``masks`` in the order of ``like``'s leaves, matched by path."""
    paths, leaves, _ = _paths.flatten(like)
    by = _paths.by_path(masks, name, paths)
    out = []
    for path, leaf in zip(paths, leaves):
        if path not in by:
            raise ValueError(f"{path}: {name} has no leaf at this path.")
        m = by[path]
        m = m[...] if hasattr(m, "get_value") else m
        if not hasattr(m, "shape"):  # a Python or NumPy bool, as apply_masks takes it
            m = jnp.asarray(m)
        if _paths.is_array(leaf) and not _checks.fits(tuple(m.shape), tuple(leaf.shape)):
            raise ValueError(
                f"{path}: {name} leaf of shape {tuple(m.shape)} does not broadcast to "
                f"{tuple(leaf.shape)}"
            )
        out.append(m)
    return out


def _mask_tree(tree: PyTree, mask_leaves: list[Any]) -> PyTree:
    """``tree`` with zeros at the pruned entries."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    out = [x if m is None else _basic.zero_pruned(x, m) for x, m in zip(leaves, mask_leaves)]
    return jax.tree_util.tree_unflatten(treedef, out)


def _mask_state(state: Any, params: PyTree, mask_leaves: list[Any]) -> Any:
    """Zero every params-shaped subtree of an optimizer state at the pruned entries."""
    pdef = jax.tree_util.tree_structure(params)
    shapes = [getattr(x, "shape", None) for x in jax.tree_util.tree_leaves(params)]

    def params_like(node: Any) -> bool:
        if jax.tree_util.tree_structure(node) != pdef:
            return False
        return [getattr(x, "shape", None) for x in jax.tree_util.tree_leaves(node)] == shapes

    def visit(node: Any) -> Any:
        if params_like(node):
            return _mask_tree(node, mask_leaves)
        return node

    return jax.tree_util.tree_map(visit, state, is_leaf=params_like)


def _masked_update(inner, updates, inner_state, params, mask_leaves):
    grads = _mask_tree(updates, mask_leaves)
    inner_state = _mask_state(inner_state, params, mask_leaves)
    new_updates, inner_state = inner.update(grads, inner_state, params)
    p_leaves = jax.tree_util.tree_leaves(params)
    u_leaves, udef = jax.tree_util.tree_flatten(new_updates)
    out = [
        u if m is None else jnp.where(m, u, -p.astype(u.dtype))
        for u, m, p in zip(u_leaves, mask_leaves, p_leaves)
    ]
    return jax.tree_util.tree_unflatten(udef, out), inner_state


def _need_params(params: PyTree | None, name: str) -> None:
    if params is None:
        raise ValueError(
            f"{name} needs the params in update(updates, state, params): pruned entries are "
            "driven to exactly zero with update = -param."
        )


def keep_pruned(inner: optax.GradientTransformation, masks: PyTree) -> optax.GradientTransformation:
    """Wrap an optax optimizer so that pruned weights stay exactly zero.

    Args:
        inner: any ``optax.GradientTransformation`` (sgd with momentum, adam, adamw, lion,
            chains with clipping and schedules, ``optax.MultiSteps``...).
        masks: boolean masks with the structure (paths) of the params the optimizer sees,
            ``True`` = kept; keepdims and scalar masks broadcast.

    Returns:
        An ``optax.GradientTransformation`` whose state (:class:`KeepPrunedState`) holds the
        masks. Its ``update`` requires ``params``.

    Example:
        >>> import jax.numpy as jnp, optax, jaxprune as jp
        >>> params = {"w": jnp.array([1.0, -2.0, 3.0])}
        >>> masks = {"w": jnp.array([True, False, True])}
        >>> tx = jp.keep_pruned(optax.adamw(0.1, weight_decay=0.1), masks)
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": jnp.ones(3)}, state, params)
        >>> optax.apply_updates(params, updates)["w"][1].item()
        0.0
    """
    optax = _extras.require("optax", "jp.keep_pruned")

    def init(params):
        mask_leaves = _aligned(masks, params)
        return KeepPrunedState(
            inner=_mask_state(inner.init(params), params, mask_leaves), masks=masks
        )

    def update(updates, state, params=None):
        _need_params(params, "keep_pruned")
        mask_leaves = _aligned(state.masks, params)
        new, inner_state = _masked_update(inner, updates, state.inner, params, mask_leaves)
        return new, KeepPrunedState(inner=inner_state, masks=state.masks)

    return optax.GradientTransformation(init, update)


def gradual_pruning(
    inner: optax.GradientTransformation,
    method: str | Callable[..., Any],
    schedule: Callable[[Array], Array],
    *,
    key: PRNGKey | None = None,
    where: Where = None,
    **method_kwargs: Any,
) -> optax.GradientTransformation:
    """Prune gradually while training: masks recomputed inside the jitted update.

    At each pruning step (``schedule.is_pruning_step(step)``, or every step for a plain
    callable) the selected leaves are pruned, among their surviving units, just enough to
    reach the total sparsity ``schedule(step)`` (torch's iterative semantics: pruned units never
    come back). The count is traced, so stepping through the schedule never recompiles. The
    update then zeroes the newly pruned weights itself and keeps them at zero, as
    :func:`keep_pruned` does.

    Args:
        inner: the optax optimizer to wrap.
        method: ``"random_unstructured"``, ``"l1_unstructured"``, ``"random_structured"``,
            ``"ln_structured"``, the N:M methods (``"nm_unstructured"``, ``"random_nm"``),
            the block methods (``"block_structured"``, ``"random_block_structured"``), a
            method added with :func:`jaxprune.register_method`, or the function itself.
            Scores are the current params.
        schedule: step -> total sparsity of each selected leaf (units of the method: entries,
            channels along ``dim``, or blocks), e.g. :func:`polynomial_schedule`. For the
            N:M methods it ramps ``n``: at sparsity ``s`` every group of ``m`` keeps
            ``m - round(s * m)`` entries, never fewer than ``n``, so a schedule ending at
            ``1 - n / m`` (0.5 for 2:4) ends at exactly ``n:m`` (4:4, 3:4, then 2:4 on the
            way). Every layer moves together, which keeps each step a valid N:M structure of
            the same ``m``; converting a growing fraction of the layers instead would leave
            layers dense until their turn.
        key: base key for the random methods; step ``t`` uses ``fold_in(key, t)``, then each
            leaf folds in its path hash.
        where: leaf selection, as in :func:`jaxprune.prune`.
        **method_kwargs: ``dim`` for the structured methods, ``n`` for ``ln_structured``,
            ``n``, ``m`` (and ``dim``) for N:M, ``block_shape`` (and ``n``) for blocks, and a
            registered method's own (static) keyword arguments; never ``amount``.

    Returns:
        An ``optax.GradientTransformation`` with state :class:`GradualPruningState`; read its
        masks with :func:`current_masks`.

    Example:
        >>> import jax, jax.numpy as jnp, optax, jaxprune as jp
        >>> params = {"w": jnp.arange(1.0, 11.0).reshape(2, 5)}
        >>> tx = jp.gradual_pruning(optax.sgd(0.0), "l1_unstructured",
        ...                         jp.polynomial_schedule(0.0, 0.5, 0, 4), where="w")
        >>> state = tx.init(params)
        >>> for _ in range(5):
        ...     updates, state = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
        ...     params = optax.apply_updates(params, updates)
        >>> jp.current_masks(state)["w"].sum().item(), params["w"][0, :3].tolist()
        (5, [0.0, 0.0, 0.0])
    """
    optax = _extras.require("optax", "jp.gradual_pruning")

    method = _registry.get(method)
    name = method.name
    if method.grouped and method.scheduled is None:
        raise ValueError(
            f"gradual_pruning cannot use method={name!r}: it has no schedule (a grouped "
            "method schedules through Method.scheduled); prune with jp.prune and train with "
            "jp.keep_pruned."
        )
    if not (method.selects or method.grouped):
        raise ValueError(f"gradual_pruning cannot use method={name!r}: it selects nothing.")
    required, optional = method.keywords()
    required = tuple(k for k in required if k != "amount")  # the schedule gives it
    allowed = set(required) | (set(optional) - {"importance_scores"})
    for k in method_kwargs:
        if k not in allowed and not (method.any_options and k != "importance_scores"):
            raise TypeError(f"gradual_pruning with {name} got an unexpected argument {k!r}.")
    for k in required:
        if k not in method_kwargs:
            raise TypeError(f"gradual_pruning with {name} needs the keyword argument {k!r}.")
    if method.random:
        if key is None:
            raise TypeError(f"gradual_pruning with {name} needs key=: pass a jax.random.key.")
        key = _keys.as_key(key)
    elif key is not None:
        raise TypeError(f"{name} is not random and takes no key.")
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (step -> sparsity); got {schedule!r}.")
    when = getattr(schedule, "is_pruning_step", None)

    def plan(params):
        paths, leaves, _ = _paths.flatten(params)
        chosen = _paths.select(paths, leaves, where)
        specs = []
        for path, leaf, pick in zip(paths, leaves, chosen):
            if not pick:
                specs.append(None)
                continue
            with _paths.PathError(path):
                if method.grouped:
                    specs.append(_check_scheduled(method, leaf, method_kwargs))
                else:
                    specs.append(_methods.plan(method, tuple(leaf.shape), **method_kwargs))
        return paths, specs

    def init(params):
        paths, specs = plan(params)
        treedef = jax.tree_util.tree_structure(params)
        masks = jax.tree_util.tree_unflatten(
            treedef,
            [jnp.ones(_start_shape(s), bool) for s in specs],
        )
        data = jnp.zeros(2, jnp.uint32) if key is None else jax.random.key_data(key)
        return GradualPruningState(
            count=jnp.zeros((), jnp.int32), key=data, masks=masks, inner=inner.init(params)
        )

    def prune_to(sparsity, step, params, masks, state_key):
        paths, specs = plan(params)
        leaves = jax.tree_util.tree_leaves(params)
        mask_leaves, mdef = jax.tree_util.tree_flatten(masks)
        step_key = None
        if key is not None:
            step_key = jax.random.fold_in(jax.random.wrap_key_data(state_key), step)
        out = []
        for path, spec, leaf, prior in zip(paths, specs, leaves, mask_leaves):
            if spec is None:
                out.append(prior)
                continue
            leaf_key = None if step_key is None else _keys.leaf_key(step_key, path)
            if method.grouped:
                out.append(method.scheduled(leaf_key, leaf, prior, sparsity, **method_kwargs))
                continue
            alive = _methods.alive_units(spec, prior)
            k = _amount.count_to_reach(sparsity, spec.units, _methods.n_alive(spec, alive))
            scores = leaf if method.reads_values else None
            out.append(_methods.compute(spec, _amount.EXACT, leaf_key, scores, prior, k))
        return jax.tree_util.tree_unflatten(mdef, out)

    def update(updates, state, params=None):
        _need_params(params, "gradual_pruning")
        step = state.count
        now = jnp.asarray(True) if when is None else when(step)
        sparsity = jnp.asarray(schedule(step), jnp.float32)
        masks = lax.cond(
            now,
            lambda: prune_to(sparsity, step, params, state.masks, state.key),
            lambda: state.masks,
        )
        mask_leaves = jax.tree_util.tree_leaves(masks)
        new, inner_state = _masked_update(inner, updates, state.inner, params, mask_leaves)
        return new, GradualPruningState(
            count=step + 1, key=state.key, masks=masks, inner=inner_state
        )

    return optax.GradientTransformation(init, update)


def _check_scheduled(method: _registry.Method, leaf: Any, kwargs: dict) -> tuple[int, ...]:
    """Check a grouped method's options against one leaf, before any work (its schedule
    traced on the leaf's shape); the leaf's shape is its mask's."""
    shape = tuple(jnp.shape(leaf))
    key = jax.random.key(0) if method.random else None
    x = jax.ShapeDtypeStruct(shape, jnp.result_type(leaf))
    jax.eval_shape(lambda x, s: method.scheduled(key, x, None, s, **kwargs), x, jnp.float32(0.0))
    return shape


def _start_shape(spec: _methods.Spec | tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of a leaf's mask before the first pruning step."""
    if spec is None:
        return ()
    return _methods.mask_shape(spec) if isinstance(spec, _methods.Spec) else spec


def current_masks(opt_state: Any) -> PyTree:
    """The masks held by a :func:`gradual_pruning` (or :func:`keep_pruned`) state.

    The state may be nested (``optax.chain``, ``optax.MultiSteps``, ``nnx.Optimizer``'s
    ``opt_state``); the outermost pruning state found is used.

    Raises:
        ValueError: no pruning state in ``opt_state``.

    Example:
        >>> import jax.numpy as jnp, optax, jaxprune as jp
        >>> masks = {"w": jnp.array([True, False])}
        >>> tx = optax.chain(optax.clip(1.0), jp.keep_pruned(optax.sgd(0.1), masks))
        >>> jp.current_masks(tx.init({"w": jnp.ones(2)}))["w"].tolist()
        [True, False]
    """
    found = _find(opt_state)
    if found is None:
        raise ValueError("opt_state holds no gradual_pruning or keep_pruned state.")
    return found.masks


def _find(node: Any) -> Any:
    if isinstance(node, (GradualPruningState, KeepPrunedState)):
        return node
    if hasattr(node, "get_value"):  # an NNX Variable holding (part of) a state
        return _find(node.get_value())
    if isinstance(node, dict) or hasattr(node, "items"):
        children = list(node.values()) if hasattr(node, "values") else []
    elif isinstance(node, (tuple, list)):
        children = list(node)
    else:
        return None
    for child in children:
        found = _find(child)
        if found is not None:
            return found
    return None
