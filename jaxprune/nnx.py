"""Prune Flax NNX modules in place, with torch's apply / remove / is_pruned semantics.

``prune(model, method, ...)`` keeps each pruned weight's original values in a :class:`Pruned`
variable (a subclass of ``nnx.Param``, so optimizers keep training it) at the same attribute,
and its mask in a :class:`Mask` variable (not a ``Param``: optimizers never touch it) at
``<name>_mask``. Reading the attribute (``self.kernel[...]`` in a layer's ``__call__``) gives the
masked weight ``where(mask, original, 0)``, computed where it is used: no hooks run.
``remove`` makes the pruning permanent: the attribute becomes a plain ``nnx.Param`` holding the
masked values and the mask goes. Paths join attribute names and indices with ``/``
(``"layers/0/kernel"``), so masks and optimizer states keep the paths they had before pruning.

The module of a pruned attribute gets a subclass of its own class that reads the attribute
through the mask; ``remove`` gives it back its class. This survives ``nnx.split`` /
``nnx.merge``, ``nnx.jit`` and ``nnx.Optimizer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx as _nnx

from . import _basic, _paths, _registry, _tree
from ._typing import PRNGKey, Where

__all__ = ["Mask", "Pruned", "prune", "remove", "is_pruned", "compact"]


class Pruned(_nnx.Param):
    """The original (unmasked) values of a pruned weight; trained like any ``nnx.Param``.

    Example:
        >>> import jax, jaxprune as jp
        >>> from flax import nnx
        >>> model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        >>> jp.nnx.prune(model, "l1_unstructured", amount=2)
        >>> isinstance(vars(model)["kernel"], jp.nnx.Pruned), len(nnx.state(model, nnx.Param))
        (True, 2)
    """


class Mask(_nnx.Variable):
    """A pruning mask (boolean, ``True`` = kept). Not a ``Param``: never trained.

    Example:
        >>> import jax, jaxprune as jp
        >>> from flax import nnx
        >>> model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        >>> jp.nnx.prune(model, "l1_unstructured", amount=2)
        >>> masks = nnx.state(model, jp.nnx.Mask)
        >>> int((~masks["kernel_mask"][...]).sum())
        2
    """


class _MaskedView:
    """What reading a pruned attribute returns: the weight with its mask applied."""

    __slots__ = ("_orig", "_mask")

    def __init__(self, orig: Pruned, mask: Mask):
        self._orig, self._mask = orig, mask

    def get_value(self) -> jax.Array:
        w = self._orig.get_value()
        return jnp.where(self._mask.get_value(), w, jnp.zeros((), w.dtype))

    @property
    def value(self) -> jax.Array:
        return self.get_value()

    def __getitem__(self, index: Any) -> jax.Array:
        value = self.get_value()
        return value if index is Ellipsis else value[index]

    def __jax_array__(self) -> jax.Array:
        return self.get_value()

    @property
    def shape(self) -> tuple[int, ...]:
        return self._orig.get_value().shape

    @property
    def dtype(self) -> Any:
        return self._orig.get_value().dtype

    def __repr__(self) -> str:
        return f"masked view of {self._orig!r}"


class _MaskedAttribute:
    """A data descriptor: the stored :class:`Pruned` variable, read through its mask."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        stored = obj.__dict__[self.name]
        mask = obj.__dict__.get(self.name + "_mask")
        if isinstance(stored, Pruned) and isinstance(mask, Mask):
            return _MaskedView(stored, mask)
        return stored

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value


_SUBCLASSES: dict[tuple[type, frozenset[str]], type] = {}


def _base_class(cls: type) -> type:
    return getattr(cls, "_jaxprune_base", cls)


def _masked_class(cls: type, names: frozenset[str]) -> type:
    base = _base_class(cls)
    if not names:
        return base
    key = (base, names)
    if key not in _SUBCLASSES:
        attrs = {name: _MaskedAttribute(name) for name in sorted(names)}
        attrs.update(
            _jaxprune_base=base,
            _jaxprune_pruned=names,
            __module__=base.__module__,
            __qualname__=base.__qualname__,
        )
        _SUBCLASSES[key] = type(base.__name__, (base,), attrs)
    return _SUBCLASSES[key]


def _pruned_names(module: Any) -> frozenset[str]:
    return frozenset(
        name
        for name, value in vars(module).items()
        if isinstance(value, Pruned) and isinstance(vars(module).get(name + "_mask"), Mask)
    )


def _nodes(model: Any) -> dict[str, Any]:
    return {"/".join(str(p) for p in path): node for path, node in _nnx.iter_graph(model)}


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


def prune(
    model: _nnx.Module,
    method: str | Callable[..., Any],
    *,
    key: PRNGKey | None = None,
    where: Where = None,
    **method_kwargs: Any,
) -> None:
    """Prune an NNX module in place (returns None).

    Scores are the weights as the forward pass sees them (masked by any earlier pruning, as
    torch scores ``module.weight``), and an already-pruned weight is pruned among its unpruned
    units (torch's iterative semantics). Masks keep their compact keepdims shape for the
    structured methods.

    Args:
        model: the module; every ``nnx.Param`` (``Pruned`` included) is a candidate leaf.
        method, key, where, **method_kwargs: as in :func:`jaxprune.prune`, with paths such as
            ``"layers/0/kernel"``.

    Raises:
        TypeError, ValueError, IndexError: as :func:`jaxprune.prune`; the model is unchanged.

    Example:
        >>> import jax, jaxprune as jp
        >>> from flax import nnx
        >>> model = nnx.Linear(4, 6, rngs=nnx.Rngs(0))
        >>> jp.nnx.prune(model, "random_structured", key=jax.random.key(0), amount=0.5)
        >>> jp.nnx.is_pruned(model), model.kernel_mask[...].shape
        (True, (1, 6))
        >>> int((model(jax.numpy.ones((1, 4))) == 0).sum())   # bias is zero at init
        3
    """
    params = _params(model)
    priors = {}
    nodes = _nodes(model)
    for path in params:
        parent, name = _split(path)
        mask = vars(nodes[parent]).get(name + "_mask") if parent in nodes else None
        if isinstance(mask, Mask) and isinstance(vars(nodes[parent]).get(name), Pruned):
            priors[path] = mask.get_value()
    masks = _tree.prune(
        params,
        method,
        key=key,
        where=where,
        masks={p: priors.get(p, jnp.ones((), bool)) for p in params},
        **method_kwargs,
    )
    inputs = _registry.get(method).inputs
    if inputs and where is None:  # custom_from_mask: the leaves of the given masks
        given = _paths.by_path(method_kwargs[inputs[0]], inputs[0], list(params))
        chosen = [p for p in params if p in given]
    else:
        picks = _paths.select(list(params), list(params.values()), where)
        chosen = [p for p, pick in zip(params, picks) if pick]
    for path in chosen:
        parent, name = _split(path)
        module = nodes[parent]
        new_mask = masks[path]
        if path in priors:
            vars(module)[name + "_mask"].set_value(new_mask)
            continue
        variable = vars(module)[name]
        vars(module)[name] = Pruned(variable.get_value(), **variable.get_metadata())
        setattr(module, name + "_mask", Mask(new_mask))
        module.__class__ = _masked_class(type(module), _pruned_names(module))


def _params(model: Any) -> dict[str, jax.Array]:
    """Every ``nnx.Param`` leaf of ``model`` by path, as the forward pass sees it."""
    out = {}
    nodes = _nodes(model)
    for path, node in nodes.items():
        if not isinstance(node, _nnx.Param):
            continue
        parent, name = _split(path)
        owner = nodes[parent]
        mask = vars(owner).get(name + "_mask")
        value = node.get_value()
        if isinstance(node, Pruned) and isinstance(mask, Mask):
            value = _basic.zero_pruned(value, mask.get_value())
        out[path] = value
    return out


def remove(model: _nnx.Module, where: Where = None) -> None:
    """Make pruning permanent: each pruned attribute (selected by ``where``, a regular
    expression or predicate on its path, or all) becomes an ``nnx.Param`` holding the masked
    values, and its mask is dropped.

    Raises:
        ValueError: nothing selected is pruned.

    Example:
        >>> import jax, jaxprune as jp
        >>> from flax import nnx
        >>> model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
        >>> jp.nnx.prune(model, "l1_unstructured", amount=2)
        >>> jp.nnx.remove(model)
        >>> type(vars(model)["kernel"]).__name__, int((model.kernel[...] == 0).sum())
        ('Param', 2)
    """
    nodes = _nodes(model)
    pruned = {}
    for path, node in nodes.items():
        if isinstance(node, Pruned):
            parent, name = _split(path)
            if isinstance(vars(nodes[parent]).get(name + "_mask"), Mask):
                pruned[path] = node
    if where is not None and pruned:
        picks = _paths.select(list(pruned), [v.get_value() for v in pruned.values()], where)
        pruned = {p: v for (p, v), pick in zip(pruned.items(), picks) if pick}
    if not pruned:
        raise ValueError(f"where={where!r} selects no pruned parameter of the model.")
    for path, variable in pruned.items():
        parent, name = _split(path)
        module = nodes[parent]
        mask = vars(module)[name + "_mask"]
        value = variable.get_value()
        kept = _basic.zero_pruned(value, mask.get_value())
        module.__class__ = _masked_class(type(module), _pruned_names(module) - {name})
        delattr(module, name + "_mask")
        vars(module)[name] = _nnx.Param(kept, **variable.get_metadata())


def is_pruned(model: _nnx.Module) -> bool:
    """Whether any attribute of ``model`` or its submodules is pruned.

    Example:
        >>> import jaxprune as jp
        >>> from flax import nnx
        >>> model = nnx.Sequential(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
        >>> before = jp.nnx.is_pruned(model)
        >>> jp.nnx.prune(model, "l1_unstructured", amount=1)
        >>> before, jp.nnx.is_pruned(model)
        (False, True)
    """
    return any(isinstance(node, Mask) for _, node in _nnx.iter_graph(model))


from ._nnx_compact import compact  # noqa: E402  (it reads this module when called)
