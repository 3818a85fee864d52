"""The method registry: one definition per pruning method, read by every layer.

A :class:`Method` says what a method is: its name, whether it is structured (prunes channels
along ``dim``) or unstructured (entries), random (takes a key) or scored, its keyword
arguments and their defaults, and how it scores units. The core function, ``jp.prune``,
``jp.global_unstructured``, the batched program, the optax wrappers, ``jp.nnx``, the CLI and
torch_compat all read the definition; none of them lists methods of its own. The built-ins
register themselves when their modules are imported; a user adds one with
:func:`jaxprune.register_method`.

This table is the package's one piece of module-level mutable state.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from ._typing import Array

#: How a method's scores are ordered (the lowest go first):
#: ``"signed"``: by value (a registered method's scores); ``"magnitude"``: by absolute value
#: (l1 and Ln scores, whose keys are then never stored: :class:`jaxprune._order.Keys`);
#: ``"draws"``: uniform ``uint32`` bits drawn from the key at the units' shape, as they are
#: (the batched path draws a group's bits at once).
ORDERS = ("signed", "magnitude", "draws")


@dataclasses.dataclass(frozen=True, eq=False)
class Method:
    """One pruning method (compared and hashed by identity: a static argument of programs).

    Attributes:
        name: the method's name (``jp.prune(params, name, ...)``).
        scores: ``scores(x, **options)`` (unstructured) or ``scores(x, dim, **options)``
            (structured) giving one score per entry or per channel; random methods take the
            key first. None for the methods that select nothing (``identity``,
            ``custom_from_mask``).
        structured: prunes channels along ``dim`` (a keepdims mask) rather than entries.
        random: takes a PRNG key.
        order: how scores are ordered, one of :data:`ORDERS`.
        options: keyword arguments besides ``amount`` and ``dim`` that a call must give
            (``ln_structured``: ``n``); they are static.
        defaults: optional static keyword arguments and their defaults.
        any_options: any other keyword argument is a static option too (a scoring function
            that takes ``**kwargs``).
        check: validates and normalises the options (a dict in, a dict out); raises the
            error a bad option deserves.
        importance: accepts ``importance_scores`` (scores computed on them instead of ``x``).
        reads_values: ``scores`` reads ``x``'s values; when False it sees only its shape
            and dtype, and the pytree layer never hands the weight to the program.
        inputs: for the methods that select nothing, the keyword arguments they take in the
            pytree layer (``custom_from_mask``: ``mask``).
        grouped: a method whose core function makes the whole mask itself, from the weight,
            its ``options`` and ``defaults`` (an amount among them, or not) and the prior
            mask: N:M sparsity, blocks. The pytree layer calls it per leaf; ``scores`` is
            None, and global selection refuses it.
        scheduled: for a grouped method, how :func:`jaxprune.gradual_pruning` prunes a leaf
            to a traced sparsity: ``scheduled(key, x, prior, sparsity, **options)`` gives the
            mask (``key`` None for a method that is not random; ``options`` without
            ``amount``). None: the method cannot be scheduled.
        alias: another name ``jp.global_unstructured`` accepts (``"l1"``, ``"random"``).
        units: what the units are called in error messages, when not entries or channels
            (the block methods select over a grid of ``"blocks"``).
        builtin: one of torch's methods.
        function: the core function (set when the method is registered).
    """

    name: str
    scores: Callable[..., Array] | None
    structured: bool = False
    random: bool = False
    order: str = "signed"
    options: tuple[str, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()
    any_options: bool = False
    check: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    importance: bool = True
    reads_values: bool = True
    inputs: tuple[str, ...] = ()
    grouped: bool = False
    scheduled: Callable[..., Array] | None = None
    alias: str | None = None
    units: str = ""
    builtin: bool = False
    function: Callable[..., Array] | None = None

    @property
    def selects(self) -> bool:
        """Whether the method selects units to prune (all but identity and custom masks)."""
        return self.scores is not None

    @property
    def global_ok(self) -> bool:
        """Whether one selection over many leaves applies (unstructured selecting methods)."""
        return self.selects and not self.structured

    @property
    def has_options(self) -> bool:
        """Whether the method takes static options at all."""
        return bool(self.options or self.defaults or self.any_options)

    def keywords(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(required, optional)`` keyword arguments of the method in ``jp.prune``."""
        if self.grouped:
            optional = tuple(k for k, _ in self.defaults)
            return self.options, optional + (("importance_scores",) if self.importance else ())
        if not self.selects:
            return self.inputs, ()
        optional = ("dim",) if self.structured else ()
        optional += tuple(k for k, _ in self.defaults)
        if self.importance:
            optional += ("importance_scores",)
        return ("amount", *self.options), optional

    def static_options(self, given: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
        """The method's static options from ``given`` (defaults filled in, checked), as a
        hashable tuple of ``(name, value)`` pairs.

        Raises:
            TypeError: a required option is missing, or a value is not hashable.
        """
        values = dict(self.defaults)
        for k in self.options:
            if k not in given:
                raise TypeError(f"{self.name} needs the keyword argument {k!r}.")
        names = set(self.options) | set(values)
        if self.any_options:
            names |= set(given) - {"amount", "dim", "importance_scores"}
        values.update({k: given[k] for k in names if k in given})
        if self.check is not None:
            values = self.check(values)
        for k, v in values.items():
            try:
                hash(v)
            except TypeError:
                raise TypeError(
                    f"{self.name}: the keyword argument {k}={v!r} is static and must be "
                    "hashable (a number, a string or a tuple)."
                ) from None
        return tuple(sorted(values.items()))

    def score(self, key: Any, x: Any, dim: int | None, options: tuple[tuple[str, Any], ...]):
        """The method's scores of ``x`` (inside a traced program)."""
        args = (key, x) if self.random else (x,)
        if self.structured:
            args += (dim,)
        return self.scores(*args, **dict(options))


_METHODS: dict[str, Method] = {}
_BUILTINS = (
    "_basic",
    "_blocks",
    "_nm",
    "_structured",
    "_unstructured",
)  # the modules that define them
_loaded = False


def _registered() -> dict[str, Method]:
    """The registry, the built-in methods in it (their modules register them on import;
    ``import jaxprune`` imports nothing until a name is used)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTINS:
            importlib.import_module(f"jaxprune.{module}")
    return _METHODS


def register(method: Method) -> Method:
    """Add ``method`` to the registry.

    Raises:
        ValueError: the name (or alias) is taken, or ``order`` is unknown.
        TypeError: the method has no core function.
    """
    methods = _registered()
    taken = set(methods) | {m.alias for m in methods.values() if m.alias}
    for name in (method.name, method.alias):
        if name is not None and name in taken:
            raise ValueError(f"a pruning method named {name!r} is registered already.")
    if method.order not in ORDERS:
        raise ValueError(f"order={method.order!r} is not one of {ORDERS}.")
    if not callable(method.function):
        raise TypeError(f"method {method.name!r} has no core function.")
    _METHODS[method.name] = method
    return method


def get(method: str | Callable[..., Any] | Method) -> Method:
    """The registered method given by its name, its core function or itself.

    Raises:
        ValueError: an unknown name.
        TypeError: neither a name nor a registered core function.
    """
    if isinstance(method, Method):
        return method
    methods = _registered()
    if isinstance(method, str):
        if method not in methods:
            raise ValueError(f"method={method!r} is not a pruning method; choose one of {names()}.")
        return methods[method]
    if callable(method):
        for m in methods.values():
            if m.function is method:
                return m
    raise TypeError(f"method must be a jaxprune method or its name; got {method!r}.")


def names(*, selects: bool | None = None) -> list[str]:
    """The registered names, sorted; ``selects=True`` only those that select units."""
    return sorted(n for n, m in _registered().items() if selects is None or m.selects == selects)


def for_global(method: str) -> Method:
    """The method ``jp.global_unstructured(method=...)`` names: an alias (``"l1"``,
    ``"random"``) or the name of an unstructured selecting method.

    Raises:
        ValueError: an unknown name, or a method that is not unstructured.
    """
    methods = _registered().values()
    for m in methods:
        if method in (m.name, m.alias) and m.global_ok:
            return m
        if method == m.name and m.grouped:
            raise ValueError(
                f"method={method!r} is not a global method: it prunes within each tensor (N:M "
                "groups, blocks), where global selection prunes a count over many; use "
                "jp.prune."
            )
    choices = sorted(
        [m.alias for m in methods if m.alias and m.global_ok]
        + [m.name for m in methods if m.global_ok]
    )
    raise ValueError(
        f"method={method!r} is not a global method: global selection takes an unstructured "
        f"method; choose one of {choices}."
    )
