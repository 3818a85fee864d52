"""torch's mask rules, computed in JAX.

:func:`compute` reproduces ``compute_mask`` of each torch method, and the slicing and
combination of ``PruningContainer``, on JAX arrays: the units a method may choose are the
alive entries (unstructured) or alive channels (structured) of the prior mask, counted and
validated as torch counts and validates them. Counting, rounding, ordering and selection are
jaxprune's (:mod:`jaxprune._kernel`); what stays here is torch's own: soft masks read by
value, the container's view of a 1-D tensor, RandomStructured's threshold rule, torch's
errors and dtypes. Two inputs come from torch itself (:class:`Torch`): random numbers from
its default generator, through the same calls, with the same sizes and in the same order as
torch makes them, and LnStructured's channel norms, from the same norm call torch makes on
the same tensor, so masks are bit-identical to torch's under the same ``torch.manual_seed``.
With a JAX key the random methods use ``jaxprune`` instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxprune as jp
from jaxprune import _kernel


class Rule(NamedTuple):
    """What one pruning method asks for, read off a torch or torch_compat method object."""

    kind: str
    amount: Any = None
    dim: int = -1
    n: Any = None
    key: Any = None  # a jax key, or None for torch's generator
    mask: Any = None  # CustomFromMask's mask, as a JAX array


class Torch(NamedTuple):
    """What comes from torch itself. ``like(n)`` is ``rand_like`` of an n-vector of the
    tensor's dtype; ``default(n)`` is ``torch.rand(n)``; ``norms(n, dim, shape, alive)`` is
    torch's ``_compute_norm`` of the tensor (reshaped to ``shape``, and of its ``alive``
    channels along ``dim`` only, as the container slices it when ``alive`` is given), one
    norm per channel it sees, in torch's dtype."""

    like: Callable[[int], jax.Array]
    default: Callable[[int], jax.Array]
    norms: Callable[[Any, int, tuple[int, ...], Any], jax.Array]


def _count(amount: Any, units: int, op: str | None = None) -> int:
    # torch's _compute_nparams_toprune and _validate_pruning_amount, messages included. With
    # ``op``, torch hands the count to that selection op, which refuses a bool (amount=True).
    k = _kernel.exact_count(amount, units)
    if op is not None and isinstance(amount, bool) and k:
        raise TypeError(f"{op}(): argument 'k' must be int, not bool")
    return k


def _torch_size(shape: tuple[int, ...]) -> str:
    return f"torch.Size({list(shape)})"


def _check_structured(t: jax.Array, dim: int) -> int:
    if t.ndim <= 1:
        raise ValueError(
            "Structured pruning can only be applied to multidimensional tensors. Found "
            f"tensor of shape {_torch_size(t.shape)} with {t.ndim} dims"
        )
    if dim >= t.ndim:
        raise IndexError(f"Invalid index {dim} for tensor of size {_torch_size(t.shape)}")
    if dim < -t.ndim:
        raise IndexError("tuple index out of range")
    return dim % t.ndim


@jax.jit
def _lowest(values: jax.Array, alive: jax.Array | None, k: jax.Array) -> jax.Array:
    """The ``k`` alive units of smallest ``|values|`` (one compiled program per shape)."""
    (pruned,) = _kernel.lowest_k([_kernel.order_key(values)], [alive], k)
    return pruned


@functools.partial(jax.jit, static_argnums=0)
def _spread(shape: tuple[int, ...], values: jax.Array, alive: jax.Array | None) -> jax.Array:
    """``values`` (one per alive unit, in row-major order) placed at the alive units."""
    if alive is None:
        return values.reshape(shape)
    idx = jnp.flatnonzero(alive.reshape(-1), size=values.size)
    return jnp.zeros(math.prod(shape), values.dtype).at[idx].set(values).reshape(shape)


@jax.jit
def _largest(values: jax.Array, alive: jax.Array | None, k: jax.Array) -> jax.Array:
    """The ``k`` alive units of largest ``values`` (non-negative), ties by position."""
    (pruned,) = _kernel.lowest_k([~_kernel.order_key(values)], [alive], k)
    return pruned


@jax.jit
def _at_or_below_kth(prob: jax.Array, k: jax.Array) -> jax.Array:
    """torch's RandomStructured rule: prune every draw not above the k-th smallest."""
    return ~(prob > jnp.sort(prob)[k - 1])


def _count_alive(alive: jax.Array | None, units: int) -> int:
    return units if alive is None else int(alive.sum())


def _unstructured(
    rule: Rule, t: jax.Array, alive: jax.Array | None, draws: Torch
) -> jax.Array | None:
    """Pruned entries (bool, ``t``'s shape) among ``alive`` ones (None: all), or None."""
    if rule.kind == "identity":
        return None
    n_alive = _count_alive(alive, t.size)
    k = _count(rule.amount, n_alive, "topk")
    if k == 0:
        return None
    if rule.kind == "l1_unstructured":
        return _lowest(t, alive, np.uint32(k))
    if rule.key is not None:
        kept = jp.random_unstructured(rule.key, t, k, default_mask=alive)
        return ~kept if alive is None else alive & ~kept
    prob = draws.like(n_alive)
    return _largest(_spread(tuple(t.shape), prob, alive), alive, np.uint32(k))


def _structured(
    rule: Rule, t: jax.Array, alive_c: jax.Array | None, draws: Torch
) -> jax.Array | None:
    """Pruned channels (bool, one per channel) among ``alive_c`` (None: all), or None."""
    d = _check_structured(t, rule.dim)
    units = t.shape[d]
    n_alive = _count_alive(alive_c, units)
    k = _count(rule.amount, n_alive, "kthvalue" if rule.kind == "random_structured" else None)
    if k == 0:
        return None
    if rule.kind == "ln_structured":
        norms = draws.norms(rule.n, d, tuple(t.shape), alive_c)  # of the alive channels
        return _lowest(_spread((units,), norms, alive_c), alive_c, np.uint32(k))
    if rule.key is not None:
        shape = [1] * t.ndim
        shape[d] = units
        prior = None if alive_c is None else alive_c.reshape(shape)
        kept = jp.random_structured(rule.key, t, k, d, default_mask=prior).reshape(-1)
        return ~kept if alive_c is None else alive_c & ~kept
    prob = draws.default(n_alive)  # torch's draws; the k-th smallest is found in JAX
    return _spread((units,), _at_or_below_kth(prob, np.uint32(k)), alive_c)


def compute(
    rule: Rule, t: jax.Array, prior: jax.Array | None, draws: Torch, *, container: bool
) -> jax.Array | None:
    """What one method multiplies the mask in force by, or None when it prunes nothing (torch
    then returns the prior tensor itself).

    The result ``m`` broadcasts to ``t``: the new mask is ``prior * m`` (``m`` alone for a
    first prune). For the selection methods ``m`` is boolean, False on the units pruned now
    (keepdims for a structured method); for ``CustomFromMask`` it is the given mask's values.
    Masks are used with their values, as torch uses them: an entry is an unpruned unit of an
    unstructured method when its mask value is exactly 1, a channel is unpruned for a
    structured one while any of its mask values is nonzero.

    Args:
        rule: the method.
        t: the importance scores, in torch's layout.
        prior: the mask in force (``t``'s shape, any real dtype), or None for a mask of ones.
        draws: what comes from torch (its random numbers, its norms).
        container: True for torch's ``PruningContainer`` semantics (the method picks among the
            units the prior leaves alive, and a 1-D tensor counts as one channel), False for a
            method's own ``compute_mask`` (it picks among all units).
    """
    if rule.kind == "custom_from_mask":
        shape = t.shape if prior is None else prior.shape
        if tuple(rule.mask.shape) != tuple(shape):
            raise jp.ShapeMismatchError(
                f"default_mask shape {_torch_size(shape)} must match self.mask shape "
                f"{_torch_size(rule.mask.shape)}"
            )
        return rule.mask
    if not jp_method(rule.kind).structured:
        alive = prior == 1 if container else None
        pruned = _unstructured(rule, t, alive, draws)
        return None if pruned is None else ~pruned
    if container and t.ndim == 1:
        # torch's container indexes a list of one slice with dim: only dim 0 or -1 exist.
        if rule.dim < -1:
            raise IndexError("Index is out of bounds for tensor with dimensions 1")
        if rule.dim >= 1:
            raise IndexError("list assignment index out of range")
        # torch sums the prior over no axis (all of it) and indexes t with that scalar: the
        # method then sees t as one (1, N) row, or an empty (0, N) one if nothing is alive.
        if not bool((prior != 0).any()):
            empty = t.reshape(1, -1)[:0]
            compute(rule, empty, prior.reshape(1, -1)[:0], draws, container=False)
            return None
        row = compute(rule, t.reshape(1, -1), prior.reshape(1, -1), draws, container=False)
        return None if row is None else jnp.broadcast_to(row, (1, t.size)).reshape(t.shape)
    if container:
        d = _check_container_dim(t, rule.dim)
        axes = tuple(i for i in range(t.ndim) if i != d)
        alive_c = (prior != 0).any(axis=axes)
    else:
        d = _check_structured(t, rule.dim)
        alive_c = None
    pruned_c = _structured(rule, t, alive_c, draws)
    if pruned_c is None:
        return None
    shape = [1] * t.ndim
    shape[d] = t.shape[d]
    return ~pruned_c.reshape(shape)


def _check_container_dim(t: jax.Array, dim: int) -> int:
    n_dims = t.ndim
    d = dim + n_dims if dim < 0 else dim
    if d < 0:
        raise IndexError(f"Index is out of bounds for tensor with dimensions {n_dims}")
    if d >= n_dims:
        # torch's container would fail the same way inside the method's own check.
        _check_structured(t, dim)
    return d


def jp_method(kind: str) -> Any:
    """The jaxprune method a torch method mirrors (one registry for both packages)."""
    return _kernel.method(kind)


def key_or_none(key: Any) -> Any:
    return None if key is None else _kernel.as_key(key)


def key_data(key: Any) -> np.ndarray | None:
    """A key stored as plain uint32 data, so method objects pickle and deep-copy."""
    if key is None:
        return None
    return np.asarray(jax.random.key_data(key_or_none(key)))
