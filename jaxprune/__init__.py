"""jaxprune: torch.nn.utils.prune rebuilt on JAX.

Pure functions of explicit PRNG keys that compute boolean pruning masks (``True`` = kept), a
pytree layer that prunes a whole params tree in one compiled program, and helpers to apply
and inspect masks.

``import jaxprune`` is cheap: each public name loads its module (and JAX) on first use, so
that torch_compat, which needs only :class:`ShapeMismatchError` at import, starts without
JAX.
"""

import importlib as _importlib
import typing as _typing

from ._errors import ShapeMismatchError as ShapeMismatchError

if _typing.TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from ._basic import apply_mask as apply_mask
    from ._basic import custom_from_mask as custom_from_mask
    from ._basic import identity as identity
    from ._blocks import block_structured as block_structured
    from ._blocks import random_block_structured as random_block_structured
    from ._cache import enable_compilation_cache as enable_compilation_cache
    from ._compact import CompactReport as CompactReport
    from ._compact import LayerReport as LayerReport
    from ._compact import compact as compact
    from ._define import register_method as register_method
    from ._global import global_unstructured as global_unstructured
    from ._keys import leaf_key as leaf_key
    from ._nm import is_nm as is_nm
    from ._nm import nm_unstructured as nm_unstructured
    from ._nm import random_nm as random_nm
    from ._optax import GradualPruningState as GradualPruningState
    from ._optax import KeepPrunedState as KeepPrunedState
    from ._optax import current_masks as current_masks
    from ._optax import gradual_pruning as gradual_pruning
    from ._optax import keep_pruned as keep_pruned
    from ._report import LeafReport as LeafReport
    from ._report import format_report as format_report
    from ._report import report as report
    from ._schedules import PolynomialSchedule as PolynomialSchedule
    from ._schedules import constant_schedule as constant_schedule
    from ._schedules import one_shot_schedule as one_shot_schedule
    from ._schedules import polynomial_schedule as polynomial_schedule
    from ._structured import ln_structured as ln_structured
    from ._structured import random_structured as random_structured
    from ._tree import apply_masks as apply_masks
    from ._tree import prune as prune
    from ._tree import sparsity as sparsity
    from ._unstructured import l1_unstructured as l1_unstructured
    from ._unstructured import random_unstructured as random_unstructured

#: Each public name's module, imported on first use.
_LAZY = {
    "apply_mask": "_basic",
    "custom_from_mask": "_basic",
    "identity": "_basic",
    "block_structured": "_blocks",
    "CompactReport": "_compact",
    "LayerReport": "_compact",
    "compact": "_compact",
    "random_block_structured": "_blocks",
    "enable_compilation_cache": "_cache",
    "register_method": "_define",
    "global_unstructured": "_global",
    "leaf_key": "_keys",
    "is_nm": "_nm",
    "nm_unstructured": "_nm",
    "random_nm": "_nm",
    "GradualPruningState": "_optax",
    "KeepPrunedState": "_optax",
    "current_masks": "_optax",
    "gradual_pruning": "_optax",
    "keep_pruned": "_optax",
    "LeafReport": "_report",
    "format_report": "_report",
    "report": "_report",
    "PolynomialSchedule": "_schedules",
    "constant_schedule": "_schedules",
    "one_shot_schedule": "_schedules",
    "polynomial_schedule": "_schedules",
    "ln_structured": "_structured",
    "random_structured": "_structured",
    "apply_masks": "_tree",
    "prune": "_tree",
    "sparsity": "_tree",
    "l1_unstructured": "_unstructured",
    "random_unstructured": "_unstructured",
}

__all__ = sorted(["ShapeMismatchError", *_LAZY])


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("jaxprune")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    # `jp.nnx` needs Flax: import it on first use only.
    if name == "nnx":
        from ._extras import require

        require("flax.nnx", "jaxprune.nnx")
        return _importlib.import_module(".nnx", __name__)
    raise AttributeError(f"module 'jaxprune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
