import doctest
import importlib
import pkgutil

import pytest

import jaxprune

PUBLIC = {
    "LeafReport",
    "ShapeMismatchError",
    "apply_mask",
    "apply_masks",
    "custom_from_mask",
    "format_report",
    "global_unstructured",
    "identity",
    "l1_unstructured",
    "ln_structured",
    "prune",
    "random_structured",
    "random_unstructured",
    "report",
    "sparsity",
    "keep_pruned",
    "gradual_pruning",
    "current_masks",
    "KeepPrunedState",
    "GradualPruningState",
    "polynomial_schedule",
    "one_shot_schedule",
    "constant_schedule",
    "PolynomialSchedule",
    "leaf_key",
}


def test_public_api_is_pinned():
    import types

    names = {
        n
        for n in dir(jaxprune)
        if not n.startswith("_") and not isinstance(getattr(jaxprune, n), types.ModuleType)
    }
    assert names == PUBLIC
    assert set(jaxprune.nnx.__all__) == {"Mask", "Pruned", "prune", "remove", "is_pruned"}


MODULES = [
    f"jaxprune.{m.name}" for m in pkgutil.iter_modules(jaxprune.__path__) if m.name != "__main__"
]


# The demo, the command line's checkpoint reader and the benchmark suite are the application
# on top of both packages (the demo shows the torch twin of its CNN pruned through
# torch_compat; the CLI reads torch state_dicts; the suite measures torch beside jaxprune),
# and import torch lazily. The library modules never import either.
APPLICATION = ("jaxprune._demo", "jaxprune._io", "jaxprune._bench")


@pytest.mark.parametrize("name", [m for m in MODULES if m not in APPLICATION])
def test_nothing_in_jaxprune_imports_torch(name):
    src = importlib.import_module(name).__loader__.get_source(name)
    assert "torch_compat" not in src and "import torch" not in src


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
