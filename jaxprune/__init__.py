"""jaxprune: torch.nn.utils.prune rebuilt on JAX.

Pure functions of explicit PRNG keys that compute boolean pruning masks (``True`` = kept), a
pytree layer that prunes a whole params tree in one compiled program, and helpers to apply
and inspect masks.
"""

from ._basic import apply_mask as apply_mask
from ._basic import custom_from_mask as custom_from_mask
from ._basic import identity as identity
from ._define import register_method as register_method
from ._errors import ShapeMismatchError as ShapeMismatchError
from ._global import global_unstructured as global_unstructured
from ._keys import leaf_key as leaf_key
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


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("jaxprune")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


__version__ = _version()

__all__ = [
    "GradualPruningState",
    "KeepPrunedState",
    "LeafReport",
    "PolynomialSchedule",
    "ShapeMismatchError",
    "apply_mask",
    "apply_masks",
    "constant_schedule",
    "current_masks",
    "custom_from_mask",
    "format_report",
    "global_unstructured",
    "gradual_pruning",
    "identity",
    "keep_pruned",
    "l1_unstructured",
    "leaf_key",
    "ln_structured",
    "one_shot_schedule",
    "polynomial_schedule",
    "prune",
    "random_structured",
    "random_unstructured",
    "register_method",
    "report",
    "sparsity",
]


def __getattr__(name: str):
    # `jp.nnx` needs Flax: import it on first use only.
    if name == "nnx":
        import importlib

        from ._extras import require

        require("flax.nnx", "jaxprune.nnx")
        return importlib.import_module(".nnx", __name__)
    raise AttributeError(f"module 'jaxprune' has no attribute {name!r}")
