"""The machinery every selection method shares: plan in Python, then compute in one program.

A method prunes *units*: entries for the unstructured methods, channels along ``dim`` for the
structured ones. :func:`plan` validates a call before any work and returns a hashable
:class:`Spec`; :func:`count_to_prune` turns the amount into a count among the units that the
prior mask leaves alive (torch's ``PruningContainer`` semantics); :func:`compute` builds the
mask inside a traced program. The public functions and the pytree layer are thin drivers of
these three steps.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _amount, _checks, _select
from ._typing import Amount, Array

UNSTRUCTURED = ("random_unstructured", "l1_unstructured")
STRUCTURED = ("random_structured", "ln_structured")
RANDOM = ("random_unstructured", "random_structured")
SCORED = ("l1_unstructured", "ln_structured")

#: Selections of at most this many units are batched (see :mod:`jaxprune._batch`).
BATCH_LIMIT = 1 << 16


class Spec(NamedTuple):
    """Everything static about one pruning call."""

    method: str
    shape: tuple[int, ...]
    dim: int | None  # channel axis, structured methods only
    norm: float | str | None  # ln_structured only
    units: int  # entries, or channels along dim


def check_norm(n: object, name: str = "n") -> float | str:
    """A norm order: any int or float (inf and -inf included) or ``'fro'``."""
    if isinstance(n, str):
        if n != "fro":
            raise ValueError(f"{name}={n!r} is not a supported norm: use a number or 'fro'.")
        return n
    if isinstance(n, bool) or not isinstance(n, (int, float)) and not hasattr(n, "__float__"):
        raise TypeError(f"{name} must be a number or 'fro'; got {n!r}.")
    value = float(n)
    if math.isnan(value):
        raise ValueError(f"{name}=nan is not a norm order.")
    return value


def plan(method: str, shape: tuple[int, ...], *, dim: object = None, n: object = None) -> Spec:
    """Validate the static side of a call: shape, ``dim`` and ``n``."""
    try:
        hash((dim, n))
    except TypeError:  # an unhashable dim or n (a list, say): checked without the cache
        return _plan.__wrapped__(method, tuple(shape), dim, n)
    return _plan(method, tuple(shape), dim, n)


@functools.lru_cache(maxsize=4096, typed=True)
def _plan(method: str, shape: tuple[int, ...], dim: object, n: object) -> Spec:
    if method in STRUCTURED:
        _checks.check_structured(shape)
        d = _checks.check_dim(shape, dim)
        norm = check_norm(n) if method == "ln_structured" else None
        return Spec(method, tuple(shape), d, norm, shape[d])
    return Spec(method, tuple(shape), None, None, math.prod(shape))


def alive_units(spec: Spec, prior: Array | None) -> Array | None:
    """Which units are still unpruned: entries kept, or channels with a kept entry."""
    if prior is None:
        return None
    if spec.dim is None:
        return jnp.broadcast_to(prior, spec.shape)
    ndim = len(spec.shape)
    others = [i for i in range(ndim) if i != spec.dim]
    # Over a zero-size axis `any` is False, as torch's `sum != 0` is.
    if any(spec.shape[i] == 0 for i in others):
        return jnp.zeros((spec.units,), bool)
    # Reduce only the axes the prior really has: a keepdims prior is read as it is, never
    # broadcast to the weight's shape (`any` over a broadcast axis is the value itself).
    p = jnp.reshape(prior, (1,) * (ndim - jnp.ndim(prior)) + tuple(jnp.shape(prior)))
    p = jnp.any(p, axis=tuple(i for i in others if p.shape[i] != 1), keepdims=True)
    return jnp.broadcast_to(p.reshape(p.shape[spec.dim]), (spec.units,))


@functools.partial(jax.jit, static_argnums=0)
def _count_alive(specs: tuple[Spec, ...], priors: list[Array]) -> Array:
    return jnp.stack([jnp.sum(alive_units(s, p), dtype=jnp.uint32) for s, p in zip(specs, priors)])


def count_alive_now(specs: list[Spec], priors: list[Array]) -> list[int]:
    """Count the unpruned units of concrete priors, all in one program and one array (one
    host transfer, not one per leaf)."""
    if not specs:
        return []
    return [int(c) for c in np.asarray(_count_alive(tuple(specs), list(priors)))]


def count_to_prune(
    spec: Spec, amount: Amount, prior: Array | None, n_alive: int | None = None
) -> int | Array:
    """The number of units to prune.

    Exact (Python's rounding, torch's errors) whenever the number of unpruned units is known
    here: without a prior, or with ``n_alive`` counted from a concrete prior. Otherwise a
    traced count computed inside the program (see :func:`jaxprune._amount.traced_count`).
    """
    what = "channels" if spec.dim is not None else "entries"
    if isinstance(amount, (int, float)):
        if prior is None:
            return _amount.exact_count(
                amount, spec.units, f"{what} of a tensor of shape {spec.shape}"
            )
        if n_alive is not None:
            return _amount.exact_count(
                amount, n_alive, f"unpruned {what} of a tensor of shape {spec.shape}"
            )
        if isinstance(amount, int) and amount > spec.units:
            _amount.exact_count(amount, spec.units, f"{what} of a tensor of shape {spec.shape}")
    return None  # computed in the program


def _n_alive(spec: Spec, alive: Array | None) -> Array:
    """The number of unpruned units, inside a program."""
    return jnp.uint32(spec.units) if alive is None else jnp.sum(alive, dtype=jnp.uint32)


def _k_in_program(spec: Spec, amount: Amount, alive: Array | None) -> Array:
    return _amount.traced_count(amount, _n_alive(spec, alive), spec.units)


def norms_dtype(dtype: Any) -> Any:
    """The dtype channel norms are computed in: the scores' own float of 32 bits or more,
    else float32."""
    dtype = jnp.dtype(dtype)
    return dtype if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize >= 4 else jnp.float32


def channel_norms(scores: Array, norm: float | str, dim: int) -> Array:
    """The L``norm`` norm of each channel along ``dim`` (over all other axes)."""
    scores = scores.astype(norms_dtype(scores.dtype))
    axes = tuple(i for i in range(scores.ndim) if i != dim)
    a = jnp.abs(scores)
    if norm == "fro" or norm == 2.0:
        return jnp.sqrt(jnp.sum(a * a, axis=axes))
    if norm == math.inf:
        return jnp.max(a, axis=axes, initial=0.0)
    if norm == -math.inf:
        return jnp.min(a, axis=axes, initial=math.inf)
    if norm == 0.0:
        return jnp.sum(a != 0, axis=axes).astype(a.dtype)
    if norm == 1.0:
        return jnp.sum(a, axis=axes)
    return jnp.sum(a**norm, axis=axes) ** (1.0 / norm)


def mask_shape(spec: Spec) -> tuple[int, ...]:
    """The shape of a mask without prior: the tensor's, or keepdims (``n`` along ``dim``)."""
    if spec.dim is None:
        return spec.shape
    return tuple(spec.units if i == spec.dim else 1 for i in range(len(spec.shape)))


def unit_shape(spec: Spec) -> tuple[int, ...]:
    """The shape of one call's units: the tensor's for entries, ``(n,)`` for channels."""
    return spec.shape if spec.dim is None else (spec.units,)


class Selection(NamedTuple):
    """One call's selection problem: keys per unit, which units are alive, how many go."""

    keys: Array  # scores ordered by their _select.order_key, or random bits
    alive: Array | None
    k: Array


def is_large(spec: Spec) -> bool:
    """Whether a call selects among more than :data:`BATCH_LIMIT` units."""
    return spec.units > BATCH_LIMIT


def selection(
    spec: Spec,
    static_amount: int | float | str | None,
    key: Array | None,
    scores: Array | None,
    prior: Array | None,
    k: Array | None,
    bits: Array | None = None,
) -> Selection:
    """Set up the selection of one call, inside a traced program.

    With ``static_amount=None``, ``k`` is the count to prune, computed in Python. Otherwise
    the count is computed here: from ``static_amount`` when it is a Python number (its
    rounding stays exact where a table allows), from the traced amount held in ``k`` when
    ``static_amount == "traced"``, or from the table of Python's rounding held in ``k``
    (:func:`jaxprune._amount.count_table`) when ``static_amount == "table"``. ``bits`` are
    the random methods' draws when the caller made them already
    (``random_keys(key, unit_shape(spec))``).
    """
    alive = alive_units(spec, prior)
    if static_amount == "traced":
        k = _k_in_program(spec, k, alive)
    elif static_amount == "table":  # k holds round(amount * n) for every n
        k = k[_n_alive(spec, alive)]
    elif static_amount is not None:
        k = _k_in_program(spec, static_amount, alive)
    if spec.method in RANDOM:
        keys = _select.random_keys(key, unit_shape(spec)) if bits is None else bits
    elif spec.method == "l1_unstructured":
        keys = scores
    else:
        keys = channel_norms(scores, spec.norm, spec.dim)
    return Selection(keys, alive, jnp.asarray(k, jnp.uint32))


def finish(spec: Spec, pruned: Array, sel: Selection, prior: Array | None) -> Array:
    """The mask of one call from the units its selection pruned."""
    if spec.dim is None:
        kept = ~pruned
        return kept if sel.alive is None else kept & sel.alive
    kept = (~pruned).reshape(mask_shape(spec))
    return kept if prior is None else kept & prior


def compute(
    spec: Spec,
    static_amount: int | float | str | None,
    key: Array | None,
    scores: Array | None,
    prior: Array | None,
    k: Array | None,
) -> Array:
    """The boolean mask of one call, inside a traced program (see :func:`selection`)."""
    sel = selection(spec, static_amount, key, scores, prior, k)
    (pruned,) = _select.lowest_k([sel.keys], [sel.alive], sel.k)
    return finish(spec, pruned, sel, prior)


compute_jit = jax.jit(compute, static_argnums=(0, 1))


def by_table(spec: Spec, amount: Amount, prior: Array | None) -> bool:
    """Whether a call with a concrete prior takes its count from a table of Python's
    rounding inside the program (:func:`count_argument`), rather than from the unpruned
    units counted first on the host: a float amount over at most ``BATCH_LIMIT`` units
    (structured methods, small weights). Counting first would wait for the device between
    two programs (a 96-weight round: ~3 ms -> ~2 ms), and a float cannot be out of range."""
    return (
        prior is not None
        and isinstance(amount, float)
        and spec.units <= BATCH_LIMIT
        and not _checks.is_traced(prior)
    )


def count_argument(
    spec: Spec, amount: Amount, prior: Array | None, n_alive: int | None
) -> tuple[int | float | str | None, Any]:
    """The ``(static_amount, k)`` pair that :func:`compute` takes for this call: the exact
    count when it is known here, else what the program needs to compute it."""
    if by_table(spec, amount, prior):
        return "table", _amount.device_table(amount, spec.units)
    k = count_to_prune(spec, amount, prior, n_alive)
    if k is not None:
        return None, np.uint32(k)
    if isinstance(amount, jax.Array):
        return "traced", amount
    return amount, None


def run(
    spec: Spec,
    key: Array | None,
    scores: Array | None,
    prior: Array | None,
    amount: Amount,
) -> Array:
    """Validate the count against the prior, then compute the mask (one compiled call)."""
    n_alive = None
    concrete = prior is not None and not _checks.is_traced(prior)
    if concrete and not isinstance(amount, jax.Array) and not by_table(spec, amount, prior):
        (n_alive,) = count_alive_now([spec], [prior])
    static, count = count_argument(spec, amount, prior, n_alive)
    return compute_jit(spec, static, key, scores, prior, count)
