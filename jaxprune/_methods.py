"""The machinery every selection method shares: plan in Python, then compute in one program.

A method (:class:`jaxprune._registry.Method`) prunes *units*: entries for the unstructured
methods, channels along ``dim`` for the structured ones. :func:`plan` validates a call before
any work and returns a hashable :class:`Spec`; :func:`jaxprune._amount.resolve` decides how
the count is computed among the units that the prior mask leaves alive (torch's
``PruningContainer`` semantics); :func:`compute` builds the mask inside a traced program.
:func:`call` drives the three steps for a core function; the pytree layer drives them for
many leaves at once.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _amount, _checks, _keys, _order, _select
from ._registry import Method
from ._typing import Amount, Array, ArrayLike

#: Selections of at most this many units are batched (see :mod:`jaxprune._batch`).
BATCH_LIMIT = 1 << 16


class Spec(NamedTuple):
    """Everything static about one pruning call."""

    method: Method
    shape: tuple[int, ...]
    dim: int | None  # channel axis, structured methods only
    options: tuple[tuple[str, Any], ...]  # the method's static options (ln_structured: n)
    units: int  # entries, or channels along dim


def plan(method: Method, shape: tuple[int, ...], *, dim: object = -1, **options: Any) -> Spec:
    """Validate the static side of a call: shape, ``dim``, then the method's options."""
    given = tuple(sorted(options.items()))
    try:
        hash((dim, given))
    except TypeError:  # an unhashable dim or option (a list, say): checked without the cache
        return _plan.__wrapped__(method, tuple(shape), dim, given)
    return _plan(method, tuple(shape), dim, given)


@functools.lru_cache(maxsize=4096, typed=True)
def _plan(method: Method, shape: tuple[int, ...], dim: object, given: tuple) -> Spec:
    d = None
    if method.structured:
        _checks.check_structured(shape)
        d = _checks.check_dim(shape, dim)
    options = method.static_options(dict(given)) if method.has_options else ()
    return Spec(
        method, tuple(shape), d, options, shape[d] if method.structured else math.prod(shape)
    )


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


def _on_host(prior: Any) -> bool:
    """Whether a concrete prior is in host memory (NumPy, or a JAX array on the CPU)."""
    if not isinstance(prior, jax.Array):
        return True
    try:
        return all(d.platform == "cpu" for d in prior.devices())
    except (AttributeError, RuntimeError):  # a deleted or unusual array: count it in JAX
        return False


def _count_alive_numpy(spec: Spec, prior: Any) -> int:
    """:func:`alive_units` counted by NumPy (no program to compile, no device round trip)."""
    if spec.dim is None:
        return int(np.count_nonzero(np.broadcast_to(np.asarray(prior), spec.shape)))
    return int(np.count_nonzero(alive_channels_numpy(spec.shape, spec.dim, prior)))


def alive_channels_numpy(shape: tuple[int, ...], dim: int, prior: Any) -> np.ndarray:
    """:func:`alive_units` of channels along ``dim`` by NumPy: a channel is alive while the
    prior (any shape that broadcasts, keepdims included) keeps one of its entries."""
    ndim = len(shape)
    others = [i for i in range(ndim) if i != dim]
    if any(shape[i] == 0 for i in others):  # torch's `sum != 0` over no entries
        return np.zeros(shape[dim], bool)
    p = np.asarray(prior, bool)
    p = p.reshape((1,) * (ndim - p.ndim) + p.shape)
    alive = np.any(p, axis=tuple(i for i in others if p.shape[i] != 1), keepdims=True)
    return np.broadcast_to(alive.reshape(-1), (shape[dim],))


def count_alive_now(specs: list[Spec], priors: list[Array]) -> list[int]:
    """Count the unpruned units of concrete priors: by NumPy for priors in host memory,
    for the others in one program and one array (one host transfer, not one per leaf)."""
    counts: dict[int, int] = {}
    on_device = []
    for i, (spec, prior) in enumerate(zip(specs, priors)):
        if _on_host(prior):
            counts[i] = _count_alive_numpy(spec, prior)
        else:
            on_device.append(i)
    if on_device:
        found = np.asarray(
            _count_alive(tuple(specs[i] for i in on_device), [priors[i] for i in on_device])
        )
        counts.update(zip(on_device, (int(c) for c in found)))
    return [counts[i] for i in range(len(specs))]


def n_alive(spec: Spec, alive: Array | None) -> Array:
    """The number of unpruned units, inside a program."""
    return jnp.uint32(spec.units) if alive is None else jnp.sum(alive, dtype=jnp.uint32)


def mask_shape(spec: Spec) -> tuple[int, ...]:
    """The shape of a mask without prior: the tensor's, or keepdims (``n`` along ``dim``)."""
    if spec.dim is None:
        return spec.shape
    return tuple(spec.units if i == spec.dim else 1 for i in range(len(spec.shape)))


def unit_shape(spec: Spec) -> tuple[int, ...]:
    """The shape of one call's units: the tensor's for entries, ``(n,)`` for channels."""
    return spec.shape if spec.dim is None else (spec.units,)


def what(spec: Spec) -> str:
    """The units of a call, for error messages."""
    if spec.method.units:
        return f"{spec.method.units}, a grid of shape {spec.shape}"
    units = "channels" if spec.dim is not None else "entries"
    return f"{units} of a tensor of shape {spec.shape}"


def unit_keys(spec: Spec, key: Array | None, scores: Array | None) -> Array:
    """The selection keys of one call's units (inside a traced program): its method's scores
    of ``scores`` (the tensor or its importance scores), ordered as the method orders them
    (:data:`jaxprune._registry.ORDERS`).

    Raises:
        ValueError: the scores do not have one value per unit.
    """
    method = spec.method
    x = scores if method.reads_values else jax.ShapeDtypeStruct(spec.shape, jnp.float32)
    out = method.score(key, x, spec.dim, spec.options)
    want = unit_shape(spec)
    if tuple(jnp.shape(out)) != want:
        per = "channel along dim" if method.structured else "entry"
        raise ValueError(
            f"{method.name}: its scores have shape {tuple(jnp.shape(out))}; expected {want} "
            f"(one score per {per})."
        )
    out = jnp.asarray(out)
    return _order.signed_key(out) if method.order == "signed" else out


@functools.lru_cache(maxsize=1024)
def keys_dtype(spec: Spec, dtype: Any) -> Any:
    """The dtype of :func:`unit_keys` for scores of ``dtype`` (checks the method's scores'
    shape once, before any work)."""
    if spec.method.order == "draws":
        return jnp.dtype(jnp.uint32)
    key = jax.random.key(0) if spec.method.random else None
    x = jax.ShapeDtypeStruct(spec.shape, jnp.float32 if dtype is None else dtype)
    return jnp.dtype(jax.eval_shape(lambda k, s: unit_keys(spec, k, s), key, x).dtype)


class Selection(NamedTuple):
    """One call's selection problem: keys per unit, which units are alive, how many go."""

    keys: Array  # ordered by their _select.order_key (unsigned keys as they are)
    alive: Array | None
    k: Array


def is_large(spec: Spec) -> bool:
    """Whether a call selects among more than :data:`BATCH_LIMIT` units."""
    return spec.units > BATCH_LIMIT


def selection(
    spec: Spec,
    count: _amount.Count,
    key: Array | None,
    scores: Array | None,
    prior: Array | None,
    value: Any,
    bits: Array | None = None,
) -> Selection:
    """Set up the selection of one call, inside a traced program.

    ``count`` and ``value`` are :func:`jaxprune._amount.resolve`'s pair. ``bits`` are the
    call's keys when the caller made them already (the draws of a random method).
    """
    alive = alive_units(spec, prior)
    k = count.in_program(value, n_alive(spec, alive), spec.units)
    keys = unit_keys(spec, key, scores) if bits is None else bits
    return Selection(keys, alive, k)


def finish(spec: Spec, pruned: Array, sel: Selection, prior: Array | None) -> Array:
    """The mask of one call from the units its selection pruned."""
    if spec.dim is None:
        kept = ~pruned
        return kept if sel.alive is None else kept & sel.alive
    kept = (~pruned).reshape(mask_shape(spec))
    return kept if prior is None else kept & prior


def compute(
    spec: Spec,
    count: _amount.Count,
    key: Array | None,
    scores: Array | None,
    prior: Array | None,
    value: Any,
) -> Array:
    """The boolean mask of one call, inside a traced program (see :func:`selection`)."""
    sel = selection(spec, count, key, scores, prior, value)
    (pruned,) = _select.lowest_k([sel.keys], [sel.alive], sel.k)
    return finish(spec, pruned, sel, prior)


compute_jit = jax.jit(compute, static_argnums=(0, 1))


def resolve(
    spec: Spec,
    amount: Amount,
    prior: Array | None,
    n_alive: int | None = None,
    tracing: bool | None = None,
) -> tuple[_amount.Count, Any]:
    """:func:`jaxprune._amount.resolve` for one call (``tracing``: see
    :func:`jaxprune._amount.prior_kind`)."""
    kind = _amount.prior_kind(prior, tracing)
    return _amount.resolve(amount, spec.units, prior=kind, n_alive=n_alive, what=what(spec))


def needs_alive_count(
    spec: Spec, amount: Amount, prior: Array | None, tracing: bool | None = None
) -> bool:
    """Whether the call's unpruned units must be counted on the host before :func:`resolve`."""
    return _amount.needs_alive_count(amount, spec.units, _amount.prior_kind(prior, tracing))


def run(
    spec: Spec,
    key: Array | None,
    scores: Array | None,
    prior: Array | None,
    amount: Amount,
) -> Array:
    """Validate the count against the prior, then compute the mask (one compiled call)."""
    alive = None
    if needs_alive_count(spec, amount, prior):
        (alive,) = count_alive_now([spec], [prior])
    count, value = resolve(spec, amount, prior, alive)
    return compute_jit(spec, count, key, scores, prior, value)


def call(
    method: Method,
    key: Any,
    x: ArrayLike,
    amount: Amount,
    *,
    dim: Any = -1,
    default_mask: ArrayLike | None = None,
    importance_scores: ArrayLike | None = None,
    **options: Any,
) -> Array:
    """A core function's whole call: every check in torch's order, then :func:`run`."""
    amount = _amount.check_amount(amount)
    x = _checks.as_tensor(x)
    spec = plan(method, x.shape, dim=dim, **options)
    scores = None
    if method.reads_values:
        given = None
        if method.importance:
            given = _checks.check_scores(importance_scores, spec.shape, "importance_scores")
        scores = x if given is None else given
    prior = _checks.as_mask(default_mask, spec.shape, "default_mask")
    if method.random:
        key = _keys.as_key(key)
    return run(spec, key, scores, prior, amount)
