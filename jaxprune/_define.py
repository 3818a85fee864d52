"""A user's own pruning method from a scoring function: :func:`register_method`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from . import _methods, _registry
from ._typing import Amount, Array, ArrayLike, PRNGKey


def _options(scores: Callable[..., Any], skip: int) -> tuple[tuple, tuple, bool]:
    """``(required, defaults, any)`` keyword options of a scoring function, read from its
    signature after its first ``skip`` parameters (the key, ``x``, ``dim``)."""
    try:
        params = list(inspect.signature(scores).parameters.values())
    except (TypeError, ValueError):  # no signature to read: any keyword is an option
        return (), (), True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    taken = [p for p in params if p.kind in positional or p.kind is p.VAR_POSITIONAL]
    if len(taken) < skip and not any(p.kind is p.VAR_POSITIONAL for p in taken):
        raise TypeError(
            f"scores must take {skip} positional argument(s) (the key first when random, "
            f"then x, then dim when structured); {scores!r} takes {len(taken)}."
        )
    rest = [p for p in params if p not in taken[:skip] and p.kind is not p.VAR_POSITIONAL]
    required = tuple(p.name for p in rest if p.kind is not p.VAR_KEYWORD and p.default is p.empty)
    defaults = tuple(
        (p.name, p.default)
        for p in rest
        if p.kind is not p.VAR_KEYWORD and p.default is not p.empty
    )
    return required, defaults, any(p.kind is p.VAR_KEYWORD for p in rest)


def _docstring(name: str, structured: bool, random: bool, scores: Callable[..., Any]) -> str:
    units = "channels along ``dim``" if structured else "entries"
    first = "key, " if random else ""
    dim = ", dim=-1" if structured else ""
    own = (inspect.getdoc(scores) or "").strip()
    return (
        f"``{name}({first}x, amount{dim}, *, default_mask=None, importance_scores=None, "
        f"**options)``: prune the ``amount`` unpruned {units} of ``x`` whose scores are "
        "lowest (a registered method; see :func:`jaxprune.register_method`)."
        + (f"\n\nScores: {own}" if own else "")
    )


def register_method(
    name: str,
    scores: Callable[..., ArrayLike],
    *,
    structured: bool = False,
    random: bool = False,
) -> Callable[..., Array]:
    """Add a pruning method of your own, defined by how it scores units.

    ``scores`` gives one score per unit and the units with the lowest scores are pruned,
    with the library's rules everywhere else: amounts (an int count, a float fraction
    rounded with Python's ``round``, or a traced scalar), prior masks (pruned units are
    neither counted nor chosen again), ties (the lower position goes first), NaN scores
    pruned last, and exact counts.

    - Unstructured: ``scores(x, **options)`` returns an array of ``x``'s shape.
    - Structured (``structured=True``): ``scores(x, dim, **options)`` returns a 1-D array
      with one score per channel along ``dim`` (``dim`` is normalised to be non-negative).
    - Random (``random=True``): the key comes first, ``scores(key, x, ...)``; the key is the
      call's key (in the pytree layer, each leaf's ``fold_in(key, hash(path))``).

    ``scores`` runs inside a traced program: use ``jax.numpy``. Its keyword arguments after
    ``x`` (and ``dim``) are the method's options: those without a default are required,
    and all are static (hashable values, part of the compiled program: a new value
    compiles again, a new amount or prior mask does not). Scores may be floats (ordered by
    value, -0.0 equal to +0.0), integers or booleans. ``importance_scores`` replaces ``x``
    as the input of ``scores``.

    The returned core function follows the built-ins' convention:
    ``f(x, amount, *, default_mask=None, importance_scores=None, **options)``, with
    ``dim=-1`` after ``amount`` when structured and the key first when random. From then
    on the method's name (or ``f``) works in :func:`jaxprune.prune`,
    :func:`jaxprune.gradual_pruning`, ``jaxprune.nnx.prune`` and, for an unstructured
    method, ``jaxprune.global_unstructured(params, amount, method=name)``. torch_compat
    does not take registered methods (use torch's ``BasePruningMethod`` there).

    Args:
        name: the method's name; it must not be registered already.
        scores: the scoring function.
        structured: score channels along ``dim`` instead of entries.
        random: the scoring function takes a PRNG key first.

    Returns:
        The method's core function.

    Raises:
        ValueError: ``name`` is taken (a built-in's name included) or empty.
        TypeError: ``scores`` is not callable or takes too few positional arguments; a flag
            is not a bool.

    Example:
        >>> import jax.numpy as jnp, jaxprune as jp
        >>> def row_weighted(x):  # |w| scaled by the norm of its row
        ...     return jnp.abs(x) * jnp.linalg.norm(x, axis=1, keepdims=True)
        >>> f = jp.register_method("row_weighted_doc", row_weighted)
        >>> w = jnp.array([[1.0, 2.0], [3.0, 0.5]])
        >>> f(w, 2).tolist()
        [[False, True], [True, False]]
        >>> jp.prune({"w": w}, "row_weighted_doc", amount=1, where="w")["w"].tolist()
        [[True, True], [True, False]]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}.")
    if not callable(scores):
        raise TypeError(f"scores must be callable; got {scores!r}.")
    for flag, value in (("structured", structured), ("random", random)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag} must be a bool; got {value!r}.")
    required, defaults, any_options = _options(scores, 1 + random + structured)
    method: _registry.Method

    if structured and random:

        def function(key, x, amount, dim=-1, *, default_mask=None, importance_scores=None, **kw):
            return _call(key, x, amount, dim, default_mask, importance_scores, kw)

    elif structured:

        def function(x, amount, dim=-1, *, default_mask=None, importance_scores=None, **kw):
            return _call(None, x, amount, dim, default_mask, importance_scores, kw)

    elif random:

        def function(key, x, amount, *, default_mask=None, importance_scores=None, **kw):
            return _call(key, x, amount, -1, default_mask, importance_scores, kw)

    else:

        def function(x, amount, *, default_mask=None, importance_scores=None, **kw):
            return _call(None, x, amount, -1, default_mask, importance_scores, kw)

    def _call(
        key: PRNGKey | None,
        x: ArrayLike,
        amount: Amount,
        dim: Any,
        default_mask: ArrayLike | None,
        importance_scores: ArrayLike | None,
        kw: dict[str, Any],
    ) -> Array:
        known = set(required) | {k for k, _ in defaults}
        unknown = [k for k in kw if k not in known and not any_options]
        if unknown:
            raise TypeError(f"{name} got an unexpected keyword argument {unknown[0]!r}.")
        return _methods.call(
            method,
            key,
            x,
            amount,
            dim=dim,
            default_mask=default_mask,
            importance_scores=importance_scores,
            **kw,
        )

    function.__name__ = function.__qualname__ = name
    function.__doc__ = _docstring(name, structured, random, scores)
    method = _registry.register(
        _registry.Method(
            name,
            scores,
            structured=structured,
            random=random,
            options=required,
            defaults=defaults,
            any_options=any_options,
            function=function,
        )
    )
    return function
