"""torch's and torch_compat's methods stacked on one parameter, in either order."""

import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_state, hook_summary, twins

from torch_compat import prune as cp

STEPS = [
    ("random_structured", {"amount": 0.5, "dim": 0}),
    ("l1_unstructured", {"amount": 0.3}),
    ("random_unstructured", {"amount": 3}),
    ("ln_structured", {"amount": 1, "n": 2, "dim": 1}),
]


@pytest.mark.parametrize("pattern", ["tctc", "cttc", "ccct", "tttc"])
def test_mixed_stack_equals_torch_alone(pattern):
    alone, mixed = twins("conv2d")
    for i, ((fn, kwargs), who) in enumerate(zip(STEPS, pattern)):
        torch.manual_seed(i)
        getattr(tp, fn)(alone, "weight", **kwargs)
        torch.manual_seed(i)
        getattr(tp if who == "t" else cp, fn)(mixed, "weight", **kwargs)
        assert_same_state(alone, mixed)
    (summary,) = hook_summary(mixed)
    assert summary[0] is True  # one container holding all four methods
    assert [m[0] for m in summary[2]] == [type(m).__name__ for m in _methods(alone)]


def _methods(module):
    (hook,) = [h for h in module._forward_pre_hooks.values() if isinstance(h, tp.BasePruningMethod)]
    return list(hook) if isinstance(hook, tp.PruningContainer) else [hook]


def test_classes_are_torch_classes():
    assert cp.BasePruningMethod is tp.BasePruningMethod
    for name in (
        "PruningContainer",
        "Identity",
        "RandomUnstructured",
        "L1Unstructured",
        "RandomStructured",
        "LnStructured",
        "CustomFromMask",
    ):
        assert issubclass(getattr(cp, name), getattr(tp, name))


def test_torch_remove_and_is_pruned_on_compat_modules():
    a, b = twins("linear")
    tp.l1_unstructured(a, "weight", amount=0.5)
    cp.l1_unstructured(b, "weight", amount=0.5)
    assert tp.is_pruned(b) and cp.is_pruned(b)
    param = b.weight_orig
    tp.remove(b, "weight")
    cp.remove(a, "weight")
    assert b.weight is param  # the parameter keeps its identity
    assert not tp.is_pruned(b) and not cp.is_pruned(a)
    assert_same_state(a, b)
    with pytest.raises(ValueError, match="has to be pruned before pruning can be removed"):
        cp.remove(b, "weight")


def test_torch_container_accepts_compat_methods():
    a, b = twins("linear")
    tp.l1_unstructured(a, "weight", amount=0.3)
    tp.l1_unstructured(b, "weight", amount=0.3)
    container = tp.PruningContainer(*_methods(b))
    torch.manual_seed(0)
    tp.random_structured(a, "weight", amount=2, dim=0)
    method = cp.RandomStructured(amount=2, dim=0)
    method._tensor_name = "weight"
    container.add_pruning_method(method)
    torch.manual_seed(0)
    mask = container.compute_mask(b.weight, b.weight_mask)
    assert torch.equal(mask, a.weight_mask)
