"""Global unstructured pruning: one selection over the entries of many leaves."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from . import _amount, _checks, _keys, _methods, _paths, _registry, _select, _tree
from ._typing import Amount, Array, PRNGKey, PyTree, Where


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 7))
def _program(specs, count, hashes, key, scores, priors, value, shardings):
    keys = [
        _methods.unit_keys(spec, None if key is None else jax.random.fold_in(key, h), s)
        for spec, h, s in zip(specs, hashes, scores)
    ]
    alive = [None if p is None else jnp.broadcast_to(p, s.shape) for p, s in zip(priors, scores)]
    n_alive = jnp.zeros((), jnp.uint32)
    for spec, a in zip(specs, alive):
        n_alive += _methods.n_alive(spec, a)
    k = count.in_program(value, n_alive, sum(s.size for s in scores))
    pruned = _select.lowest_k(keys, alive, k)
    return _tree.constrain([~p if a is None else a & ~p for p, a in zip(pruned, alive)], shardings)


def global_unstructured(
    params: PyTree,
    amount: Amount,
    *,
    method: str = "l1",
    key: PRNGKey | None = None,
    where: Where = None,
    masks: PyTree | None = None,
    importance_scores: PyTree | None = None,
) -> PyTree:
    """Masks from one unstructured selection over all selected leaves together.

    The amount counts among the unpruned entries of all selected leaves (torch's global
    semantics: ``default_mask`` is the concatenation of the prior masks). With ``"l1"`` the
    entries of smallest magnitude go, found exactly without concatenating or sorting the
    leaves; ties are broken by position (leaves in tree order, then row-major index). With
    ``"random"`` each leaf draws random bits from ``fold_in(key, hash(path))`` and the
    lowest draws go. Any unstructured method registered with
    :func:`jaxprune.register_method` may be named too: its scores of every leaf compete in
    one selection (a random one gets each leaf's key).

    Args:
        params: a pytree of arrays.
        amount: an int count or a float fraction of the unpruned selected entries.
        method: ``"l1"`` (or ``"l1_unstructured"``), ``"random"`` (or
            ``"random_unstructured"``), or a registered unstructured method's name.
        key: required for the random methods.
        where: leaf selection, as in :func:`jaxprune.prune`.
        masks: the masks already in force (same paths as ``params``).
        importance_scores: a pytree of scores matched to ``params`` by path.

    Returns:
        A masks pytree: full-shape masks on selected leaves; unselected leaves keep their
        prior mask or get a scalar ``True``.

    Raises:
        ValueError: unknown ``method``, bad amount, nothing selected.
        TypeError: bad amount or key; ``"random"`` without a key, ``"l1"`` with one.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> p = {"a": jnp.array([[1.0, 5.0]]), "b": jnp.array([[2.0, 0.5]])}
        >>> m = jp.global_unstructured(p, 2)
        >>> m["a"].tolist(), m["b"].tolist()
        ([[False, True]], [[True, False]])
    """
    if not isinstance(method, str):
        raise TypeError(f"method must be a method's name; got {method!r}.")
    chosen_method = _registry.for_global(method)
    if chosen_method.random:
        key = _keys.as_key(key)
    elif key is not None:
        raise TypeError(
            f"global_unstructured with method={method!r} is not random and takes no key."
        )
    amount = _amount.check_amount(amount)
    paths, leaves, treedef = _paths.flatten(params)
    priors_by_path = _paths.by_path(masks, "masks", paths)
    scores_by_path = _paths.by_path(importance_scores, "importance_scores", paths)
    chosen = _paths.select(paths, leaves, where)

    sel_paths: list[str] = []
    scores: list[Array] = []
    priors: list[Array | None] = []
    shardings: list[Any] = []
    for path, leaf, pick in zip(paths, leaves, chosen):
        if not pick:
            continue
        with _paths.PathError(path):
            x = _checks.as_tensor(leaf, "params leaf")
            s = _checks.check_scores(scores_by_path.get(path), x.shape, "importance_scores")
            priors.append(_checks.as_mask(priors_by_path.get(path), x.shape, "masks leaf"))
        sel_paths.append(path)
        scores.append(x if s is None else s)
        shardings.append(_tree.mask_sharding(leaf, x.ndim, None))

    specs = tuple(_methods.plan(chosen_method, tuple(s.shape)) for s in scores)
    for path, spec, s in zip(sel_paths, specs, scores):
        with _paths.PathError(path):
            _methods.keys_dtype(spec, jnp.dtype(s.dtype))  # the scores' shape
    total = sum(spec.units for spec in specs)
    kinds = {_amount.prior_kind(p) for p in priors} - {None}
    prior = "traced" if "traced" in kinds else ("concrete" if kinds else None)
    n_alive = None
    if _amount.needs_alive_count(amount, total, prior):
        concrete = [i for i, p in enumerate(priors) if p is not None]
        counted = _methods.count_alive_now(
            [specs[i] for i in concrete], [priors[i] for i in concrete]
        )
        n_alive = sum(counted) + sum(s.units for s, p in zip(specs, priors) if p is None)
    count, value = _amount.resolve(
        amount, total, prior=prior, n_alive=n_alive, what="entries of the selected leaves"
    )
    hashes = tuple(_keys.path_hash(p) for p in sel_paths)
    new = _program(specs, count, hashes, key, scores, priors, value, tuple(shardings))
    out = dict(zip(sel_paths, new))
    result = [out[p] if p in out else priors_by_path.get(p, _checks.true_scalar()) for p in paths]
    return jax.tree_util.tree_unflatten(treedef, result)
