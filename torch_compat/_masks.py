"""torch's mask rules: counted on the host, selected in one JAX program per call.

:func:`compute` reproduces ``compute_mask`` of each torch method, and the slicing and
combination of ``PruningContainer``. The host does what torch's own code does around the
selection: it reads which units the mask in force leaves alive (entries whose mask value is
exactly 1 for an unstructured method, channels with a nonzero value for a structured one),
counts them, validates the amount with torch's messages, takes from torch the inputs torch
would take (:class:`Torch`: random numbers from its default generator, with the same calls,
sizes and order; LnStructured's channel norms, from torch's own norm call), and multiplies
the mask in force by what the method keeps, as torch's container does; so masks are
bit-identical to torch's under the same ``torch.manual_seed``. The selection itself (the
ordering, the exact top-k of jaxprune's kernel, RandomStructured's threshold rule) runs in
JAX, in one compiled program per call (:func:`_select`).

That program serves every built-in method, and every size up to :data:`SMALL` units:
units are padded to a power-of-two bucket with dead units, so that the layers of a model
share a handful of programs, a structured method's program depends on its channels only,
and a new round never compiles (benchmarks/RESULTS.md, "First contact"). Small problems
cross to JAX as NumPy arrays (a DLPack exchange costs more than the copy); larger ones by
DLPack, at their own size. With a JAX key the random methods use ``jaxprune`` itself.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from . import _setup

_setup.configure()

import jax  # noqa: E402  (after the configuration above)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import jaxprune as jp  # noqa: E402
from jaxprune import _kernel  # noqa: E402

from ._bridge import Torch, to_jax, to_torch  # noqa: E402

#: The sizes problems are padded to (units: entries, or channels), smallest first; larger
#: problems run at their own size. Few sizes mean few programs: a small model's layers, a
#: script's calls and a callback's rounds share one or two (each costs 0.2-0.4 s to compile
#: and 50-90 ms to trace and load from the persistent cache); selecting among dead padding
#: costs microseconds (benchmarks/RESULTS.md, "First contact").
BUCKETS = (1 << 10, 1 << 13, 1 << 16)
#: Problems of at most this many units are padded to a bucket and cross as NumPy arrays.
SMALL = BUCKETS[-1]


class Rule(NamedTuple):
    """What one pruning method asks for, read off a torch or torch_compat method object."""

    kind: str
    amount: Any = None
    dim: int = -1
    n: Any = None
    key: Any = None  # a jax key, or None for torch's generator
    mask: Any = None  # CustomFromMask's mask (a torch tensor)


class Problem(NamedTuple):
    """One call's selection, on the host: ``k`` of the ``alive`` units (None: all) go.

    ``values`` holds one score per unit, or, with ``spread``, one per alive unit in order
    (torch's draws and norms are made for the alive units only). ``descending`` prunes the
    largest (torch's random draws: ``topk``); ``ties_all`` prunes every alive value at or
    below the k-th smallest (torch's RandomStructured threshold)."""

    values: torch.Tensor
    alive: torch.Tensor | None
    k: int
    units: int
    spread: bool = False
    descending: bool = False
    ties_all: bool = False


def _count(amount: Any, units: int, op: str | None = None) -> int:
    # torch's _compute_nparams_toprune and _validate_pruning_amount, messages included. With
    # ``op``, torch hands the count to that selection op, which refuses a bool (amount=True).
    k = _kernel.exact_count(amount, units)
    if op is not None and isinstance(amount, bool) and k:
        raise TypeError(f"{op}(): argument 'k' must be int, not bool")
    return k


def _torch_size(shape: tuple[int, ...]) -> str:
    return f"torch.Size({list(shape)})"


def _check_structured(t: torch.Tensor, dim: int) -> int:
    if t.dim() <= 1:
        raise ValueError(
            "Structured pruning can only be applied to multidimensional tensors. Found "
            f"tensor of shape {_torch_size(t.shape)} with {t.dim()} dims"
        )
    if dim >= t.dim():
        raise IndexError(f"Invalid index {dim} for tensor of size {_torch_size(t.shape)}")
    if dim < -t.dim():
        raise IndexError("tuple index out of range")
    return dim % t.dim()


def bucket(n: int) -> int:
    """The padded size of a problem of ``n`` units (at most :data:`SMALL`)."""
    return next(b for b in BUCKETS if n <= b)


def _keep(values, alive, k, descending, ties_all):
    """The units one call keeps (bool, ``values``' shape; see :class:`Problem`). The two
    rules are traced flags (one program for every method at a size) or Python bools (a
    program per method, without the other rule's passes over a large problem)."""

    def rule(flag, on, off):
        if isinstance(flag, bool):
            return on() if flag else off()
        return jnp.where(flag, on(), off())

    key = _kernel.order_key(values)
    key = rule(descending, lambda: ~key, lambda: key)
    (pruned,) = _kernel.lowest_k([key], [alive], k)

    def at_or_below_kth():  # torch's RandomStructured: every alive value <= the k-th
        kth = jnp.max(jnp.where(pruned, key, jnp.zeros_like(key)))
        return (True if alive is None else alive) & (key <= kth)

    return ~rule(ties_all, at_or_below_kth, lambda: pruned)


@jax.jit
def _select(values, alive, k, flags):
    """:func:`_keep` of a small problem: ``flags`` (descending, ties_all) as data."""
    return _keep(values, alive, k, flags[0], flags[1])


@functools.partial(jax.jit, static_argnums=(3, 4))
def _select_large(values, alive, k, descending: bool, ties_all: bool):
    """:func:`_keep` of a large problem, its rules fixed."""
    return _keep(values, alive, k, descending, ties_all)


_NUMPY_LACKS = (torch.bfloat16,)


def _host(x: torch.Tensor, size: int) -> np.ndarray:
    """A small tensor, flat, as a NumPy array padded with zeros to ``size`` entries
    (bfloat16 widens to float32: exact, and ordered the same)."""
    x = x.detach().reshape(-1)
    if x.dtype in _NUMPY_LACKS:
        x = x.float()
    a = x.cpu().numpy()
    if a.shape[0] == size:
        return a
    out = np.zeros(size, a.dtype)
    out[: a.shape[0]] = a
    return out


def kept_units(p: Problem, device: torch.device) -> torch.Tensor:
    """The units a problem keeps, as a torch bool vector on ``device``: one program per
    size bucket for small problems (NumPy in and out), one per size for large ones.

    Values made for the alive units only (torch's draws and norms) are placed at those
    units first, on the host: the i-th value at the i-th alive unit."""
    k = np.uint32(p.k)
    if p.units <= SMALL:
        flags = np.array([p.descending, p.ties_all])
        size = bucket(p.units)
        if p.alive is None:
            alive = np.zeros(size, bool)
            alive[: p.units] = True
        else:
            alive = _host(p.alive, size)
        values = _host(p.values, size)
        if p.spread and p.alive is not None:
            placed = np.zeros_like(values)
            placed[np.flatnonzero(alive)] = values[: p.values.numel()]
            values = placed
        kept = np.asarray(_select(values, alive, k, flags))[: p.units]
        return torch.from_numpy(kept.copy()).to(device)
    values = p.values.reshape(-1)
    alive = None
    if p.alive is not None:
        alive = p.alive.reshape(-1).to(values.device)
        if p.spread:
            placed = values.new_zeros(p.units)
            placed[alive] = values
            values = placed
        alive = to_jax(alive)
    kept = _select_large(to_jax(values), alive, k, p.descending, p.ties_all)
    return to_torch(kept, p.values, torch.bool).to(device)


def _combine(
    kept: torch.Tensor, view: list[int], like: torch.Tensor, prior, dtype: torch.dtype
) -> torch.Tensor:
    """torch's combination ``prior * kept``: the mask in force (None: ones) times the kept
    units, viewed as ``view`` (keepdims for channels), as a mask like ``like`` of ``dtype``."""
    factor = kept.reshape(view)
    if prior is None:
        return factor.to(dtype).expand(like.shape).contiguous()
    return prior.to(dtype) * factor  # bool promotes in the product: one pass, one output


def _from_pruned(pruned: torch.Tensor, prior: torch.Tensor | None, dtype: torch.dtype):
    """The mask from units pruned by jaxprune (a JAX key's methods), broadcast to the mask."""
    kept = (~pruned).to(dtype)
    return kept if prior is None else prior.to(dtype) * kept


def _unstructured(
    rule: Rule, t: torch.Tensor, alive: torch.Tensor | None, draws: Torch
) -> Problem | torch.Tensor | None:
    """The selection among ``alive`` entries (None: all), or the pruned entries themselves
    (a JAX key), or None when nothing goes."""
    if rule.kind == "identity":
        return None
    n_alive = t.numel() if alive is None else int(alive.sum())
    k = _count(rule.amount, n_alive, "topk")
    if k == 0:
        return None
    if rule.kind == "l1_unstructured":
        return Problem(t, alive, k, t.numel())
    if rule.key is not None:
        prior = None if alive is None else to_jax(alive)
        kept = jp.random_unstructured(rule.key, to_jax(t), k, default_mask=prior)
        pruned = ~to_torch(kept, t, torch.bool)
        return pruned if alive is None else alive & pruned
    return Problem(draws.like(n_alive), alive, k, t.numel(), spread=True, descending=True)


def _structured(
    rule: Rule, t: torch.Tensor, d: int, alive_c: torch.Tensor | None, draws: Torch
) -> Problem | torch.Tensor | None:
    """The selection among ``alive_c`` channels (None: all), or the pruned channels (a JAX
    key), or None when nothing goes."""
    units = t.shape[d]
    n_alive = units if alive_c is None else int(alive_c.sum())
    k = _count(rule.amount, n_alive, "kthvalue" if rule.kind == "random_structured" else None)
    if k == 0:
        return None
    if rule.kind == "ln_structured":
        norms = draws.norms(rule.n, d, tuple(t.shape), alive_c)  # of the alive channels
        return Problem(norms, alive_c, k, units, spread=True)
    if rule.key is not None:
        shape = [1] * t.dim()
        shape[d] = units
        prior = None if alive_c is None else to_jax(alive_c.reshape(shape))
        kept = jp.random_structured(rule.key, to_jax(t), k, d, default_mask=prior)
        pruned = ~to_torch(kept.reshape(-1), t, torch.bool)
        return pruned if alive_c is None else alive_c & pruned
    prob = draws.default(n_alive)  # torch's draws; the k-th smallest is found in JAX
    return Problem(prob, alive_c, k, units, spread=True, ties_all=True)


def compute(
    rule: Rule,
    t: torch.Tensor,
    prior: torch.Tensor | None,
    draws: Torch,
    *,
    container: bool,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """The new mask of one method: ``prior`` (None: a mask of ones) times what the method
    keeps, of ``t``'s shape and ``dtype``; or None when the method prunes nothing (torch then
    returns the prior tensor itself, or a copy).

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
        dtype: the new mask's dtype.
    """
    if rule.kind == "custom_from_mask":
        shape = t.shape if prior is None else prior.shape
        if tuple(rule.mask.shape) != tuple(shape):
            raise jp.ShapeMismatchError(
                f"default_mask shape {_torch_size(tuple(shape))} must match self.mask shape "
                f"{_torch_size(tuple(rule.mask.shape))}"
            )
        # No selection: torch's own product of the two masks, in the prior's dtype.
        base = torch.ones(shape, dtype=dtype, device=t.device) if prior is None else prior
        return base.to(dtype) * rule.mask.to(device=base.device, dtype=dtype)
    if not jp_method(rule.kind).structured:
        alive = prior == 1 if container else None
        found = _unstructured(rule, t, alive, draws)
        if found is None or isinstance(found, torch.Tensor):
            return None if found is None else _from_pruned(found, prior, dtype)
        flat = found._replace(values=found.values.reshape(-1), alive=_flat(found.alive))
        return _combine(kept_units(flat, t.device), list(t.shape), t, prior, dtype)
    if container and t.dim() == 1:
        # torch's container indexes a list of one slice with dim: only dim 0 or -1 exist.
        if rule.dim < -1:
            raise IndexError("Index is out of bounds for tensor with dimensions 1")
        if rule.dim >= 1:
            raise IndexError("list assignment index out of range")
        # torch sums the prior over no axis (all of it) and indexes t with that scalar: the
        # method then sees t as one (1, N) row, or an empty (0, N) one if nothing is alive.
        if not bool((prior != 0).any()):
            empty = t.reshape(1, -1)[:0]
            compute(rule, empty, prior.reshape(1, -1)[:0], draws, container=False, dtype=dtype)
            return None
        row = compute(
            rule, t.reshape(1, -1), prior.reshape(1, -1), draws, container=False, dtype=dtype
        )
        return None if row is None else row.reshape(t.shape)
    if container:
        d = _check_container_dim(t, rule.dim)
        # A channel is alive while any of its mask values is nonzero (torch's container:
        # ``sum != 0``); any() reduces in one pass, without a boolean copy of the mask.
        others = tuple(i for i in range(t.dim()) if i != d)
        alive_c = prior.any(dim=others)
    else:
        d = _check_structured(t, rule.dim)
        alive_c = None
    found = _structured(rule, t, d, alive_c, draws)
    if found is None:
        return None
    if isinstance(found, torch.Tensor):
        view = [1] * t.dim()
        view[d] = t.shape[d]
        base = torch.ones(t.shape, dtype=dtype, device=t.device) if prior is None else prior
        return _from_pruned(found.reshape(view), base, dtype)
    view = [1] * t.dim()
    view[d] = t.shape[d]
    return _combine(kept_units(found, t.device), view, t, prior, dtype)


def _flat(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.reshape(-1)


def _check_container_dim(t: torch.Tensor, dim: int) -> int:
    n_dims = t.dim()
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


def as_key(key: Any) -> Any:
    """A JAX key from stored key data (None stays None)."""
    return None if key is None else jax.random.wrap_key_data(jnp.asarray(key))


def key_data(key: Any) -> np.ndarray | None:
    """A key stored as plain uint32 data, so method objects pickle and deep-copy."""
    if key is None:
        return None
    return np.asarray(jax.random.key_data(_kernel.as_key(key)))
