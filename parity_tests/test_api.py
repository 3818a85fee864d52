"""Every public name of torch.nn.utils.prune, with the same signature and defaults."""

import inspect

import pytest
import torch.nn.utils.prune as tp

from torch_compat import prune as cp

NAMES = [
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
    "remove",
    "is_pruned",
]


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_same_signature_plus_key(name):
    ours, theirs = getattr(cp, name), getattr(tp, name)
    targets = [(ours, theirs)]
    if inspect.isclass(theirs):
        targets = [(ours.__init__, theirs.__init__)]
        if "apply" in vars(theirs):
            targets.append((ours.apply, theirs.apply))
    for o, t in targets:
        po, pt = _params(o), _params(t)
        extra = po[len(pt) :]
        assert po[: len(pt)] == pt
        assert extra in ([], [("key", inspect.Parameter.POSITIONAL_OR_KEYWORD, None)])


#: Beyond torch's list (issue-named extras; no torch counterpart to compare signatures with).
EXTRA = [
    "NMUnstructured",
    "RandomNM",
    "nm_unstructured",
    "random_nm",
    "BlockStructured",
    "RandomBlockStructured",
    "block_structured",
    "random_block_structured",
]


def test_public_names():
    assert set(cp.__all__) == set(NAMES) | set(EXTRA)
    for name in EXTRA:
        assert not hasattr(tp, name)


@pytest.mark.parametrize("name", ["torch_compat", "torch_compat.prune"])
def test_docstring_examples_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
