"""Global unstructured pruning: one selection over the entries of many leaves."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _amount, _checks, _keys, _methods, _paths, _select, _tree
from ._typing import Amount, Array, PRNGKey, PyTree, Where

_METHODS = ("l1", "random")


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 7))
def _program(method, static_amount, hashes, key, scores, priors, k, shardings):
    if method == "l1":
        keys = list(scores)  # ordered by magnitude (_select.order_key)
    else:
        keys = [
            _select.random_keys(jax.random.fold_in(key, h), s.shape) for h, s in zip(hashes, scores)
        ]
    alive = [None if p is None else jnp.broadcast_to(p, s.shape) for p, s in zip(priors, scores)]
    if static_amount is not None:
        n_alive = jnp.zeros((), jnp.uint32)
        for a, s in zip(alive, scores):
            n_alive += s.size if a is None else jnp.sum(a, dtype=jnp.uint32)
        max_units = sum(s.size for s in scores)
        amount = k if static_amount == "traced" else static_amount
        k = _amount.traced_count(amount, n_alive, max_units)
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
    lowest draws go.

    Args:
        params: a pytree of arrays.
        amount: an int count or a float fraction of the unpruned selected entries.
        method: ``"l1"`` or ``"random"``.
        key: required for ``"random"``.
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
    if method not in _METHODS:
        raise ValueError(f"method={method!r} is not a global method; choose 'l1' or 'random'.")
    if method == "random":
        key = _keys.as_key(key)
    elif key is not None:
        raise TypeError("global_unstructured with method='l1' is not random and takes no key.")
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

    total = sum(int(s.size) for s in scores)
    static_amount: Any = None
    k: Any
    traced_priors = any(p is not None and _checks.is_traced(p) for p in priors)
    if isinstance(amount, jax.Array):
        static_amount, k = "traced", amount
    elif traced_priors:
        if isinstance(amount, int) and amount > total:
            _amount.exact_count(amount, total, "entries of the selected leaves")
        static_amount, k = amount, None
    else:
        n_alive = total
        concrete = [(s, p) for s, p in zip(scores, priors) if p is not None]
        if concrete:
            n_alive = sum(
                _methods.count_alive_now(
                    [_methods.plan("l1_unstructured", tuple(s.shape)) for s, _ in concrete],
                    [p for _, p in concrete],
                )
            ) + sum(int(s.size) for s, p in zip(scores, priors) if p is None)
        k = np.uint32(
            _amount.exact_count(amount, n_alive, "unpruned entries of the selected leaves")
        )
    hashes = tuple(_keys.path_hash(p) for p in sel_paths)
    new = _program(method, static_amount, hashes, key, scores, priors, k, tuple(shardings))
    out = dict(zip(sel_paths, new))
    result = [out[p] if p in out else priors_by_path.get(p, jnp.ones((), bool)) for p in paths]
    return jax.tree_util.tree_unflatten(treedef, result)
