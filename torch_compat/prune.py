"""Drop-in replacement for ``torch.nn.utils.prune`` with masks computed in JAX.

Every public name of ``torch.nn.utils.prune`` exists here with the same signature and
defaults; the random methods also accept ``key=`` (a JAX key). The method classes subclass
torch's own classes (``BasePruningMethod`` is torch's), so torch's ``remove``, ``is_pruned``
and ``PruningContainer`` work on them and the two can be stacked on one parameter.

Without ``key=`` the random numbers come from torch's default generator through the same
calls torch makes, so masks equal torch's bit for bit under the same ``torch.manual_seed``.
With ``key=`` they come from JAX and equal ``jaxprune``'s masks for the same key (with a
prior mask: ``jaxprune`` with ``default_mask=`` the module's current mask).

The selection (ordering, top-k, RandomStructured's threshold) runs in JAX, one compiled
program per call, shared by every method and every small size (:mod:`torch_compat._masks`);
what torch's own code does around it (reading which units are alive, counting them, its
draws and norms, multiplying the mask in force) stays with torch. JAX is imported when the
first mask is computed, not at import (:mod:`torch_compat._setup` names the two JAX
settings it then applies). Module state is
exactly torch's: ``<name>_orig`` parameter, ``<name>_mask`` buffer (torch's dtype and
shape), a forward pre-hook. Where torch leaves a
module changed after a failed call (it drops an existing pruning hook first), a failed call
here leaves the module exactly as it was.

Example:
    >>> import torch
    >>> from torch_compat import prune
    >>> m = prune.l1_unstructured(torch.nn.Linear(4, 3), "weight", amount=0.5)
    >>> int((m.weight_mask == 0).sum()), sorted(m.state_dict())
    (6, ['bias', 'weight_mask', 'weight_orig'])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.utils.prune as _torch_prune

from jaxprune import ShapeMismatchError

from ._extra import (
    BlockStructured,
    NMUnstructured,
    RandomBlockStructured,
    RandomNM,
    block_structured,
    nm_unstructured,
    random_block_structured,
    random_nm,
)
from ._module_state import DeepCopy as _DeepCopy
from ._module_state import Snapshot as _Snapshot
from ._module_state import pruned_names as _pruned_names

BasePruningMethod = _torch_prune.BasePruningMethod

__all__ = [
    "BasePruningMethod",
    "PruningContainer",
    "Identity",
    "RandomUnstructured",
    "L1Unstructured",
    "RandomStructured",
    "LnStructured",
    "CustomFromMask",
    "identity",
    "random_unstructured",
    "l1_unstructured",
    "random_structured",
    "ln_structured",
    "global_unstructured",
    "custom_from_mask",
    "NMUnstructured",
    "RandomNM",
    "nm_unstructured",
    "random_nm",
    "BlockStructured",
    "RandomBlockStructured",
    "block_structured",
    "random_block_structured",
    "remove",
    "is_pruned",
]


def _kind(method: Any) -> str | None:
    """The method name of a built-in class (torch's or ours) in ``method``'s ancestry."""
    for cls in type(method).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return None


def _is_builtin(method: Any) -> bool:
    """Whether ``method`` computes its mask with a built-in rule: a built-in class whose
    ``compute_mask`` is the one it was defined with. A user subclass that overrides it (torch's
    documented extension point), or a patched class, is not: its ``compute_mask`` is called."""
    kind = _kind(method)
    if kind is None:
        return False
    own = type(method).compute_mask
    return own is _ORIGINAL[_CLASSES[kind]] or own is _ORIGINAL[_torch_class(kind)]


def _engine():
    """torch_compat's JAX side, imported (and JAX configured) when a mask is first needed."""
    from . import _masks

    return _masks


def _rule(method: Any):
    """The rule of a method of a built-in class (its compute_mask aside)."""
    masks = _engine()
    return masks.Rule(
        kind=_kind(method),
        amount=getattr(method, "amount", None),
        dim=getattr(method, "dim", -1),
        n=getattr(method, "n", None),
        key=masks.as_key(getattr(method, "key", None)),
        mask=getattr(method, "mask", None),
    )


def _torch_class(kind: str) -> type:
    """torch's class of a method (ours subclass it)."""
    return _CLASSES[kind].__bases__[-1]


def _on_meta(t: torch.Tensor) -> bool:
    # A meta tensor has a shape and no values: nothing to select, only shapes to propagate,
    # which torch's own code does (with its random draws, as torch makes them).
    return t.device.type == "meta"


def _compute(
    method: Any,
    t: torch.Tensor,
    default_mask: torch.Tensor | None,
    *,
    container: bool,
    dtype: torch.dtype,
) -> torch.Tensor | None:
    """The new mask (``default_mask`` times what ``method`` keeps), or None: nothing pruned."""
    masks = _engine()
    from ._bridge import torch_source

    rule = _rule(method)
    return masks.compute(rule, t, default_mask, torch_source(t), container=container, dtype=dtype)


def _structured(method: Any) -> bool:
    return getattr(method, "PRUNING_TYPE", None) == "structured"


class _JaxMethod:
    """Shared by the built-in methods: ``compute_mask`` with torch's rules, in JAX."""

    def compute_mask(self, t, default_mask):
        if _on_meta(t):
            return _ORIGINAL[_torch_class(_kind(self))](self, t, default_mask)
        if _structured(self):
            # torch returns the prior itself when nothing goes, else a mask like t.
            mask = _compute(self, t, default_mask, container=False, dtype=t.dtype)
            return default_mask if mask is None else mask
        mask = _compute(self, t, default_mask, container=False, dtype=default_mask.dtype)
        if mask is None:
            return default_mask.clone(memory_format=torch.contiguous_format)
        return mask

    def _first_mask(self, t, orig):
        """``compute_mask(t, torch.ones_like(orig))`` without building the mask of ones."""
        dtype = t.dtype if _structured(self) else orig.dtype
        mask = _compute(self, t, None, container=False, dtype=dtype)
        return torch.ones_like(orig) if mask is None else mask


class PruningContainer(_JaxMethod, _torch_prune.PruningContainer):
    """torch's ``PruningContainer`` whose slicing and combination run in JAX.

    Methods that are not built in (user subclasses of ``BasePruningMethod``) are combined by
    torch's own container code.
    """

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        if not _is_builtin(method) or _on_meta(t):
            return _torch_prune.PruningContainer.compute_mask(self, t, default_mask)
        if _engine().jp_method(_kind(method)).structured and not hasattr(method, "dim"):
            raise AttributeError(
                'Pruning methods of PRUNING_TYPE "structured" need to have the attribute '
                "`dim` defined."
            )
        mask = _compute(method, t, default_mask, container=True, dtype=t.dtype)
        return default_mask.to(dtype=t.dtype) if mask is None else mask


def _check_amount(amount: Any) -> None:
    _torch_prune._validate_pruning_amount_init(amount)


class Identity(_JaxMethod, _torch_prune.Identity):
    """Prunes nothing; sets up the reparametrization with a mask of ones."""

    METHOD = "identity"

    @classmethod
    def apply(cls, module, name):  # type: ignore[override]
        return _apply(cls, module, name)


class RandomUnstructured(_JaxMethod, _torch_prune.RandomUnstructured):
    """Prunes ``amount`` currently unpruned entries at random (torch's RNG, or ``key``)."""

    METHOD = "random_unstructured"

    def __init__(self, amount, key=None):
        _check_amount(amount)
        self.amount = amount
        self.key = None if key is None else _engine().key_data(key)

    @classmethod
    def apply(cls, module, name, amount, key=None):  # type: ignore[override]
        return _apply(cls, module, name, amount=amount, key=key)


class L1Unstructured(_JaxMethod, _torch_prune.L1Unstructured):
    """Prunes the ``amount`` currently unpruned entries of smallest magnitude."""

    METHOD = "l1_unstructured"

    def __init__(self, amount):
        _check_amount(amount)
        self.amount = amount

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):  # type: ignore[override]
        return _apply(cls, module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(_JaxMethod, _torch_prune.RandomStructured):
    """Prunes ``amount`` currently unpruned channels along ``dim`` at random."""

    METHOD = "random_structured"

    def __init__(self, amount, dim=-1, key=None):
        _check_amount(amount)
        self.amount = amount
        self.dim = dim
        self.key = None if key is None else _engine().key_data(key)

    @classmethod
    def apply(cls, module, name, amount, dim=-1, key=None):  # type: ignore[override]
        return _apply(cls, module, name, amount=amount, dim=dim, key=key)


class LnStructured(_JaxMethod, _torch_prune.LnStructured):
    """Prunes the ``amount`` currently unpruned channels of smallest L``n`` norm."""

    METHOD = "ln_structured"

    def __init__(self, amount, n, dim=-1):
        _check_amount(amount)
        self.amount = amount
        self.n = n
        self.dim = dim

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):  # type: ignore[override]
        return _apply(
            cls, module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores
        )


class CustomFromMask(_JaxMethod, _torch_prune.CustomFromMask):
    """Applies a given mask on top of the mask in force."""

    METHOD = "custom_from_mask"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if _on_meta(t):
            return _torch_prune.CustomFromMask.compute_mask(self, t, default_mask)
        return _compute(self, t, default_mask, container=False, dtype=default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):  # type: ignore[override]
        return _apply(cls, module, name, mask=mask)


#: Our class of each method, by the name of the jaxprune method it mirrors (one registry
#: for both packages: :func:`jaxprune._kernel.method` says what the method is).
_CLASSES = {
    cls.METHOD: cls
    for cls in (
        Identity,
        RandomUnstructured,
        L1Unstructured,
        RandomStructured,
        LnStructured,
        CustomFromMask,
    )
}
#: The method name of each built-in class, ours and torch's.
_KINDS = {c: kind for kind, cls in _CLASSES.items() for c in (cls, cls.__bases__[-1])}
#: Each built-in class's compute_mask as defined (ours and torch's), before any user patch.
_ORIGINAL = {
    cls: cls.compute_mask for cls in (*_CLASSES.values(), *(_torch_class(k) for k in _CLASSES))
}


def _apply(cls, module, name, *args, importance_scores=None, **kwargs):
    """torch's ``BasePruningMethod.apply``, computed before anything is changed."""
    method = cls(*args, **kwargs)
    method._tensor_name = name
    found = [
        (k, h)
        for k, h in module._forward_pre_hooks.items()
        if isinstance(h, BasePruningMethod) and h._tensor_name == name
    ]
    if len(found) > 1:
        raise AssertionError(
            f"Avoid adding multiple pruning hooks to the same tensor {name} of module "
            f"{module}. Use a PruningContainer."
        )
    old = found[0][1] if found else None
    orig = getattr(module, name)
    if importance_scores is not None:
        if importance_scores.shape != orig.shape:
            raise ShapeMismatchError(
                f"importance_scores should have the same shape as parameter {name} of "
                f"{module}, got {importance_scores.shape} vs {orig.shape}"
            )
    else:
        importance_scores = orig

    if old is None:
        combined = method
        default_mask = None
    else:
        if isinstance(old, _torch_prune.PruningContainer):
            # torch's container becomes ours (a subclass), with the same methods.
            combined = PruningContainer()
            combined._tensor_name = name
            combined._pruning_methods = old._pruning_methods + (method,)
        else:
            combined = PruningContainer(old)
            combined.add_pruning_method(method)
        default_mask = (
            getattr(module, name + "_mask").detach().clone(memory_format=torch.contiguous_format)
        )
    if default_mask is None and _is_builtin(method) and not _on_meta(orig):
        mask = method._first_mask(importance_scores, orig)
    else:
        mask = combined.compute_mask(
            importance_scores,
            default_mask=torch.ones_like(orig) if default_mask is None else default_mask,
        )

    snapshot = _Snapshot(module)
    try:
        for k, _ in found:
            del module._forward_pre_hooks[k]
        if old is None:
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
        elif isinstance(old, PruningContainer):
            old._pruning_methods = combined._pruning_methods
            combined = old
        module.register_buffer(name + "_mask", mask)
        setattr(module, name, combined.apply_mask(module))
        module.register_forward_pre_hook(combined)
        module.__dict__["__deepcopy__"] = _DeepCopy(module)
    except BaseException:
        snapshot.restore()
        raise
    return combined


def identity(module, name):
    """Set up pruning of ``module.<name>`` with a mask of ones; returns ``module``."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount, key=None):
    """Prune ``amount`` random unpruned entries of ``module.<name>``; returns ``module``.

    Without ``key``, draws from torch's default generator exactly as torch does; with a JAX
    ``key``, the mask equals ``jaxprune.random_unstructured`` on the same key.
    """
    RandomUnstructured.apply(module, name, amount, key=key)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    """Prune the ``amount`` unpruned entries of ``module.<name>`` of smallest magnitude."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim, key=None):
    """Prune ``amount`` random unpruned channels of ``module.<name>`` along ``dim``.

    With a JAX ``key``, the mask equals ``jaxprune.random_structured`` on the same key, so
    a torch ``Linear`` pruned on ``dim=0`` and its Flax ``Dense`` twin pruned on ``dim=-1``
    lose the same output channels.
    """
    RandomStructured.apply(module, name, amount, dim, key=key)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    """Prune the ``amount`` unpruned channels of ``module.<name>`` of smallest L``n`` norm."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    """Prune ``module.<name>`` with a precomputed ``mask`` on top of the mask in force."""
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune many parameters together with one unstructured selection (torch's semantics).

    ``parameters`` may be any iterable of ``(module, name)`` pairs, a generator included
    (torch reads it twice, so a generator fails there). Every input is checked before any
    module changes; a failure leaves every module as it was.
    """
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    parameters = list(parameters)
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(
            'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found '
            f"method {pruning_method} of type {method.PRUNING_TYPE}"
        )
    params = [getattr(module, name) for module, name in parameters]
    scores = [importance_scores.get((m, n), p) for (m, n), p in zip(parameters, params)]
    for (m, n), s, p in zip(parameters, scores, params):
        if s.shape != p.shape:
            raise ShapeMismatchError(
                f"importance_scores of parameter {n} of {m} should have shape {p.shape}, "
                f"got {s.shape}"
            )
    vector = torch.nn.utils.parameters_to_vector(scores)
    priors = [getattr(m, n + "_mask", None) for m, n in parameters]
    prior = torch.nn.utils.parameters_to_vector(
        [torch.ones_like(p) if pm is None else pm for p, pm in zip(params, priors)]
    )
    container = PruningContainer()
    container._tensor_name = "temp"
    container.add_pruning_method(method)
    final = container.compute_mask(vector, prior)

    snapshots = [_Snapshot(m) for m, _ in parameters]
    try:
        pointer = 0
        for (module, name), param in zip(parameters, params):
            num = param.numel()
            custom_from_mask(module, name, mask=final[pointer : pointer + num].view_as(param))
            pointer += num
    except BaseException:
        for s in reversed(snapshots):
            s.restore()
        raise


def remove(module, name):
    """Make the pruning of ``module.<name>`` permanent and drop its reparametrization.

    The parameter object is kept (its data becomes the pruned values).

    Raises:
        ValueError: ``module.<name>`` is not pruned.
    """
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            if not _pruned_names(module):
                module.__dict__.pop("__deepcopy__", None)
            return module
    raise ValueError(
        f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed"
    )


def is_pruned(module) -> bool:
    """Whether ``module`` or any submodule carries a pruning hook."""
    for _, submodule in module.named_modules():
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, BasePruningMethod):
                return True
    return False
