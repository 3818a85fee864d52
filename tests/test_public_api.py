import ast
import doctest
import importlib
import pkgutil
import re
import subprocess
import sys

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
    "register_method",
    "enable_compilation_cache",
    "nm_unstructured",
    "random_nm",
    "is_nm",
    "block_structured",
    "random_block_structured",
    "compact",
    "CompactReport",
    "LayerReport",
}


def test_public_api_is_pinned():
    import types

    names = {
        n
        for n in dir(jaxprune)
        if not n.startswith("_") and not isinstance(getattr(jaxprune, n), types.ModuleType)
    }
    assert names == PUBLIC
    assert sorted(jaxprune.__all__) == sorted(PUBLIC)
    assert set(jaxprune.nnx.__all__) == {
        "Mask",
        "Pruned",
        "prune",
        "remove",
        "is_pruned",
        "compact",
    }


MODULES = [
    f"jaxprune.{m.name}" for m in pkgutil.iter_modules(jaxprune.__path__) if m.name != "__main__"
]


def _imports(name):
    """Every module a module imports, at any depth of its code (lazy imports included)."""
    src = importlib.import_module(name).__loader__.get_source(name)
    found = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Call) and (
            getattr(node.func, "attr", None) in ("import_module", "require")
        ):
            if node.args and isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
    return {m.split(".")[0] for m in found}


# The integration layers may import their frameworks: optax (training), flax (NNX), and the
# checkpoint formats the command line reads and writes (orbax, safetensors, torch files).
INTEGRATION = {
    "jaxprune._optax": {"optax"},
    "jaxprune.nnx": {"flax"},
    "jaxprune._nnx_compact": {"flax"},
    "jaxprune._io": {"orbax", "safetensors", "torch"},
    "jaxprune._cli": set(),
}


@pytest.mark.parametrize("name", MODULES)
def test_import_rules(name):
    # The package never imports torch_compat (the shim sits on top of it); the core
    # (amounts, selection, methods, pytree layer) imports no flax, optax or torch.
    imported = _imports(name)
    assert "torch_compat" not in imported
    forbidden = {"flax", "optax", "torch", "orbax", "safetensors"} - INTEGRATION.get(name, set())
    assert not imported & forbidden, sorted(imported & forbidden)


def test_every_public_name_has_a_runnable_example():
    # The examples run in test_docstring_examples_run (doctest of each module).
    import inspect

    for module in (jaxprune, jaxprune.nnx):
        for name in module.__all__:
            assert ">>>" in (inspect.getdoc(getattr(module, name)) or ""), name


def test_import_rules_see_lazy_imports():
    assert {"optax"} <= _imports("jaxprune._optax")
    assert {"torch", "orbax"} <= _imports("jaxprune._io")


def test_importing_the_core_loads_no_framework():
    code = (
        "import sys, jaxprune as jp, jax.numpy as jnp\n"
        "jp.prune({'w': jnp.ones((4, 4))}, 'l1_unstructured', amount=0.5)\n"
        "print(sorted(m for m in ('flax', 'optax', 'torch', 'torch_compat') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize(
    "missing, call, extra",
    [
        ("optax", lambda: jaxprune.keep_pruned(None, {}), "jaxprune[flax]"),
        ("optax", lambda: jaxprune.gradual_pruning(None, "l1_unstructured", None), "[flax]"),
        ("flax", lambda: jaxprune.nnx, "jaxprune[flax]"),
    ],
)
def test_a_missing_extra_is_named(monkeypatch, missing, call, extra):
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    for name in [m for m in sys.modules if m.startswith(missing + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "jaxprune.nnx", raising=False)
    monkeypatch.delitem(vars(jaxprune), "nnx", raising=False)  # no lazy import to trigger
    with pytest.raises(ImportError, match=re.escape(extra)):
        call()


def test_version_comes_from_the_installed_metadata():
    from importlib import metadata

    assert jaxprune.__version__ == metadata.version("jaxprune")
