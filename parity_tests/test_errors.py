"""Errors raise torch's exception types; a failed call leaves the module exactly as it was."""

import copy

import pytest
import torch
import torch.nn.utils.prune as tp
from parity_helpers import assert_same_state, hook_summary, twins

from torch_compat import prune as cp

CALLS = [
    ("random_unstructured", ("weight",), {"amount": 1.5}, ValueError),
    ("random_unstructured", ("weight",), {"amount": "x"}, TypeError),
    ("l1_unstructured", ("weight",), {"amount": -1}, ValueError),
    ("l1_unstructured", ("weight",), {"amount": 1000}, ValueError),
    ("random_structured", ("weight",), {"amount": 0.5, "dim": 5}, IndexError),
    ("random_structured", ("weight",), {"amount": 9, "dim": 0}, ValueError),
    ("random_structured", ("bias",), {"amount": 1, "dim": 0}, ValueError),
    ("ln_structured", ("weight",), {"amount": 0.5, "n": 2, "dim": -9}, IndexError),
    ("l1_unstructured", ("nope",), {"amount": 0.5}, AttributeError),
    ("custom_from_mask", ("weight",), {"mask": torch.ones(2)}, AssertionError),
    (
        "l1_unstructured",
        ("weight",),
        {"amount": 0.5, "importance_scores": torch.ones(2)},
        AssertionError,
    ),
]


@pytest.mark.parametrize(
    "fn,args,kwargs,exc", CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)]
)
@pytest.mark.parametrize("already_pruned", [False, True])
def test_same_exception_type_and_no_change(fn, args, kwargs, exc, already_pruned):
    a, b = twins("linear")
    if already_pruned:
        for lib, m in ((tp, a), (cp, b)):
            torch.manual_seed(0)
            lib.random_unstructured(m, "weight", amount=0.3)
    before = copy.deepcopy(b)
    with pytest.raises(exc):
        getattr(tp, fn)(a, *args, **kwargs)
    with pytest.raises(exc):
        getattr(cp, fn)(b, *args, **kwargs)
    assert_same_state(before, b)
    assert list(b._forward_pre_hooks) == list(before._forward_pre_hooks)


def test_torch_drops_the_hook_on_failure_and_compat_does_not():
    a, b = twins("linear")
    for lib, m in ((tp, a), (cp, b)):
        torch.manual_seed(0)
        lib.l1_unstructured(m, "weight", amount=0.3)
        with pytest.raises(ValueError):
            lib.l1_unstructured(m, "weight", amount=10_000)
    assert hook_summary(a) == []  # torch lost its pruning hook
    assert hook_summary(b) != []  # torch_compat kept it
    assert cp.is_pruned(b)


def test_messages_name_the_value():
    _, b = twins("linear")
    with pytest.raises(
        ValueError, match="amount=1000 should be smaller than the number of parameters to prune=35"
    ):
        cp.l1_unstructured(b, "weight", amount=1000)
    with pytest.raises(
        IndexError, match=r"Invalid index 5 for tensor of size torch.Size\(\[5, 7\]\)"
    ):
        cp.random_structured(b, "weight", amount=1, dim=5)


def test_channels_last_parameters_where_torch_fails():
    def conv():
        torch.manual_seed(0)
        return torch.nn.Conv2d(3, 4, 3)

    a = conv().to(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        tp.l1_unstructured(a, "weight", amount=0.5)
    b = conv().to(memory_format=torch.channels_last)
    cp.l1_unstructured(b, "weight", amount=0.5)
    reference = conv()  # the same values, contiguous: torch handles it
    tp.l1_unstructured(reference, "weight", amount=0.5)
    assert torch.equal(b.weight_mask, reference.weight_mask)
    c = conv().to(memory_format=torch.channels_last)
    cp.random_unstructured(c, "weight", amount=0.5)
    assert int((c.weight_mask == 0).sum()) == 54
