"""The pytree layer: prune, mask and measure a whole params tree.

A call validates every selected leaf in Python first (errors name the leaf's path and nothing
is computed), then computes every mask in one compiled program (called eagerly, large
selections get kernels of their own, and the small ones' masks come out as rows that a kernel
per mask shape hands out: :mod:`jaxprune._batch`). Inputs are never modified.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _amount, _basic, _batch, _checks, _keys, _methods, _paths, _registry
from . import _structured as _structured  # noqa: F401  (registers the built-in methods)
from . import _unstructured as _unstructured  # noqa: F401
from ._typing import Array, PRNGKey, PyTree, Where


def _check_kwargs(method: _registry.Method, key: Any, kwargs: dict[str, Any]) -> None:
    required, optional = method.keywords()
    for k in required:
        if k not in kwargs:
            raise TypeError(f"{method.name} needs the keyword argument {k!r}.")
    for k in kwargs:
        if k not in required and k not in optional and not method.any_options:
            raise TypeError(f"{method.name} got an unexpected keyword argument {k!r}.")
    if method.random and key is None:
        raise TypeError(f"{method.name} needs key=: pass a jax.random.key.")
    if not method.random and key is not None:
        raise TypeError(f"{method.name} is not random and takes no key.")


def mask_sharding(leaf: Any, mask_ndim: int, dim: int | None) -> Any:
    """The sharding a leaf's mask should have: the leaf's own for a full mask; for a
    keepdims mask, the leaf's partitioning of the channel axis only. None when the leaf is
    not a concretely sharded array (a tracer, NumPy, one device)."""
    sharding = getattr(leaf, "sharding", None)
    if _checks.is_traced(leaf) or not isinstance(sharding, jax.sharding.NamedSharding):
        return None
    spec = list(sharding.spec) + [None] * (mask_ndim - len(sharding.spec))
    if dim is not None:
        spec = [s if i == dim else None for i, s in enumerate(spec)]
    return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*spec))


def constrain(masks: list[Array], shardings: tuple[Any, ...]) -> list[Array]:
    """Pin each mask to its sharding (so random masks are made where their weights live)."""
    return [
        m if s is None else jax.lax.with_sharding_constraint(m, s) for m, s in zip(masks, shardings)
    ]


@functools.partial(
    jax.jit, static_argnames=("specs", "plans", "groups", "hashes", "shardings", "rows")
)
def _program(*, specs, plans, groups, hashes, key, scores, priors, counts, exact, shardings, rows):
    """The masks of many calls. With ``rows``, also the rows of their groups, and None for
    the masks that are rows as they are (:mod:`jaxprune._batch`), for the caller to take;
    without, every mask is made in the program (pinned where its weight lives)."""
    if key is None:
        keys = [None] * len(specs)
    else:  # one vmap-ed fold_in for all leaves: one hash function in the program, not many
        keys = jax.vmap(jax.random.fold_in, (None, 0))(key, jnp.asarray(hashes, jnp.uint32))
    masks, blocks = _batch.compute_many(specs, plans, groups, keys, scores, priors, counts, exact)
    if rows:
        return masks, blocks
    _batch.fill_rows(
        masks, groups, blocks, lambda block, j, i: _batch.row_mask(block, j, specs[i], priors[i])
    )
    return constrain(masks, shardings), []


@functools.partial(jax.jit, static_argnums=(0, 1, 7))
def _leaf_program(spec, count, key, path_hash, score, prior, value, sharding):
    leaf_key = None if key is None else jax.random.fold_in(key, jnp.uint32(path_hash))
    mask = _methods.compute(spec, count, leaf_key, score, prior, value)
    return constrain([mask], (sharding,))[0]


class Job(NamedTuple):
    """One selected leaf's call: its path, its plan (None for the methods that select
    nothing, whose ``scores`` is then the new mask), its scores, its prior mask and the
    sharding its mask should have."""

    path: str
    spec: _methods.Spec | None
    scores: Array | None
    prior: Array | None
    sharding: Any


#: Keyword arguments of the pytree layer that are not a method's static options.
_SIDE = ("amount", "importance_scores")


def prune(
    params: PyTree,
    method: str | Callable[..., Any],
    *,
    key: PRNGKey | None = None,
    where: Where = None,
    masks: PyTree | None = None,
    **method_kwargs: Any,
) -> PyTree:
    """Masks for every leaf of ``params``, computed in one compiled program.

    Args:
        params: any pytree of arrays: Flax linen params (dict or ``FrozenDict``), NNX state,
            nested dicts, lists and tuples.
        method: a registered method, by its core function or its name: ``"identity"``,
            ``"random_unstructured"``, ``"l1_unstructured"``, ``"random_structured"``,
            ``"ln_structured"``, ``"custom_from_mask"``, or one added with
            :func:`jaxprune.register_method`.
        key: base key for the random methods. Each leaf uses
            ``fold_in(key, hash(path))`` with a hash that is stable across processes and
            Python versions, so adding a layer never changes another layer's mask.
        where: which leaves to prune: a regular expression searched in the path string
            (keys joined by ``/``, e.g. ``"Conv_0/kernel"``), a predicate
            ``where(path, leaf)``, or None for every floating leaf with 2 or more dims.
        masks: the masks already in force (a tree with the same paths, e.g. the result of an
            earlier call). Selected leaves prune among their unpruned units (torch's iterative
            semantics); unselected leaves keep their mask.
        **method_kwargs: the method's arguments: ``amount``, ``dim``, ``n`` (and a
            registered method's own keyword arguments, which are static). For
            ``importance_scores`` (l1/ln) and ``mask`` (custom_from_mask) pass a pytree whose
            leaves are matched to ``params`` by path; a leaf without scores uses itself.
            With ``custom_from_mask`` and no ``where``, the leaves of ``mask`` are selected.

    Returns:
        A pytree of ``params``' structure holding boolean masks; an unselected leaf's mask is
        its prior mask, or a scalar ``True``.

    Raises:
        TypeError, ValueError, IndexError: as the core method would, with the leaf's path in
            the message; and ``ValueError`` when ``where`` selects nothing. Nothing is
            computed when a check fails.

    Example:
        >>> import jax, jax.numpy as jnp, jaxprune as jp
        >>> params = {"Dense_0": {"kernel": jnp.ones((4, 8)), "bias": jnp.zeros(8)}}
        >>> m = jp.prune(params, "random_structured", key=jax.random.key(0), amount=0.5)
        >>> m["Dense_0"]["kernel"].shape, int((~m["Dense_0"]["kernel"]).sum())
        ((1, 8), 4)
        >>> m["Dense_0"]["bias"].shape
        ()
    """
    method = _registry.get(method)
    _check_kwargs(method, key, method_kwargs)
    if key is not None:
        key = _keys.as_key(key)
    paths, leaves, treedef = _paths.flatten(params)
    priors_by_path = _paths.by_path(masks, "masks", paths)
    side = {}  # the arguments given as trees: importance scores, a custom mask
    for arg in ("importance_scores", *method.inputs):
        if arg in method_kwargs:
            side[arg] = _paths.by_path(method_kwargs[arg], arg, paths)
    if method.inputs and where is None:  # the leaves the given tree has
        given = side[method.inputs[0]]
        where = lambda p, leaf: p in given  # noqa: E731
    chosen = _paths.select(paths, leaves, where)
    amount = method_kwargs.get("amount")
    if "amount" in method_kwargs:
        amount = _amount.check_amount(amount)

    # Phase 1: static checks of every selected leaf.
    jobs = []
    for path, leaf, pick in zip(paths, leaves, chosen):
        if not pick:
            continue
        with _paths.PathError(path):
            x = _checks.as_tensor(leaf, "params leaf")
            prior = _checks.as_mask(priors_by_path.get(path), x.shape, "masks leaf")
            if method.grouped:  # N:M, blocks: the function gives the mask, over the prior
                options = {k: v for k, v in method_kwargs.items() if k != "importance_scores"}
                new = method.function(
                    *_grouped_args(method, key, path, x, side),
                    **options,
                    default_mask=prior,
                    **_scores_of(side, path),
                )
                jobs.append(Job(path, None, new, prior, None))
                continue
            if not method.selects:  # identity, custom_from_mask: the function gives the mask
                for arg in method.inputs:
                    if path not in side[arg]:
                        raise ValueError(f"{arg} has no leaf at this path.")
                new = method.function(x, **{arg: side[arg][path] for arg in method.inputs})
                jobs.append(Job(path, None, new, prior, None))
                continue
            options = {k: v for k, v in method_kwargs.items() if k not in _SIDE}
            spec = _methods.plan(method, x.shape, **options)
            scores = None
            if method.reads_values:
                scores = _checks.check_scores(
                    side.get("importance_scores", {}).get(path), x.shape, "importance_scores"
                )
                scores = x if scores is None else scores
                _methods.keys_dtype(spec, jnp.dtype(scores.dtype))  # the scores' shape
            sharding = mask_sharding(leaf, len(spec.shape), spec.dim)
            jobs.append(Job(path, spec, scores, prior, sharding))

    out = {}
    if not method.selects:
        for job in jobs:
            new = job.scores
            out[job.path] = new if job.prior is None else new & job.prior
    else:
        out.update(_compute_all(jobs, amount, key))
    result = []
    for path in paths:
        if path in out:
            result.append(out[path])
        elif path in priors_by_path:
            result.append(priors_by_path[path])
        else:
            result.append(_checks.true_scalar())
    return jax.tree_util.tree_unflatten(treedef, result)


def _grouped_args(method, key, path, x, side) -> tuple:
    """The positional arguments of a grouped method's core function for one leaf: the leaf's
    key (:func:`jaxprune.leaf_key`) first for a random one, then the weight."""
    return (_keys.leaf_key(key, path), x) if method.random else (x,)


def _scores_of(side: dict, path: str) -> dict:
    scores = side.get("importance_scores", {})
    return {"importance_scores": scores[path]} if path in scores else {}


def _compute_all(jobs: list[Job], amount: Any, key: Array | None) -> dict[str, Array]:
    tracing = _checks.under_trace()  # once per call (see _amount.prior_kind)
    # Phase 2: counts among unpruned units, exact where the priors are concrete.
    concrete = [
        i
        for i, job in enumerate(jobs)
        if _methods.needs_alive_count(job.spec, amount, job.prior, tracing)
    ]
    n_alive: dict[int, int] = {}
    if concrete:
        specs = [jobs[i].spec for i in concrete]
        n_alive = dict(
            zip(concrete, _methods.count_alive_now(specs, [jobs[i].prior for i in concrete]))
        )
    specs, plans, counts = [], [], []
    for i, job in enumerate(jobs):
        with _paths.PathError(job.path):
            count, value = _methods.resolve(job.spec, amount, job.prior, n_alive.get(i), tracing)
        specs.append(job.spec)
        plans.append(count)
        counts.append(value)
    hashes = [_keys.path_hash(job.path) for job in jobs]
    # Called eagerly, a large selection gets a compiled kernel of its own, cached by shape:
    # a model compiles each of its few large shapes once instead of one loop per leaf in one
    # program (half the first call on 24 GPT-2 blocks, the same steady time). Under a trace
    # everything joins the caller's one program.
    traced = (
        tracing
        or _checks.is_traced(key)
        or any(_checks.is_traced(j.scores) or _checks.is_traced(j.prior) for j in jobs)
        or any(_checks.is_traced(c) for c in counts)
    )
    alone = [] if traced else [i for i, s in enumerate(specs) if _methods.is_large(s)]
    out: dict[str, Array] = {}
    for i in alone:
        path, spec, score, prior, sharding = jobs[i]
        out[path] = _leaf_program(spec, plans[i], key, hashes[i], score, prior, counts[i], sharding)
    rest = [i for i in range(len(jobs)) if jobs[i].path not in out]
    if rest:
        sub = [specs[i] for i in rest]
        sub_plans = tuple(plans[i] for i in rest)
        sub_scores = [jobs[i].scores for i in rest]
        sub_priors = [jobs[i].prior for i in rest]
        groups = _batch.plan(sub, sub_plans, sub_scores)
        sub_counts, exact = _batch.pack_counts(groups, sub_plans, [counts[i] for i in rest])
        # Called eagerly on one device, a mask that is its group's row as it is is taken by a
        # kernel compiled per mask shape (one output kernel per leaf in the program would
        # compile for every leaf, and again for every tree); traced or sharded, the program
        # makes it.
        rows = not traced and all(jobs[i].sharding is None for i in rest)
        masks, blocks = _program(
            specs=tuple(sub),
            plans=sub_plans,
            groups=groups,
            hashes=tuple(hashes[i] for i in rest),
            key=key,
            scores=sub_scores,
            priors=sub_priors,
            counts=sub_counts,
            exact=exact,
            shardings=tuple(jobs[i].sharding for i in rest),
            rows=rows,
        )
        _batch.fill_rows(masks, groups, blocks, lambda block, j, i: _batch.take(block, j, sub[i]))
        out.update({jobs[i].path: m for i, m in zip(rest, masks)})
    return out


def _match_masks(params: PyTree, masks: PyTree) -> tuple[list[str], list[Any], list[Any], Any]:
    paths, leaves, treedef = _paths.flatten(params)
    by = _paths.by_path(masks, "masks", paths)
    mlist = []
    for path, leaf in zip(paths, leaves):
        if not _paths.is_array(leaf):
            mlist.append(None)
            continue
        if path not in by:
            raise ValueError(f"{path}: masks has no leaf at this path.")
        with _paths.PathError(path):
            mlist.append(_checks.as_mask(by[path], tuple(leaf.shape), "masks leaf"))
    return paths, leaves, mlist, treedef


def _apply(leaves, masks):
    return [_basic.zero_pruned(x, m) for x, m in zip(leaves, masks)]


_apply_program = jax.jit(_apply)
_apply_donated = jax.jit(_apply, donate_argnums=0)


def _is_true_scalar(m: Any) -> bool:
    return m.size == 1 and not _checks.is_traced(m) and bool(m.reshape(()))


def apply_masks(params: PyTree, masks: PyTree, *, donate: bool = False) -> PyTree:
    """``params`` with every pruned entry set to exactly zero (one compiled program).

    Leaves whose mask is a scalar ``True`` are returned as they are (no copy).

    Args:
        params: the params pytree.
        masks: a masks pytree with the same paths (full or keepdims masks, or scalars).
        donate: give the masked leaves' buffers to the result (``jax.jit`` buffer donation),
            so that pruning a model does not hold two copies of its weights: the pruned
            weights are written in place where the backend allows, and the masked input
            leaves are deleted (reading them afterwards raises). Leaves returned as they are
            stay valid. Inside a traced function donation is the caller's ``jit``'s business
            and this flag changes nothing.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> p = {"w": jnp.array([[1.0, 2.0]]), "b": jnp.array([3.0])}
        >>> out = jp.apply_masks(p, {"w": jnp.array([[True, False]]), "b": jnp.array(True)})
        >>> out["w"].tolist(), out["b"].tolist()
        ([[1.0, 0.0]], [3.0])
    """
    paths, leaves, mlist, treedef = _match_masks(params, masks)
    todo = [i for i, m in enumerate(mlist) if m is not None and not _is_true_scalar(m)]
    traced = any(_checks.is_traced(leaves[i]) for i in todo)
    program = _apply_donated if donate and not traced else _apply_program
    done = program([leaves[i] for i in todo], [mlist[i] for i in todo])
    out = list(leaves)
    for i, new in zip(todo, done):
        out[i] = new
    return jax.tree_util.tree_unflatten(treedef, out)


@jax.jit
def _zero_counts(leaves, masks):
    counts = []
    for x, m in zip(leaves, masks):
        zero = x == 0
        if m is not None:
            zero = zero | ~m
        counts.append(jnp.sum(zero, dtype=jnp.uint32))
    return counts


def selected_leaves(params: PyTree, masks: PyTree | None, where: Where) -> tuple:
    """``(paths, leaves, masks, indices)``: the leaves (and their masks, or None) that
    ``where`` selects among the array leaves; ``where=None`` takes every array leaf."""
    if masks is None:
        paths, leaves, _ = _paths.flatten(params)
        mlist = [None] * len(leaves)
    else:
        paths, leaves, mlist, _ = _match_masks(params, masks)
    if where is None:
        chosen = [_paths.is_array(leaf) for leaf in leaves]
    else:
        chosen = _paths.select(paths, leaves, where)
    return paths, leaves, mlist, [i for i, pick in enumerate(chosen) if pick]


def sparsity(params: PyTree, masks: PyTree | None = None, *, where: Where = None) -> float:
    """Fraction of zero entries over the array leaves, masks applied.

    Args:
        params: the params pytree.
        masks: masks to apply first (same paths as ``params``), or None.
        where: the leaves to count, as in :func:`jaxprune.prune` (a regular expression on
            paths or a predicate); None counts every array leaf, biases included (a
            zero-initialised bias counts as zeros then: ``where="kernel"`` leaves it out).

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> p = {"w": jnp.array([[0.0, 1.0], [2.0, 0.0]]), "b": jnp.zeros(2)}
        >>> jp.sparsity(p), jp.sparsity(p, where="w")
        (0.6666666666666666, 0.5)
    """
    paths, leaves, mlist, idx = selected_leaves(params, masks, where)
    total = sum(int(leaves[i].size) for i in idx)
    if total == 0:
        return 0.0
    counts = _zero_counts([leaves[i] for i in idx], [mlist[i] for i in idx])
    return sum(int(c) for c in jax.device_get(counts)) / total
